"""Benchmark: a 10,000-draw Monte Carlo ensemble for one commodity, and its scaling from one
to two Dask workers.

Target (issue 6): 10,000 draws in under 60 s on the 2-core machine. Runs the same ensemble
(rare earths 2023, every country its own market, EU bloc, seed 1) in process (threads over
the cores), on a Dask LocalCluster of 1 worker process and of 2, checks that all three give
identical numbers, and prints the times and the speed-up from 1 to 2 workers.

    .venv/bin/python benchmarks/ensemble.py [--draws 10000] [--commodity rare_earths]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from critmin.data import countries_of
from critmin.market import calibrate, resolve_parameters
from critmin.scenarios.ensemble import run_ensemble
from critmin.scenarios.execution import executor

TARGET_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--commodity", default="rare_earths")
    parser.add_argument("--year", type=int, default=2023)
    args = parser.parse_args()
    cal = calibrate(args.commodity, args.year)
    params = resolve_parameters(cal.countries)
    bloc = countries_of("eu27")
    times, results = {}, {}
    for label, workers in (("in process", 1), ("Dask, 1 worker", None), ("Dask, 2 workers", 2)):
        with executor(workers or 1) if workers != None else _one_worker_cluster() as run:  # noqa: E711
            start = time.perf_counter()
            results[label] = run_ensemble(cal, params, bloc, args.draws, seed=1, executor=run)
            times[label] = time.perf_counter() - start
        print(f"{label:>16}: {args.draws:,} draws in {times[label]:.1f} s")
    reference = results["in process"]
    identical = all(np.array_equal(r.shortfall_t, reference.shortfall_t) for r in results.values())
    summary = reference.summary()
    print(f"identical results across executors: {identical}")
    print(f"speed-up 1 → 2 Dask workers: {times['Dask, 1 worker'] / times['Dask, 2 workers']:.2f}×")
    print(
        f"EU expected shortfall {summary['bloc_expected_shortfall_pct']:.2f} % of consumption, "
        f"CVaR 95 % {summary['bloc_cvar95_t']:,.0f} t"
    )
    passed = identical and times["in process"] < TARGET_S
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


def _one_worker_cluster():
    from contextlib import contextmanager

    from distributed import Client, LocalCluster

    from critmin.scenarios.execution import _dask_map

    @contextmanager
    def cluster():
        with (
            LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as c,
            Client(c) as client,
        ):
            yield _dask_map(client)

    return cluster()


if __name__ == "__main__":
    sys.exit(main())
