"""Benchmark: what a user waits for at the command line, whole process, median of runs.

Targets (issue 18), each beside a baseline measured in the same run:

- start-up: `critmin --help` ≤ 0.3 s; baseline: the same help with every command module
  imported first (how the CLI started before: the whole stack before parsing).
- dependence: `critmin dependence DEU REE --year 2023 --format json` ≤ 0.8 s; baseline:
  the same command with the whole stack imported first.
- risk CSV: `critmin risk --all --all --method geopolrisk --format csv` (88 k rows)
  ≤ 1.5 s; baseline: the whole stack imported first and the rows written by pandas'
  row-wise `to_csv` after a Python pass over every cell (the former output path).
- brief: `critmin brief --out FILE` ≤ 10 s; baseline: 16 s, the issue's figure (shared
  with the analyst issue; measured once by default).

Every run is a fresh interpreter (`python -c`, the new rows as the `critmin` console
script runs them), output to /dev/null, on scratch user data.

    .venv/bin/python benchmarks/cli_timing.py [--runs 5] [--brief-runs 1] [--only help,risk]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# Every command module, as the former cli/main.py imported them before parsing anything.
FULL_STACK = (
    "import critmin.cli.agreements, critmin.cli.brief, critmin.cli.data, "
    "critmin.cli.dependence, critmin.cli.market, critmin.cli.overview, critmin.cli.risk, "
    "critmin.cli.scenarios, critmin.cli.web, critmin.registry.store, fastapi"
)
# What the `critmin` console script runs (`entry`: the command, then the exit without the
# interpreter's teardown); the baselines run the command as the former CLI did, teardown
# included.
NOW = "import sys; sys.argv = ['critmin', *{argv!r}]; from critmin.cli.main import entry; entry()"
RUN = "import sys; from critmin.cli.main import run; sys.exit(run({argv!r}))"
# The former CSV path of cli/output.py: Python checks every cell, pandas formats every row.
OLD_CSV = """
import sys
import numpy as np
from critmin.cli.sanitise import spreadsheet_cell
from critmin.metrics.api import risk
frame = risk(None, None, method="geopolrisk").copy()
for column in frame.columns:
    if frame[column].map(lambda v: isinstance(v, np.ndarray | list)).any():
        frame[column] = frame[column].map(lambda v: "|".join(map(str, v)))
    if frame[column].dtype == object or str(frame[column].dtype) in ("str", "string"):
        frame[column] = frame[column].map(spreadsheet_cell)
frame.to_csv(sys.stdout, index=False, lineterminator="\\n")
"""

ROWS = {
    # name: (argv, target s, baseline code or a stated figure in s)
    "help": (["--help"], 0.3, f"{FULL_STACK}\n{RUN}"),
    "dependence": (
        ["dependence", "DEU", "REE", "--year", "2023", "--format", "json"],
        0.8,
        f"{FULL_STACK}\n{RUN}",
    ),
    "risk": (
        ["risk", "--all", "--all", "--method", "geopolrisk", "--format", "csv"],
        1.5,
        f"{FULL_STACK}\n{OLD_CSV}",
    ),
    "brief": (["brief", "--out", "{out}"], 10.0, 16.0),
}


def timed(code: str, env: dict, runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of `runs` fresh interpreters
    running `code`. On a quiet machine the two are close for these single-threaded
    commands; on a shared, loaded one the CPU time is the figure to compare."""
    times, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"failed ({done.returncode}): {code[:80]}…\n{done.stderr[-2000:]}")
    return statistics.median(times), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--brief-runs", type=int, default=1)
    parser.add_argument("--only", default=",".join(ROWS), help="Comma-separated rows.")
    args = parser.parse_args()
    passed = True
    with tempfile.TemporaryDirectory(prefix="critmin-bench-") as scratch:
        env = {
            **os.environ,
            "CRITMIN_DATA_DIR": os.path.join(scratch, "data"),
            "CRITMIN_DB_URL": f"sqlite:///{os.path.join(scratch, 'registry.sqlite')}",
        }
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        header = ("row", "now", "cpu", "baseline", "cpu", "ratio")
        print("  ".join(f"{h:>{w}}" for h, w in zip(header, (11, 8, 7, 9, 7, 6), strict=True)))
        for name in args.only.split(","):
            argv, target, baseline = ROWS[name]
            argv = [a.format(out=os.path.join(scratch, "brief.html")) for a in argv]
            runs = args.brief_runs if name == "brief" else args.runs
            now, now_cpu = timed(NOW.format(argv=argv), env, runs)
            if isinstance(baseline, str):
                code = baseline.replace("{argv!r}", repr(argv))
                (before, before_cpu), label = timed(code, env, runs), ""
            else:
                (before, before_cpu), label = (baseline, baseline), " (stated)"
            ok = now <= target
            passed &= ok
            print(
                f"{name:>11}  {now:7.2f}s  {now_cpu:6.2f}s  {before:8.2f}s  {before_cpu:6.2f}s  "
                f"{before / now:5.1f}×  ≤ {target} s {'ok' if ok else 'MISSED'}{label}"
            )
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
