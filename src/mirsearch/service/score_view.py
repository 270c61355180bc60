"""Tasks ``score-view`` and ``score-audio``: a score of the collection engraved for the page, and its audio.

``score-view`` engraves a score of the collection's score store with verovio (:mod:`mirsearch.viz.score_view`):
SVG pages and, per note, its SVG id, position in quarter notes (as the score search reports them, so a match's
notes can be highlighted), pitch and time in seconds at the score's tempo. ``score-audio`` synthesises the same
notes (:mod:`mirsearch.datasets.synth`) into a WAV file on that time axis: a page playing it moves a cursor to
the notes with ``onset <= currentTime < offset``. With ``recording``, the notes' times are those of a recording
of the collection instead (the score aligned to it by the task ``align``), and the page plays that recording.
Scores are named by their id in the store, never by a path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from mirsearch._util import atomic_path
from mirsearch.errors import InputError, ParameterError
from mirsearch.service.core import Context, Request, param, register, version_block
from mirsearch.service.scores import score_store

MAX_ID = 2**62
RECORDING_HELP = (
    "a recording of the collection to follow: the notes' times are its times (the score aligned to it by task "
    "align); default: the score's synthesised audio"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreViewRequest(Request):
    """Parameters of the engraving of one score of the collection."""

    score: int = param(1, help="score id in the collection's score store (see 'mirsearch info')", minimum=1,
                       maximum=MAX_ID)  # fmt: skip
    page_width: int = param(2100, minimum=800, maximum=6000, help="page width in verovio units")
    scale: int = param(35, minimum=10, maximum=100, help="engraving scale in percent")
    recording: int | None = param(None, minimum=1, maximum=MAX_ID, help=RECORDING_HELP)


@dataclass(frozen=True)
class ScoreAudioRequest(Request):
    """Parameters of the synthesised audio of one score of the collection."""

    score: int = param(1, help="score id in the collection's score store", minimum=1, maximum=MAX_ID)
    sr: int = param(22050, choices=(16000, 22050, 44100), help="sample rate (Hz)")


@dataclass
class ScoreView:
    """An engraved score: ``to_dict()`` is the page's JSON (pages as SVG text, notes with ids and times)."""

    score: int
    name: str
    engraved: object  # EngravedScore
    query: dict
    stats: dict = field(default_factory=dict)
    recording: int | None = None

    def to_dict(self) -> dict:
        e = self.engraved
        return {"score": self.score, "name": self.name, "pages": list(e.pages), "page_count": e.page_count,
                "duration": round(e.duration, 3), "notes": e.notes_json(), "recording": self.recording,
                "query": self.query, "stats": self.stats}  # fmt: skip


@dataclass
class ScoreAudio:
    """The synthesised audio of a score: :attr:`wav` (bytes); ``to_dict()`` describes it."""

    score: int
    name: str
    wav: bytes
    sr: int
    duration: float
    query: dict

    def to_dict(self) -> dict:
        return {"score": self.score, "name": self.name, "sr": self.sr, "duration": round(self.duration, 3),
                "bytes": len(self.wav), "query": self.query}  # fmt: skip


def score_entry(collection, score_id: int):
    """The store's entry of score ``score_id`` (:class:`ParameterError` naming the id if there is none)."""
    for entry in score_store(collection).entries():
        if entry.id == score_id:
            return entry
    raise ParameterError(f"score={score_id}: no such score in the collection")


def _first_quarter(collection, entry) -> float:
    """Quarter notes from the store's origin to the score's first note (MIDI: the file's start; notated: 0)."""
    import numpy as np

    from mirsearch.index.score_store import TICKS_PER_QUARTER

    notes = np.load(score_store(collection).directory / entry.file, mmap_mode="r", allow_pickle=False)
    return float(notes["tick"].min()) / TICKS_PER_QUARTER if notes.size else 0.0


