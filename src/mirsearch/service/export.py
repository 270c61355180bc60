"""Results in the formats archivists already use: CSV, Audacity label tracks, Sonic Visualiser layers (.svl).

Matches (of ``theme``, ``passages``, ``versions``) become one row / label / region each, named by rank,
recording, cost, confidence and transposition; a time map (``align``) becomes its points: CSV ``time_a,time_b``,
Audacity labels on A's time axis saying where each point lies in B, or a Sonic Visualiser time-value layer
(value: the time in B). An Audacity label track belongs to one audio file: import the labels into the track of
the recording they name. A score alignment (``align SCORE AUDIO``) becomes one label / region per note.
"""

from __future__ import annotations

import csv
import io
from xml.sax.saxutils import quoteattr

#: output formats of the commands that print results (``--format``)
FORMATS = ("table", "json", "csv", "audacity", "svl")
#: columns of a match table
MATCH_COLUMNS = ("rank", "recording", "recording_id", "start", "end", "cost", "confidence", "transposition")
#: nominal sample rate of Sonic Visualiser layers (frames are seconds x this; SV rescales to the audio's rate)
SVL_RATE = 44100


def _label(rank: int, row: dict) -> str:
    name = str(row["recording"]).replace("\\", "/").rsplit("/", 1)[-1]
    parts = [f"#{rank} {name}", f"cost {row['cost']:.4f}"]
    if row.get("confidence") is not None:
        parts.append(f"confidence {row['confidence']:.2f}")
    if row.get("transposition"):
        parts.append(f"transposition {row['transposition']:+d}")
    return ", ".join(parts)


def matches_csv(rows: list[dict]) -> str:
    """One line per match (``Match.to_dict()`` rows, best first) with :data:`MATCH_COLUMNS`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MATCH_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for rank, row in enumerate(rows, 1):
        writer.writerow({**row, "rank": rank})
    return buf.getvalue()


def matches_audacity(rows: list[dict]) -> str:
    """An Audacity label track: ``start<TAB>end<TAB>label`` per match (seconds)."""
    return "".join(f"{r['start']:.6f}\t{r['end']:.6f}\t{_label(i, r)}\n" for i, r in enumerate(rows, 1))


def _svl(kind: str, dimensions: int, points: list[str], *, name: str, end: int, subtype: str = "") -> str:
    sub = f' subtype="{subtype}"' if subtype else ""
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            "<!DOCTYPE sonic-visualiser>",
            "<sv>",
            "  <data>",
            f'    <model id="1" name={quoteattr(name)} sampleRate="{SVL_RATE}" start="0" end="{end}" type="sparse" '
            f'dimensions="{dimensions}" resolution="1" notifyOnAdd="true" dataset="0"{sub} units=""/>',
            f'    <dataset id="0" dimensions="{dimensions}">',
            *points,
            "    </dataset>",
            "  </data>",
            "  <display>",
            f'    <layer id="2" type="{kind}" name={quoteattr(name)} model="1"/>',
            "  </display>",
            "</sv>",
            "",
        ]
    )


def _frame(seconds: float) -> int:
    return int(round(float(seconds) * SVL_RATE))


def matches_svl(rows: list[dict], *, name: str = "mirsearch matches") -> str:
    """A Sonic Visualiser region layer: one region per match (value: its cost; label: rank, recording, ...)."""
    points = [
        f'      <point frame="{_frame(r["start"])}" value="{r["cost"]:.6f}" '
        f'duration="{_frame(r["end"]) - _frame(r["start"])}" label={quoteattr(_label(i, r))}/>'
        for i, r in enumerate(rows, 1)
    ]
    end = max((_frame(r["end"]) for r in rows), default=0)
    return _svl("regions", 3, points, name=name, end=end, subtype="region")


def timemap_audacity(time_a, time_b, *, step: float = 1.0) -> str:
    """Labels on A's time axis, one every ``step`` seconds: the corresponding time in B."""
    import numpy as np

    ta, tb = np.asarray(time_a, dtype=float), np.asarray(time_b, dtype=float)
    grid = np.arange(ta[0], ta[-1] + 1e-9, step) if step > 0 else ta
    mapped = np.interp(grid, ta, tb)
    return "".join(f"{a:.6f}\t{a:.6f}\tB {b:.3f} s\n" for a, b in zip(grid, mapped, strict=True))


def timemap_svl(time_a, time_b, *, name: str = "mirsearch time map") -> str:
    """A Sonic Visualiser time-value layer on A's time axis (value: the time in B, seconds)."""
    points = [
        f'      <point frame="{_frame(a)}" value="{b:.6f}" label=""/>' for a, b in zip(time_a, time_b, strict=True)
    ]
    return _svl("timevalues", 2, points, name=name, end=_frame(time_a[-1]) if len(time_a) else 0)


def matches_as(fmt: str, rows: list[dict]) -> str:
    """Match rows in ``fmt`` (``csv``, ``audacity`` or ``svl``)."""
    return {"csv": matches_csv, "audacity": matches_audacity, "svl": matches_svl}[fmt](rows)


def timemap_as(fmt: str, time_a, time_b) -> str:
    """A time map's points in ``fmt`` (``csv``, ``audacity`` or ``svl``)."""
    if fmt == "csv":
        return "time_a,time_b\n" + "".join(f"{a:.6f},{b:.6f}\n" for a, b in zip(time_a, time_b, strict=True))
    if fmt == "audacity":
        return timemap_audacity(time_a, time_b)
    return timemap_svl(time_a, time_b)


def notes_as(fmt: str, rows: list[dict]) -> str:
    """A score alignment's notes (``ScoreAlignment.rows()``) in ``fmt``: labels / regions at their audio times."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["pitch"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    spans = [(r["audio_onset"], r["audio_offset"], f"pitch {r['pitch']} (part {r['part']})") for r in rows]
    if fmt == "audacity":
        return "".join(f"{a:.6f}\t{b:.6f}\t{label}\n" for a, b, label in spans)
    points = [
        f'      <point frame="{_frame(a)}" value="{p}" duration="{_frame(b) - _frame(a)}" label={quoteattr(t)}/>'
        for (a, b, t), p in zip(spans, (r["pitch"] for r in rows), strict=True)
    ]
    end = max((_frame(b) for _, b, _ in spans), default=0)
    return _svl("regions", 3, points, name="mirsearch score alignment", end=end, subtype="region")
