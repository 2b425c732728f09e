"""Benchmark: dependence of every importer × commodity of one year, direct and traced.

Target (issue 3): the whole grid in under 5 s on the 2-core machine. The baseline, run in
the same process, is what a user of the one-pair API would do: `critmin.dependence(importer,
commodity)` per pair, timed on a sample of pairs and extrapolated to the grid.

    .venv/bin/python benchmarks/dependence_grid.py [--year 2023] [--sample 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from critmin.metrics.api import commodity_dependence as dependence
from critmin.metrics.dependence import (
    commodity_flows,
    commodity_production,
    dependence_from_tables,
    risky_countries,
)
from critmin.metrics.tracing import traced_import_origins

TARGET_SECONDS = 5.0


def grid(year: int) -> tuple[int, int]:
    """Direct and traced dependence for all importers and commodities; returns row counts."""
    flows = commodity_flows(year, "qty")
    production = commodity_production(year, "qty")
    direct = dependence_from_tables(flows, production, "CHN", risky_countries(year, -0.5))
    traced = traced_import_origins(flows, production)
    return len(direct), len(traced)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--sample", type=int, default=20)
    args = parser.parse_args()

    grid(args.year)  # warm DuckDB's file cache, as a second call in a session would be
    start = time.perf_counter()
    pairs, origins = grid(args.year)
    seconds = time.perf_counter() - start

    rows = dependence_from_tables(
        commodity_flows(args.year, "qty"), commodity_production(args.year, "qty"), "CHN"
    )
    candidates = list(rows[rows["imports"] > 0][["importer", "commodity"]].itertuples(index=False))
    sample = random.Random(1).sample(candidates, min(args.sample, len(candidates)))
    start = time.perf_counter()
    for importer, commodity in sample:
        dependence(importer, commodity, year=args.year)
    per_pair = (time.perf_counter() - start) / len(sample)
    extrapolated = per_pair * pairs

    print(f"year {args.year}: {pairs:,} importer×commodity rows, {origins:,} traced origin rows")
    print(f"vectorised grid (direct + traced): {seconds:.2f} s")
    print(f"one-pair API x {pairs:,} (extrapolated from {len(sample)}): {extrapolated:.0f} s")
    print(f"ratio baseline/grid: {extrapolated / seconds:,.0f}x")
    ok = seconds < TARGET_SECONDS
    print(f"{'PASS' if ok else 'FAIL'}: grid {seconds:.2f} s (target < {TARGET_SECONDS:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
