"""Benchmark: import a synthetic 10-million-row BACI CSV; target < 60 s and < 2 GB peak memory.

What it measures. The script writes a BACI-format file (header t,i,j,k,v,q; one year, 2022;
unique (t, i, j, k) keys sorted like a BACI release; every BACI country as exporter and
importer; 5,000 HS6 codes, some with a leading zero; v in thousand USD with 3 decimals;
q in tonnes with 3 decimals or 'NA' for ~5 % of rows). It then imports the file twice, each
time in a fresh Python subprocess so that the peak resident memory (`ru_maxrss`) is that
import's own:

* critmin: `critmin.data.baci.import_baci` (DuckDB streams the CSV into Parquet and checks it);
* baseline: plain pandas, `pd.read_csv(path, dtype=str)`, converting the columns, the same
  checks (known country codes, finite non-negative numbers, unique keys) and `to_parquet`.

It prints the generation time and file size, a table of seconds, peak memory and rows/s with
the baseline/critmin ratios, and PASS or FAIL against the targets; the exit status is 1 when
a target is missed. Everything is written under a temporary folder (`--workdir` picks where
it is made; default: the system temp folder, usually /tmp), with CRITMIN_DATA_DIR pointing
inside it, and removed at the end.

    make bench                                   # runs .venv/bin/python benchmarks/baci_import.py
    .venv/bin/python benchmarks/baci_import.py --rows 1000000 --no-baseline
    .venv/bin/python benchmarks/baci_import.py --workdir /var/tmp --seed 7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

TARGET_SECONDS = 60.0
TARGET_MB = 2048.0
CHUNK = 1_000_000
YEAR = 2022
N_PRODUCTS = 5_000
NA_SHARE = 0.05

# Each child prints one JSON line: seconds of the import call, the process's own wall time,
# and the peak resident memory in KiB (Linux) of itself and of any process it waited for.
_MEASURE = """
import json, resource, sys, time
_t0 = time.perf_counter()

def report(seconds, rows):
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "process_seconds": time.perf_counter() - _t0,
                      "peak_kib": own, "children_peak_kib": kids, "rows": rows}))
"""

IMPORT_CHILD = (
    _MEASURE
    + """
from pathlib import Path
from critmin.data.baci import import_baci
csv_path, out_dir, memory_limit = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
result = import_baci([csv_path], hs_revision="HS17", target_dir=out_dir, memory_limit=memory_limit)
seconds = time.perf_counter() - start
assert result.years == (2022, 2022), result.years
report(seconds, result.rows)
"""
)

PANDAS_CHILD = (
    _MEASURE
    + """
import numpy as np
import pandas as pd
from critmin.data import all_countries
iso3 = {str(code): c.iso3 for c in all_countries() for code in c.baci_codes}
start = time.perf_counter()
raw = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
frame = pd.DataFrame({
    "year": raw["t"].astype("int16"),
    "exporter": raw["i"].map(iso3),
    "importer": raw["j"].map(iso3),
    "hs6": raw["k"].str.zfill(6),
    "value_kusd": raw["v"].astype("float64"),
    "qty_t": pd.to_numeric(raw["q"].replace({"NA": None, "": None})).astype("float64"),
})
del raw
# The checks critmin makes: known codes, HS6 codes, finite non-negative numbers, unique keys.
assert frame[["exporter", "importer"]].notna().all().all()
assert frame["hs6"].str.fullmatch(r"[0-9]{6}").all()
assert np.isfinite(frame["value_kusd"]).all() and (frame["value_kusd"] >= 0).all()
assert not (frame["qty_t"] < 0).any()
assert not frame.duplicated(["year", "exporter", "importer", "hs6"]).any()
frame.to_parquet(sys.argv[2] + "/pandas.parquet", compression="zstd", index=False)
seconds = time.perf_counter() - start
report(seconds, len(frame))
"""
)


def baci_codes() -> np.ndarray:
    """Every BACI country, one code each (its first).

    A country with two codes (Sudan: 729 and 736, before and after 2012) maps both to one
    ISO3, so using both in one year would make duplicate keys, which the importer refuses.
    """
    from critmin.data import all_countries

    return np.array(sorted(c.baci_codes[0] for c in all_countries() if c.baci_codes))


def product_codes(rng: np.random.Generator) -> np.ndarray:
    """N_PRODUCTS distinct HS6 codes in the HS range 010110-970600, sorted."""
    return np.sort(rng.choice(np.arange(10_110, 970_601), size=N_PRODUCTS, replace=False))


def chunk_table(
    keys: np.ndarray, codes: np.ndarray, products: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    """The CSV rows for sorted unique key numbers: key = pair * N_PRODUCTS + product.

    A pair numbers an (exporter, importer) of distinct countries (BACI has no self-trade).
    """
    n = len(keys)
    pair, product = np.divmod(keys, len(products))
    exporter, rest = np.divmod(pair, len(codes) - 1)
    importer = rest + (rest >= exporter)
    value = np.maximum(np.round(rng.lognormal(3.0, 2.5, n), 3), 0.001)
    qty = pc.cast(pa.array(np.round(value * rng.lognormal(-1.0, 1.5, n), 3)), pa.string())
    hs6 = pc.utf8_lpad(pc.cast(pa.array(products[product]), pa.string()), 6, "0")
    return pa.table(
        {
            "t": pa.array(np.full(n, YEAR, dtype=np.int16)),
            "i": pa.array(codes[exporter]),
            "j": pa.array(codes[importer]),
            "k": hs6,
            "v": pa.array(value),
            "q": pc.if_else(pa.array(rng.random(n) < NA_SHARE), "NA", qty),
        }
    )


def generate(path: Path, rows: int, seed: int) -> None:
    """Write `rows` unique, sorted (t, i, j, k) flows with vectorised numpy in ~1 M-row chunks.

    The key space (pairs x products) is cut into as many equal segments as there are
    chunks; each chunk draws its keys without replacement from its own segment, so keys are
    unique and ascending across the file while memory stays bounded by one segment.
    """
    rng = np.random.default_rng(seed)
    codes = baci_codes()
    products = product_codes(rng)
    space = len(codes) * (len(codes) - 1) * len(products)
    if rows > space // 2:
        raise SystemExit(f"--rows {rows:,} is too many for {space:,} distinct keys")
    n_chunks = max(1, -(-rows // CHUNK))
    bounds = np.linspace(0, space, n_chunks + 1, dtype=np.int64)
    sizes = np.diff(np.linspace(0, rows, n_chunks + 1, dtype=np.int64))
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "wb") as handle:
        handle.write(b"t,i,j,k,v,q\n")
        for low, high, size in zip(bounds[:-1], bounds[1:], sizes, strict=True):
            keys = low + np.sort(rng.choice(int(high - low), size=int(size), replace=False))
            pa_csv.write_csv(chunk_table(keys, codes, products, rng), handle, options)


def run_child(code: str, args: list[str], out_dir: Path) -> dict[str, Any]:
    """Run `code` in a fresh interpreter with its data folder under `out_dir`; its JSON line."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CRITMIN_DATA_DIR": str(out_dir / "user-data")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip(), "wall": wall}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["peak_mb"] = max(figures["peak_kib"], figures["children_peak_kib"]) / 1024
    figures["rate"] = figures["rows"] / figures["seconds"]
    return figures


