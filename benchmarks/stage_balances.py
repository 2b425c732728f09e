"""Benchmark: the material balances of one year (all stages) and stage dependence for every
importer × mineral × stage, side by side with today's per-metric derivation.

Targets (issue 15): balances of one year, all stages, ≤ 2 s; dependence for every importer ×
mineral × stage of a year ≤ 3 s. Baselines, run in the same process:

- the per-metric derivation the metrics used before the balance layer: each metric queried its
  commodity's HS bundle itself (`commodity_flows` + `commodity_production`), then computed
  direct and traced dependence (`dependence_from_tables`, `traced_import_origins`) — one
  stage-blind pass over every importer × commodity;
- the one-importer API (`stage_dependence`) called per importer, timed on a sample and
  extrapolated to every importer.

    .venv/bin/python benchmarks/stage_balances.py [--year 2024] [--sample 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from critmin.data.stages import stage_trade_rows
from critmin.metrics.api import stage_dependence
from critmin.metrics.balances import balances, clear_cache
from critmin.metrics.dependence import (
    commodity_flows,
    commodity_production,
    dependence_from_tables,
    risky_countries,
)
from critmin.metrics.stage_dependence import dependence_grid
from critmin.metrics.tracing import traced_import_origins

BALANCES_TARGET = 2.0
GRID_TARGET = 3.0


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def per_metric(year: int) -> None:
    flows = commodity_flows(year, "qty")
    production = commodity_production(year, "qty")
    dependence_from_tables(flows, production, "CHN", risky_countries(year, -0.5))
    traced_import_origins(flows, production)


def cold_balances(year: int) -> None:
    clear_cache()
    balances(year)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--sample", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    year = args.year

    stage_trade_rows(year)  # warm DuckDB's file cache, as any second call in a session is
    per_metric(year)
    baseline = best_of(args.runs, lambda: per_metric(year))
    built = best_of(args.runs, lambda: cold_balances(year))
    bal = balances(year)
    grid_seconds = best_of(args.runs, lambda: dependence_grid(bal))
    grid = dependence_grid(bal)
    total = built + grid_seconds

    importers = sorted(set(grid.loc[grid["imports"] > 0, "importer"]))
    sample = random.Random(1).sample(importers, min(args.sample, len(importers)))
    times = []
    for importer in sample:
        start = time.perf_counter()
        stage_dependence(importer, year=year)
        times.append(time.perf_counter() - start)
    extrapolated = statistics.median(times) * len(importers)

    print(f"year {year}: {len(grid):,} importer × mineral × stage rows, {len(importers)} importers")
    print(
        f"  balances, all stages (cold, built once)      {built:7.3f} s  "
        f"target ≤ {BALANCES_TARGET} s"
    )
    print(f"  dependence grid from the balances            {grid_seconds:7.3f} s")
    print(
        f"  balances + grid                              {total:7.3f} s  target ≤ {GRID_TARGET} s"
    )
    print(
        f"  baseline: per-metric derivation, stage-blind {baseline:7.3f} s  "
        f"(ratio {total / baseline:.2f}× for three times the rows' stages)"
    )
    print(
        f"  baseline: one-importer API × {len(importers)} (extrapolated from {len(sample)}) "
        f"{extrapolated:7.1f} s  (grid is {extrapolated / total:.0f}× faster)"
    )
    ok = built <= BALANCES_TARGET and total <= GRID_TARGET
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
