"""Checks of structured input files before a library parses them, and readable reasons for readers' exceptions.

A 400-byte file must not ask for gigabytes: a zip archive is checked for its decompressed size (the real bytes
read, not the sizes it claims) and an XML document for its element nesting, streaming, before the real reader
sees it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mirsearch.errors import InputError

#: what a reader's bare exception means for the file
_EXCEPTION_MEANING = {
    "EOFError": "file ends unexpectedly (truncated?)",
    "IndexError": "structure not as the format requires",
    "KeyError": "structure not as the format requires",
    "ValueError": "invalid value in the file",
    "ZeroDivisionError": "invalid value in the file",
    "RecursionError": "nested too deeply",
    "MemoryError": "too large to read",
}


def first_line(exc: BaseException, *, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else type(exc).__name__


def exception_reason(exc: BaseException) -> str:
    """A reader's exception as a reason a user can act on (no bare internal messages such as ``None``)."""
    kind = type(exc).__name__
    text = first_line(exc) if str(exc).strip() else ""
    meaning = _EXCEPTION_MEANING.get(kind)
    if meaning is None:
        return text if text and text != "None" else "unreadable content"
    if not text or text == "None" or kind in ("IndexError", "KeyError"):
        return meaning
    return f"{meaning}: {text}"


def check_structured_file(path: Path, *, max_bytes: int, max_unzipped: int, max_depth: int, kind: str = "file") -> None:
    """Check a file before parsing it: it exists, is not empty or too big; a zip archive (``.mxl``) does not
    expand beyond ``max_unzipped`` bytes; XML (``.xml``, ``.musicxml``, ``.mei`` and the XML inside an ``.mxl``)
    is well-formed and nested at most ``max_depth`` elements deep.

    ``kind`` names the content in messages (``"malformed score (XML: ...)"``).

    Raises
    ------
    InputError
        Naming the file and the limit it breaks.
    """
    name = path.name
    try:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if size == 0:
        raise InputError(f"{name}: file is empty (0 bytes)")
    if size > max_bytes:
        raise InputError(f"{name}: file too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.0f} MB)")
    ext = path.suffix.lower()
    if ext == ".mxl":
        _check_zip(path, max_unzipped=max_unzipped, max_depth=max_depth, kind=kind)
    elif ext in (".xml", ".musicxml", ".mei"):
        with open(path, "rb") as fh:
            check_xml_depth(fh, name, max_depth=max_depth, kind=kind)


def _check_zip(path: Path, *, max_unzipped: int, max_depth: int, kind: str) -> None:
    name = path.name
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            claimed = sum(m.file_size for m in members)
            if len(members) > 1000 or claimed > max_unzipped:
                raise InputError(
                    f"{name}: archive expands to {claimed / 1e6:.0f} MB in {len(members)} files "
                    f"(at most {max_unzipped / 1e6:.0f} MB)"
                )
            budget = _Budget(max_unzipped, name)
            for m in members:
                with zf.open(m) as fh:
                    stream = _Bounded(fh, budget)
                    if m.filename.lower().endswith((".xml", ".musicxml")):
                        check_xml_depth(stream, name, max_depth=max_depth, kind=kind)
                    else:
                        while stream.read(1 << 16):
                            pass
    except zipfile.BadZipFile as exc:
        raise InputError(f"{name}: not a valid zip archive ({first_line(exc)})") from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:  # corrupt or encrypted
        raise InputError(f"{name}: unreadable archive ({exception_reason(exc)})") from None


class _Budget:
    def __init__(self, limit: int, name: str):
        self.left, self.limit, self.name = limit, limit, name

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise InputError(f"{self.name}: archive expands beyond {self.limit / 1e6:.0f} MB")


class _Bounded:
    """A binary stream that counts what it gives against a shared budget of decompressed bytes."""

    def __init__(self, fh, budget: _Budget):
        self.fh, self.budget = fh, budget

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n if n is not None and n >= 0 else 1 << 16)
        self.budget.take(len(data))
        return data


def check_xml_depth(fh, name: str, *, max_depth: int, kind: str = "file") -> None:
    """Stream XML from the binary file ``fh`` once, checking that it is well-formed and nested at most
    ``max_depth`` elements deep. Entities are not expanded here (a reference goes to the default handler)."""
    import xml.parsers.expat

    parser = xml.parsers.expat.ParserCreate()
    depth = 0

    def start(tag, attrs):
        nonlocal depth
        depth += 1
        if depth > max_depth:
            raise InputError(f"{name}: XML nested more than {max_depth} levels deep")

    def end(tag):
        nonlocal depth
        depth -= 1

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.DefaultHandler = lambda data: None  # internal entities come here instead of being expanded
    try:
        while chunk := fh.read(1 << 16):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except xml.parsers.expat.ExpatError as exc:
        reason = xml.parsers.expat.ErrorString(exc.code)
        raise InputError(f"{name}: malformed {kind} (XML: {reason}, line {exc.lineno})") from None
