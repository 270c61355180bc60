"""Helpers shared by the command modules: command groups, common options, JSON output and result tables."""

from __future__ import annotations

import json
import sys


def _printable(text: str) -> str:
    """``text`` with lone surrogates (the undecodable bytes of a file name) written as ``\\udcXX`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def print_json(obj) -> None:
    """Print one JSON object on stdout (an undecodable file name comes out as a JSON ``\\udcXX`` escape)."""
    sys.stdout.write(_printable(json.dumps(obj, indent=2, ensure_ascii=False, default=str)) + "\n")


def print_table(rows: list[dict], columns: list[tuple[str, str]], *, file=None) -> None:
    """Print ``rows`` as an aligned text table; ``columns`` are ``(key, header)`` pairs."""
    file = file or sys.stdout
    cells = [[_printable(str(r.get(k, ""))) for k, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    print("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)), file=file)


def add_command_group(subparsers, name: str, *, help: str, description: str | None = None):  # noqa: A002
    """Add the command ``name`` whose work is done by sub-commands; returns the sub-parsers to add them to.

    Without a sub-command the group prints its help and exits with 2 (a usage error).
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    sub = parser.add_subparsers(dest=f"{name}_command", metavar="<subcommand>")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    return sub


def add_json_flag(parser, help: str = "print the answer as JSON") -> None:  # noqa: A002
    """``--json``: the answer as one JSON object on stdout."""
    parser.add_argument("--json", action="store_true", help=help)


def add_run_options(parser, *, jobs: int, jobs_help: str, json_help: str | None = None) -> None:
    """The options of a long run: ``--jobs N`` (default ``jobs``), ``--no-progress`` and, with ``json_help``,
    ``--json``. :func:`show_progress` reads ``--no-progress``."""
    parser.add_argument("--jobs", type=int, default=jobs, help=f"{jobs_help} (default {jobs})")
    _add_no_progress(parser)
    if json_help is not None:
        add_json_flag(parser, help=json_help)


def _add_no_progress(parser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def show_progress(args) -> bool:
    """Progress bars unless ``--no-progress`` was given or stderr is not a terminal."""
    return not args.no_progress and sys.stderr.isatty()


def add_training_options(parser, *, epochs: int) -> None:
    """The options every training command shares: data set, epochs, learning rate, seed, resuming, limits."""
    parser.add_argument("--dataset", required=True, help="data set directory (with its manifest.json)")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch passing this time")
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1, help="torch threads (default 1)")
    _add_no_progress(parser)


def pick(args, *names: str) -> dict:
    """The parsed options ``names`` of ``args`` as keyword arguments (``pick(args, "seed", "jobs")``)."""
    return {name: getattr(args, name) for name in names}


def print_rows(rows: list[dict], columns: list[tuple[str, str]], *, empty: str, cells: dict | None = None) -> int:
    """Print result dicts as a table, or the line ``empty`` when there are none; returns 0 (the exit code).

    ``cells`` maps a column to a format string over the row (``{"speed": "{speed:.3f}"}``), filled in first.
    """
    if not rows:
        print(empty)
        return 0
    for r in rows:
        r.update({key: template.format_map(r) for key, template in (cells or {}).items()})
    print_table(rows, columns)
    return 0


def add_collection_argument(parser, *, required: bool = True) -> None:
    parser.add_argument(
        "--collection",
        "-c",
        required=required,
        metavar="DIR",
        help="collection directory (created by 'mirsearch index'; '.mirs' by convention)",
    )


class _Unset:
    """Default of an option that not every task of a command takes: tells "not given" from any value."""

    def __repr__(self) -> str:
        return "(not given)"


UNSET = _Unset()


