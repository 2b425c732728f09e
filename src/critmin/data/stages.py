"""The supply-chain map as data: each mineral's stages, their HS6 codes per HS revision, content
factors, shared-code splits and production sources; and trade and production read by stage.

The map lives in three classification files (supply_chain.csv, supply_stages.csv, hs_baskets.csv);
this module reads them, checks them, and turns the trade and production tables into rows that
name a mineral and a stage. It computes no metric: the material balances are built from these
rows once, in `critmin.metrics.balances`.

Tables are read into `critmin.data.columns.Table`s (named NumPy columns) without pandas: a
one-question command must not pay pandas' import (issue 18). The DataFrame functions
(`supply_chain`, `stage_trade_rows`, `stage_production` ...) wrap them for the Python API.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.catalog import (
    BUNDLED_DIR,
    PARQUET_TABLES,
    bundled_manifest,
    dataset_stamp,
    query_arrays,
    table_source,
    user_data_dir,
)
from critmin.data.columns import Table, frozen, numbers, text
from critmin.data.manifest import read_manifest
from critmin.data.schema import CLASSIFICATIONS_DIR, csv_columns
from critmin.data.usgs import (
    SOURCES_DIR,
    US_NATIONAL_SOURCE,
    stage_production,
    stage_production_table,
    stage_shares,
    usgs_reference,
    usgs_reference_table,
    usgs_us_production,
    usgs_us_production_table,
    usgs_world_production,
    usgs_world_production_table,
)
from critmin.errors import DataError, InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SOURCES_DIR",
    "US_NATIONAL_SOURCE",
    "stage_production",
    "stage_production_table",
    "stage_shares",
    "usgs_reference",
    "usgs_reference_table",
    "usgs_us_production",
    "usgs_us_production_table",
    "usgs_world_production",
    "usgs_world_production_table",
]

STAGES = ("mine", "refined", "product")
HS_REVISIONS = ("HS92", "HS96", "HS02", "HS07", "HS12", "HS17", "HS22")
# Tables of processed-stage trade shipped beside the main trade table (rows name their revision).
STAGE_TRADE_TABLE = "stage_trade"
TRADE_COLUMNS = [
    "mineral", "stage", "row", "hs_revision", "hs6", "exporter", "importer", "gross_t",
    "value_kusd", "content_factor", "share", "counted", "stage_override",
]  # fmt: skip


def check_stage(stage: str, allow_all: bool = False) -> str:
    """A stage name (`mine`, `refined`, `product`; `all` where allowed), else one clear error."""
    text = str(stage).strip().lower()
    choices = (*STAGES, "all") if allow_all else STAGES
    if text not in choices:
        raise InputError(f"unknown stage {stage!r}; use one of {', '.join(choices)}")
    return text


@functools.cache
def supply_chain_table() -> Table:
    """The map in long form: one row per (mineral, stage, product, HS revision).

    Columns: row (product number, stable within a release), mineral, stage, product,
    content_factor (t of the stage's unit per gross t; NaN = shared code that cannot be
    attributed), content_source, hs_revision, hs6, share (part of a shared code's flows given
    to this mineral; 1 where the code is the mineral's own, NaN where it is flagged),
    share_key, basket (the code is split by hs_baskets.csv), counted (factor and share both
    known). Sorted by mineral, stage, row, hs_revision.
    """
    wide = csv_columns(CLASSIFICATIONS_DIR / "supply_chain.csv")
    bad_stage = sorted(set(wide["stage"]) - set(STAGES))
    if bad_stage:
        raise DataError(f"supply_chain.csv: unknown stages {bad_stage}")
    # long form, revision by revision as a melt gives it; products without a code drop out
    picked = [
        (row, revision, code)
        for revision in HS_REVISIONS
        for row, code in enumerate(wide[revision.lower()])
        if code is not None and len(code) == 6
    ]
    rows = [p[0] for p in picked]
    revisions = [p[1] for p in picked]
    codes = [p[2] for p in picked]
    minerals = [wide["mineral"][r] for r in rows]
    baskets: dict[tuple[str, str, str], tuple[float, str]] = {}
    split = csv_columns(CLASSIFICATIONS_DIR / "hs_baskets.csv")
    for revision, code, mineral, share, key in zip(
        split["hs_revision"],
        split["hs6"],
        split["mineral"],
        numbers(split["share"]).tolist(),
        split["key"],
        strict=True,
    ):
        if (revision, code, mineral) in baskets:
            raise DataError(f"hs_baskets.csv: {revision} {code} {mineral} is listed twice")
        baskets[(revision, code, mineral)] = (share, key)
    found = [baskets.get(k) for k in zip(revisions, codes, minerals, strict=True)]
    factor = numbers([wide["content_factor"][r] for r in rows])
    share = np.array([1.0 if f is None else f[0] for f in found], dtype=float)
    long = Table(
        {
            "row": np.array(rows, dtype=np.int64),
            "mineral": text(minerals),
            "stage": text([wide["stage"][r] for r in rows]),
            "product": text([wide["product"][r] for r in rows]),
            "content_factor": factor,
            "content_source": text([wide["content_source"][r] for r in rows]),
            "hs_revision": text(revisions),
            "hs6": text(codes),
            "share": share,
            "share_key": text(["" if f is None else f[1] for f in found]),
            "basket": np.array([f is not None for f in found], dtype=bool),
            "counted": ~np.isnan(factor) & ~np.isnan(share),
        },
        len(rows),
    )
    _check_shares(long)
    keys = list(zip(long["mineral"], long["stage"], rows, revisions, strict=True))
    order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
    return frozen(long.where(order))


@functools.cache
def supply_chain() -> pd.DataFrame:
    """`supply_chain_table` as a DataFrame."""
    return supply_chain_table().frame()


def _check_shares(long: Table) -> None:
    given: dict[tuple[str, str, str], float] = {}
    for counted, revision, code, mineral, share in zip(
        long["counted"],
        long["hs_revision"],
        long["hs6"],
        long["mineral"],
        long["share"].tolist(),
        strict=True,
    ):
        if counted:
            given.setdefault((revision, code, mineral), share)
    totals: dict[tuple[str, str], float] = {}
    for (revision, code, _), share in given.items():
        totals[(revision, code)] = totals.get((revision, code), 0.0) + share
    over = sorted(key for key, total in totals.items() if total > 1 + 1e-9)
    if over:
        raise DataError(f"supply map: a code is given out more than once: {over}")


@functools.cache
def supply_stages_table() -> Table:
    """One row per (mineral, stage): unit, production_source, production_note."""
    data = csv_columns(CLASSIFICATIONS_DIR / "supply_stages.csv")
    chain = supply_chain_table()
    mapped = set(zip(chain["mineral"], chain["stage"], strict=True))
    listed = set(zip(data["mineral"], data["stage"], strict=True))
    unmatched = sorted(mapped ^ listed)
    if unmatched:
        pairs = ", ".join(f"{m}/{s}" for m, s in unmatched)
        raise DataError(f"supply_chain.csv and supply_stages.csv disagree on stages: {pairs}")
    return frozen(Table({name: text(values) for name, values in data.items()}, len(data["stage"])))


@functools.cache
def supply_stages() -> pd.DataFrame:
    """`supply_stages_table` as a DataFrame."""
    return supply_stages_table().frame()


def stage_minerals() -> list[str]:
    """Minerals that have a supply-chain map."""
    return sorted(set(supply_stages_table()["mineral"]))


def stages_of(mineral: str) -> list[str]:
    """The stages mapped for a mineral, in chain order."""
    table = supply_stages_table()
    have = set(table["stage"][table["mineral"] == mineral])
    return [s for s in STAGES if s in have]


def _scan(paths: list) -> str:
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{listed}], union_by_name = true)"


def trade_by_revision_sql() -> str:
    """A DuckDB relation of every trade row with the HS revision it is coded in.

    Rows come from the main trade table (the bundled HS92 extract, a user's BACI imports with
    the revision each import recorded; user years replace bundled years) and from the bundled
    processed-stage table, whose years a user import replaces as well (the same flows would
    otherwise be counted twice).
    """
    source = table_source("trade")
    bundled_revision = bundled_manifest()["tables"]["trade"].get("hs_revision", "HS92")
    parts: list[str] = []
    user_years_sql = None
    if source.user:
        entry = read_manifest(user_data_dir())["tables"].get("trade", {})
        records = entry.get("imports") or [
            {"file": p.name, "hs_revision": entry.get("hs_revision", bundled_revision)}
            for p in source.user
        ]
        by_name = {p.name: p for p in source.user}
        for record in records:
            path = by_name.get(record.get("file"))
            if path is None:
                continue
            revision = str(record.get("hs_revision") or bundled_revision).upper()
            if revision not in HS_REVISIONS:
                raise DataError(f"user trade import {path.name}: unknown HS revision {revision!r}")
            parts.append(f"SELECT *, '{revision}' AS hs_revision FROM {_scan([path])}")
        user_years_sql = f"SELECT DISTINCT year FROM {_scan(list(source.user))}"
    if source.mode != "user" and source.bundled:
        where = f" WHERE year NOT IN ({user_years_sql})" if user_years_sql else ""
        parts.append(
            f"SELECT *, '{bundled_revision}' AS hs_revision FROM {_scan(list(source.bundled))}"
            + where
        )
    if STAGE_TRADE_TABLE in PARQUET_TABLES:
        stage_files = sorted(BUNDLED_DIR.glob(f"{STAGE_TRADE_TABLE}.parquet"))
        if stage_files:
            where = f" WHERE year NOT IN ({user_years_sql})" if user_years_sql else ""
            parts.append(f"SELECT * FROM {_scan(stage_files)}" + where)
    columns = "year, exporter, importer, hs6, value_kusd, qty_t, hs_revision"
    return "(" + " UNION ALL ".join(f"SELECT {columns} FROM ({p})" for p in parts) + ")"


def _chain_of(minerals: tuple[str, ...] | None) -> Table:
    chain = supply_chain_table()
    if minerals is None:
        return chain
    return chain.where(np.isin(chain["mineral"], list(minerals)))


def stage_trade_table(year: int, minerals: tuple[str, ...] | None = None) -> Table:
    """Trade of one year mapped to minerals and stages, in gross tonnes and thousand USD.

    For each product of the map and year, the newest HS revision that holds data for it is
    used and older ones are dropped, so a flow present in two revisions (the bundled HS92 table
    and a processed-stage HS17 table) is counted once; flows listed in stage_overrides.csv move
    to the stage their authority counts them at. Columns: mineral, stage, row, hs_revision,
    hs6, exporter, importer, gross_t, value_kusd, content_factor, share, counted,
    stage_override. `minerals` limits the rows to those minerals' codes. Rows are in the
    map's order (mineral, stage before any override, row, hs_revision), then by exporter and
    importer.
    """
    chain = _chain_of(minerals)
    if not len(chain):
        return Table.empty(TRADE_COLUMNS)
    rank = {r: i for i, r in enumerate(HS_REVISIONS)}
    # The map goes to DuckDB as list parameters (UNNESTs in one SELECT zip together); the
    # other columns of a row are picked from the map by its position `at`.
    found = query_arrays(
        f"""
        WITH chain AS (
            SELECT UNNEST(?) AS at, UNNEST(?) AS "row", UNNEST(?) AS hs_revision,
                   UNNEST(?) AS hs6, UNNEST(?) AS rank
        ),
        mapped AS (
            SELECT c.at, c."row", c.rank, t.exporter, t.importer, t.qty_t AS gross_t,
                   t.value_kusd
            FROM {trade_by_revision_sql()} t JOIN chain c USING (hs_revision, hs6)
            WHERE t.year = ?
        ),
        chosen AS (SELECT "row", max(rank) AS rank FROM mapped GROUP BY "row")
        SELECT m.at, m.exporter, m.importer, m.gross_t, m.value_kusd
        FROM mapped m JOIN chosen c USING ("row", rank)
        ORDER BY m.at, m.exporter, m.importer, m.gross_t, m.value_kusd
        """,
        [
            list(range(len(chain))),
            chain["row"].tolist(),
            chain["hs_revision"].tolist(),
            chain["hs6"].tolist(),
            [rank[r] for r in chain["hs_revision"]],
            int(year),
        ],
    )
    at = found["at"].astype(np.int64)
    picked = chain.where(at)
    rows = Table(
        {
            "mineral": picked["mineral"],
            "stage": picked["stage"],
            "row": picked["row"],
            "hs_revision": picked["hs_revision"],
            "hs6": picked["hs6"],
            "exporter": found["exporter"],
            "importer": found["importer"],
            "gross_t": found["gross_t"].astype(float),
            "value_kusd": found["value_kusd"].astype(float),
            "content_factor": picked["content_factor"],
            "share": picked["share"],
            "counted": picked["counted"],
        },
        len(at),
    )
    return _override_stages(rows, int(year))


def stage_trade_rows(year: int, minerals: tuple[str, ...] | None = None) -> pd.DataFrame:
    """`stage_trade_table` as a DataFrame."""
    return stage_trade_table(year, minerals).frame()


@functools.cache
def _stage_overrides() -> dict[str, list]:
    return csv_columns(CLASSIFICATIONS_DIR / "stage_overrides.csv")


def _override_stages(rows: Table, year: int) -> Table:
    """Move flows listed in stage_overrides.csv to the stage their authority counts them at."""
    overrides = _stage_overrides()
    stage = rows["stage"].copy()
    moved = np.zeros(len(rows), dtype=bool)
    seen: set[tuple[str, str, str]] = set()
    for mineral, code, exporter, from_stage, to_stage, first, last in zip(
        overrides.get("mineral", []),
        overrides.get("hs6", []),
        overrides.get("exporter", []),
        overrides.get("from_stage", []),
        overrides.get("to_stage", []),
        numbers(overrides.get("first_year", [])).tolist(),
        numbers(overrides.get("last_year", [])).tolist(),
        strict=True,
    ):
        if not first <= year <= last:
            continue
        if (mineral, code, exporter) in seen:
            raise DataError(
                f"stage_overrides.csv: {mineral} {code} {exporter} is active twice in {year}"
            )
        seen.add((mineral, code, exporter))
        hit = (
            (rows["stage"] == from_stage)
            & (rows["mineral"] == mineral)
            & (rows["hs6"] == code)
            & (rows["exporter"] == exporter)
        )
        stage[hit] = to_stage
        moved |= hit
    return rows.assign(stage=stage, stage_override=moved)


@functools.cache
def _stage_years(_data_dir: str, with_quantity: bool) -> Table:
    chain = supply_chain_table()
    counted = chain.where(chain["counted"])
    pairs = sorted(
        set(
            zip(
                counted["hs_revision"],
                counted["hs6"],
                counted["mineral"],
                counted["stage"],
                strict=True,
            )
        )
    )
    condition = "WHERE t.qty_t IS NOT NULL" if with_quantity else ""
    found = query_arrays(
        "WITH chain AS (SELECT UNNEST(?) AS hs_revision, UNNEST(?) AS hs6, UNNEST(?) AS mineral, "
        "UNNEST(?) AS stage) "
        "SELECT DISTINCT t.year, c.mineral, c.stage FROM "
        f"{trade_by_revision_sql()} t JOIN chain c USING (hs_revision, hs6) {condition} "
        "ORDER BY t.year, c.mineral, c.stage",
        [[p[i] for p in pairs] for i in range(4)],
    )
    return frozen(Table(found))


def stage_years_table(with_quantity: bool = True) -> Table:
    """Years with counted trade per mineral × stage (quantities reported, unless asked otherwise).

    Columns: year, mineral, stage; sorted by them.
    """
    return _stage_years(dataset_stamp(), with_quantity)


def stage_years(with_quantity: bool = True) -> pd.DataFrame:
    """`stage_years_table` as a DataFrame."""
    return stage_years_table(with_quantity).frame()


def latest_common_year(pairs: list[tuple[str, str]], with_quantity: bool = True) -> int | None:
    """The latest year with trade for every (mineral, stage) in `pairs`; None if there is none."""
    years = stage_years_table(with_quantity)
    by_pair: dict[tuple[str, str], set[int]] = {}
    for year, mineral, stage in zip(
        years["year"].tolist(), years["mineral"], years["stage"], strict=True
    ):
        by_pair.setdefault((mineral, stage), set()).add(int(year))
    common: set[int] | None = None
    for pair in pairs:
        have = by_pair.get(tuple(pair), set())
        if not have:
            continue  # a stage without any trade answers no_trade_data whatever the year
        common = have if common is None else common & have
    return max(common) if common else None
