"""Tasks of auto-tagging: ``tag`` (files), ``tag-list`` (the vocabulary), ``tags-teach`` (a new tag from a few
examples, stored in a collection) and ``tag-search`` (a collection's recordings ranked by a tag)."""

from __future__ import annotations

from dataclasses import dataclass

from mirsearch.service.core import Context, Request, param, query_field, register, version_block


@dataclass(frozen=True)
class TagRequest(Request):
    """Parameters of tagging one file."""

    path: str = query_field("the audio file (wav, flac, ogg, mp3; any rate and channel count)")
    over_time: bool = param(False, help="also give the tags of every patch (3.2 s every 1.6 s)")


@dataclass(frozen=True)
class TagListRequest(Request):
    """The vocabulary (and a collection's taught tags)."""


@dataclass(frozen=True)
class TeachRequest(Request):
    """Parameters of teaching a tag from examples."""

    name: str = query_field("name of the new tag (letters, digits, - and _)")
    examples: tuple = query_field("example audio files (five are a good number)")


@dataclass(frozen=True)
class TagSearchRequest(Request):
    """Parameters of ranking a collection's recordings by a tag."""

    tag: str = query_field("a tag of the vocabulary or one taught to the collection")
    top: int = param(20, help="recordings to return", minimum=1, maximum=100000)


@dataclass(frozen=True)
class RecordingTagsRequest(Request):
    """A stored recording's tags."""

    recording: int = query_field("recording id")


@dataclass(frozen=True)
class TagsAnswer:
    """A JSON answer as it is: the vocabulary (``{"tags": [...]}``), a taught tag (``{"name", "examples",
    "collection", "query"}``) or a ranking (``{"tag", "matches": [{"recording", "recording_id", "score"}],
    "query"}``, best first)."""

    answer: dict

    def to_dict(self) -> dict:
        return dict(self.answer)


@register("tag", request=TagRequest, area="describe", summary="tags of an audio file (instruments, ensemble, era, "
          "mode, metre, tempo, ...)", needs_collection=False)  # fmt: skip
def run_tag(context: Context, request: TagRequest):
    """Tag one file; with a collection, its taught tags are added. Returns
    :class:`mirsearch.describe.tagger.TagResult`."""
    from mirsearch.describe.tagger import load_taught, tag_file

    taught = load_taught(context.collection) if context.collection is not None else None
    return tag_file(request.path, over_time=request.over_time, taught=taught)


@register("tag-list", request=TagListRequest, area="describe", summary="the tag vocabulary (and a collection's "
          "taught tags)", needs_collection=False)  # fmt: skip
def run_tag_list(context: Context, request: TagListRequest):
    from mirsearch.describe.tagger import load_taught, taught_vocabulary, vocabulary

    rows = vocabulary()
    if context.collection is not None:
        rows += taught_vocabulary(load_taught(context.collection))
    return TagsAnswer({"tags": rows})


@register("tags-teach", request=TeachRequest, area="describe", summary="teach a collection a new tag from a few "
          "example recordings", writes=True)  # fmt: skip
def run_teach(context: Context, request: TeachRequest):
    from mirsearch.describe.tagger import teach_collection

    coll = context.require_collection("tags-teach")
    tag = teach_collection(coll, request.name, request.examples)
    answer = {"name": tag.name, "examples": list(tag.examples), "collection": str(coll.root)}
    return TagsAnswer({**answer, "query": version_block(task="tags-teach")})


@register("tag-search", request=TagSearchRequest, area="describe", summary="a collection's recordings ranked by "
          "a tag")  # fmt: skip
def run_tag_search(context: Context, request: TagSearchRequest):
    import numpy as np

    from mirsearch.describe.tagger import tag_scores

    ct, scores = tag_scores(context.require_collection("tag-search"), request.tag)
    order = np.argsort(-scores, kind="stable")[: request.top]
    matches = [{"recording": ct.paths[i], "recording_id": int(ct.ids[i]), "score": round(float(scores[i]), 4)}
               for i in order]  # fmt: skip
    query = version_block(task="tag-search", tag=request.tag, top=request.top)
    return TagsAnswer({"tag": request.tag, "matches": matches, "query": query})


@register("recording-tags", request=RecordingTagsRequest, area="describe", summary="a stored recording's tags "
          "(from its stored tags features)")  # fmt: skip
def run_recording_tags(context: Context, request: RecordingTagsRequest):
    from mirsearch.describe.tagger import recording_tags

    tags = recording_tags(context.require_collection("recording-tags"), request.recording)
    return TagsAnswer(
        {"recording_id": int(request.recording), "tags": {k: round(float(v), 4) for k, v in tags.items()}}
    )
