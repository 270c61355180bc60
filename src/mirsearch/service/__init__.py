"""The service layer: every task mirsearch offers, registered once, the only thing the CLI and the server call.

How a task plugs in (see :mod:`mirsearch.service.core` for the machinery):

1. The task's work lives in its own layer (``search/``, ``sync/``, ``describe/``, ...) as functions over parsed
   queries that return result objects; nothing there reads query files, prints or draws.
2. A module of this package defines the task's request (a frozen dataclass of :func:`~.core.param` fields and
   :func:`~.core.query_field` fields) and registers ``run(context, request) -> result`` with
   :func:`~.core.register`; the result has ``to_dict()`` (the JSON answer, with a ``query`` block from
   :func:`~.core.version_block`). Add the module's name to :data:`TASK_MODULES`.
3. The CLI builds its options from the request (:func:`mirsearch.cli.options.add_request_options`) and the server
   its request models (:mod:`mirsearch.server.models`); a test checks that both match the request's fields.

The Python API mirrors the CLI: :class:`Archive` (an open collection) with :meth:`Archive.run` for any task and
a method per search task.
"""

from __future__ import annotations

import importlib

from mirsearch.service.core import TASKS, Context, Request, Task, get_task, param, query_field, register, run

#: the modules that register tasks (imported on first use of the registry)
TASK_MODULES = (
    "theme",
    "audio",
    "sync",
    "collection",
    "upkeep",
    "segment",
    "identify",
    "scores",
    "score_view",
    "shingles",
    "tags",
    "sheets",
    "similar",
)


def load_tasks() -> dict[str, Task]:
    """Import every task module (registering its tasks) and return the registry."""
    for name in TASK_MODULES:
        try:
            importlib.import_module(f"mirsearch.service.{name}")
        except ModuleNotFoundError as exc:  # a task module not written yet
            if exc.name != f"mirsearch.service.{name}":
                raise
    return TASKS


def __getattr__(name: str):  # the Python API, imported lazily (it pulls in every task)
    if name == "Archive":
        from mirsearch.service.archive import Archive

        return Archive
    raise AttributeError(name)


__all__ = ["TASKS", "TASK_MODULES", "Archive", "Context", "Request", "Task", "get_task", "load_tasks", "param"]
__all__ += ["query_field", "register", "run"]
