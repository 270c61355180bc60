"""Task ``align``: synchronise two recordings of a piece, or a score with a recording (:mod:`mirsearch.sync`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mirsearch.service.core import Context, Request, param, query_field, register, version_block
from mirsearch.sync.timemap import TimeMap


@dataclass(frozen=True)
class AlignRequest(Request):
    """Parameters of an alignment."""

    a: str = query_field("first recording, or a score file (MIDI, MusicXML, MEI, kern)")
    b: str = query_field("second recording")
    transpose: bool = param(True, help="do not search the 12 chroma shifts (same key)")
    onsets: bool = param(True, help="chroma only (no DLNCO onset features)")
    force: bool = param(False, help="align even when the two do not seem to be the same piece")
    step: float = param(
        0.0, minimum=0, maximum=60, metavar="S",
        help="resample the time map every S seconds of A in the output (default: all points)",
    )  # fmt: skip
    at: tuple[float, ...] | None = param(
        None, minimum=0, maximum=1e6, metavar="SECONDS", help="times in A to map to B (comma-separated)"
    )
    bpm: float | None = param(None, minimum=10, maximum=600, help="nominal tempo of a notated score (a start only)")
    repeats: bool = param(False, help="expand the score's repeats")


def is_score(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a score file (aligned note by note) rather than a recording."""
    from mirsearch.scores import FULL_SCORE_EXTENSIONS

    return Path(path).suffix.lower() in FULL_SCORE_EXTENSIONS


@dataclass
class AlignResult:
    """A time map from A to B (and, for a score, each note's time in the recording).

    Attributes
    ----------
    time_map : mirsearch.sync.TimeMap
        The whole map (``time_map.map(t)`` for any time of A).
    output_map : mirsearch.sync.TimeMap
        The map as output (resampled every ``step`` seconds if asked).
    score : mirsearch.sync.ScoreAlignment or None
        The notes table when A is a score.
    mapped : list of dict
        ``{"a": t, "b": time in B}`` for each requested time.
    details : mirsearch.sync.AlignmentDetails
        Features and the DTW result (for the figure).
    query : dict
    """

    time_map: object
    output_map: object
    score: object | None
    mapped: list[dict]
    details: object
    query: dict

    def to_dict(self) -> dict:
        tmap = self.time_map
        out = {
            "a": tmap.name_a,
            "b": tmap.name_b,
            "duration_a": round(tmap.duration_a, 3),
            "duration_b": round(tmap.duration_b, 3),
            "meta": tmap.meta,
            "at": self.mapped,
        }
        if self.score is not None:
            out["notes"] = self.score.rows()
        else:
            d = self.output_map.to_dict()
            out["time_map"] = {"time_a": d["time_a"], "time_b": d["time_b"]}
        out["query"] = self.query
        return out


@register("align", request=AlignRequest, area="sync", summary="align two versions, or a score and a recording",
          needs_collection=False)  # fmt: skip
def run_align(context: Context, request: AlignRequest) -> AlignResult:
    from mirsearch.sync import align_audio, align_score

    common = {"transpose": request.transpose, "onsets": request.onsets, "return_details": True}
    if request.force:
        common["max_cost_ratio"] = None
    score = None
    if is_score(request.a):
        score, details = align_score(request.a, request.b, bpm=request.bpm, expand_repeats=request.repeats, **common)
        tmap = score.time_map
    else:
        tmap, details = align_audio(request.a, request.b, **common)
    output = tmap.resample(request.step) if request.step > 0 else tmap
    mapped = [{"a": t, "b": round(float(tmap.map(t)), 3)} for t in request.at or ()]
    query = version_block(a=os.fspath(request.a), b=os.fspath(request.b), **request.params())
    return AlignResult(tmap, output, score, mapped, details, query)


def plot_alignment(result: AlignResult, out: str | os.PathLike) -> None:
    """The chromagrams of A and B (5 Hz) and the cost matrix with the warping path, as a PNG."""
    from mirsearch.matching.sync import smooth_downsample
    from mirsearch.viz.figures import AlignmentView
    from mirsearch.viz.figures import plot_alignment as draw

    d = result.details
    f = max(1, int(round(d.feature_rate / 5.0)))  # 5 Hz smoothed chroma reads better
    view = AlignmentView(
        smooth_downsample(d.chroma_a, f),
        smooth_downsample(d.chroma_b, f),
        feature_rate=d.feature_rate / f,
        path=d.sync.path,
        path_rate=d.feature_rate,
        names=(result.time_map.name_a, result.time_map.name_b),
    )
    draw(view, out=out)


def write_alignment(result: AlignResult, out: str | os.PathLike) -> None:
    """The time map (or the notes table for a score) as CSV, or JSON if ``out`` ends in ``.json``."""
    import json

    from mirsearch._util import atomic_write_text

    if Path(out).suffix.lower() == ".json":
        payload = result.score.to_dict() if result.score is not None else result.output_map.to_dict()
        atomic_write_text(out, json.dumps(payload, indent=1))
    elif result.score is not None:
        result.score.to_csv(out)
    else:
        result.output_map.to_csv(out)


def align_settings_tag(**extra) -> str:
    """A short hash of task ``align``'s default settings, the mirsearch version and ``extra`` (JSON-able): part of
    the name of every cached alignment, so that changed settings make new ones."""
    import dataclasses
    import hashlib
    import json

    from mirsearch import __version__

    defaults = {f.name: f.default for f in dataclasses.fields(AlignRequest) if f.name not in ("a", "b")}
    text = json.dumps({"align": defaults, "mirsearch": __version__, **extra}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


__all__ = [
    "align_settings_tag",
    "AlignRequest",
    "AlignResult",
    "TimeMap",
    "is_score",
    "plot_alignment",
    "write_alignment",
]
