"""Tasks ``segment`` (an audio file; no collection needed) and ``recording-segments`` (a recording of the
collection, from its stored ``segments`` kind when indexed with it): where is speech, music, both, or neither."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mirsearch.service.core import Context, Request, param, query_field, register

#: smoothing methods of :class:`mirsearch.describe.segment.SegmentOptions` (repeated here so that
#: ``mirsearch --help`` does not import numpy code; a test keeps the two equal)
SMOOTHING_CHOICES = ("hmm", "median", "none")


@dataclass(frozen=True)
class SmoothingRequest(Request):
    """How frame probabilities become segments (shared by both tasks)."""

    min_segment: float = param(
        0.5, help="shortest segment in seconds (the first and last may be shorter; 0: no minimum)",
        minimum=0.0, maximum=600.0, metavar="SECONDS",
    )  # fmt: skip
    smoothing: str = param(
        "hmm",
        choices=SMOOTHING_CHOICES,
        help="hmm: Viterbi over the four labels with a cost per change; median: median filter of the frame "
        "probabilities; none: frame decisions as they are",
    )
    switch_penalty: float = param(6.0, help="cost of a label change for --smoothing hmm (nats)", minimum=0.0,
                                  maximum=1000.0)  # fmt: skip

    def options(self):
        """The :class:`mirsearch.describe.segment.SegmentOptions` of these parameters."""
        from mirsearch.describe.segment import SegmentOptions

        return SegmentOptions(
            min_segment=self.min_segment, smoothing=self.smoothing, switch_penalty=self.switch_penalty
        )


@dataclass(frozen=True, kw_only=True)
class SegmentRequest(SmoothingRequest):
    """Parameters of a speech / music segmentation of a file."""

    path: str = query_field("the audio file (wav, flac, ogg, mp3; any rate and channel count)")


@dataclass(frozen=True, kw_only=True)
class RecordingSegmentsRequest(SmoothingRequest):
    """Parameters of the segmentation of a recording of the collection."""

    recording: int = query_field("recording id (from `mirsearch list`)")


@register("segment", request=SegmentRequest, area="describe", summary="split audio into speech, music, both and "
          "noise", needs_collection=False)  # fmt: skip
def run_segment(context: Context, request: SegmentRequest):
    """Segment one file; returns :class:`mirsearch.describe.segment.SegmentResult` (``to_dict()``: path,
    duration, segments)."""
    from mirsearch.describe.segment import segment_file

    return segment_file(request.path, options=request.options())


@register("recording-segments", request=RecordingSegmentsRequest, area="describe",
          summary="speech / music segments of a recording of the collection")  # fmt: skip
def run_recording_segments(context: Context, request: RecordingSegmentsRequest):
    """Segments of one recording: from its stored speech / music probabilities when the collection was indexed
    with ``--features segments`` (no audio decoded), else from its file. Returns a
    :class:`mirsearch.describe.segment.SegmentResult` whose ``recording_id`` is set."""
    from dataclasses import replace

    from mirsearch.describe.segment import SegmentResult, segment_file, segments_from_probabilities
    from mirsearch.errors import InputError

    coll = context.require_collection("recording-segments")
    rec = coll.recording(request.recording)
    if "segments" in coll.catalog.feature_keys(rec.id):
        P, rate = coll.load_features(rec.id, "segments")
        segments = segments_from_probabilities(P, rate=rate, duration=rec.duration, options=request.options())
        return SegmentResult(path=rec.path, duration=rec.duration, segments=tuple(segments),
                             recording_id=rec.id)  # fmt: skip
    if not os.path.isfile(rec.path):
        raise InputError(f"recording {rec.id} ({os.path.basename(rec.path)}): file is missing on disk "
                         "and no segments are stored")  # fmt: skip
    return replace(segment_file(rec.path, options=request.options()), recording_id=rec.id)
