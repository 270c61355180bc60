"""The ``dask`` parameter of the tasks that can run on a Dask cluster (index, theme, passages, identify).

``None`` runs on this machine; ``local:N`` starts a local cluster of N worker processes; ``tcp://host:port``
uses a running scheduler (:mod:`mirsearch.cluster`, imported only when a task is given a spec).
"""

from __future__ import annotations

from typing import Any

from mirsearch.service.core import param

#: help text of the parameter (the spec forms of :func:`mirsearch.cluster.parse_spec`)
DASK_HELP = (
    "run on a Dask cluster: local:N (a local cluster of N worker processes) or tcp://host:port (a running "
    "scheduler whose workers have mirsearch installed); default: this machine only"
)


def dask_param() -> Any:
    """The ``dask`` field of a request."""
    return param(None, help=DASK_HELP, metavar="SPEC")


__all__ = ["DASK_HELP", "dask_param"]