def _follow_map(collection, entry, rec) -> dict:
    """The score aligned to a recording (task ``align``) as arrays: ``quarters`` -> score ``seconds`` (the aligned
    score's own notes, monotonic) and the time map's points ``map_a`` (score s) -> ``map_b`` (recording s).

    Kept in ``<collection>/timemaps/score-<score sha1>-<recording sha1>-<settings>.npz`` (written atomically; a
    collection that cannot be written is only not cached), so a second view of the pair is instant.
    """
    import numpy as np

    from mirsearch.service.core import run
    from mirsearch.service.sync import AlignRequest, align_settings_tag

    cache = Path(collection.root) / "timemaps" / f"score-{entry.sha1}-{rec.sha1}-{align_settings_tag()}.npz"
    try:
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in ("quarters", "seconds", "map_a", "map_b")}
    except (OSError, KeyError, ValueError):
        pass  # not cached yet (or unreadable): align
    aligned = run("align", AlignRequest(a=entry.path, b=rec.path)).score
    n = aligned.notes
    quarters = np.r_[n.onset_quarter, n.onset_quarter + n.duration_quarter]
    seconds = np.r_[n.onset, n.offset]
    ok = np.isfinite(quarters) & np.isfinite(seconds)
    quarters, index = np.unique(quarters[ok], return_index=True)
    arrays = {
        "quarters": quarters,
        "seconds": np.maximum.accumulate(seconds[ok][index]),  # monotonic score time
        "map_a": aligned.time_map.a,
        "map_b": aligned.time_map.b,
    }
    try:
        with atomic_path(cache) as tmp:
            np.savez(tmp, **arrays)
    except (InputError, OSError) as exc:
        log.info("score-view: alignment not cached (%s)", exc)
    return arrays


def _follow_recording(collection, entry, engraved, recording_id: int) -> None:
    """Put the engraved notes on the time axis of a recording: each note's quarter position mapped to score time
    and then to the recording (:func:`_follow_map`)."""
    import numpy as np

    from mirsearch.errors import CollectionError
    from mirsearch.sync.timemap import TimeMap

    try:
        rec = collection.recording(recording_id)
    except CollectionError:
        raise ParameterError(f"recording={recording_id}: no such recording in the collection") from None
    m = _follow_map(collection, entry, rec)
    time_map = TimeMap(m["map_a"], m["map_b"])

    def to_audio(q):
        return time_map.map(np.interp(q, m["quarters"], m["seconds"]))

    engraved.onset = to_audio(engraved.quarter)
    engraved.offset = np.maximum(to_audio(engraved.quarter + engraved.duration_quarter), engraved.onset + 1e-3)


@register("score-view", request=ScoreViewRequest, area="scores", summary="engrave a score of the collection")
def run_score_view(context: Context, request: ScoreViewRequest) -> ScoreView:
    from mirsearch.viz.score_view import engrave_score

    coll = context.require_collection("score-view")
    entry = score_entry(coll, request.score)
    t0 = time.perf_counter()
    engraved = engrave_score(entry.path, page_width=request.page_width, scale=request.scale)
    engraved.quarter = engraved.quarter + _first_quarter(coll, entry)  # the store's origin: matches line up
    if request.recording is not None:
        _follow_recording(coll, entry, engraved, request.recording)
    stats = {"ms": round((time.perf_counter() - t0) * 1000, 1), "notes": len(engraved.ids)}
    return ScoreView(entry.id, Path(entry.path).name, engraved, version_block(**request.params()), stats,
                     request.recording)  # fmt: skip


@register("score-audio", request=ScoreAudioRequest, area="scores", summary="synthesise a score of the collection")
def run_score_audio(context: Context, request: ScoreAudioRequest) -> ScoreAudio:
    from mirsearch.datasets.synth import synthesize_notes, wav_bytes
    from mirsearch.viz.score_view import engrave_score

    entry = score_entry(context.require_collection("score-audio"), request.score)
    e = engrave_score(entry.path)
    y = synthesize_notes(e.pitch, e.onset, e.offset, sr=request.sr)
    query = version_block(**request.params())
    return ScoreAudio(entry.id, Path(entry.path).name, wav_bytes(y, sr=request.sr), request.sr, y.size / request.sr,
                      query)  # fmt: skip


__all__ = ["ScoreAudio", "ScoreAudioRequest", "ScoreView", "ScoreViewRequest", "score_entry"]
