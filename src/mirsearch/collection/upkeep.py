"""Keeping a collection in step with the files: list, remove, prune (files gone) and relocate (files moved).

Removing or pruning deletes catalogue rows and the feature arrays no other recording shares; it never touches
the audio files. Relocating changes stored paths only: a recording moves when the file at its new path has
the same content hash, so no feature is recomputed; a file whose content differs is left for ``index``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mirsearch.audio import display_name, printable
from mirsearch.collection.extract import sha1_of
from mirsearch.errors import InputError


@dataclass
class UpkeepReport:
    """What an upkeep command did.

    Attributes
    ----------
    removed : list of str
        Paths of the recordings removed from the catalogue.
    moved : list of (str, str)
        Old and new path of each relocated recording.
    problems : list of (str, str)
        Paths that were not handled, with a one-line reason (not in the collection, missing, changed content).
    """

    removed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "removed": [printable(p) for p in self.removed],
            "moved": [{"from": printable(a), "to": printable(b)} for a, b in self.moved],
            "problems": [{"path": printable(p), "error": printable(e)} for p, e in self.problems],
        }


def listing(coll) -> list[dict]:
    """Every recording: id, stored path (relative to the collection's base where it can be), absolute path,
    duration (s), and whether its file exists."""
    stored = coll.catalog.stored_paths()
    return [
        {
            "id": rec.id,
            "path": printable(stored.get(rec.id, rec.path)),
            "absolute": printable(rec.path),
            "duration": round(rec.duration, 3),
            "exists": os.path.exists(rec.path),
        }
        for rec in coll.recordings()
    ]


def _absolute(path) -> Path:
    p = Path(os.fsdecode(path)).expanduser()
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p.absolute()


def _under(path: str, root: Path) -> bool:
    p = Path(path)
    return p == root or root in p.parents


def _drop(coll, recs, report: UpkeepReport) -> None:
    """Delete recordings and the feature arrays nothing else refers to."""
    if not recs:
        return
    catalog = coll.catalog
    files = set().union(*(catalog.feature_files(r.id) for r in recs))
    catalog.remove_many([r.id for r in recs])
    for rel in files - catalog.referenced_files():
        (coll.root / rel).unlink(missing_ok=True)
    report.removed.extend(r.path for r in recs)


def remove(coll, paths) -> UpkeepReport:
    """Remove the recordings of the given files, or of all files under the given folders."""
    report = UpkeepReport()
    recs = coll.recordings()
    chosen: dict[int, object] = {}
    for p in [paths] if isinstance(paths, str | os.PathLike) else paths:
        root = _absolute(p)
        hits = [r for r in recs if _under(r.path, root) or r.path == str(Path(os.fsdecode(p)).absolute())]
        if not hits:
            report.problems.append((str(p), f"{display_name(p)}: not in the collection"))
        chosen.update((r.id, r) for r in hits)
    _drop(coll, list(chosen.values()), report)
    return report


def prune(coll) -> UpkeepReport:
    """Remove the recordings whose files no longer exist."""
    report = UpkeepReport()
    _drop(coll, [r for r in coll.recordings() if not os.path.exists(r.path)], report)
    return report


def relocate(coll, old, new) -> UpkeepReport:
    """Point the recordings under ``old`` (a folder or a file) to the same relative place under ``new``.

    A recording moves when the file at its new path exists and has the same content hash; otherwise it is
    listed in ``problems`` (missing there, or changed: ``index`` the new folder to update it).

    Raises
    ------
    InputError
        ``new`` does not exist, or no recording lies under ``old``.
    """
    old_root = Path(os.fsdecode(old)).expanduser().absolute()
    new_root = _absolute(new)
    if not new_root.exists():
        raise InputError(f"{display_name(new_root)}: no such file or folder (relocate OLD NEW: NEW must exist)")
    recs = [r for r in coll.recordings() if _under(r.path, old_root) or _under(r.path, _absolute(old))]
    if not recs:
        raise InputError(f"{display_name(old_root)}: no recording of the collection lies there")
    report = UpkeepReport()
    catalog = coll.catalog
    for rec in recs:
        base = old_root if _under(rec.path, old_root) else _absolute(old)
        rel = Path(rec.path).relative_to(base)
        target = new_root / rel if rel.parts else new_root
        try:
            st = target.stat()
            same = st.st_size == rec.size and sha1_of(target) == rec.sha1
        except OSError as exc:
            report.problems.append((str(target), f"{display_name(target)}: not found ({exc.strerror})"))
            continue
        if not same:
            report.problems.append((str(target), f"{display_name(target)}: content differs (run 'mirsearch index')"))
            continue
        catalog.move(rec.id, str(target), size=st.st_size, mtime=st.st_mtime)
        report.moved.append((rec.path, str(target)))
    return report
