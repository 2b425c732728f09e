"""Load case of issue 19: pathological and abandoned model requests while reads go on.

On loopback, against `critmin serve` in a subprocess (one worker):

1. reads: `GET /api/agreements` at `--rate` a second for the whole test;
2. 40 pathological `POST /api/zone` at once (three 1e308 floors with a Chinese ban, as
   the outside tester sent), each waiting up to 120 s for its answer;
3. 40 ordinary but heavy zone requests at once, each abandoned by its client after 5 s;
4. 20 slow clients sending their headers one byte a second (each stops after 40 bytes);
5. when every client (readers too) has left: the server's CPU (with its worker processes) is sampled
   each second until it is idle (under 5 % for 3 s running);
6. SIGTERM while a model request runs: the time until the server has exited.

Acceptance: reads p95 ≤ 1 s, no read error, every model request answered (2xx/4xx/503,
never a hang or a 500), CPU idle within 30 s of the clients leaving, SIGTERM ≤ 10 s.

    .venv/bin/python benchmarks/model_load.py     # part of make stress
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import psutil
from served import served

PATHOLOGICAL = {
    "members": "ministerial_2026",
    "floors": {"rare_earths": 1e308, "graphite": 1e308, "tungsten": 1e308},
    "with_ban": "CHN",
    "year": 2021,
}
HEAVY = {
    "members": "ministerial_2026",
    "floors": {"rare_earths": 1.3, "graphite": 1.3, "tungsten": 1.3},
    "with_ban": "CHN",
    "year": 2021,
}
TARGET_P95_S = 1.0
IDLE_WITHIN_S = 30.0
STOP_WITHIN_S = 10.0


async def reads(base: str, rate: float, stop: asyncio.Event, latencies: list, errors: list):
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        tasks = []

        async def one() -> None:
            start = time.perf_counter()
            try:
                response = await client.get("/api/agreements")
                if response.status_code != 200:
                    errors.append(response.status_code)
            except httpx.HTTPError as error:
                errors.append(type(error).__name__)
            latencies.append(time.perf_counter() - start)

        while not stop.is_set():
            tasks.append(asyncio.create_task(one()))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)


async def model_requests(base: str, body: dict, count: int, timeout: float, outcomes: Counter):
    async def one(client: httpx.AsyncClient) -> None:
        try:
            response = await client.post("/api/zone", json=body)
            outcomes[response.status_code] += 1
        except httpx.TimeoutException:
            outcomes["abandoned"] += 1
        except httpx.HTTPError as error:
            outcomes[type(error).__name__] += 1

    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(count)))


def slow_client(port: int, closed: list) -> None:
    """Headers one byte a second; records whether the server closed the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b"GET /api/agreements HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
    start = time.monotonic()
    try:
        for byte in data[:40]:
            sock.sendall(bytes([byte]))
            time.sleep(1)
        closed.append(None)  # still open after 40 s
    except OSError:
        closed.append(time.monotonic() - start)
    finally:
        sock.close()


def tree_cpu(process: psutil.Process) -> float:
    """CPU % of the server and its worker processes over the last interval."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.cpu_percent(None)
    return total


async def scenario(base: str, server, args) -> dict:
    port = int(base.rsplit(":", 1)[1])
    process = psutil.Process(server.pid)
    tree_cpu(process)
    stop = asyncio.Event()
    latencies: list[float] = []
    errors: list = []
    reader = asyncio.create_task(reads(base, args.rate, stop, latencies, errors))
    await asyncio.sleep(2)
    pathological: Counter = Counter()
    abandoned: Counter = Counter()
    closed: list = []
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=20) as threads:
        slow = [loop.run_in_executor(threads, slow_client, port, closed) for _ in range(20)]
        # The pathological requests first, then the abandoned ones: both while reads go on.
        await model_requests(base, PATHOLOGICAL, 40, 120, pathological)
        await model_requests(base, HEAVY, 40, 5, abandoned)
        await asyncio.gather(*slow)
    load_seconds = time.monotonic() - started
    stop.set()  # every client leaves, the readers too
    await reader
    under_load = list(latencies)
    left = time.monotonic()
    idle_after = None
    quiet = 0
    tree_cpu(process)
    while time.monotonic() - left < 90:
        await asyncio.sleep(1)
        if tree_cpu(process) < 5.0:
            quiet += 1
            if quiet >= 3:
                idle_after = time.monotonic() - left - 3
                break
        else:
            quiet = 0
    # SIGTERM while a heavy model request runs.
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        running = asyncio.create_task(client.post("/api/zone", json=HEAVY))
        await asyncio.sleep(1.0)
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        while server.poll() is None and time.monotonic() - sent < 30:
            await asyncio.sleep(0.05)
        stopped_after = time.monotonic() - sent if server.poll() is not None else None
        with contextlib.suppress(httpx.HTTPError):
            await running
    return {
        "load_seconds": load_seconds,
        "reads": len(under_load),
        "read_errors": len(errors),
        "read_p50_s": float(np.percentile(under_load, 50)),
        "read_p95_s": float(np.percentile(under_load, 95)),
        "read_max_s": float(np.max(under_load)),
        "pathological": dict(pathological),
        "abandoned": dict(abandoned),
        "slow_clients_closed_after_s": sorted(c for c in closed if c is not None),
        "slow_clients_never_closed": sum(c is None for c in closed),
        "cpu_idle_after_s": idle_after,
        "sigterm_stopped_after_s": stopped_after,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="reads a second")
    args = parser.parse_args()
    with served() as (base, server):
        report = asyncio.run(scenario(base, server, args))
    for key, value in report.items():
        print(f"{key:30} {value}")
    bad = []
    if report["read_p95_s"] > TARGET_P95_S:
        bad.append(f"read p95 {report['read_p95_s']:.2f} s > {TARGET_P95_S} s")
    if report["read_errors"]:
        bad.append(f"{report['read_errors']} read errors")
    for name in ("pathological", "abandoned"):
        if any(k in (500, "ReadError", "RemoteProtocolError") for k in report[name]):
            bad.append(f"{name}: {report[name]}")
    if report["slow_clients_never_closed"]:
        bad.append(f"{report['slow_clients_never_closed']} slow clients never closed")
    if report["cpu_idle_after_s"] is None or report["cpu_idle_after_s"] > IDLE_WITHIN_S:
        bad.append(f"CPU not idle within {IDLE_WITHIN_S:g} s: {report['cpu_idle_after_s']}")
    stopped = report["sigterm_stopped_after_s"]
    if stopped is None or stopped > STOP_WITHIN_S:
        bad.append(f"SIGTERM took {stopped} s (limit {STOP_WITHIN_S:g})")
    print("PASS" if not bad else "FAIL: " + "; ".join(bad))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
