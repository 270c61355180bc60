"""A seeded generator of malformed inputs (audio, scores, note strings) for the hardening tests and
``benchmarks/fuzz.py``. Everything is generated at run time from a seed; nothing is committed.

Each case is a file (or a note string) that mirsearch must refuse with a one-line error naming it, or accept
(``good``), but never crash on, hang on, or let poison a collection.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


@dataclass(frozen=True)
class Case:
    """One fuzz input: ``path`` (a file) or ``text`` (a note string); ``good`` when it must be accepted."""

    name: str
    kind: str  # "audio", "score", "notes"
    path: str | None = None
    text: str | None = None
    good: bool = False


def _tone(rng, seconds: float = 2.0, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    f = 220.0 * 2 ** (rng.integers(0, 24) / 12)
    y = 0.3 * np.sin(2 * np.pi * f * t) * np.exp(-t * 0.3)
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32) if channels > 1 else y.astype(np.float32)


def _wav_header(*, channels: int, rate: int, bits: int, data_bytes: int, fmt_code: int = 1) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_code, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def _encoded(rng, fmt: str, subtype: str | None, seconds: float = 2.0) -> bytes:
    buf = io.BytesIO()
    sr = 48000 if subtype == "OPUS" else SR
    sf.write(buf, _tone(rng, seconds, sr), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _mutations(rng, data: bytes, n: int) -> list[bytes]:
    """Truncations, bit flips and overwritten header bytes of a valid file."""
    out = []
    for i in range(n):
        b = bytearray(data)
        how = i % 4
        if how == 0:
            b = b[: int(rng.integers(1, max(2, len(b) // 2)))]
        elif how == 1:
            for _ in range(int(rng.integers(1, 40))):
                pos = int(rng.integers(0, min(len(b), 256)))
                b[pos] ^= 1 << int(rng.integers(0, 8))
        elif how == 2:
            pos = int(rng.integers(0, min(len(b), 64)))
            b[pos : pos + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        else:
            pos = int(rng.integers(len(b) // 4, len(b)))
            b[pos:] = rng.integers(0, 256, len(b) - pos, dtype=np.uint8).tobytes()
        out.append(bytes(b))
    return out


def _audio_cases(folder: Path, rng, n_mutations: int, heavy: bool) -> list[Case]:
    cases: list[Case] = []

    def put(name: str, data: bytes, good: bool = False) -> None:
        path = folder / name
        path.write_bytes(data)
        cases.append(Case(name, "audio", str(path), good=good))

    def put_array(name: str, y: np.ndarray, sr: int, subtype: str | None = None, good: bool = False) -> None:
        path = folder / name
        sf.write(path, y, sr, subtype=subtype)
        cases.append(Case(name, "audio", str(path), good=good))

    for fmt, subtype, ext in (("WAV", "PCM_16", ".wav"), ("FLAC", "PCM_16", ".flac"), ("OGG", "VORBIS", ".ogg"),
                              ("MP3", None, ".mp3"), ("OGG", "OPUS", ".opus")):  # fmt: skip
        data = _encoded(rng, fmt, subtype)
        put(f"good{ext}", data, good=True)
        for i, bad in enumerate(_mutations(rng, data, n_mutations)):
            put(f"mut{i:03d}{ext}", bad)
        put(f"random{ext}", rng.integers(0, 256, int(rng.integers(10, 5000)), dtype=np.uint8).tobytes())
        put(f"empty{ext}", b"")
    put("id3-only.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x10" + bytes(16))
    put("riff-huge.wav", _wav_header(channels=2, rate=44100, bits=16, data_bytes=0xFFFFFFF0) + bytes(1000))
    put("zero-channels.wav", _wav_header(channels=0, rate=44100, bits=16, data_bytes=100) + bytes(100))
    put("zero-rate.wav", _wav_header(channels=1, rate=0, bits=16, data_bytes=100) + bytes(100))
    put("odd-bits.wav", _wav_header(channels=1, rate=44100, bits=13, data_bytes=100) + bytes(100))
    put("header-only.wav", _wav_header(channels=1, rate=22050, bits=16, data_bytes=0))
    y = _tone(rng)
    put_array("huge-1e30.wav", y * np.float32(1e30), SR, "FLOAT")
    put_array("huge-1e30-double.wav", y.astype(np.float64) * 1e30, SR, "DOUBLE")
    put_array("nan.wav", np.where(np.arange(y.size) % 100 == 0, np.nan, y).astype(np.float32), SR, "FLOAT")
    put_array("inf.wav", np.where(np.arange(y.size) == 500, np.inf, y).astype(np.float32), SR, "FLOAT")
    put_array("one-sample.wav", np.array([0.5], np.float32), SR)
    put_array("silent.flac", np.zeros(SR * 2, np.float32), SR)
    put_array("short.wav", y[: SR // 10], SR)
    put_array("loud-but-finite.wav", y * np.float32(50.0), SR, "FLOAT", good=True)
    put_array("8ch-192k.flac", _tone(rng, 1.0 if not heavy else 5.0, 192000, 8), 192000, good=True)
    flac = bytearray(_encoded(rng, "FLAC", "PCM_16"))  # a legal stream of unknown length: total samples 0
    v = int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1)
    flac[18:26] = v.to_bytes(8, "big")
    put("unknown-length.flac", bytes(flac), good=True)
    odd = os.fsdecode(os.fsencode(str(folder)) + b"/latin1-caf\xe9.wav")
    sf.write(os.fsencode(odd), _tone(rng), SR)
    cases.append(Case("latin1 name", "audio", odd, good=True))
    cases.append(Case("path > 4096 bytes", "audio", str(folder) + ("/" + "x" * 250) * 20 + "/a.wav"))
    if heavy:  # 300 s of 8 channels at 192 kHz in a small FLAC: a 10-s tone, then silence
        t = np.arange(192000 * 10) / 192000
        tone = np.repeat((0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None], 8, axis=1)
        with sf.SoundFile(folder / "8ch-192k-300s.flac", "w", 192000, 8, subtype="PCM_16") as fh:
            fh.write(tone)
            for _ in range(29):
                fh.write(np.zeros_like(tone))
        cases.append(Case("8ch-192k-300s.flac", "audio", str(folder / "8ch-192k-300s.flac"), good=True))
    return cases


_XML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1"><part-list><score-part id="P1">'
    '<part-name>M</part-name></score-part></part-list><part id="P1">'
)
_XML_TAIL = "</part></score-partwise>"


def _xml_note(step: str, octave: int, duration: int) -> str:
    return f"<note><pitch><step>{step}</step><octave>{octave}</octave></pitch><duration>{duration}</duration></note>"


def _musicxml(notes: str, divisions: int = 1) -> str:
    attributes = f"<attributes><divisions>{divisions}</divisions></attributes>"
    return f'{_XML_HEAD}<measure number="1">{attributes}{notes}</measure>{_XML_TAIL}'


def _midi(track: bytes, division: int = 480) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, division) + b"MTrk" + struct.pack(">I", len(track)) + track


def _score_cases(folder: Path, rng, n_mutations: int, heavy: bool) -> list[Case]:
    cases: list[Case] = []

    def put(name: str, data: bytes | str, good: bool = False) -> None:
        path = folder / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        cases.append(Case(name, "score", str(path), good=good))

    good_xml = _musicxml("".join(_xml_note(s, 4, 1) for s in "CDEFGAB"))
    put("good.musicxml", good_xml, good=True)
    put("good.krn", "**kern\n*M4/4\n4c\n4d\n4e\n4f\n4g\n*-\n", good=True)
    note_on = b"\x00\x90\x3c\x50\x83\x60\x80\x3c\x00" * 4
    put("good.mid", _midi(note_on + b"\x00\xff\x2f\x00"), good=True)
    put("long-note.musicxml", _musicxml(_xml_note("C", 4, 200000)))
    put("huge-divisions.musicxml", _musicxml(_xml_note("C", 4, 10**15), divisions=1))
    put("zero-divisions.musicxml", _musicxml(_xml_note("C", 4, 1), divisions=0))
    put("deep.musicxml", _XML_HEAD + "<measure>" * 5000 + "</measure>" * 5000 + _XML_TAIL)
    put("truncated.musicxml", good_xml[: len(good_xml) // 2])
    levels = "".join(f'<!ENTITY {b} "{("&" + a + ";") * 10}">' for a, b in zip("abcde", "bcdef", strict=True))
    bomb = f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaa">{levels}]><score-partwise>&f;</score-partwise>'
    put("entities.musicxml", bomb)
    put(
        "external-entity.musicxml",
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><score-partwise>&x;</score-partwise>',
    )
    put("many-notes.musicxml", _musicxml("".join(_xml_note("C", 4, 1) for _ in range(6000))))  # slow to parse
    put("kern-huge-rational.krn", "**kern\n*M4/4\n4c\n1%99999999999d\n4e\n*-\n")
    put("kern-huge-rational2.krn", "**kern\n4c\n99999999999%1d\n*-\n")
    put("kern-garbage.krn", "**kern\n" + "".join(chr(int(c)) for c in rng.integers(33, 126, 200)) + "\n*-\n")
    put("empty.krn", "")
    put("not-kern.krn", "hello\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "META-INF/container.xml", '<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>'
        )
        zf.writestr("score.xml", good_xml + " " * (100 * 1024 * 1024))  # expands to 100 MB
    put("bomb.mxl", buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "META-INF/container.xml", '<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>'
        )
        zf.writestr("score.xml", good_xml)
    put("good.mxl", buf.getvalue(), good=True)
    put("not-a-zip.mxl", b"PK\x03\x04" + bytes(100))
    put("huge-delta.mid", _midi(b"\x00\x90\x3c\x50\x8f\xff\xff\x7f\x80\x3c\x00\x00\xff\x2f\x00"))
    put("zero-division.mid", _midi(note_on + b"\x00\xff\x2f\x00", division=0))
    put("truncated.mid", _midi(note_on + b"\x00\xff\x2f\x00")[:30])
    put("no-notes.mid", _midi(b"\x00\xff\x2f\x00"))
    put("tempo-zero.mid", _midi(b"\x00\xff\x51\x03\x00\x00\x00" + note_on + b"\x00\xff\x2f\x00"))
    for i, bad in enumerate(_mutations(rng, (folder / "good.mid").read_bytes(), n_mutations)):
        put(f"mut{i:03d}.mid", bad)
    for i, bad in enumerate(_mutations(rng, good_xml.encode(), n_mutations)):
        put(f"mut{i:03d}.musicxml", bad)
    return cases


def _note_cases(rng) -> list[Case]:
    texts = ["", "   ", "H", "C/0", "C/3", "C99", "Cb-1", "C/4096", "R R R", "C " * 6000, "C/1" + "." * 50,
             "C#x", "ä ö ü", "C/99999999999999999999", "\x00", "C,,,,D", "E5/8 D#5/8 E5/4"]  # fmt: skip
    texts += ["".join(chr(int(c)) for c in rng.integers(32, 127, int(rng.integers(1, 40)))) for _ in range(8)]
    return [Case(f"notes {i}", "notes", text=t, good=(t == "E5/8 D#5/8 E5/4")) for i, t in enumerate(texts)]


def make_corpus(folder: str | os.PathLike, *, seed: int = 0, n_mutations: int = 6, heavy: bool = False) -> list[Case]:
    """Write the corpus under ``folder`` (``audio/`` and ``scores/``); returns its cases.

    ``n_mutations`` mutated copies per valid file and format; ``heavy`` adds the slow inputs (300 s of
    8-channel 192 kHz audio).
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    (folder / "scores").mkdir(parents=True, exist_ok=True)
    return (
        _audio_cases(folder / "audio", rng, n_mutations, heavy)
        + _score_cases(folder / "scores", rng, n_mutations, heavy)
        + _note_cases(rng)
    )
