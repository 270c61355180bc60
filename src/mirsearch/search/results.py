"""Result records of every search: small dataclasses that turn into JSON without surprises."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def format_time(seconds: float) -> str:
    """``83.25 -> "1:23.2"`` (minutes:seconds, one decimal)."""
    minutes, rest = divmod(max(0.0, float(seconds)), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def signed_semitones(shift: int) -> int:
    """A cyclic shift (any integer) as semitones in -6..+5: ``11 -> -1``, ``7 -> -5``, ``6 -> -6``."""
    return (int(shift) + 6) % 12 - 6


@dataclass
class Match:
    """One occurrence of a query in a recording.

    Attributes
    ----------
    recording : str
        Path of the recording as indexed.
    recording_id : int
        Id in the collection's catalogue.
    start, end : float
        Span of the occurrence in seconds.
    cost : float
        Normalised matching cost (0 = perfect; cosine distance averaged along the path).
    transposition : int
        Key of the recording relative to the query, in semitones from -6 to +5 (the query transposed by this
        many semitones matches; -2: the recording is a whole tone lower). Chroma cannot tell octaves, so a
        shift ``s`` of 0-11 is reported as ``s`` or ``s - 12``, whichever is nearer 0 (6 becomes -6).
    extra : dict
        More keys for JSON output (e.g. ``tempo_factor``, ``rank``).
    """

    recording: str
    recording_id: int
    start: float
    end: float
    cost: float
    transposition: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.transposition = signed_semitones(self.transposition)

    def to_dict(self) -> dict:
        """JSON-ready dict; ``extra`` keys are merged in; times rounded to milliseconds."""
        d = asdict(self)
        extra = d.pop("extra")
        d["start"] = round(self.start, 3)
        d["end"] = round(self.end, 3)
        d["cost"] = round(self.cost, 6)
        d["start_mmss"] = format_time(self.start)
        d["end_mmss"] = format_time(self.end)
        d.update(extra)
        return d


def rank_matches(matches: list[Match], top: int) -> list[Match]:
    """The ``top`` cheapest of ``matches``, cheapest first (stable for equal costs), each with its 1-based
    ``rank`` in ``extra``."""
    ranked = sorted(matches, key=lambda m: m.cost)[:top]
    for rank, m in enumerate(ranked, 1):
        m.extra["rank"] = rank
    return ranked


@dataclass
class SearchResult:
    """Matches, best first, with the settings that produced them.

    Attributes
    ----------
    matches : list of Match
        Best first (for theme searches: the confident ones; ``extra["confidence"]`` in [0, 1]).
    query : dict
        The settings used (features, cascade, tempo, transpositions, ...) and the mirsearch version.
    warnings : list of str
        Why the query may be found unreliably.
    stats : dict
        Timings and cascade figures.
    rejected : list of Match
        The best matches below ``min_confidence`` (not shown by default).
    """

    matches: list[Match]
    query: dict
    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    rejected: list[Match] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "matches": [m.to_dict() for m in self.matches],
            "query": self.query,
            "warnings": self.warnings,
            "stats": self.stats,
            "rejected": [m.to_dict() for m in self.rejected],
        }
