"""Named integrity checks of the dataset: keys, codes, signs, years, checksums, groups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from critmin.data.catalog import BUNDLED_DIR, bundled_manifest, query, table_source
from critmin.data.groups import load_groups
from critmin.data.io import sha256_file

KEYS = {
    "trade": ("year", "exporter", "importer", "hs6"),
    "production": ("year", "country", "commodity"),
    "governance": ("year", "country", "indicator"),
    "governance_geopolrisk": ("year", "row"),
    "commodities": ("commodity",),
    "countries": ("iso3",),
}
COUNTRY_COLUMNS = {
    "trade": ("exporter", "importer"),
    "production": ("country",),
    "governance": ("country",),
}
NON_NEGATIVE = {"trade": ("value_kusd", "qty_t"), "production": ("qty_t",)}
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


CHECKS: dict[str, Callable[[], list[str]]] = {
    "unique_keys": check_unique_keys,
    "country_codes": check_country_codes,
    "non_negative": check_non_negative,
    "years": check_years,
    "commodity_ids": check_commodity_ids,
    "bundled_checksums": check_bundled_checksums,
}


def run_checks() -> list[CheckResult]:
    """Run every check; a failing one reports its problems, the rest still run."""
    for table in KEYS:
        table_source(table)  # fail early with a clear message if a table has no files
    return [CheckResult(name, tuple(check())) for name, check in CHECKS.items()]