def print_table(
    rows: int, size_mb: float, ours: dict[str, Any], base: dict[str, Any] | None
) -> None:
    """Rows, file size, then seconds, peak memory and rows/s per importer, with ratios."""
    print()
    print(f"rows      {rows:>14,}")
    print(f"file MB   {size_mb:>14,.0f}")
    head = f"{'':24}{'critmin':>12}"
    if base:
        head += f"{'pandas':>12}{'pandas/critmin':>16}"
    print(head)
    lines = (
        ("import s (import call)", "seconds", "{:.1f}"),
        ("process s (incl. start)", "process_seconds", "{:.1f}"),
        ("peak RSS MB", "peak_mb", "{:,.0f}"),
        ("rows/s", "rate", "{:,.0f}"),
    )
    for label, key, form in lines:
        line = f"{label:24}{form.format(ours[key]):>12}"
        if base:
            line += f"{form.format(base[key]):>12}{base[key] / ours[key]:>15.2f}x"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="data rows to generate")
    parser.add_argument("--seed", type=int, default=20260224, help="random seed")
    parser.add_argument("--workdir", type=Path, default=None, help="where to make the temp folder")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit for critmin")
    parser.add_argument("--no-baseline", action="store_true", help="skip the pandas baseline")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="critmin-bench-", dir=args.workdir))
    try:
        csv_path = workdir / f"BACI_HS17_Y{YEAR}_synthetic.csv"
        start = time.perf_counter()
        generate(csv_path, args.rows, args.seed)
        size_mb = csv_path.stat().st_size / 1e6
        print(
            f"generated {args.rows:,} rows, {size_mb:,.0f} MB in "
            f"{time.perf_counter() - start:.1f} s ({csv_path})",
            flush=True,
        )

        print(f"critmin import (memory_limit={args.memory_limit}) ...", flush=True)
        ours = run_child(
            IMPORT_CHILD, [str(csv_path), str(workdir / "critmin"), args.memory_limit], workdir
        )
        if "error" in ours:
            print(f"FAIL: critmin import failed after {ours['wall']:.1f} s:\n{ours['error']}")
            return 1
        if ours["rows"] != args.rows:
            print(f"FAIL: critmin imported {ours['rows']:,} rows, expected {args.rows:,}")
            return 1

        base = None
        if not args.no_baseline:
            print("pandas baseline ...", flush=True)
            (workdir / "pandas").mkdir()
            base = run_child(PANDAS_CHILD, [str(csv_path), str(workdir / "pandas")], workdir)
            if "error" in base:
                print(f"pandas baseline failed after {base['wall']:.1f} s:\n{base['error']}")
                base = None

        print_table(args.rows, size_mb, ours, base)
        print()
        ok = True
        for name, value, target, unit in (
            ("time", ours["seconds"], TARGET_SECONDS, "s"),
            ("peak memory", ours["peak_mb"], TARGET_MB, "MB"),
        ):
            passed = value < target
            ok &= passed
            verdict = "PASS" if passed else "FAIL"
            print(f"{verdict}  {name}: {value:,.1f} {unit} (target < {target:,.0f} {unit})")
        return 0 if ok else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
