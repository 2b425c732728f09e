"""Benchmark: the dependence endpoint under 50 concurrent clients on loopback.

Target (issue 8): p95 latency under 200 ms and no errors. Starts `critmin serve` in a
subprocess (one worker) on a free port, warms it with every distinct query once,
then runs 50 concurrent httpx clients for a fixed number of requests each and prints p50,
p95, max latency, errors and throughput. The load generator shares the 2 cores.

    .venv/bin/python benchmarks/web_load.py [--clients 50] [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import httpx
import numpy as np
from served import served

IMPORTERS = ["DEU", "USA", "JPN", "KOR", "FRA", "IND", "GBR", "ITA", "CAN", "AUS"]
COMMODITIES = ["rare_earths", "graphite", "cobalt", "lithium", "tungsten"]
TARGET_P95_S = 0.200


async def client(base: str, requests: int, seed: int, latencies: list, errors: list) -> None:
    rng = np.random.default_rng(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(requests):
            params = {
                "importer": IMPORTERS[rng.integers(len(IMPORTERS))],
                "commodity": COMMODITIES[rng.integers(len(COMMODITIES))],
                "year": 2023,
            }
            start = time.perf_counter()
            try:
                response = await http.get("/api/dependence", params=params)
                if response.status_code != 200:
                    errors.append(response.status_code)
            except httpx.HTTPError as error:
                errors.append(type(error).__name__)
            latencies.append(time.perf_counter() - start)


async def load(base: str, clients: int, requests: int) -> tuple[list, list, float]:
    latencies: list[float] = []
    errors: list = []
    start = time.perf_counter()
    await asyncio.gather(*(client(base, requests, i, latencies, errors) for i in range(clients)))
    return latencies, errors, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    args = parser.parse_args()
    with served() as (base, _):
        warm = time.perf_counter()
        for importer in IMPORTERS:  # each distinct answer computed once (then cached)
            for commodity in COMMODITIES:
                httpx.get(f"{base}/api/dependence", params={"importer": importer,
                          "commodity": commodity, "year": 2023}, timeout=60)  # fmt: skip
        print(
            f"warm-up: {len(IMPORTERS) * len(COMMODITIES)} distinct queries in "
            f"{time.perf_counter() - warm:.1f} s"
        )
        latencies, errors, elapsed = asyncio.run(load(base, args.clients, args.requests))
    values = np.array(latencies)
    p50, p95 = np.percentile(values, [50, 95])
    print(
        f"{args.clients} clients × {args.requests} requests: {len(values):,} in {elapsed:.1f} s "
        f"({len(values) / elapsed:,.0f} req/s); latency p50 {p50 * 1e3:.1f} ms, "
        f"p95 {p95 * 1e3:.1f} ms, max {values.max() * 1e3:.1f} ms; errors {len(errors)}"
    )
    passed = p95 < TARGET_P95_S and not errors
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
