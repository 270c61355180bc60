"""A tiny dataset for tests and demos: four short works, two versions each, built in seconds.

The works are the first eight measures of three Bach chorales (BWV 66.6, 101.7, 269) and a folk tune
(Aird's Airs, book 1, no. 3), rendered with FluidR3_GM and TimGM6mb.
"""

from __future__ import annotations

import os
from pathlib import Path

from mirsearch.datasets.build import build_dataset
from mirsearch.datasets.manifest import Dataset


def build_fixture(out_dir: str | os.PathLike, *, seed: int = 0, jobs: int = 1) -> Dataset:
    """Build (or reuse) the fixture dataset in ``out_dir`` and load it.

    Parameters
    ----------
    out_dir : path
        Dataset folder; an already built fixture with the same seed is reused as it is.
    seed : int
        Seed of the performances and the split.
    jobs : int > 0
        Worker processes.

    Returns
    -------
    Dataset
    """
    build_dataset(Path(out_dir), preset="fixture", seed=seed, jobs=jobs, progress=False)
    return Dataset.load(out_dir)
