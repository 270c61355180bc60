"""Connections to a Dask cluster, named by a spec: ``local:N`` or ``tcp://host:port``.

``local:N`` starts a :class:`distributed.LocalCluster` of ``N`` worker processes with one thread each (the
numba kernels and the decoders hold one core each); ``tcp://host:port`` connects to the scheduler of an
existing cluster, whose workers must have mirsearch installed (the same version). A process keeps one
client per spec (a server shares it between its threads); every client and local cluster is closed when the
process exits. ``distributed`` is imported on first use only, so that ``mirsearch --help`` stays fast.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
from dataclasses import dataclass

from mirsearch.errors import ParameterError

log = logging.getLogger(__name__)

#: the spec forms, for help texts and messages
SPEC_FORMS = "local:N (a local cluster of N worker processes) or tcp://host:port (a running scheduler)"
#: largest local cluster
MAX_LOCAL_WORKERS = 256

_LOCAL = re.compile(r"local:(\d+)")
_REMOTE = re.compile(r"(tcp|tls)://[A-Za-z0-9_.\-\[\]:]+:\d+")


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed spec: ``local`` workers to start, or the ``address`` of a scheduler."""

    text: str
    local: int = 0
    address: str = ""


def parse_spec(text: str) -> ClusterSpec:
    """Parse ``local:N`` or ``tcp://host:port``; :class:`ParameterError` naming ``dask`` otherwise."""
    text = str(text).strip()
    local = _LOCAL.fullmatch(text)
    if local:
        n = int(local.group(1))
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise ParameterError(f"dask={text!r}: local workers must be in 1..{MAX_LOCAL_WORKERS}")
        return ClusterSpec(text, local=n)
    if _REMOTE.fullmatch(text):
        return ClusterSpec(text, address=text)
    raise ParameterError(f"dask={text!r} must be {SPEC_FORMS}")


_CLIENTS: dict[str, tuple] = {}
_GUARD = threading.Lock()


def connect(text: str):
    """The :class:`distributed.Client` of a spec, started or connected on first use and kept for the process.

    Raises
    ------
    ParameterError
        A malformed spec, or a scheduler that cannot be reached (one line naming it).
    """
    spec = parse_spec(text)
    with _GUARD:
        hit = _CLIENTS.get(spec.text)
        if hit is not None and hit[0].status == "running":
            return hit[0]
        client, cluster = _start(spec)
        _CLIENTS[spec.text] = (client, cluster)
        return client


def _start(spec: ClusterSpec):
    from distributed import Client, LocalCluster

    if not logging.getLogger("mirsearch").isEnabledFor(logging.DEBUG):  # workers starting, closing: not news
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    if spec.local:
        import dask

        # the workers' BLAS uses as many threads as this process's (Dask would pin it to one): the summation
        # order, hence the features to the last bit, then equals a local run's
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": 65536}}):
            cluster = LocalCluster(
                n_workers=spec.local, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.ERROR,
            )  # fmt: skip
        log.info("started a local Dask cluster of %d workers at %s", spec.local, cluster.scheduler_address)
        return Client(cluster), cluster
    try:
        client = Client(spec.address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ParameterError(f"dask={spec.text!r}: cannot reach the scheduler ({exc})") from None
    log.info("connected to the Dask scheduler at %s", spec.address)
    return client, None


def close(text: str | None = None) -> None:
    """Close the client of one spec (and its local cluster), or of every spec."""
    with _GUARD:
        names = list(_CLIENTS) if text is None else [parse_spec(text).text]
        for name in names:
            hit = _CLIENTS.pop(name, None)
            if hit is None:
                continue
            client, cluster = hit
            try:
                client.close()
                if cluster is not None:
                    cluster.close()
            except Exception:  # noqa: BLE001 - shutting down: nothing left to save
                log.debug("closing the Dask client of %s", name, exc_info=True)


atexit.register(close)


def worker_addresses(client) -> list[str]:
    """Addresses of the cluster's workers, sorted (at least one; waits up to 30 s for the first)."""
    client.wait_for_workers(1, timeout=30)
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


__all__ = ["MAX_LOCAL_WORKERS", "SPEC_FORMS", "ClusterSpec", "close", "connect", "parse_spec", "worker_addresses"]
