"""Where ensemble chunks run: in this process, on a local Dask cluster of N worker
processes, or on an existing Dask cluster by address. Same chunks, same order, same numbers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from critmin.errors import InputError


def max_workers() -> int:
    """The most local worker processes allowed: twice the cores (each holds a calibration
    and its chunk of results; more only adds memory and context switches)."""
    return 2 * (os.cpu_count() or 1)


def _single_thread_blas() -> None:
    """Run on every Dask worker: BLAS on one thread, as in process, so sums are done in
    the same order and results are bitwise identical (threadpoolctl keeps the limit)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _dask_map(client) -> Callable:
    client.run(_single_thread_blas)

    def run(function: Callable, arguments: list[tuple], progress: Callable | None) -> list:
        from distributed import as_completed

        if not arguments:
            return []
        # The calibration, base policy and parameters are the same for every chunk: send
        # them once to every worker instead of once per task.
        shared = client.scatter(list(arguments[0][:3]), broadcast=True)
        futures = [client.submit(function, *shared, *args[3:], pure=False) for args in arguments]
        position = {future.key: index for index, future in enumerate(futures)}
        outputs: list = [None] * len(futures)
        for future in as_completed(futures):
            outputs[position[future.key]] = future.result()
            if progress:
                progress(len(arguments[position[future.key]][6]))
        return outputs

    return run


@contextlib.contextmanager
def executor(workers: int = 1, address: str | None = None) -> Iterator[Callable | None]:
    """Yield a chunk executor: None (in process) for one local worker, a Dask LocalCluster
    of `workers` processes, or the cluster at `address` (tcp://HOST:PORT)."""
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if workers > max_workers():
        raise InputError(
            f"--workers {workers}: at most {max_workers()} on this machine "
            f"({os.cpu_count() or 1} cores × 2); each worker is a process with its own memory"
        )
    if address is None and workers == 1:
        yield None
        return
    from distributed import Client, LocalCluster

    if address is not None:
        if not isinstance(address, str) or not address.strip() or " " in address:
            raise InputError(f"--dask {address!r}: give a scheduler address tcp://HOST:PORT")
        try:
            client = Client(address, timeout="10s")
        except (OSError, ValueError, TypeError) as error:
            raise InputError(f"cannot reach the Dask scheduler at {address}: {error}") from None
        with client:
            yield _dask_map(client)
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield _dask_map(client)
