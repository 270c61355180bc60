"""Benchmark and training collections built from real compositions ("MTD-like").

Works come from the music21 corpus (or a folder of scores), themes are taken from their top voice and
notated in C, and every work is rendered in several performances with FluidSynth. The manifest keeps
the tempo map of every version and every theme occurrence with start/end and per-note onsets.

>>> from mirsearch.datasets import build_fixture, Dataset     # doctest: +SKIP
>>> ds = build_fixture("/tmp/fixture")                         # doctest: +SKIP
>>> ds.split("test").themes                                   # doctest: +SKIP
"""

from __future__ import annotations

from mirsearch.datasets.build import PRESETS, BuildReport, build_dataset
from mirsearch.datasets.fixture import build_fixture
from mirsearch.datasets.manifest import Dataset, Occurrence, ThemeInfo, Version, Work, load_dataset

__all__ = [
    "PRESETS",
    "BuildReport",
    "Dataset",
    "Occurrence",
    "ThemeInfo",
    "Version",
    "Work",
    "build_dataset",
    "build_fixture",
    "load_dataset",
]
