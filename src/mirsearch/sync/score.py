"""Score-to-audio alignment: each note of a score (MIDI, MusicXML, MEI, kern) located in a recording.

The score's notes (read by :func:`mirsearch.scores.load_score_notes`) become chroma and DLNCO features
directly (a harmonic model of each note, no synthesis); the multiresolution DTW and the mismatch check are
those of :func:`mirsearch.sync.audio.align_audio` (see that module's docstring for the criteria).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_write_text
from mirsearch.errors import InputError
from mirsearch.scores import ScoreNotes, load_score_notes
from mirsearch.sync.audio import (
    MAX_COST_RATIO_SCORE,
    AlignmentDetails,
    AlignOptions,
    _as_signal,
    _check_durations,
    active_span,
    path_time_map,
    resolve_options,
    sync_meta,
    synchronise,
)
from mirsearch.sync.timemap import TimeMap


@dataclass
class ScoreAlignment:
    """Output of :func:`align_score`.

    Attributes
    ----------
    time_map : TimeMap
        From score time (s, at the fitted nominal tempo ``notes.seconds_per_quarter``) to audio time.
    notes : ScoreNotes
        The score's notes (score times at the fitted tempo).
    audio_onset, audio_offset : np.ndarray, shape (n_notes,)
        Each note's start and end in the audio (s).
    """

    time_map: TimeMap
    notes: ScoreNotes
    audio_onset: np.ndarray
    audio_offset: np.ndarray
    meta: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One dict per note: pitch, part, score position, score time, audio time (ms precision)."""
        n = self.notes
        out = []
        for i in range(len(n)):
            out.append(
                {
                    "pitch": int(n.pitch[i]),
                    "part": int(n.part[i]),
                    "onset_quarter": _r(n.onset_quarter[i], 4),
                    "duration_quarter": _r(n.duration_quarter[i], 4),
                    "score_onset": _r(n.onset[i], 3),
                    "audio_onset": _r(self.audio_onset[i], 3),
                    "audio_offset": _r(self.audio_offset[i], 3),
                }
            )
        return out

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """Write the notes table (:meth:`rows`) as CSV; returns the text."""
        rows = self.rows()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        text = buf.getvalue()
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_dict(self) -> dict:
        return {"time_map": self.time_map.to_dict(), "notes": self.rows(), "meta": self.meta}


def _r(x, nd):
    x = float(x)
    return None if not np.isfinite(x) else round(x, nd)


