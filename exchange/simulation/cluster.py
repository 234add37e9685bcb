"""Sweeps on a Dask distributed cluster (the optional extra: ``pip install 'dataex[cluster]'``).

    with dask_client(scheduler="tcp://10.0.0.5:8786") as client:     # a running cluster
        rows = run_sweep("scenarios/thin.toml", range(1, 101), executor=DaskExecutor(client))
    with dask_client(local_workers=4) as client:                      # a LocalCluster here
        ...

Every worker needs dataex installed (the same version as the client: tasks name
``exchange.simulation.sweep.run_task``, which the worker imports) and should run one thread
(``dask worker --nthreads 1``): a run is pure Python, so threads of one worker would only take
turns holding the interpreter. Dask is imported here and only here, so that dataex works
without it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["CONNECT_TIMEOUT_S", "ClusterError", "DaskExecutor", "dask_client"]

T = TypeVar("T")
R = TypeVar("R")

# How long to wait for a scheduler to answer and for its first worker to join.
CONNECT_TIMEOUT_S = 10
# Limit: worker processes of a local cluster.
MAX_LOCAL_WORKERS = 256


class ClusterError(Exception):
    """No cluster to run on: Dask missing, a scheduler unreachable or without workers."""


class DaskExecutor:
    """Runs tasks on the workers of a Dask cluster through ``client``; yields each task's
    index and outcome as it finishes (the executor protocol of ``exchange.simulation.sweep``).
    A worker that dies is retried by the scheduler on another, up to Dask's
    ``distributed.scheduler.allowed-failures``; past that the task's outcome is the
    ``KilledWorker`` error, and the other tasks go on."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def run(
        self, fn: Callable[[T], R], tasks: Sequence[T]
    ) -> Iterator[tuple[int, R | BaseException]]:
        from distributed import as_completed

        # pure=False: a task's key must not depend on its value alone; two equal tasks
        # (which a sweep never makes) must still be two runs.
        futures = self.client.map(fn, list(tasks), pure=False)
        index_of = {future.key: index for index, future in enumerate(futures)}
        try:
            # The loop named: the client is not the process's default client.
            for future in as_completed(futures, loop=self.client.loop):
                index = index_of[future.key]
                try:
                    yield index, future.result()
                except Exception as error:
                    yield index, error
        finally:
            # A caller that stops reading (Ctrl-C) leaves no queued run on the cluster.
            self.client.cancel(futures)


@contextmanager
def dask_client(
    *, scheduler: str | None = None, local_workers: int | None = None
) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler`` (e.g. ``tcp://host:8786``), or of a new
    local cluster of ``local_workers`` worker processes (one thread each, on 127.0.0.1, no
    dashboard) that closes with the block. Raises :class:`ClusterError` when Dask is not
    installed, the scheduler does not answer, or no worker joins it within
    :data:`CONNECT_TIMEOUT_S`."""
    if (scheduler is None) == (local_workers is None):
        raise ValueError("give a scheduler or a number of local workers, not both or neither")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("Dask is not installed: pip install 'dataex[cluster]'") from None
    if scheduler is not None:
        client = _connect(Client, scheduler)
    else:
        assert local_workers is not None
        if not 1 <= local_workers <= MAX_LOCAL_WORKERS:
            raise ClusterError(f"a local cluster has 1 to {MAX_LOCAL_WORKERS} workers")
        cluster = LocalCluster(
            n_workers=local_workers,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        if scheduler is None:
            cluster.close()


def _connect(client_class: Any, scheduler: str) -> Client:
    from distributed.comm import get_address_host_port

    try:
        host, port = get_address_host_port(scheduler)
    except ValueError as error:
        raise ClusterError(
            f"{scheduler!r} is not a scheduler address like tcp://HOST:8786 ({error})"
        ) from None
    # A plain connection first: a Client that cannot connect waits out its retries and
    # then, when collected, spends 20 s more failing to close what it never opened.
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ClusterError(f"cannot reach the scheduler at {scheduler}: {reason}") from None
    # Then ask what answers: a Client's own failure to read a stranger's bytes is an
    # exception of any type, raised after it has started threads that outlive it.
    try:
        identity = asyncio.run(asyncio.wait_for(_identify(scheduler), CONNECT_TIMEOUT_S))
    except Exception as error:
        reason = str(error) or type(error).__name__
        raise ClusterError(f"{scheduler} does not answer as a Dask scheduler: {reason}") from None
    if identity.get("type") != "Scheduler":
        raise ClusterError(f"{scheduler} is a Dask {identity.get('type')}, not a scheduler")
    try:
        client = client_class(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"cannot reach the scheduler at {scheduler}: {error}") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        client.close()
        raise ClusterError(
            f"the scheduler at {scheduler} has no workers (none joined in {CONNECT_TIMEOUT_S} s)"
        ) from None
    return client


async def _identify(address: str) -> dict[str, Any]:
    from distributed.core import rpc

    async with rpc(address) as remote:
        return await remote.identity()
