"""`critmin serve` in a subprocess on a free loopback port, with scratch user data (shared by
the web benchmarks and the load test)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(workers: int = 1) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yields (base URL, server process); the server is stopped on exit."""
    port = free_port()
    scratch = tempfile.mkdtemp(prefix="critmin-web-bench-")
    env = {
        **os.environ,
        "CRITMIN_DATA_DIR": scratch,
        "CRITMIN_DB_URL": f"sqlite:///{scratch}/registry.sqlite",
        "CRITMIN_WEB_RUNS_DIR": f"{scratch}/runs",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "critmin", "serve", "--port", str(port),
         "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("critmin serve did not start in 30 s")
        yield base, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:  # still draining requests: stop it hard
            server.kill()
            server.wait()
