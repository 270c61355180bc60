"""A folder of music21 corpus scores that a benchmark dataset does not use, to build distractor music from.

Links every score of the given corpus folders into ``--out``, except the works of ``--dataset`` and,
for Palestrina, every movement of a mass one of whose movements the dataset uses (the movements of a
parody mass share their themes). ``mirsearch dataset build --scores OUT`` then renders a collection of
other works, e.g. for ``bench_theme_scale.py``::

    python benchmarks/distractor_scores.py --dataset data/bench --out data/distract_scores
    mirsearch dataset build --out data/distract --scores data/distract_scores --hours 30 --versions 1 --seed 2
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

SCORE_SUFFIXES = {".krn", ".mxl", ".xml", ".musicxml", ".mid", ".midi"}


def mass_number(stem: str) -> str | None:
    """The mass a Palestrina movement file belongs to (``Credo_15_b`` -> ``15``)."""
    m = re.search(r"_(\d+)", stem)
    return m.group(1) if m else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="data/bench", help="dataset whose works are left out")
    parser.add_argument("--out", default="data/distract_scores")
    parser.add_argument("--folders", default="palestrina,monteverdi,josquin", help="music21 corpus folders")
    args = parser.parse_args()

    import music21

    corpus = Path(music21.__file__).parent / "corpus"
    works = json.loads((Path(args.dataset) / "manifest.json").read_text())["works"]
    used = {w["id"] for w in works}
    masses = {mass_number(w.split("-", 1)[1]) for w in used if w.startswith("palestrina-")} - {None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    linked = 0
    for folder in [f for f in args.folders.split(",") if f]:
        for path in sorted((corpus / folder).iterdir()):
            if path.suffix.lower() not in SCORE_SUFFIXES or f"{folder}-{path.stem}" in used:
                continue
            if folder == "palestrina" and mass_number(path.stem) in masses:
                continue
            link = out / f"{folder}-{path.name}"
            if not link.exists():
                link.symlink_to(path)
            linked += 1
    print(f"{linked} scores linked in {out} ({len(used)} works of {args.dataset} and {len(masses)} masses left out)")


if __name__ == "__main__":
    main()
