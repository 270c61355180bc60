"""``mirsearch similar``: recordings of a collection that sound like one of its recordings or like an audio file
("more like this"), by the similarity vectors stored with ``mirsearch index DIR -c COLL --features ...,timbre``."""

from __future__ import annotations

import argparse

from mirsearch.cli.common import add_collection_argument, print_json, print_rows
from mirsearch.cli.options import add_request_options, request_from_args
from mirsearch.errors import ParameterError
from mirsearch.service.similar import SimilarRequest

HELP = "recordings that sound alike (more like this)"
DESCRIPTION = """Rank the collection's recordings by how similar they sound to a recording of the collection
(--recording ID; it is left out of its own answer) or to an audio file (--audio FILE). A recording is described five
ways, which weigh alike: its timbre and rhythm over time (per mel band: level, spread and change; the periodicity of
its onsets; cepstral change and the modulation spectrum; their mean and spread over the recording), its MFCC
statistics, its mean YAMNet (AudioSet) embedding, musicnn's (Million Song Dataset) pooled features of a few 3-s
patches and, in collections of 30 recordings or more, which of the collection's textures occur in it (a histogram
of its 4-s sections over a codebook fitted on the collection). Every value is standardised relative to the
collection; the query is then averaged with its 2 nearest recordings and searched again (query expansion);
'distance' is the distance to that expanded query (absolute differences of the standardised values; the YAMNet,
musicnn and texture views by cosine), about 1 for two typical recordings of the collection. The columns timbre,
mfcc, yamnet, musicnn and textures say how far each recording is from the query itself in each view (1: a typical
pair). Large collections are searched through an HNSW index; with --dask the vectors are
shards on the cluster's workers, which rank every recording exactly. With --start / --end only that passage of the
recording is the query (more like this passage; 4-s resolution), compared with the other recordings as wholes."""
EPILOG = "The collection needs timbre features: mirsearch index DIR -c COLL --features chroma,timbre (or tags)"


def register(sub) -> None:
    p = sub.add_parser("similar", help=HELP, description=DESCRIPTION, epilog=EPILOG)
    add_collection_argument(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--recording", type=int, metavar="ID", help="a recording of the collection (mirsearch list)")
    what.add_argument("--audio", metavar="FILE", help="an audio file (need not be in the collection)")
    add_request_options(p, SimilarRequest)
    json_help = 'JSON: {"matches": [{"recording", "recording_id", "distance", "views"}], ...} nearest first'
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mirsearch.collection import Collection
    from mirsearch.service import run as run_task
    from mirsearch.service.similar import SimilarAudioRequest

    if args.audio is not None and (args.start is not None or args.end is not None):
        raise ParameterError("--start / --end choose a passage of --recording; an --audio query is the whole file")
    with Collection.open(args.collection, readonly=True) as coll:
        if args.audio is not None:
            from mirsearch.service.audio import read_audio_query

            request = request_from_args(SimilarAudioRequest, args, query=read_audio_query(args.audio))
            result = run_task("similar-audio", request, collection=coll)
        else:
            result = run_task("similar", request_from_args(SimilarRequest, args, recording=args.recording),
                              collection=coll)  # fmt: skip
    if args.json:
        print_json(result.to_dict())
        return 0
    rows = [m.to_dict() for m in result.matches]
    views = list(rows[0].get("views", {})) if rows else []
    for row in rows:
        row.update(row.pop("views", {}))
    columns = [("recording_id", "id"), ("recording", "recording"), ("distance", "distance")] + [(v, v) for v in views]
    cells = {"distance": "{distance:.4f}"} | {v: f"{{{v}:.2f}}" for v in views}
    return print_rows(rows, columns, empty="no recordings with timbre vectors", cells=cells)
