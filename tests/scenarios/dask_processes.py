"""A Dask cluster of separate processes on loopback: a `dask scheduler` process and
`dask worker` processes, started as subprocesses and stopped afterwards (tests and
benchmarks/ensemble.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DASK = Path(sys.executable).with_name("dask")


def _wait_for(path: Path, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with code {process.returncode}")
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            info = json.loads(path.read_text())
            if info.get("address"):
                return info
        time.sleep(0.1)
    raise TimeoutError("dask scheduler did not start")


@contextlib.contextmanager
def dask_processes(workers: int = 1, threads: int = 1, timeout: float = 60.0) -> Iterator[str]:
    """Yield the scheduler address (tcp://127.0.0.1:PORT) of a running cluster of
    `workers` worker processes with `threads` threads each."""
    from distributed import Client

    with tempfile.TemporaryDirectory(prefix="critmin-dask-") as folder:
        folder = Path(folder)
        info = folder / "scheduler.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        started: list[subprocess.Popen] = []
        try:
            scheduler = subprocess.Popen(
                [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--no-dashboard", "--scheduler-file", str(info)],
                **quiet,
            )  # fmt: skip
            started.append(scheduler)
            address = _wait_for(info, scheduler, timeout)["address"]
            for index in range(workers):
                command = [str(DASK), "worker", address, "--nthreads", str(threads),
                           "--no-nanny", "--no-dashboard", "--name", f"critmin-{index}",
                           "--local-directory", str(folder / f"worker-{index}")]  # fmt: skip
                started.append(subprocess.Popen(command, **quiet))
            with Client(address, timeout="30s") as client:
                client.wait_for_workers(workers, timeout=timeout)
            yield address
        finally:
            for process in reversed(started):  # workers first, then the scheduler
                process.terminate()
            for process in reversed(started):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
