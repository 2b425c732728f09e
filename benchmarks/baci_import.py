"""Benchmark: import a synthetic 10-million-row BACI CSV; target < 60 s and < 2 GB peak memory.

Generates a BACI-format file (t,i,j,k,v,q; unique keys; ~5 % 'NA' quantities; every BACI
country code; 5,000 HS6 codes), then imports it with critmin (DuckDB streaming) and, as the
baseline, with pandas doing the same work (read_csv, map codes, the same checks,
to_parquet), each in a fresh subprocess so that the
peak resident memory (ru_maxrss) is the import's own. Prints the figures and the ratios.

    make bench                       # = .venv/bin/python benchmarks/baci_import.py
    python benchmarks/baci_import.py --rows 1000000 --no-baseline
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

import numpy as np
import pandas as pd

TARGET_SECONDS = 60.0
TARGET_MB = 2048.0
CHUNK = 1_000_000

IMPORT_CHILD = """
import json, resource, sys, time
from pathlib import Path
from critmin.data.baci import import_baci
start = time.perf_counter()
result = import_baci([Path(sys.argv[1])], hs_revision="HS17", target_dir=Path(sys.argv[2]))
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak_kib / 1024, "rows": result.rows}))
"""

PANDAS_CHILD = """
import json, resource, sys, time
import numpy as np
import pandas as pd
from critmin.data import all_countries
iso3 = {code: c.iso3 for c in all_countries() for code in c.baci_codes}
start = time.perf_counter()
raw = pd.read_csv(sys.argv[1], dtype={"k": str}, na_values=["NA"], keep_default_na=False)
frame = pd.DataFrame({
    "year": raw["t"].astype("int16"),
    "exporter": raw["i"].map(iso3),
    "importer": raw["j"].map(iso3),
    "hs6": raw["k"].str.zfill(6),
    "value_kusd": raw["v"].astype(float),
    "qty_t": raw["q"].astype(float),
})
# The same checks critmin makes: known codes, finite non-negative numbers, unique keys.
assert frame[["exporter", "importer"]].notna().all().all()
assert np.isfinite(frame["value_kusd"]).all() and (frame["value_kusd"] >= 0).all()
assert not (frame["qty_t"] < 0).any()
assert not frame.duplicated(["year", "exporter", "importer", "hs6"]).any()
frame.to_parquet(sys.argv[2] + "/pandas.parquet", compression="zstd")
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak_kib / 1024, "rows": len(frame)}))
"""


def baci_codes() -> np.ndarray:
    """One BACI code per critmin country (two codes of one country, such as Sudan's 729
    and 736, would make duplicate keys after mapping, which the importer refuses)."""
    from critmin.data import all_countries

    return np.array(sorted(c.baci_codes[0] for c in all_countries() if c.baci_codes))


def generate(path: Path, rows: int, seed: int) -> None:
    """Write `rows` unique (t, i, j, k) flows in chunks with vectorised numpy (no row loop)."""
    rng = np.random.default_rng(seed)
    codes = baci_codes()
    products = np.sort(rng.choice(np.arange(10_000, 999_999), size=5_000, replace=False))
    pairs = len(codes) ** 2
    keys_per_year = pairs * len(products)
    years = np.arange(2017, 2024)
    per_year = -(-rows // len(years))
    if per_year > keys_per_year:
        raise SystemExit("too many rows for the key space")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("t,i,j,k,v,q\n")
        written = 0
        for year in years:
            wanted = min(per_year, rows - written)
            if wanted <= 0:
                break
            # Unique keys within the year: a random sample of the key space, sorted like BACI.
            keys = np.sort(rng.choice(keys_per_year, size=wanted, replace=False))
            for start in range(0, wanted, CHUNK):
                block = keys[start : start + CHUNK]
                pair, product = np.divmod(block, len(products))
                exporter, importer = np.divmod(pair, len(codes))
                value = np.round(rng.lognormal(3.0, 2.5, len(block)), 3)
                qty = np.round(value * rng.lognormal(-1.0, 1.5, len(block)), 3)
                frame = pd.DataFrame(
                    {
                        "t": year,
                        "i": codes[exporter],
                        "j": codes[importer],
                        "k": pd.Series(products[product]).astype(str).str.zfill(6).to_numpy(),
                        "v": value,
                        "q": np.where(rng.random(len(block)) < 0.05, "NA", qty.astype(str)),
                    }
                )
                frame.to_csv(handle, header=False, index=False, lineterminator="\n")
            written += wanted


def run_child(code: str, csv_path: Path, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CRITMIN_DATA_DIR": str(out_dir / "user-data")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(csv_path), str(out_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20260224)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="critmin-bench-", dir=args.workdir))
    try:
        csv_path = workdir / "BACI_HS17_synthetic.csv"
        start = time.perf_counter()
        generate(csv_path, args.rows, args.seed)
        size_mb = csv_path.stat().st_size / 1e6
        elapsed = time.perf_counter() - start
        print(f"generated {args.rows:,} rows, {size_mb:,.0f} MB in {elapsed:.1f} s")

        critmin = run_child(IMPORT_CHILD, csv_path, workdir / "critmin")
        assert critmin["rows"] == args.rows, critmin
        baseline = None if args.no_baseline else run_child(PANDAS_CHILD, csv_path, workdir / "pd")

        print(f"{'':24}{'seconds':>10}{'peak MB':>10}{'rows/s':>14}")
        for label, figures in (("critmin (DuckDB)", critmin), ("pandas baseline", baseline)):
            if figures:
                rate = figures["rows"] / figures["seconds"]
                print(
                    f"{label:24}{figures['seconds']:>10.1f}{figures['peak_mb']:>10.0f}"
                    f"{rate:>14,.0f}"
                )
        if baseline:
            print(
                f"ratios baseline/critmin: time {baseline['seconds'] / critmin['seconds']:.2f}x,"
                f" memory {baseline['peak_mb'] / critmin['peak_mb']:.2f}x"
            )
        ok = critmin["seconds"] < TARGET_SECONDS and critmin["peak_mb"] < TARGET_MB
        verdict = "PASS" if ok else "FAIL"
        print(
            f"{verdict}: import {critmin['seconds']:.1f} s (target < {TARGET_SECONDS:.0f} s), "
            f"peak {critmin['peak_mb']:.0f} MB (target < {TARGET_MB:.0f} MB)"
        )
        return 0 if ok else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
