"""Build the bundled `stage_trade` table: BACI bilateral trade of processed HS6 codes.

Maintainer tool. CEPII BACI (HS17 release V202601; Gaulier & Zignago 2010; Etalab Open
Licence 2.0) is read from a public extract of 30 HS6 codes (21 refined or product-stage
goods, 9 ores and minerals): a 2024 table with values (thousand USD) and quantities (t), and
2022 and 2024 CSVs with values only (USD). Only the figures are taken; country codes become
critmin codes.

    .venv/bin/python scripts/build_stage_trade.py \\
        --trade /tmp/atlas/trade.parquet \\
        --baci-2022 /tmp/atlas/baci_2022.csv --baci-2024 /tmp/atlas/baci_2024.csv \\
        --country-codes /tmp/atlas/country_codes_V202601.csv --commit <sha of the extract>

Rows: 2024 from the table with quantities; 2022 from the values-only CSV (qty_t null), its
USD divided by 1000 after checking on 2024 that the CSV is exactly 1000 x value_kusd for the
same flows. The extract names countries by BACI's ISO3 (e.g. 'S19' for BACI 490 'Other
Asia, nes'); each is taken through BACI's numeric code to the critmin code that lists it in
its baci_codes (490 -> TWN), and an unmapped or ambiguous code stops the build. Writes
stage_trade.parquet (temporary name, then rename) and its manifest entry.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from critmin.data.baci import MAX_QTY_T, MAX_VALUE_KUSD
from critmin.data.io import write_parquet_atomic
from critmin.data.manifest import table_manifest_entry, write_manifest
from critmin.data.resolve import all_countries
from critmin.data.schema import arrow_schema

TABLE = "stage_trade"
HS_REVISION = "HS17"
RELEASE = "V202601"
REPOSITORY = "Varcolacus/critical-materials-atlas"
TRADE_PATH = "pipeline/data/trade.parquet"
CSV_PATHS = {
    2022: "reconcile/fixtures/reconcile/baci_2022.csv",
    2024: "reconcile/fixtures/reconcile/baci_2024.csv",
}
CODES_PATH = "reconcile/fixtures/raw/baci/country_codes_V202601.csv"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "critmin" / "data" / "bundled"
MAX_BYTES = 3 * 1024 * 1024
KEY = ["year", "exporter", "importer", "hs6"]
# Codes of the extract that are ores or minerals, not refined or product-stage goods: natural
# graphite, natural phosphates, baryte, natural borates, feldspar, fluorspar, manganese ores,
# aluminium ores and bituminous coal.
ORE_CODES = (
    "250490",
    "251010",
    "251110",
    "252800",
    "252910",
    "252922",
    "260200",
    "260600",
    "270112",
)


class BuildError(Exception):
    """The extract is not what the build expects; nothing is written."""


def read_trade(path: Path) -> pd.DataFrame:
    """The 2024 table: year, exporter, importer (BACI ISO3), hs6, value_kusd, qty_t."""
    frame = pd.read_parquet(path)
    needed = {"year", "exporter", "importer", "hs6", "value_kusd", "qty_t"}
    if missing := needed - set(frame.columns):
        raise BuildError(f"{path}: missing columns {sorted(missing)}")
    return pd.DataFrame(
        {
            "year": frame["year"].astype("int64"),
            "exporter": frame["exporter"].astype(str),
            "importer": frame["importer"].astype(str),
            "hs6": frame["hs6"].astype(str).str.strip().str.zfill(6),
            "value_kusd": frame["value_kusd"].astype("float64"),
            "qty_t": frame["qty_t"].astype("float64"),
        }
    )


def read_values_csv(path: Path) -> pd.DataFrame:
    """A values-only CSV (i, j, cmd, value in USD) as exporter, importer, hs6, value_usd."""
    # Everything as text and no NA guessing: a code such as 'NA' must stay a code.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(frame.columns) != ["i", "j", "cmd", "value"]:
        raise BuildError(f"{path}: expected the header i,j,cmd,value, found {list(frame.columns)}")
    value = pd.to_numeric(frame["value"], errors="coerce")
    if value.isna().any():
        first = frame.loc[value.isna(), "value"].iloc[0]
        raise BuildError(
            f"{path}: {int(value.isna().sum())} values are not numbers, e.g. {first!r}"
        )
    return pd.DataFrame(
        {
            "exporter": frame["i"].str.strip(),
            "importer": frame["j"].str.strip(),
            "hs6": frame["cmd"].str.strip().str.zfill(6),
            "value_usd": value.astype("float64"),
        }
    )


def check_usd_unit(trade_2024: pd.DataFrame, csv_2024: pd.DataFrame) -> dict:
    """The values-only CSV must be exactly 1000 x value_kusd on the same 2024 flows."""
    keys = ["exporter", "importer", "hs6"]
    both = trade_2024.merge(csv_2024, on=keys, how="outer", indicator=True)
    only = both["_merge"].value_counts()
    if only.get("left_only", 0) or only.get("right_only", 0):
        raise BuildError(
            f"2024 flows differ between the table and the CSV: {only.get('left_only', 0)} only "
            f"in the table, {only.get('right_only', 0)} only in the CSV"
        )
    ratio = both["value_usd"] / both["value_kusd"]
    worst = float((ratio / 1000 - 1).abs().max())
    if worst > 1e-9:
        raise BuildError(f"the CSV is not 1000 x value_kusd (largest relative gap {worst:.3g})")
    return {
        "flows": len(both),
        "ratio_min": float(ratio.min()),
        "ratio_max": float(ratio.max()),
    }


def country_map(codes_path: Path, used: set[str]) -> tuple[dict[str, str], list[str]]:
    """BACI ISO3 -> critmin code, through BACI's numeric codes and critmin's baci_codes.

    A BACI ISO3 may list several numeric codes (BEL: 56 and 58 Belgium-Luxembourg until
    1998); historic entities cannot trade in 2022-2024, so they are set aside, and exactly one
    critmin code must remain. Anything else stops the build.
    """
    table = pd.read_csv(codes_path, dtype=str, keep_default_na=False)
    if not {"country_code", "country_iso3"} <= set(table.columns):
        raise BuildError(f"{codes_path}: needs columns country_code and country_iso3")
    countries = all_countries()
    by_code = {code: c for c in countries for code in c.baci_codes}
    mapping, problems = {}, []
    for iso3 in sorted(used):
        numeric = [int(n) for n in table.loc[table["country_iso3"] == iso3, "country_code"]]
        if not numeric:
            problems.append(f"{iso3}: not in BACI's country codes")
            continue
        unknown = [n for n in numeric if n not in by_code]
        if unknown:
            problems.append(f"{iso3}: BACI codes {unknown} are in no critmin baci_codes")
            continue
        targets = {by_code[n].iso3 for n in numeric if by_code[n].kind != "historic"}
        if len(targets) != 1:
            problems.append(f"{iso3}: BACI codes {numeric} give critmin codes {sorted(targets)}")
            continue
        mapping[iso3] = targets.pop()
    if problems:
        raise BuildError("unmapped country codes: " + "; ".join(problems))
    return mapping, [f"{a} -> {b}" for a, b in sorted(mapping.items()) if a != b]


def apply_map(frame: pd.DataFrame, mapping: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """Replace exporter/importer codes; count the rows and values each change touched."""
    touched = {}
    for source, target in mapping.items():
        if source == target:
            continue
        hit = (frame["exporter"] == source) | (frame["importer"] == source)
        if hit.any():
            for year, rows in frame[hit].groupby("year"):
                touched[f"{source}->{target} {year}"] = {
                    "rows": len(rows),
                    "value_kusd": round(float(rows["value_kusd"].sum()), 3),
                }
    out = frame.copy()
    for column in ("exporter", "importer"):
        mapped = out[column].map(mapping)
        if mapped.isna().any():
            raise BuildError(f"{column}: unmapped codes {sorted(set(out[column][mapped.isna()]))}")
        out[column] = mapped
    return out, touched


def validate(frame: pd.DataFrame) -> None:
    """Refuse duplicated keys, bad codes and impossible numbers."""
    problems = []
    if frame.duplicated(KEY).any():
        problems.append(
            f"{int(frame.duplicated(KEY).sum())} duplicated (year, exporter, importer, hs6)"
        )
    if not frame["hs6"].str.fullmatch(r"[0-9]{6}").all():
        problems.append("product codes that are not six digits")
    if (frame["exporter"] == frame["importer"]).any():
        problems.append("flows from a country to itself")
    value, qty = frame["value_kusd"], frame["qty_t"]
    if not (np.isfinite(value) & (value > 0) & (value <= MAX_VALUE_KUSD)).all():
        problems.append("values that are missing, not positive, not finite or implausibly large")
    bad_qty = qty.notna() & ~(np.isfinite(qty) & (qty >= 0) & (qty <= MAX_QTY_T))
    if bad_qty.any():
        problems.append(f"{int(bad_qty.sum())} quantities negative, not finite or over 1e10 t")
    if problems:
        raise BuildError("; ".join(problems))


def build(args: argparse.Namespace) -> tuple[pd.DataFrame, dict]:
    """The stage_trade frame (sorted, typed) and a report of what the build found."""
    trade = read_trade(args.trade)
    if set(trade["year"]) != {2024}:
        raise BuildError(f"{args.trade}: expected 2024 only, found {sorted(set(trade['year']))}")
    csv_2022 = read_values_csv(args.baci_2022)
    csv_2024 = read_values_csv(args.baci_2024)
    unit = check_usd_unit(trade, csv_2024)
    codes_2022, codes_2024 = set(csv_2022["hs6"]), set(trade["hs6"])
    if codes_2022 != codes_2024:
        raise BuildError(f"code lists differ: 2022 {sorted(codes_2022 ^ codes_2024)}")

    if not set(ORE_CODES) <= codes_2024:
        raise BuildError(
            f"ore codes missing from the extract: {sorted(set(ORE_CODES) - codes_2024)}"
        )

    values_2022 = pd.DataFrame(
        {
            "year": 2022,
            "exporter": csv_2022["exporter"],
            "importer": csv_2022["importer"],
            "hs6": csv_2022["hs6"],
            "value_kusd": csv_2022["value_usd"] / 1000.0,
            "qty_t": math.nan,
        }
    )
    frame = pd.concat([values_2022, trade], ignore_index=True)
    used = set(frame["exporter"]) | set(frame["importer"])
    mapping, changed = country_map(args.country_codes, used)
    frame, touched = apply_map(frame, mapping)
    validate(frame)
    frame["hs_revision"] = HS_REVISION
    frame = frame.sort_values(["year", "hs6", "exporter", "importer"], ignore_index=True)
    frame = frame.astype({"year": "int16", "value_kusd": "float64", "qty_t": "float64"})
    frame = frame[[f.name for f in arrow_schema(TABLE)]]
    report = {
        "unit_check": unit,
        "codes": len(codes_2024),
        "countries": len(used),
        "recoded": changed,
        "recoded_rows": touched,
        "rows_per_year": frame["year"].value_counts().sort_index().to_dict(),
    }
    return frame, report


def manifest_meta(commit: str, codes: int) -> dict:
    """Source, licence and provenance of the table (the manifest adds rows, sha256, columns)."""
    files = ", ".join([TRADE_PATH, CSV_PATHS[2022], CSV_PATHS[2024], CODES_PATH])
    return {
        "title": "CEPII BACI HS17 stage codes",
        "source": (
            f"CEPII BACI HS17 release {RELEASE} (Gaulier & Zignago 2010), {codes} HS6 codes "
            f"({codes - len(ORE_CODES)} processed, {len(ORE_CODES)} ores and minerals); 2024 "
            "bilateral with quantities, 2022 values only"
        ),
        "provenance": (
            f"public extract of BACI in github.com/{REPOSITORY} at commit {commit} ({files}): "
            f"2024 values and quantities from {TRADE_PATH}; 2022 values from {CSV_PATHS[2022]} "
            f"(USD divided by 1000, the unit checked on 2024 where {CSV_PATHS[2024]} is exactly "
            f"1000 x value_kusd of {TRADE_PATH} on every flow); BACI ISO3 codes mapped to "
            f"critmin codes through BACI's numeric codes ({CODES_PATH}) and the countries "
            "table (BACI 490 'Other Asia, nes' = TWN); only the figures are taken, built by "
            "scripts/build_stage_trade.py"
        ),
        "licence": "Etalab Open Licence 2.0",
        "url": "https://www.cepii.fr/CEPII/en/bdd_modele/bdd_modele_item.asp?id=37",
        "version": f"{HS_REVISION} {RELEASE}",
        "hs_revision": HS_REVISION,
        "year_list": [2022, 2024],
        "caveats": (
            "2022 has no quantities (qty_t null); 811292 is one HS17 basket for Ga, Ge, Hf, In, "
            "Nb, Re and V; 850511 includes non-rare-earth metal magnets; codes are HS17, not the "
            f"HS92 of the trade table; {', '.join(ORE_CODES)} are ores or minerals (mine stage), "
            "not processed goods"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trade", type=Path, required=True, help=f"{TRADE_PATH} of the extract")
    parser.add_argument("--baci-2022", type=Path, required=True, help=CSV_PATHS[2022])
    parser.add_argument(
        "--baci-2024", type=Path, required=True, help=f"{CSV_PATHS[2024]} (unit check only)"
    )
    parser.add_argument("--country-codes", type=Path, required=True, help=CODES_PATH)
    parser.add_argument(
        "--commit", required=True, help="the extract repository's commit that was read"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="dataset folder")
    parser.add_argument("--no-manifest", action="store_true", help="write the Parquet file only")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        parser.error("--commit must be a full 40-digit commit hash")
    try:
        frame, report = build(args)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    target = args.out / f"{TABLE}.parquet"
    with tempfile.TemporaryDirectory() as scratch:  # measure first: a too-large file never lands
        trial = Path(scratch) / target.name
        write_parquet_atomic(trial, frame, arrow_schema(TABLE))
        size = trial.stat().st_size
    if size > MAX_BYTES:
        print(f"error: {target.name} would be {size} bytes, over {MAX_BYTES}", file=sys.stderr)
        return 1
    write_parquet_atomic(target, frame, arrow_schema(TABLE))
    if not args.no_manifest:
        meta = manifest_meta(args.commit, report["codes"])
        write_manifest(args.out, {TABLE: table_manifest_entry(TABLE, target, frame, meta)})
    print(f"wrote {target}: {len(frame)} rows, {size} bytes")
    for key, value in report.items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
