"""Benchmark: a 10,000-draw Monte Carlo ensemble for one commodity, in process and on Dask.

Targets (issue 18): 10,000 draws in at most 5 s in process on the 2-core machine, and on a
Dask cluster of one worker process (with as many threads as cores, as `dask worker`
starts by default) at most 1.3× the in-process time. Runs the same ensemble (rare earths
2023, every country its own market, EU bloc, seed 1) in process (threads over the cores),
on a Dask LocalCluster of 1 worker process and of 2 (one thread each), in turn for three
rounds (`--runs`), checks that all give identical numbers, and prints the median times,
the Dask ratios of the medians and the ratio to the issue's
baselines (24.5 s for the CLI command, 19 s in this benchmark before; 1 worker 3.2× in
process). `--cli` also times the whole `critmin ensemble` command (median of 3).

    .venv/bin/python benchmarks/ensemble.py [--draws 10000] [--commodity rare_earths] [--cli]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

from critmin.data import countries_of
from critmin.market import calibrate, resolve_parameters
from critmin.scenarios.ensemble import run_ensemble
from critmin.scenarios.execution import _dask_map

TARGET_S = 5.0
TARGET_DASK_RATIO = 1.3
BASELINE_S = 19.0  # this benchmark, in process, before issue 18
BASELINE_CLI_S = 24.5  # `critmin ensemble ... --draws 10000 --seed 1`, before issue 18
BASELINE_DASK_RATIO = 3.2


@contextmanager
def _cluster(workers: int, threads: int):
    from distributed import Client, LocalCluster

    # Workers log at CRITICAL only: a worker's last heartbeat can race the scheduler's
    # close and print a traceback of that race each time a cluster is stopped. An error in
    # a task still reaches this process, and every round's numbers are compared.
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield _dask_map(client)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--commodity", default="rare_earths")
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--runs", type=int, default=3, help="Rounds of the three executors.")
    parser.add_argument("--cli", action="store_true", help="Also time the whole CLI command.")
    args = parser.parse_args()
    cal = calibrate(args.commodity, args.year)
    params = resolve_parameters(cal.countries)
    bloc = countries_of("eu27")
    cores = os.cpu_count() or 1
    times: dict[str, list[float]] = {}
    results: dict = {}
    identical = True
    # The three executors are timed in turn, `--runs` rounds, medians reported: on a shared
    # 2-core machine one run of each, a minute apart, puts the load of the moment into the
    # ratio. A cluster is up only while it is timed (idle workers and a scheduler beside an
    # in-process run take CPU from it), and its start is not timed.
    contexts = {
        "in process": contextlib.nullcontext,
        "Dask, 1 worker": lambda: _cluster(1, cores),
        "Dask, 2 workers": lambda: _cluster(2, 1),
    }
    for _ in range(args.runs):
        for label, context in contexts.items():
            with context() as run:
                start, cpu = time.perf_counter(), time.process_time()
                result = run_ensemble(cal, params, bloc, args.draws, seed=1, executor=run)
                times.setdefault(label, []).append(time.perf_counter() - start)
                cpu = time.process_time() - cpu
            reference = results.setdefault("reference", result)  # the first, in process
            identical &= np.array_equal(result.shortfall_t, reference.shortfall_t)
            identical &= np.array_equal(result.world_price_index, reference.world_price_index)
            print(
                f"{label:>16}: {args.draws:,} draws in {times[label][-1]:.2f} s "
                f"(CPU of this process {cpu:.2f} s; load average {os.getloadavg()[0]:.1f})"
            )
    times = {label: statistics.median(values) for label, values in times.items()}
    summary = results["reference"].summary()
    local = times["in process"]
    ratio = times["Dask, 1 worker"] / local
    print(f"identical results across executors and rounds: {identical}")
    print(f"medians of {args.runs} rounds:")
    print(
        f"in process: {local:.2f} s (target ≤ {TARGET_S} s), {BASELINE_S / local:.1f}× faster "
        f"than the {BASELINE_S} s baseline"
    )
    print(
        f"Dask 1 worker / in process: {ratio:.2f}× (target ≤ {TARGET_DASK_RATIO}×, "
        f"baseline {BASELINE_DASK_RATIO}×); 2 workers / in process: "
        f"{times['Dask, 2 workers'] / local:.2f}×"
    )
    print(
        f"EU expected shortfall {summary['bloc_expected_shortfall_pct']:.2f} % of consumption, "
        f"CVaR 95 % {summary['bloc_cvar95_t']:,.0f} t"
    )
    passed = identical and local <= TARGET_S and ratio <= TARGET_DASK_RATIO
    if args.cli:
        command = [
            os.path.join(os.path.dirname(sys.executable), "critmin"),
            "ensemble", "--commodity", "REE", "--bloc", "eu27",
            "--draws", str(args.draws), "--seed", "1",
        ]  # fmt: skip
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - start)
        cli = statistics.median(walls)
        print(
            f"critmin ensemble (whole process, median of 3): {cli:.2f} s, "
            f"{BASELINE_CLI_S / cli:.1f}× faster than {BASELINE_CLI_S} s (target ≤ {TARGET_S} s)"
        )
        passed &= cli <= TARGET_S
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
