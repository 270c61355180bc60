"""Command-line options derived from a task's request (:mod:`mirsearch.service.core`): one definition.

Every :func:`~mirsearch.service.core.param` field of a request becomes an option: ``--field-name VALUE`` (a
tuple is a comma-separated list, a bool defaulting to True is ``--no-field-name``), with the field's help, choices
and default. :func:`request_from_args` builds the request back from the parsed arguments, so the CLI's defaults
are the service's.
"""

from __future__ import annotations

import argparse

from mirsearch.errors import ParameterError
from mirsearch.service.core import ParamSpec, param_specs


def _list_of(kind: type, name: str):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x) for x in text.split(",") if x.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: {text!r} is not a comma-separated list of numbers") from None

    return parse


def _default_text(spec: ParamSpec) -> str:
    if spec.default is None:
        return ""
    value = ",".join(map(str, spec.default)) if spec.is_tuple else spec.default
    return f" (default: {value})"


def add_request_options(parser: argparse.ArgumentParser, request_type: type, *, exclude=()) -> None:
    """Add one option per parameter of ``request_type`` (those named in ``exclude`` left out)."""
    for spec in param_specs(request_type):
        if spec.name in exclude:
            continue
        if spec.type is bool:
            action = "store_false" if spec.default else "store_true"
            parser.add_argument(spec.cli_flag, dest=spec.name, action=action, default=spec.default, help=spec.help)
            continue
        kind = _list_of(spec.type, spec.name) if spec.is_tuple else spec.type
        parser.add_argument(
            spec.cli_flag,
            dest=spec.name,
            type=kind,
            default=spec.default,
            choices=None if spec.is_tuple else spec.choices,
            metavar=spec.metavar,
            help=spec.help + _default_text(spec),
        )


def request_from_args(request_type: type, args: argparse.Namespace, **queries):
    """The request of ``request_type`` from parsed arguments (its parameters) and the parsed ``queries``."""
    values = {s.name: getattr(args, s.name) for s in param_specs(request_type) if hasattr(args, s.name)}
    try:
        return request_type(**queries, **values)
    except TypeError as exc:  # a missing query: a programming error in the command module
        raise ParameterError(str(exc)) from None
