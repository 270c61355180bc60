"""Task ``segment``: where in an audio file is speech, music, both, or neither (no collection needed)."""

from __future__ import annotations

from dataclasses import dataclass

from mirsearch.service.core import Context, Request, param, query_field, register

#: smoothing methods of :class:`mirsearch.describe.segment.SegmentOptions` (repeated here so that
#: ``mirsearch --help`` does not import numpy code; a test keeps the two equal)
SMOOTHING_CHOICES = ("hmm", "median", "none")


@dataclass(frozen=True)
class SegmentRequest(Request):
    """Parameters of a speech / music segmentation."""

    path: str = query_field("the audio file (wav, flac, ogg, mp3; any rate and channel count)")
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


@register("segment", request=SegmentRequest, area="describe", summary="split audio into speech, music, both and "
          "noise", needs_collection=False)  # fmt: skip
def run_segment(context: Context, request: SegmentRequest):
    """Segment one file; returns :class:`mirsearch.describe.segment.SegmentResult` (``to_dict()``: path,
    duration, segments)."""
    from mirsearch.describe.segment import SegmentOptions, segment_file

    options = SegmentOptions(
        min_segment=request.min_segment, smoothing=request.smoothing, switch_penalty=request.switch_penalty
    )
    return segment_file(request.path, options=options)