def add_task_options(parser, modes: dict[str, type]) -> None:
    """Options for a command whose query option picks one of several tasks (``--theme`` / ``--audio``).

    ``modes`` maps a query option (``"--theme"``) to its task's request type. Each parameter becomes one option;
    one that several requests share keeps its default when they agree, else it is :data:`UNSET` and each request
    applies its own default (:func:`request_for`). Choices are the union (each request checks its own).
    """
    from mirsearch.cli.options import _default_text, _list_of
    from mirsearch.service.core import param_specs

    specs: dict[str, list] = {}
    for mode, request_type in modes.items():
        for spec in param_specs(request_type):
            specs.setdefault(spec.name, []).append((mode, spec))
    for name, entries in specs.items():
        spec = entries[0][1]
        shared = len(entries) == len(modes) and len({repr(s.default) for _, s in entries}) == 1
        default = spec.default if shared else UNSET
        if shared:
            help_text = spec.help + ("" if spec.type is bool else _default_text(spec))
        else:
            where = "; ".join(f"{_default_text(s).strip(' ()') or 'none'} with {m}" for m, s in entries)
            help_text = f"{spec.help} ({where}; not with {', '.join(sorted(set(modes) - {m for m, _ in entries}))})"
            help_text = help_text.replace("; not with )", ")")
        if spec.type is bool:
            action = "store_false" if spec.default else "store_true"
            parser.add_argument(spec.cli_flag, dest=name, action=action, default=default, help=help_text)
            continue
        choices = None
        if not spec.is_tuple and all(s.choices is not None for _, s in entries):
            choices = list(dict.fromkeys(c for _, s in entries for c in s.choices))
        kind = _list_of(spec.type, name) if spec.is_tuple else spec.type
        parser.add_argument(
            spec.cli_flag, dest=name, type=kind, default=default, choices=choices, metavar=spec.metavar,
            help=help_text,
        )  # fmt: skip


def request_for(modes: dict[str, type], mode: str, args, *, foreign=(), **queries):
    """The request of ``modes[mode]`` from ``args``; options of the other tasks given with ``mode`` are refused.

    ``foreign`` names further command-line options (dests) that do not apply to this mode.
    """
    from mirsearch.errors import ParameterError
    from mirsearch.service.core import param_specs

    own = {s.name for s in param_specs(modes[mode])}
    others = {s.name for m, t in modes.items() if m != mode for s in param_specs(t)} - own
    values = {}
    for name, value in vars(args).items():
        if value is UNSET:
            continue
        if name in own:
            values[name] = value
        elif name in others or (name in foreign and value not in (None, False)):
            raise ParameterError(f"--{name.replace('_', '-')} does not apply to {mode}")
    try:
        return modes[mode](**queries, **values)
    except ParameterError as exc:
        raise ParameterError(f"{exc} (with {mode})") from None


def add_format_argument(parser) -> None:
    """``--format`` (table, json, csv, audacity, svl) and ``--json`` (= ``--format json``)."""
    from mirsearch.service.export import FORMATS

    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output: a table (default), JSON, CSV, an Audacity label track or a Sonic Visualiser layer (.svl)",
    )
    parser.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")


def print_matches(result, fmt: str) -> bool:
    """Print a search result in ``fmt`` unless it is ``table``; True when printed."""
    if fmt == "table":
        return False
    if fmt == "json":
        print_json(result.to_dict())
    else:
        from mirsearch.service.export import matches_as

        sys.stdout.write(matches_as(fmt, [m.to_dict() for m in result.matches]))
    return True


def print_match_table(rows: list[dict], *, extra: tuple[tuple[str, str], ...] = ()) -> int:
    """Print match dicts (``Match.to_dict()``) as a ranked table; ``extra``: more ``(key, header)`` columns."""
    if not rows:
        print("no matches")
        return 0
    for i, r in enumerate(rows, 1):
        r["rank"] = i
        r["span"] = f"{r['start_mmss']}-{r['end_mmss']}"
        r["seconds"] = f"{r['start']:.1f}-{r['end']:.1f}"
        r["cost"] = f"{r['cost']:.4f}"
    columns = [("rank", "#"), ("recording", "recording"), ("span", "mm:ss"), ("seconds", "seconds"), ("cost", "cost")]
    for key, header, fmt in (("confidence", "conf.", "{:.2f}"), ("tempo_factor", "tempo", "{:.2f}")):
        if all(r.get(key) is not None for r in rows):  # themes have a confidence, audio matches a tempo factor
            columns.append((key, header))
            for r in rows:
                r[key] = fmt.format(r[key])
    print_table(rows, [*columns, *extra, ("transposition", "transp.")])
    return 0
