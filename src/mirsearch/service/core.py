"""The service's machinery: parameters with their help and limits, requests, the task registry, results.

A task is defined once::

    @dataclass(frozen=True)
    class ThemeRequest(Request):
        query: ThemeQuery = query_field("the theme")
        top: int = param(10, help="matches to return", minimum=1, maximum=1000)

    @register("theme", request=ThemeRequest, area="search", summary="where is a theme played?")
    def run_theme(context: Context, request: ThemeRequest) -> SearchResult: ...

The request's fields are the task's parameters. :func:`param` stores the help text, the allowed values and the
command-line spelling in the field's metadata; the CLI (:func:`mirsearch.cli.options.add_request_options`) and
the HTTP API (:func:`mirsearch.server.models.request_model`) are derived from these fields, so their names,
types and defaults cannot drift apart. A request validates its values when it is constructed
(:class:`~mirsearch.errors.ParameterError` naming the parameter). Query fields (:func:`query_field`) hold an
already parsed query; the interfaces parse it at their boundary.
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mirsearch import __version__
from mirsearch.errors import ParameterError

log = logging.getLogger(__name__)


def param(
    default: Any,
    *,
    help: str,  # noqa: A002 - argparse's name
    choices: Sequence | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    flag: str | None = None,
    metavar: str | None = None,
) -> Any:
    """A task parameter: a dataclass field whose metadata drives validation, the CLI and the HTTP API.

    Parameters
    ----------
    default : immutable value
        The one default, shared by the Python API, the CLI and the server.
    help : str
        One sentence for ``--help`` and the API documentation.
    choices : sequence, optional
        The allowed values.
    minimum, maximum : float, optional
        Inclusive bounds of a number (of each element of a tuple).
    flag : str, optional
        Command-line spelling (default ``--field-name``; a bool defaulting to True is ``--no-field-name``).
    metavar : str, optional
        Placeholder in ``--help``.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None}
    meta.update(minimum=minimum, maximum=maximum, flag=flag, metavar=metavar, kind="param")
    return field(default=default, metadata=meta)


def query_field(help: str) -> Any:  # noqa: A002
    """A request's query (parsed at the interface: :class:`~mirsearch.search.query.ThemeQuery`, ...)."""
    return field(metadata={"help": help, "kind": "query"})


def _base_type(annotation) -> tuple[type, bool, bool]:
    """``(element type, optional, is_tuple)`` of a field annotation such as ``tuple[float, ...] | None``."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if origin is tuple:
        return typing.get_args(annotation)[0], optional, True
    return annotation, optional, False


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a task, as the interfaces see it."""

    name: str
    type: type
    default: Any
    help: str
    optional: bool = False
    is_tuple: bool = False
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    flag: str | None = None
    metavar: str | None = None

    @property
    def cli_flag(self) -> str:
        if self.flag:
            return self.flag
        stem = self.name.replace("_", "-")
        return f"--no-{stem}" if self.type is bool and self.default is True else f"--{stem}"

    def check(self, value: Any) -> None:
        """Raise :class:`ParameterError` unless ``value`` is allowed."""
        if value is None:
            if not self.optional:
                raise ParameterError(f"{self.name} must be given")
            return
        values = value if self.is_tuple else (value,)
        if self.is_tuple and not values:
            raise ParameterError(f"{self.name} must not be empty")
        for v in values:
            if self.type in (int, float) and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise ParameterError(f"{self.name}={v!r} must be a number")
            if self.choices is not None and v not in self.choices:
                raise ParameterError(f"{self.name}={v!r} must be one of {', '.join(map(str, self.choices))}")
            if self.minimum is not None and not v >= self.minimum:
                raise ParameterError(f"{self.name}={v!r} must be >= {self.minimum}")
            if self.maximum is not None and not v <= self.maximum:
                raise ParameterError(f"{self.name}={v!r} must be <= {self.maximum}")


@dataclass(frozen=True)
class Request:
    """Base of every task's request: validates its parameters when constructed."""

    def __post_init__(self) -> None:
        for spec in param_specs(type(self)):
            value = getattr(self, spec.name)
            if spec.is_tuple and value is not None and not isinstance(value, tuple):
                object.__setattr__(self, spec.name, tuple(value))  # lists and ranges become tuples
            spec.check(getattr(self, spec.name))

    def params(self) -> dict:
        """The parameter values (queries left out), JSON-ready."""
        values = {s.name: getattr(self, s.name) for s in param_specs(type(self))}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def param_specs(request_type: type) -> list[ParamSpec]:
    """The parameters of a request type, in definition order (query fields left out)."""
    hints = typing.get_type_hints(request_type)
    specs = []
    for f in dataclasses.fields(request_type):
        if f.metadata.get("kind") != "param":
            continue
        base, optional, is_tuple = _base_type(hints[f.name])
        m = f.metadata
        specs.append(
            ParamSpec(
                f.name, base, f.default, m["help"], optional, is_tuple, m["choices"], m["minimum"], m["maximum"],
                m["flag"], m["metavar"],
            )
        )  # fmt: skip
    return specs


def query_specs(request_type: type) -> list[tuple[str, str]]:
    """``(name, help)`` of the query fields of a request type."""
    return [(f.name, f.metadata["help"]) for f in dataclasses.fields(request_type) if f.metadata.get("kind") == "query"]


@dataclass
class Context:
    """What a task runs against: an open collection (None for tasks on files only) and, for a task that reports
    progress per input (``index``), a callback ``on_result(kind, path, message)``."""

    collection: Any = None
    on_result: Callable[[str, str, str], None] | None = None

    def require_collection(self, task: str):
        if self.collection is None:
            raise ParameterError(f"{task}: a collection is needed (--collection)")
        return self.collection


@dataclass(frozen=True)
class Task:
    """A registered task: its request type, the function that runs it and how interfaces present it."""

    name: str
    request: type
    run: Callable[[Context, Any], Any]
    area: str
    summary: str
    needs_collection: bool = True
    writes: bool = False

    @property
    def params(self) -> list[ParamSpec]:
        return param_specs(self.request)


TASKS: dict[str, Task] = {}


def register(
    name: str, *, request: type, area: str, summary: str, needs_collection: bool = True, writes: bool = False
) -> Callable:
    """Decorator: register ``run(context, request)`` as the task ``name`` (once)."""

    def deco(fn: Callable) -> Callable:
        if name in TASKS and TASKS[name].run is not fn:
            raise RuntimeError(f"task {name!r} registered twice")
        TASKS[name] = Task(name, request, fn, area, summary, needs_collection, writes)
        return fn

    return deco


def get_task(name: str) -> Task:
    """The task registered as ``name`` (importing the service modules first)."""
    from mirsearch.service import load_tasks

    load_tasks()
    try:
        return TASKS[name]
    except KeyError:
        raise ParameterError(f"task={name!r} is not one of {', '.join(sorted(TASKS))}") from None


def run(name: str, request: Any, *, collection=None, on_result=None) -> Any:
    """Run the task ``name`` with a request of its type against ``collection`` (``on_result``: see :class:`Context`)."""
    task = get_task(name)
    if not isinstance(request, task.request):
        raise ParameterError(f"{name}: expected a {task.request.__name__}, got {type(request).__name__}")
    return task.run(Context(collection=collection, on_result=on_result), request)


def version_block(**settings) -> dict:
    """The ``query`` block of every JSON answer: the settings used and the mirsearch version."""
    return {**settings, "mirsearch": __version__}
