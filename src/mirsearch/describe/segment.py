"""Speech / music segmentation: frame probabilities -> smoothed labels -> segments.

Labels (:data:`LABELS`): ``noise`` (silence, noise, anything else), ``speech``, ``music`` and ``speech+music``.
The frame classifier (:mod:`mirsearch.features.segment_features` with the packaged CNN of
:mod:`mirsearch.models.segmenter`) gives two probabilities per 40 ms frame, speech present and music present;
this module turns them into segments that are sorted, do not overlap and cover the whole file.

Smoothing (:class:`SegmentOptions`):

- ``"hmm"`` (default): Viterbi decoding over the four labels with a cost per label change (``switch_penalty``,
  in nats) and a minimum segment length (``min_segment`` seconds) built into the state space (each label is a
  chain of states, so a segment cannot end before its minimum length). Only the first and last segments of a file
  may be shorter.
- ``"median"``: a median filter of ``median_window`` seconds on each probability, a threshold, then the same
  minimum-length decoding with no change cost.
- ``"none"``: the frame decisions as they are (threshold only; no minimum length).

Files are read in blocks (``block_seconds``), so memory does not grow with the file's length beyond the
probabilities themselves (8 bytes per 40 ms frame: 0.7 MB for 3 hours).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirsearch.errors import InputError, ParameterError

log = logging.getLogger(__name__)

#: segment labels, in the order of the decoder's states: bit 0 = speech, bit 1 = music
LABELS = ("noise", "speech", "music", "speech+music")
#: smoothing methods
SMOOTHINGS = ("hmm", "median", "none")


@dataclass(frozen=True)
class SegmentOptions:
    """How frame probabilities become segments.

    Attributes
    ----------
    min_segment : float >= 0
        Shortest segment in seconds (except the first and the last of a file); 0 disables the constraint.
    smoothing : {"hmm", "median", "none"}
        See the module docstring.
    switch_penalty : float >= 0
        Cost of a label change for ``"hmm"`` (nats; larger gives fewer segments).
    median_window : float > 0
        Median filter length in seconds for ``"median"``.
    threshold : float in (0, 1)
        Probability at which speech (and music, unless ``music_threshold`` is given) counts as present.
    music_threshold : float in (0, 1), optional
        Probability at which music counts as present (None: ``threshold``); 0.6 chosen on the validation files.
    """

    min_segment: float = 0.5
    smoothing: str = "hmm"
    switch_penalty: float = 6.0
    median_window: float = 1.0
    threshold: float = 0.5
    music_threshold: float | None = 0.6

    def __post_init__(self):
        if self.smoothing not in SMOOTHINGS:
            raise ParameterError(f"smoothing={self.smoothing!r} is not one of {', '.join(SMOOTHINGS)}")
        if not self.min_segment >= 0:
            raise ParameterError(f"min_segment={self.min_segment!r} must be >= 0")
        if not self.switch_penalty >= 0:
            raise ParameterError(f"switch_penalty={self.switch_penalty!r} must be >= 0")
        if not self.median_window > 0:
            raise ParameterError(f"median_window={self.median_window!r} must be > 0")
        if not 0 < self.threshold < 1:
            raise ParameterError(f"threshold={self.threshold!r} must be in (0, 1)")
        if self.music_threshold is not None and not 0 < self.music_threshold < 1:
            raise ParameterError(f"music_threshold={self.music_threshold!r} must be in (0, 1)")

    @property
    def thresholds(self) -> tuple[float, float]:
        """The (speech, music) presence thresholds."""
        return self.threshold, self.threshold if self.music_threshold is None else self.music_threshold


@dataclass(frozen=True)
class Segment:
    """A labelled span in seconds."""

    start: float
    end: float
    label: str

    def to_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label}


@dataclass(frozen=True)
class SegmentResult:
    """Segments of one file (sorted, non-overlapping, covering ``[0, duration]``)."""

    path: str
    duration: float
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    #: the collection's id of the recording, when it is one
    recording_id: int | None = None

    def to_dict(self) -> dict:
        d = {"path": self.path, "duration": round(self.duration, 3)}
        if self.recording_id is not None:
            d["recording_id"] = self.recording_id
        return {**d, "segments": [s.to_dict() for s in self.segments]}


# ----------------------------------------------------------------------------------------------- decoding
def label_log_likelihoods(P: np.ndarray, *, threshold: float | tuple[float, float] = 0.5) -> np.ndarray:
    """Log-probabilities of the four labels per frame, treating speech and music as independent.

    Parameters
    ----------
    P : np.ndarray, shape (2, n)
        Speech and music probabilities.
    threshold : float in (0, 1), or a pair (speech, music)
        The probability that counts as even odds.

    Returns
    -------
    E : np.ndarray, shape (n, 4), float64
        Columns in the order of :data:`LABELS`.
    """
    p = np.clip(np.asarray(P, dtype=np.float64), 1e-6, 1 - 1e-6)
    t = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (2,))[:, None]
    z = np.log(p / (1 - p)) - np.log(t / (1 - t))
    on = -np.logaddexp(0.0, -z)  # log sigmoid(z)
    off = -np.logaddexp(0.0, z)
    s_on, s_off, m_on, m_off = on[0], off[0], on[1], off[1]
    return np.stack([s_off + m_off, s_on + m_off, s_off + m_on, s_on + m_on], axis=1)


def decode(E: np.ndarray, *, min_frames: int, switch_penalty: float) -> np.ndarray:
    """Best label sequence under a switch cost and a minimum run length (Viterbi over duration states).

    Parameters
    ----------
    E : np.ndarray, shape (n, K)
        Log-likelihood of each label per frame.
    min_frames : int >= 1
        Shortest run (the first and last runs are exempt).
    switch_penalty : float >= 0

    Returns
    -------
    labels : np.ndarray, shape (n,), int8
    """
    E = np.ascontiguousarray(E, dtype=np.float64)
    if E.shape[0] == 0:
        return np.zeros(0, np.int8)
    from mirsearch.describe._viterbi import viterbi_min_duration

    return viterbi_min_duration(E, max(1, int(min_frames)), float(switch_penalty))


def smooth(P: np.ndarray, *, rate: float, options: SegmentOptions = SegmentOptions()) -> np.ndarray:
    """Label indices (into :data:`LABELS`) per frame from speech / music probabilities ``P`` (2, n) at ``rate``."""
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != 2:
        raise ParameterError(f"P: expected shape (2, n_frames), got {P.shape}")
    min_frames = max(1, int(round(options.min_segment * rate)))
    if options.smoothing == "none":
        t_s, t_m = options.thresholds
        return ((P[0] >= t_s) + 2 * (P[1] >= t_m)).astype(np.int8)
    if options.smoothing == "median":
        from scipy.ndimage import median_filter

        width = max(1, int(round(options.median_window * rate)) | 1)
        P = median_filter(P, size=(1, width), mode="nearest")
        hard = np.where(P >= np.array(options.thresholds)[:, None], 0.99, 0.01)
        return decode(label_log_likelihoods(hard, threshold=0.5), min_frames=min_frames, switch_penalty=0.0)
    E = label_log_likelihoods(P, threshold=options.thresholds)
    return decode(E, min_frames=min_frames, switch_penalty=options.switch_penalty)


def labels_to_segments(labels: np.ndarray, *, rate: float, duration: float) -> list[Segment]:
    """Runs of equal labels as :class:`Segment` objects covering ``[0, duration]``."""
    labels = np.asarray(labels)
    if duration <= 0:
        return []
    if labels.size == 0:
        return [Segment(0.0, float(duration), LABELS[0])]
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    out = []
    for a, b in zip(starts, ends, strict=True):
        s, e = min(a / rate, duration), min(b / rate, duration)
        if e > s:
            out.append(Segment(float(s), float(e), LABELS[int(labels[a])]))
    out[-1] = Segment(out[-1].start, float(duration), out[-1].label)
    return out


def segments_from_probabilities(
    P: np.ndarray, *, rate: float, duration: float, options: SegmentOptions = SegmentOptions()
) -> list[Segment]:
    """Smoothed segments from frame probabilities (see :func:`smooth`)."""
    return labels_to_segments(smooth(P, rate=rate, options=options), rate=rate, duration=duration)


# ----------------------------------------------------------------------------------------------- audio in
def segment_signal(y: np.ndarray, *, sr: int, options: SegmentOptions = SegmentOptions(), model=None) -> list[Segment]:
    """Segments of a mono signal ``y`` (n_samples,) at ``sr`` Hz."""
    from mirsearch.features.segment_features import frame_probabilities

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise InputError(f"audio: expected a mono signal, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("audio: contains NaN or infinite samples")
    P, rate = frame_probabilities(y, sr=sr, model=model)
    return segments_from_probabilities(P, rate=rate, duration=len(y) / sr, options=options)


def file_probabilities(path: str | os.PathLike, *, model=None, block_seconds: float = 30.0):
    """Speech / music probabilities of an audio file read in blocks.

    Returns
    -------
    P : np.ndarray, shape (2, n), float32
    rate : float
        Frames per second of ``P``.
    duration : float
        Seconds.

    Raises
    ------
    InputError
        Missing, unreadable or empty file, or non-finite samples; the message names the file.
    """
    import soundfile as sf

    from mirsearch.features.segment_features import FrameProbabilityStream
    from mirsearch.models.segmenter import SegmenterModel

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        fh = sf.SoundFile(str(path))
    except Exception as exc:  # libsndfile raises its own types with long messages
        raise InputError(f"{path.name}: unreadable audio ({_first_line(exc)})") from None
    with fh:
        if fh.frames == 0 or fh.samplerate <= 0:
            raise InputError(f"{path.name}: audio is empty (0 samples)")
        stream = FrameProbabilityStream(model or SegmenterModel.load(), sr=fh.samplerate)
        parts, n = [], 0
        block = max(1, int(block_seconds * fh.samplerate))
        try:
            for data in fh.blocks(blocksize=block, dtype="float32", always_2d=True):
                y = data.mean(axis=1)
                if not np.all(np.isfinite(y)):
                    raise InputError(f"{path.name}: audio contains NaN or infinite samples")
                n += len(y)
                parts.append(stream.feed(y))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{path.name}: unreadable audio ({_first_line(exc)})") from None
        if n == 0:
            raise InputError(f"{path.name}: audio is empty (0 samples)")
        parts.append(stream.finish())
        return np.concatenate(parts, axis=1), stream.rate, n / fh.samplerate


def segment_file(
    path: str | os.PathLike, *, options: SegmentOptions = SegmentOptions(), model=None, block_seconds: float = 30.0
) -> SegmentResult:
    """Segments of an audio file (any rate and channel count libsndfile reads), streamed in blocks."""
    P, rate, duration = file_probabilities(path, model=model, block_seconds=block_seconds)
    segments = segments_from_probabilities(P, rate=rate, duration=duration, options=options)
    log.debug("%s: %.1f s, %d segments", path, duration, len(segments))
    return SegmentResult(path=str(path), duration=duration, segments=tuple(segments))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
