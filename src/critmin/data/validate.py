"""Named integrity checks of the dataset: keys, codes, signs, years, checksums, groups."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from critmin.data.catalog import (
    BUNDLED_DIR,
    PARQUET_TABLES,
    bundled_manifest,
    connection,
    query,
    table_source,
    user_data_dir,
)
from critmin.data.groups import load_groups
from critmin.data.io import sha256_file
from critmin.data.manifest import read_manifest
from critmin.data.schema import table_columns
from critmin.errors import DataError

KEYS = {
    "trade": ("year", "exporter", "importer", "hs6"),
    "production": ("year", "country", "commodity"),
    "governance": ("year", "country", "indicator"),
    "governance_geopolrisk": ("year", "row"),
    "commodities": ("commodity",),
    "countries": ("iso3",),
    "stage_trade": ("year", "exporter", "importer", "hs6", "hs_revision"),
}
COUNTRY_COLUMNS = {
    "trade": ("exporter", "importer"),
    "stage_trade": ("exporter", "importer"),
    "production": ("country",),
    "governance": ("country",),
}
NON_NEGATIVE = {
    "trade": ("value_kusd", "qty_t"),
    "stage_trade": ("value_kusd", "qty_t"),
    "production": ("qty_t",),
}
# Governance values outside these are not WGI figures (a 999 is a missing-value code).
GOVERNANCE_RANGES = {
    "pv_estimate": (-5.0, 5.0),
    "pv_normalized": (0.0, 1.0),
    "pv_rank": (0.0, 100.0),
    "pv_lower": (0.0, 100.0),
    "pv_upper": (0.0, 100.0),
    "pv_stderr": (0.0, 5.0),
    "pv_numsrc": (0.0, 100.0),
}
NUMERIC = {"int16", "int32", "int64", "float64"}
YEAR_RANGES = {"trade": (1995, 2100), "production": (2018, 2100), "governance": (1996, 2100)}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check: `problems` empty means it passed."""

    name: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_unique_keys() -> list[str]:
    """Each table has one row per key (e.g. trade: year, exporter, importer, hs6)."""
    problems = []
    for table, key in KEYS.items():
        cols = ", ".join(key)
        (count,) = query(
            f"SELECT count(*) AS n FROM (SELECT {cols} FROM {{{table}}} "
            f"GROUP BY {cols} HAVING count(*) > 1)"
        )["n"]
        if count:
            problems.append(f"{table}: {count} duplicated keys ({cols})")
    return problems


def check_country_codes() -> list[str]:
    """Every country code in the fact tables and groups is in the countries table (ISO3)."""
    problems = []
    for table, columns in COUNTRY_COLUMNS.items():
        for column in columns:
            unknown = query(
                f"SELECT DISTINCT {column} AS code FROM {{{table}}} "
                f"WHERE {column} NOT IN (SELECT iso3 FROM {{countries}}) "
                f"OR NOT regexp_full_match({column}, '[A-Z]{{3}}')"
            )["code"].tolist()
            if unknown:
                problems.append(f"{table}.{column}: unknown codes {sorted(unknown)[:10]}")
    known = set(query("SELECT iso3 FROM {countries}")["iso3"])
    for group in load_groups().values():
        unknown = sorted(set(group.members) - known)
        if unknown:
            problems.append(f"group {group.id}: unknown members {unknown}")
    return problems


def check_non_negative() -> list[str]:
    """Quantities and values are finite and ≥ 0 (missing quantities are allowed)."""
    problems = []
    for table, columns in NON_NEGATIVE.items():
        for column in columns:
            (count,) = query(
                f"SELECT count(*) AS n FROM {{{table}}} WHERE {column} < 0 "
                f"OR isnan({column}) OR isinf({column})"
            )["n"]
            if count:
                problems.append(f"{table}.{column}: {count} negative or non-finite values")
    return problems


def check_years() -> list[str]:
    """Years lie within each source's coverage."""
    problems = []
    for table, (first, last) in YEAR_RANGES.items():
        lo, hi = query(f"SELECT min(year) AS lo, max(year) AS hi FROM {{{table}}}").iloc[0]
        if pd.isna(lo) or pd.isna(hi):  # no rows: user_tables says so
            continue
        if lo < first or hi > last:
            problems.append(f"{table}: years {lo}-{hi} outside {first}-{last}")
    return problems


def check_commodity_ids() -> list[str]:
    """Production rows name commodities of the commodity map."""
    unknown = query(
        "SELECT DISTINCT commodity FROM {production} "
        "WHERE commodity NOT IN (SELECT commodity FROM {commodities})"
    )["commodity"].tolist()
    return [f"production: unknown commodities {unknown}"] if unknown else []


def check_bundled_checksums() -> list[str]:
    """Bundled files match the SHA-256 their manifest records."""
    problems = []
    for table, entry in bundled_manifest()["tables"].items():
        path = BUNDLED_DIR / entry["file"]
        if not path.is_file():
            problems.append(f"{table}: {entry['file']} is missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{table}: {entry['file']} does not match its manifest checksum")
    return problems


def _scan(paths: tuple[Path, ...]) -> str:
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{listed}], union_by_name = true)"


def _count(sql: str) -> int:
    return int(connection().execute(sql).fetchone()[0])


FULL_CHECK_ROWS = 2_000_000  # above this, commands check the schema only; `data check` all


