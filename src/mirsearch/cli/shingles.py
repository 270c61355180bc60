"""``mirsearch shingles``: the shingle index of a collection (build, search, train, info, remove).

::

    mirsearch shingles build  -c C [--reduction embedding|pca|none|BUNDLE] [--dim 12] [--index hnsw|kdtree|exact]
                                   [--M 8] [--ef-construction 64] [--ef 16] [--rebuild]
    mirsearch shingles search -c C --audio X [--index hnsw] [--reduction embedding --dim 12] [--top 10]
                                   [--k 64] [--tempo-factors 0.8,...,1.25] [--all-keys] [--cascade] [--json]
    mirsearch shingles train  --dataset data/bench --dim 12 [--resume] ...   (same as 'mirsearch train embedding')
    mirsearch shingles info   -c C
    mirsearch shingles remove -c C
"""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_collection_argument, print_json, print_match_table


def _index_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reduction",
        default="embedding",
        metavar="NAME|DIR",
        help="embedding (shipped, default), pca (fitted on the collection), none (240 dims) or a bundle directory",
    )
    p.add_argument("--dim", type=int, default=12, help="dimension of pca / the shipped embedding (6, 12, 30)")
    p.add_argument("--index", choices=("hnsw", "kdtree", "exact"), default="hnsw", help="nearest-neighbour index")
    p.add_argument("--M", type=int, default=None, help="HNSW links per node (build; default 8, 16 above 32 dims)")
    p.add_argument("--ef-construction", type=int, default=None, help="HNSW build list (default 64, 200 above 32 dims)")
    p.add_argument("--ef", type=int, default=None, help="HNSW search list (default 16, 64 above 32 dims)")
    p.add_argument("--threads", type=int, default=1, help="threads for reduction and index build (default 1)")


def _params(args) -> dict:
    params = {}
    if args.index == "hnsw":
        for key, value in (("M", args.M), ("ef_construction", args.ef_construction), ("ef", args.ef)):
            if value is not None:
                params[key] = value
    return params


def register(subparsers) -> None:
    """Add the ``shingles`` command group."""
    p = subparsers.add_parser(
        "shingles",
        help="shingle index: fast cross-version retrieval (build, search, train)",
        description=(
            "Audio shingles (20 s of CENS, 240 dims) of every recording, reduced (learned embedding / PCA) and "
            "indexed (HNSW / KD-tree / exact) inside the collection folder."
        ),
    )
    sub = p.add_subparsers(dest="shingles_command", metavar="<subcommand>")

    b = sub.add_parser("build", help="build or update the shingle index of a collection")
    add_collection_argument(b)
    _index_arguments(b)
    b.add_argument("--rebuild", action="store_true", help="recompute shingles, refit PCA, rebuild the index")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_build)

    s = sub.add_parser("search", help="find versions of an audio excerpt with the shingle index")
    add_collection_argument(s)
    s.add_argument("--audio", required=True, metavar="FILE", help="audio excerpt (20-30 s)")
    s.add_argument("--start", type=float, default=None, help="excerpt start in the file (s)")
    s.add_argument("--end", type=float, default=None, help="excerpt end in the file (s)")
    _index_arguments(s)
    s.add_argument("--top", type=int, default=10)
    s.add_argument("--k", type=int, default=64, help="neighbours per query shingle (default 64)")
    s.add_argument(
        "--tempo-factors", default=None, metavar="LIST", help="query scalings (default 0.6..1.67, 11 factors)"
    )
    s.add_argument("--all-keys", action="store_true", help="also try the 11 transpositions (12x slower)")
    s.add_argument("--cascade", action="store_true", help="re-rank the proposals with CENS subsequence DTW")
    s.add_argument("--no-update", action="store_true", help="do not add new recordings to the index first")
    s.add_argument("--json", action="store_true", help='print {"matches": [...]} as JSON')
    s.set_defaults(func=_search)

    t = sub.add_parser("train", help="train the shingle embedding (same as 'mirsearch train embedding')")
    from mirsearch.cli.train_embedding import add_arguments

    add_arguments(t)

    i = sub.add_parser("info", help="shingle stores and indexes of a collection")
    add_collection_argument(i)
    i.set_defaults(func=_info)

    r = sub.add_parser("remove", help="delete the shingle stores and indexes of a collection")
    add_collection_argument(r)
    r.set_defaults(func=_remove)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _build(args: argparse.Namespace) -> int:
    import time

    from mirsearch.collection import Collection
    from mirsearch.index.shingle_index import ShingleIndex

    t0 = time.perf_counter()
    with Collection.open(args.collection, readonly=True) as coll:
        idx = ShingleIndex.open(
            coll,
            reduction=args.reduction,
            dim=args.dim,
            index=args.index,
            params=_params(args),
            rebuild=args.rebuild,
            threads=args.threads,
            progress=True,
        )
    size = idx.ann.size_bytes(idx.directory) if idx.directory.is_dir() else 0
    info = {
        "index": str(idx.directory),
        "reduction": idx.reduction.name,
        "kind": args.index,
        "shingles": len(idx),
        "added": idx.stats.added,
        "rebuilt": idx.stats.rebuilt,
        "params": idx.ann.params,
        "size_mb": round(size / 1e6, 2),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:10s} {value}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.features.audio_match import ALL_KEYS, SHINGLE_MATCH
    from mirsearch.index.shingle_index import IndexSpec
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cascade_search_audio
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.search.shingles import ShingleSearchOptions, search_shingles

    match = SHINGLE_MATCH.replace(transpositions=ALL_KEYS if args.all_keys else (0,))
    if args.tempo_factors:
        match = match.replace(tempo_factors=tuple(float(x) for x in args.tempo_factors.split(",") if x.strip()))
    query = AudioQuery.from_file(args.audio, start=args.start, end=args.end)
    spec = IndexSpec(args.index, args.reduction, args.dim, _params(args), update=args.cascade or not args.no_update)
    with Collection.open(args.collection, readonly=True) as coll:
        if args.cascade:
            options = AudioCascadeOptions(top=args.top, k=args.k, match=match, index=spec)
            matches = cascade_search_audio(coll, query, options)
        else:
            matches = search_shingles(
                coll, query, ShingleSearchOptions(top=args.top, k=args.k, match=match, index=spec)
            )
    rows = [m.to_dict() for m in matches]
    if args.json:
        print_json({"matches": rows})
        return 0
    return print_match_table(rows, extra=(("votes", "votes"),))


def _info(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mirsearch.collection import Collection

    with Collection.open(args.collection, readonly=True) as coll:
        base = Path(coll.root) / "index"
    out = {"stores": [], "indexes": []}
    for m in sorted((base / "shingles").glob("*/manifest.json")):
        d = json.loads(m.read_text())
        out["stores"].append({"config": m.parent.name, "rows": d["rows"], "recordings": len(d["recordings"])})
    for st in sorted((base / "ann").glob("*/*/state.json")):
        d = json.loads(st.read_text())
        size = sum(p.stat().st_size for p in st.parent.iterdir() if p.is_file())
        out["indexes"].append(
            {
                "config": st.parent.parent.name,
                "index": st.parent.name,
                "rows": d["rows"],
                "size_mb": round(size / 1e6, 2),
            }
        )
    print_json(out)
    return 0


def _remove(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.index.shingle_index import remove_index

    with Collection.open(args.collection, readonly=True) as coll:
        n = remove_index(coll)
    print(f"removed {n} index folders")
    return 0
