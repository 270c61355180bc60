"""The ``dask`` parameter of the tasks that can run on a Dask cluster (index, theme, passages, identify,
identify-scan, similar, similar-audio).

``None`` runs on this machine (or on the cluster of :func:`use_cluster`, which ``mirsearch serve --dask`` sets);
``local:N`` starts a local cluster of N worker processes; ``tcp://host:port`` uses a running scheduler
(:mod:`mirsearch.cluster`, imported only when a task is given a spec).
"""

from __future__ import annotations

from typing import Any

from mirsearch.service.core import param

#: help text of the parameter (the spec forms of :func:`mirsearch.cluster.parse_spec`)
DASK_HELP = (
    "run on a Dask cluster: local:N (a local cluster of N worker processes) or tcp://host:port (a running "
    "scheduler whose workers have mirsearch installed); default: this machine only"
)


_DEFAULT: list[str | None] = [None]


def dask_param() -> Any:
    """The ``dask`` field of a request."""
    return param(None, help=DASK_HELP, metavar="SPEC")


def use_cluster(spec: str | None) -> None:
    """Make ``spec`` the cluster of every request of this process that names none (``mirsearch serve --dask``);
    the cluster is started or connected now, so that a bad spec fails at once. None: this machine again."""
    if spec is not None:
        from mirsearch.cluster import connect

        connect(spec)
    _DEFAULT[0] = spec


def cluster_spec(request) -> str | None:
    """The cluster a request runs on: its own ``dask``, else the process's (:func:`use_cluster`), else None."""
    return request.dask if request.dask is not None else _DEFAULT[0]


__all__ = ["DASK_HELP", "cluster_spec", "dask_param", "use_cluster"]
