"""The tag vocabulary of the packaged tagger: every tag with its group and a one-line description.

The instrument families follow General MIDI (programs 0-7 piano, 16-23 organ, 24-31 guitar, 32-39 bass,
40-51 strings, 52-54 voice, 56-63 brass, 64-79 woodwinds, 80-95 synth; channel 10 drums). The labels of the
training data (:mod:`mirsearch.datasets.tags`) are the programs rendered and the metadata of the scores.
"""

from __future__ import annotations

from typing import NamedTuple


class TagInfo(NamedTuple):
    """A tag: its name, its group and one line saying what it means (``_asdict()`` for JSON)."""

    name: str
    group: str
    description: str


#: the ten instrument families, named as the issue asks
FAMILIES = ("piano", "organ", "guitar", "bass", "strings", "brass", "woodwinds", "voice", "drums", "synth")

#: General MIDI programs of each pitched family (drums: channel 10)
FAMILY_PROGRAMS: dict[str, tuple[int, ...]] = {
    "piano": tuple(range(0, 8)),
    "organ": tuple(range(16, 24)),
    "guitar": tuple(range(24, 32)),
    "bass": tuple(range(32, 40)),
    "strings": tuple(range(40, 52)),
    "voice": (52, 53, 54),
    "brass": tuple(range(56, 64)),
    "woodwinds": tuple(range(64, 80)),
    "synth": tuple(range(80, 96)),
}

_ROWS = (
    ("piano", "instrument", "piano family present (GM programs 0-7: pianos, harpsichord, clavinet)"),
    ("organ", "instrument", "organ family present (GM 16-23: drawbar, church and reed organs, accordion)"),
    ("guitar", "instrument", "guitar family present (GM 24-31: acoustic, electric and distorted guitars)"),
    ("bass", "instrument", "bass instrument present (GM 32-39: acoustic, electric and synth bass)"),
    ("strings", "instrument", "bowed or plucked strings present (GM 40-51: solo strings, harp, ensembles)"),
    ("brass", "instrument", "brass present (GM 56-63: trumpet, trombone, tuba, horn, brass section)"),
    ("woodwinds", "instrument", "woodwinds present (GM 64-79: saxophones, oboe, bassoon, clarinet, flutes)"),
    ("voice", "instrument", "singing voices present (GM 52-54: choir aahs, voice oohs, synth voice)"),
    ("drums", "instrument", "drum kit present (General MIDI channel 10)"),
    ("synth", "instrument", "synthesizer lead or pad present (GM 80-95)"),
    ("solo", "ensemble", "one instrument (all parts on one instrument, or one melody)"),
    ("duo", "ensemble", "two instruments"),
    ("chamber", "ensemble", "three to five instruments"),
    ("orchestra", "ensemble", "six or more instruments (parts doubled across families)"),
    ("choir", "ensemble", "three or more parts, all sung"),
    ("major", "mode", "in a major key"),
    ("minor", "mode", "in a minor key"),
    ("duple", "metre", "two or four beats to the bar (2/4, 4/4, 2/2)"),
    ("triple", "metre", "three beats to the bar (3/4, 3/8, 3/2)"),
    ("compound", "metre", "beats divided in three (6/8, 9/8, 12/8)"),
    ("slow", "tempo", "under 80 quarter notes per minute"),
    ("moderate", "tempo", "80 to 120 quarter notes per minute"),
    ("fast", "tempo", "over 120 quarter notes per minute"),
    ("renaissance", "era", "medieval and renaissance polyphony (before about 1600: Palestrina, Josquin, trecento)"),
    ("baroque", "era", "baroque (about 1600-1750: Bach, Handel, Corelli, Monteverdi's late works)"),
    ("classical", "era", "classical (about 1750-1830: Haydn, Mozart, Beethoven)"),
    ("romantic", "era", "romantic (19th century: Schubert, Schumann, Chopin, Verdi)"),
    ("folk", "era", "traditional folk song or dance tune"),
    ("german", "region", "German folk song (Essen collection)"),
    ("chinese", "region", "Chinese folk song (Essen collection, Han)"),
    ("jig", "tune type", "jig or slip jig (dance tune in compound metre)"),
    ("reel", "tune type", "reel (fast dance tune in duple metre)"),
    ("hornpipe", "tune type", "hornpipe (dotted dance tune in duple metre)"),
)

#: the vocabulary in output order
VOCABULARY: tuple[TagInfo, ...] = tuple(TagInfo(*row) for row in _ROWS)
#: tag names in output order
TAG_NAMES: tuple[str, ...] = tuple(t.name for t in VOCABULARY)
#: the groups in order of first appearance
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(t.group for t in VOCABULARY))


def family_of_program(program: int) -> str | None:
    """The family of a General MIDI program (0-127), or None for programs outside the ten families."""
    for name, programs in FAMILY_PROGRAMS.items():
        if int(program) in programs:
            return name
    return None
