"""Where ensemble chunks run: in this process, on a local Dask cluster of N worker
processes, or on an existing Dask cluster by address. Same chunks, same order, same numbers."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator

from critmin.errors import InputError


def max_workers() -> int:
    """The most local worker processes allowed: twice the cores (each holds a calibration
    and its chunk of results; more only adds memory and context switches)."""
    return 2 * (os.cpu_count() or 1)


@functools.cache
def roomy_allocator() -> bool:
    """Let glibc's malloc keep freed memory for reuse (mmap threshold 64 MB, trim threshold
    256 MB) in this process, once; True where it took effect.

    A batched solve allocates and frees arrays of a few hundred kB to a few MB per step.
    Above the mmap threshold each one is a fresh mapping, page-faulted in and unmapped
    again; Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which pins that
    threshold at 128 kB, and the same chunks then cost about twice the CPU on a worker
    (measured: 6.5 s vs 2.8 s for 3,000 draws). The numbers do not change, only where
    memory comes from. No effect outside glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 64 << 20)) and bool(mallopt(m_trim_threshold, 256 << 20))


def _prepare_worker() -> None:
    """Run on every Dask worker: BLAS on one thread, as in process, so sums are done in
    the same order and results are bitwise identical (threadpoolctl keeps the limit); the
    allocator as in process (`roomy_allocator`)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    roomy_allocator()


TASKS_PER_THREAD = 3  # tasks per worker thread: enough to balance uneven chunks


def _chunks_task(function: Callable, *arguments) -> list:
    """One Dask task: `function(*shared, *chunk)` for each of its chunks, in order (the
    last argument is the list of chunks, the others the shared data)."""
    *shared, chunks = arguments
    return [function(*shared, *chunk) for chunk in chunks]


def task_groups(chunks: int, threads: int) -> list[range]:
    """Chunks dealt into about `TASKS_PER_THREAD` tasks per worker thread: few, large tasks
    (each has a scheduling and transfer cost), enough to keep every thread busy. Dealt
    round-robin (task t takes chunks t, t + T, t + 2T ...), since neighbouring chunks cost
    alike (an ensemble orders its draws by restriction pattern) and consecutive runs would
    leave the cheap tasks' threads idle. The grouping never changes a number: each chunk
    is solved on its own."""
    tasks = max(1, min(chunks, TASKS_PER_THREAD * max(1, threads)))
    return [range(t, chunks, tasks) for t in range(tasks)]


def _dask_map(client) -> Callable:
    """A chunk executor on a Dask client: `run(function, shared, chunks, progress)`."""
    client.run(_prepare_worker)

    def run(
        function: Callable, shared: tuple, chunks: list[tuple], progress: Callable | None
    ) -> list:
        from distributed import as_completed

        if not chunks:
            return []
        # The calibration, base policy, parameters ... are the same for every chunk: sent
        # once to every worker (scatter), not once per task.
        on_workers = client.scatter(list(shared), broadcast=True)
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        groups = task_groups(len(chunks), threads)
        futures = [
            client.submit(
                _chunks_task, function, *on_workers, [chunks[i] for i in group], pure=False
            )
            for group in groups
        ]
        position = {future.key: index for index, future in enumerate(futures)}
        outputs: list = [None] * len(chunks)
        for future in as_completed(futures):
            group = groups[position[future.key]]
            for index, output in zip(group, future.result(), strict=True):
                outputs[index] = output
            if progress:
                progress(sum(len(chunks[i][0]) for i in group))
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
