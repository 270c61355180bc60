"""Request and response models of the HTTP API; the request models are derived from the service's requests.

:func:`request_model` turns the :func:`~mirsearch.service.core.param` fields of a task's request into a
pydantic model with the same names, types, defaults, choices and limits (a tuple is a JSON list, or a
repeated form field), so the API cannot drift from the CLI and the Python API. The query itself (a note
string, an uploaded file) is the interface's business: its fields are added by the endpoint.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from fastapi import File, UploadFile
from pydantic import BaseModel, ConfigDict, Field, create_model

from mirsearch.service.core import ParamSpec, param_specs

#: longest note string accepted (characters)
MAX_NOTE_STRING = 2000


def _annotation(spec: ParamSpec) -> tuple[Any, dict]:
    """The pydantic annotation of a parameter and the keyword arguments of its ``Field``."""
    kind: Any = Literal[spec.choices] if spec.choices is not None else spec.type
    bounds = {k: v for k, v in (("ge", spec.minimum), ("le", spec.maximum)) if v is not None}
    limits: dict = {}
    if spec.is_tuple:
        kind = list[Annotated[kind, Field(**bounds)]] if bounds else list[kind]
        limits["min_length"] = 1
    else:
        limits.update(bounds)
    if spec.optional:
        kind = kind | None
    return kind, limits


def param_fields(request_type: type, *, exclude=()) -> dict[str, tuple]:
    """``{name: (annotation, FieldInfo)}`` of the parameters of ``request_type`` (for :func:`create_model`)."""
    fields = {}
    for spec in param_specs(request_type):
        if spec.name in exclude:
            continue
        kind, limits = _annotation(spec)
        default = list(spec.default) if spec.is_tuple and spec.default is not None else spec.default
        fields[spec.name] = (kind, Field(default, description=spec.help, **limits))
    return fields


@functools.cache
def request_model(
    request_type: type, name: str, *, query: str = "", upload: str = "", texts=(), exclude=()
) -> type[BaseModel]:
    """A pydantic model of ``request_type``'s parameters, plus the query the endpoint takes.

    Parameters
    ----------
    request_type : type
        A :class:`~mirsearch.service.core.Request` subclass.
    name : str
        Model name in the OpenAPI description.
    query : str
        If given, a required ``notes`` field (a note string) with this description.
    upload : str
        If given, a required ``file`` field (an uploaded file) with this description (a form model).
    texts : tuple of (name, description)
        Optional short text fields the endpoint adds (e.g. a score's ``part``).
    exclude : tuple of str
        Parameters the endpoint does not offer.
    """
    fields: dict[str, tuple] = {}
    config = ConfigDict(extra="forbid")
    if query:
        notes = Field(min_length=1, max_length=MAX_NOTE_STRING, description=query, examples=["G G G Eb F F F D"])
        fields["notes"] = (str, notes)
    if upload:
        fields["file"] = (UploadFile, File(description=upload))
        config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    for text, help_text in texts:
        fields[text] = (str | None, Field(None, max_length=100, description=help_text))
    fields.update(param_fields(request_type, exclude=exclude))
    return create_model(name, __config__=config, __doc__=request_type.__doc__, **fields)


def request_values(body: BaseModel) -> dict:
    """The parameter values of a request model (the query fields left out)."""
    return body.model_dump(exclude={"notes", "file", "part"})


# ------------------------------------------------------------------------------------------ responses


class MatchOut(BaseModel):
    """One occurrence (``Match.to_dict`` with the path relative to the collection root, name and duration)."""

    model_config = ConfigDict(extra="allow")

    recording: str
    recording_id: int
    name: str
    duration: float
    start: float
    end: float
    cost: float
    transposition: int = Field(description="key of the recording relative to the query, semitones in -6..+5")
    start_mmss: str
    end_mmss: str


class SearchOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    query: dict = Field(description="the settings used (features, cascade, ...) and the mirsearch version")
    matches: list[MatchOut]
    seconds: float = Field(description="server time for the search")


class RecordingOut(BaseModel):
    id: int
    name: str
    path: str = Field(description="path relative to the collection's audio root")
    duration: float
    duration_mmss: str
    format: str
    sha1: str


class RecordingsOut(BaseModel):
    recordings: list[RecordingOut]


class TimeMapOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    a: int
    b: int
    duration_a: float
    duration_b: float
    time_a: list[float]
    time_b: list[float]
    meta: dict
    t: float | None = None
    mapped: float | None = None


class IndexStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[int] | None = Field(None, description="positions in GET /api/index 'sources' (default all)")


class IndexOut(BaseModel):
    sources: list[str]
    job: dict | None


class ErrorOut(BaseModel):
    error: str


ERRORS = {
    400: {"model": ErrorOut, "description": "bad input (malformed file, note string, parameter)"},
    401: {"model": ErrorOut, "description": "a token is required (server started with --token)"},
    404: {"model": ErrorOut, "description": "unknown id"},
    413: {"model": ErrorOut, "description": "request body, upload or audio too large"},
    422: {"model": ErrorOut, "description": "invalid request fields"},
    503: {"model": ErrorOut, "description": "server busy"},
    504: {"model": ErrorOut, "description": "the request took longer than the server's time budget"},
}