def user_table_problems(
    name: str, paths: tuple[Path, ...], entry: dict | None, full: bool = True
) -> list[str]:
    """What is wrong with a user's copy of table `name` (its files `paths`, its manifest
    `entry`): checksum and row count against the manifest, missing or mistyped columns
    (qty_t stored as text), no rows, duplicated keys, negative or non-finite quantities,
    governance values out of range. Empty when the table can be used."""
    problems: list[str] = []
    entry = entry or {}
    listed = entry.get("sha256") and len(paths) == 1 and entry.get("file") == paths[0].name
    if listed and sha256_file(paths[0]) != entry["sha256"]:
        problems.append(
            f"{name}: {paths[0].name} does not match the SHA-256 of its manifest "
            "(changed after it was written)"
        )
    scan = _scan(paths)
    try:
        described = connection().execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
        types = {row[0]: str(row[1]).upper() for row in described}
        rows = _count(f"SELECT count(*) FROM {scan}")
    except duckdb.Error as exc:
        return [f"{name}: unreadable Parquet ({str(exc).splitlines()[0]})"]
    if isinstance(entry.get("rows"), int) and entry["rows"] != rows:
        problems.append(f"{name}: {rows:,} rows, the manifest says {entry['rows']:,}")
    for column in table_columns(name):
        found = types.get(column.name)
        if found is None:
            if column.name in KEYS.get(name, ()) or column.name in NON_NEGATIVE.get(name, ()):
                problems.append(f"{name}: column {column.name} is missing")
            continue
        if column.type in NUMERIC and not any(
            t in found for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")
        ):
            problems.append(f"{name}.{column.name} is {found.lower()}, not a number")
    if problems:
        return problems
    if rows == 0:
        return [f"{name}: the table has no rows"]
    if not full and rows > FULL_CHECK_ROWS:
        return problems
    key = [k for k in KEYS.get(name, ()) if k in types]
    if name == "production" and "stage" in types:
        key.append("stage")
    if key:
        cols = ", ".join(key)
        dupes = _count(
            f"SELECT count(*) FROM (SELECT {cols} FROM {scan} GROUP BY {cols} HAVING count(*) > 1)"
        )
        if dupes:
            problems.append(f"{name}: {dupes} duplicated keys ({cols})")
    for column in NON_NEGATIVE.get(name, ()):
        bad = _count(
            f"SELECT count(*) FROM {scan} WHERE {column} < 0 OR isnan({column}) OR isinf({column})"
        )
        if bad:
            problems.append(f"{name}.{column}: {bad} negative or non-finite values")
    if name == "governance":
        for indicator, (lo, hi) in GOVERNANCE_RANGES.items():
            bad = _count(
                f"SELECT count(*) FROM {scan} WHERE indicator = '{indicator}' AND "
                f"(value < {lo} OR value > {hi} OR isnan(value) OR isinf(value))"
            )
            if bad:
                problems.append(f"governance.{indicator}: {bad} values outside {lo:g} to {hi:g}")
    return problems


_reading = threading.local()


@functools.lru_cache(maxsize=64)
def _verified(name: str, stamp: tuple) -> tuple[str, ...]:
    paths = tuple(Path(p) for p, _, _ in stamp)
    entry = read_manifest(user_data_dir())["tables"].get(name)
    return tuple(user_table_problems(name, paths, entry, full=False))


def verify_user_table(name: str, paths: tuple[Path, ...]) -> None:
    """Raise one DataError line if the user's copy of `name` cannot be used (see
    user_table_problems); checked once per version of its files (path, size, mtime)."""
    if getattr(_reading, "unverified", False):
        return
    stamp = []
    for path in paths:
        info = os.stat(path)
        stamp.append((str(path), info.st_size, info.st_mtime_ns))
    problems = _verified(name, tuple(stamp))
    if problems:
        raise DataError(
            f"{problems[0]}{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}; "
            f"the user dataset in {user_data_dir()} is refused; 'critmin data check' lists "
            "every problem"
        )


def check_user_tables() -> list[str]:
    """A user's tables match their manifest (SHA-256, rows), have the columns and types of
    the schema, rows, unique keys, quantities ≥ 0 and governance values in range."""
    problems = []
    for name in PARQUET_TABLES:
        source = table_source(name, verify=False)
        if source.user:
            entry = read_manifest(user_data_dir())["tables"].get(name)
            problems += user_table_problems(name, source.user, entry)
    return problems


def check_supply_chain_map() -> list[str]:
    """The supply-chain map loads: stages known, one unit and source per stage, no shared code
    given out more than once, and every production source names a table that exists."""
    from critmin.data.stages import supply_stages

    stages = supply_stages()
    commodities = set(query("SELECT commodity FROM {commodities}")["commodity"])
    wanted = stages["production_source"].str.removeprefix("wmd:")
    wmd = stages["production_source"].str.startswith("wmd:")
    return [
        f"supply_stages.csv: {m}/{s} reads World Mining Data table {w!r}, which does not exist"
        for m, s, w in zip(
            stages.loc[wmd, "mineral"], stages.loc[wmd, "stage"], wanted[wmd], strict=True
        )
        if w not in commodities
    ]


CHECKS: dict[str, Callable[[], list[str]]] = {
    "unique_keys": check_unique_keys,
    "country_codes": check_country_codes,
    "non_negative": check_non_negative,
    "years": check_years,
    "commodity_ids": check_commodity_ids,
    "bundled_checksums": check_bundled_checksums,
    "user_tables": check_user_tables,
    "supply_chain_map": check_supply_chain_map,
}


def _problems(check: Callable[[], list[str]]) -> list[str]:
    try:
        return check()
    except DataError as exc:  # a table the check cannot read (text where numbers belong)
        return [str(exc)]


def run_checks() -> list[CheckResult]:
    """Run every check; a failing one reports its problems, the rest still run."""
    for table in KEYS:
        table_source(table, verify=False)  # fail early with a clear line if a table has no files
    _reading.unverified = True  # the checks themselves read what commands would refuse
    try:
        return [CheckResult(name, tuple(_problems(check))) for name, check in CHECKS.items()]
    finally:
        _reading.unverified = False