def align_score(
    score,
    audio,
    *,
    sr: int | None = None,
    bpm: float | None = None,
    expand_repeats: bool = False,
    fit_tempo: bool = True,
    onset_correction: float = 0.0,
    options: AlignOptions | None = None,
    max_cost_ratio: float | None = MAX_COST_RATIO_SCORE,
    return_details: bool = False,
    **overrides,
):
    """Align a score to a recording of it: each note's time in the audio.

    The score's notes become chroma and DLNCO features directly (a harmonic model of each note, no
    synthesis: :func:`mirsearch.features.onset.notes_to_sync_features`); the rest is as in
    :func:`~mirsearch.sync.audio.align_audio`.

    Parameters
    ----------
    score : path or ScoreNotes
        MIDI, MusicXML, MEI or kern file (:func:`mirsearch.scores.load_score_notes`), or notes already
        loaded.
    audio : path, (y, sr) tuple or np.ndarray
        The recording.
    sr : int, optional
        Sample rate of an array ``audio``.
    bpm : float, optional
        Nominal tempo of a notated score (default: its metronome mark, else 100).
    expand_repeats : bool
        Unfold the score's repeats (when the performance plays them).
    fit_tempo : bool
        Scale and shift the score's timeline so that its first onset .. last offset cover the sounding
        part of the audio (:func:`~mirsearch.sync.audio.active_span`; a global tempo estimate), so that the
        coarse DTW levels compare like with like. The time map's score axis is then in fitted seconds
        (``notes.seconds_per_quarter``). The duration check (``max_tempo_ratio``) applies only without it.
    onset_correction : float
        Seconds added to every mapped note onset (audio onsets are detected after the physical start of
        a note; the benchmark measures this offset).
    options : AlignOptions, optional
        Features and DTW settings (default :class:`~mirsearch.sync.audio.AlignOptions`).
    max_cost_ratio : float or None
        Mismatch threshold (default :data:`~mirsearch.sync.audio.MAX_COST_RATIO_SCORE`); None disables it.
    return_details : bool
        Also return :class:`~mirsearch.sync.audio.AlignmentDetails`.
    **overrides
        Fields of :class:`~mirsearch.sync.audio.AlignOptions` replacing those of ``options``.

    Returns
    -------
    ScoreAlignment
        (, AlignmentDetails with ``return_details``)
    """
    from mirsearch.audio import SR
    from mirsearch.features.onset import notes_to_sync_features, sync_features

    opts = resolve_options(options, overrides)
    notes, score_name = _score_notes(score, bpm=bpm, expand_repeats=expand_repeats)
    y, r, audio_name = _as_signal(audio, sr=sr, name="audio", target_sr=SR)
    dur_audio = y.size / r
    dur_score = float(notes.offset.max())
    if dur_score <= 0:
        raise InputError(f"{score_name}: notes have no duration")
    _check_durations(score_name, dur_score, audio_name, dur_audio, None if fit_tempo else opts.max_tempo_ratio)
    if fit_tempo:
        notes = fit_to_span(notes, active_span(y, sr=r))
        dur_score = max(dur_audio, float(notes.offset.max()))
    Cb, Db, rate = sync_features(y, sr=r, feature_rate=opts.feature_rate, name=audio_name)
    n_frames = int(np.ceil(dur_score * rate)) + 1
    Ca, Da, _ = notes_to_sync_features(
        notes.pitch, notes.onset, notes.offset, feature_rate=rate, n_frames=n_frames, velocities=notes.velocity
    )
    names = (score_name, audio_name)
    result = synchronise(Ca, Cb, Da, Db, rate=rate, options=opts, names=names, max_cost_ratio=max_cost_ratio)
    meta = sync_meta(result)
    meta["seconds_per_quarter"] = _r(notes.seconds_per_quarter, 6)
    tmap = path_time_map(result.path, rate=rate, durations=(dur_score, dur_audio), names=names, meta=meta)
    audio_onset = np.clip(tmap.map(notes.onset) + onset_correction, 0.0, dur_audio)
    audio_offset = np.maximum(tmap.map(notes.offset), audio_onset)
    out = ScoreAlignment(tmap, notes, audio_onset, audio_offset, meta=meta)
    if return_details:
        return out, AlignmentDetails(Ca, Cb, rate, result)
    return out


def _score_notes(score, *, bpm: float | None, expand_repeats: bool) -> tuple[ScoreNotes, str]:
    """The notes of ``score`` (a path or :class:`ScoreNotes`) and a label for messages."""
    if isinstance(score, ScoreNotes):
        notes, score_name = score, "score"
    else:
        notes, score_name = load_score_notes(score, bpm=bpm, expand_repeats=expand_repeats), Path(score).name
    if len(notes) == 0:
        raise InputError(f"{score_name}: no notes found")
    return notes, score_name


def fit_to_span(notes: ScoreNotes, span: tuple[float, float]) -> ScoreNotes:
    """Scale and shift ``notes`` so that the first onset .. last offset cover ``span`` (s) of the audio.

    A global tempo and offset estimate: the score's first onset .. last offset span the audio's sounding
    part (leading and trailing silence excluded, :func:`~mirsearch.sync.audio.active_span`).
    """
    a0, a1 = span
    s0, s1 = float(notes.onset.min()), float(notes.offset.max())
    if s1 - s0 > 0 and a1 - a0 > 0:
        notes = notes.scaled((a1 - a0) / (s1 - s0))
        notes = notes.shifted(a0 - float(notes.onset.min()))
    return notes
