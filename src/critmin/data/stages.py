"""The supply-chain map as data: each mineral's stages, their HS6 codes per HS revision, content
factors, shared-code splits and production sources; and trade and production read by stage.

The map lives in three classification files (supply_chain.csv, supply_stages.csv, hs_baskets.csv);
this module reads them, checks them, and turns the trade and production tables into rows that
name a mineral and a stage. It computes no metric: the material balances are built from these
rows once, in `critmin.metrics.balances`.
"""

from __future__ import annotations

import functools

import pandas as pd

from critmin.data.catalog import (
    BUNDLED_DIR,
    PARQUET_TABLES,
    bundled_manifest,
    dataset_stamp,
    query,
    table_source,
    user_data_dir,
)
from critmin.data.manifest import read_manifest
from critmin.data.schema import CLASSIFICATIONS_DIR, read_commented_csv
from critmin.errors import DataError, InputError

STAGES = ("mine", "refined", "product")
HS_REVISIONS = ("HS92", "HS96", "HS02", "HS07", "HS12", "HS17", "HS22")
SOURCES_DIR = CLASSIFICATIONS_DIR.parent / "sources"
# Tables of processed-stage trade shipped beside the main trade table (rows name their revision).
STAGE_TRADE_TABLE = "stage_trade"
US_NATIONAL_SOURCE = "USGS Mineral Commodity Summaries 2026 (United States, primary and secondary)"


def check_stage(stage: str, allow_all: bool = False) -> str:
    """A stage name (`mine`, `refined`, `product`; `all` where allowed), else one clear error."""
    text = str(stage).strip().lower()
    choices = (*STAGES, "all") if allow_all else STAGES
    if text not in choices:
        raise InputError(f"unknown stage {stage!r}; use one of {', '.join(choices)}")
    return text


@functools.cache
def supply_chain() -> pd.DataFrame:
    """The map in long form: one row per (mineral, stage, product, HS revision).

    Columns: row (product number, stable within a release), mineral, stage, product,
    hs_revision, hs6, content_factor (t of the stage's unit per gross t; NaN = shared code that
    cannot be attributed), share (part of a shared code's flows given to this mineral; 1 where the
    code is the mineral's own, NaN where it is flagged), counted (factor and share both known),
    content_source, share_key.
    """
    wide = pd.DataFrame(read_commented_csv(CLASSIFICATIONS_DIR / "supply_chain.csv"))
    wide.insert(0, "row", range(len(wide)))
    bad_stage = sorted(set(wide["stage"]) - set(STAGES))
    if bad_stage:
        raise DataError(f"supply_chain.csv: unknown stages {bad_stage}")
    long = wide.melt(
        id_vars=["row", "mineral", "stage", "product", "content_factor", "content_source"],
        value_vars=[r.lower() for r in HS_REVISIONS],
        var_name="hs_revision",
        value_name="hs6",
    )
    long["hs_revision"] = long["hs_revision"].str.upper()
    long = long[long["hs6"].str.len() == 6]
    long["content_factor"] = pd.to_numeric(long["content_factor"].replace("", None))
    baskets = pd.DataFrame(read_commented_csv(CLASSIFICATIONS_DIR / "hs_baskets.csv"))
    baskets["share"] = pd.to_numeric(baskets["share"].replace("", None))
    long = long.merge(
        baskets.rename(columns={"key": "share_key"}),
        on=["hs_revision", "hs6", "mineral"],
        how="left",
        indicator="in_basket",
    )
    in_basket = long["in_basket"] == "both"
    long["share"] = long["share"].where(in_basket, 1.0)
    long["share_key"] = long["share_key"].where(in_basket, "")
    long["basket"] = in_basket
    long["counted"] = long["content_factor"].notna() & long["share"].notna()
    long = long.drop(columns="in_basket")
    _check_shares(long)
    return long.sort_values(["mineral", "stage", "row", "hs_revision"]).reset_index(drop=True)


def _check_shares(long: pd.DataFrame) -> None:
    counted = long[long["counted"]].drop_duplicates(["hs_revision", "hs6", "mineral"])
    totals = counted.groupby(["hs_revision", "hs6"])["share"].sum()
    over = totals[totals > 1 + 1e-9]
    if len(over):
        raise DataError(f"supply map: a code is given out more than once: {sorted(over.index)}")


@functools.cache
def supply_stages() -> pd.DataFrame:
    """One row per (mineral, stage): unit, production_source, production_note."""
    table = pd.DataFrame(read_commented_csv(CLASSIFICATIONS_DIR / "supply_stages.csv"))
    mapped = supply_chain()[["mineral", "stage"]].drop_duplicates()
    merged = mapped.merge(table, on=["mineral", "stage"], how="outer", indicator=True)
    unmatched = merged[merged["_merge"] != "both"]
    if len(unmatched):
        pairs = ", ".join(
            f"{m}/{s}" for m, s in zip(unmatched["mineral"], unmatched["stage"], strict=True)
        )
        raise DataError(f"supply_chain.csv and supply_stages.csv disagree on stages: {pairs}")
    return table.reset_index(drop=True)


def stage_minerals() -> list[str]:
    """Minerals that have a supply-chain map."""
    return sorted(set(supply_stages()["mineral"]))


def stages_of(mineral: str) -> list[str]:
    """The stages mapped for a mineral, in chain order."""
    have = set(supply_stages().loc[lambda t: t["mineral"] == mineral, "stage"])
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


def stage_trade_rows(year: int, minerals: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Trade of one year mapped to minerals and stages, in gross tonnes and thousand USD.

    For each product of the map and year, the newest HS revision that holds data for it is
    used and older ones are dropped, so a flow present in two revisions (the bundled HS92 table
    and a processed-stage HS17 table) is counted once; flows listed in stage_overrides.csv move
    to the stage their authority counts them at. Columns: mineral, stage, row, hs_revision,
    hs6, exporter, importer, gross_t, value_kusd, content_factor, share, counted,
    stage_override. `minerals` limits the rows to those minerals' codes.
    """
    chain = supply_chain()
    if minerals is not None:
        chain = chain[chain["mineral"].isin(list(minerals))]
    rank = ", ".join(f"('{r}', {i})" for i, r in enumerate(HS_REVISIONS))
    rows = query(
        f"""
        WITH chain AS (SELECT * FROM chain_frame),
        revision_rank(hs_revision, rank) AS (VALUES {rank}),
        trade AS (SELECT * FROM {trade_by_revision_sql()} WHERE year = ?),
        mapped AS (
            SELECT c.mineral, c.stage, c."row", t.hs_revision, t.hs6, t.exporter, t.importer,
                   t.qty_t AS gross_t, t.value_kusd, c.content_factor, c.share, c.counted
            FROM trade t JOIN chain c USING (hs_revision, hs6)
        ),
        chosen AS (
            SELECT m."row", max(r.rank) AS rank FROM mapped m JOIN revision_rank r
            USING (hs_revision) GROUP BY m."row"
        )
        SELECT m.* FROM mapped m JOIN revision_rank r USING (hs_revision)
        JOIN chosen c ON c."row" = m."row" AND c.rank = r.rank
        """,
        [int(year)],
        frames={"chain_frame": chain},
    )
    return _override_stages(rows, int(year))


def _override_stages(rows: pd.DataFrame, year: int) -> pd.DataFrame:
    """Move flows listed in stage_overrides.csv to the stage their authority counts them at."""
    overrides = pd.DataFrame(read_commented_csv(CLASSIFICATIONS_DIR / "stage_overrides.csv"))
    if overrides.empty:
        return rows
    years = pd.to_numeric(overrides["first_year"]), pd.to_numeric(overrides["last_year"])
    active = overrides[(years[0] <= year) & (year <= years[1])]
    keys = ["mineral", "hs6", "exporter"]
    merged = rows.merge(
        active[[*keys, "from_stage", "to_stage"]], on=keys, how="left", validate="many_to_one"
    )
    moved = merged["from_stage"].eq(merged["stage"])
    merged.loc[moved, "stage"] = merged.loc[moved, "to_stage"]
    merged["stage_override"] = moved
    return merged.drop(columns=["from_stage", "to_stage"])


def stage_production(year: int, minerals: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Production of one year by mineral, stage and country in the stage's unit.

    Sources as supply_stages.csv names them: World Mining Data (the bundled production table) or
    the USGS world tables (sources/usgs_world_production.csv); where a stage's source has no
    figure for the United States, USGS's national figure of the stage in the same unit
    (reference/usgs_mcs2026.csv, e.g. rare-earth compounds and metals; primary and secondary)
    fills it. A country whose figures are withheld keeps a row with qty_t NaN. Columns:
    mineral, stage, country, qty_t, source. Other countries of a `none` stage have no rows.
    """
    stages = supply_stages()
    if minerals is not None:
        stages = stages[stages["mineral"].isin(list(minerals))]
    wmd = stages[stages["production_source"].str.startswith("wmd:")].assign(
        commodity=lambda t: t["production_source"].str.removeprefix("wmd:")
    )
    frames = []
    if len(wmd):
        made = query(
            "SELECT commodity, country, sum(qty_t) AS qty_t FROM {production} "
            "WHERE year = ? AND qty_t IS NOT NULL GROUP BY ALL",
            [int(year)],
        )
        made = wmd[["mineral", "stage", "commodity"]].merge(made, on="commodity")
        frames.append(made.drop(columns="commodity").assign(source="World Mining Data"))
    usgs = stages[stages["production_source"] == "usgs"][["mineral", "stage"]]
    world = usgs_world_production()
    if len(usgs) and len(world):
        rows = world[(world["year"] == int(year)) & (world["country"] != "WLD")]
        rows = rows.merge(usgs, on=["mineral", "stage"])
        # Several tables can feed one stage (ferrosilicon and silicon metal); a country whose
        # figures are all withheld (W) keeps a row without quantity.
        rows = rows.groupby(["mineral", "stage", "country"], as_index=False)["qty_t"].sum(
            min_count=1
        )
        frames.append(rows.assign(source="USGS Mineral Commodity Summaries 2026"))
    have: set[tuple[str, str, str]] = set()
    if frames:
        known = pd.concat(frames)
        known = known[known["qty_t"].notna()]
        have = set(zip(known["mineral"], known["stage"], known["country"], strict=True))
    national = usgs_us_production()
    national = national[national["year"] == int(year)].merge(
        stages[["mineral", "stage", "unit"]], on=["mineral", "stage", "unit"]
    )
    keys = list(zip(national["mineral"], national["stage"], strict=True))
    national = national[[(m, s, "USA") not in have for m, s in keys]]
    if len(national):
        filled = set(zip(national["mineral"], national["stage"], strict=True))
        frames = [
            f[
                [
                    not (c == "USA" and (m, s) in filled)
                    for m, s, c in zip(f["mineral"], f["stage"], f["country"], strict=True)
                ]
            ]
            for f in frames
        ]
        frames.append(
            national[["mineral", "stage", "country", "qty_t"]].assign(source=US_NATIONAL_SOURCE)
        )
    if not frames:
        return pd.DataFrame(columns=["mineral", "stage", "country", "qty_t", "source"])
    return pd.concat(frames, ignore_index=True).reset_index(drop=True)


@functools.cache
def usgs_world_production() -> pd.DataFrame:
    """USGS MCS 2026 world production tables by country and stage (empty if not shipped)."""
    path = SOURCES_DIR / "usgs_world_production.csv"
    columns = ["year", "country", "mineral", "stage", "qty_t"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(read_commented_csv(path))
    table["year"] = pd.to_numeric(table["year"]).astype(int)
    table["qty_t"] = pd.to_numeric(table["qty_t"].replace("", None))
    return table


@functools.cache
def usgs_reference() -> pd.DataFrame:
    """USGS MCS 2026 figures for the United States (reference/usgs_mcs2026.csv): mineral, year,
    measure, stage, value, usgs_text, unit, what, chapter."""
    path = CLASSIFICATIONS_DIR.parent / "reference" / "usgs_mcs2026.csv"
    if not path.is_file():
        return pd.DataFrame(
            columns=["mineral", "year", "measure", "stage", "value", "usgs_text", "unit", "what"]
        )
    table = pd.DataFrame(read_commented_csv(path))
    table["year"] = pd.to_numeric(table["year"]).astype(int)
    table["value"] = pd.to_numeric(table["value"].replace("", None))
    return table


def usgs_us_production() -> pd.DataFrame:
    """United States production by mineral and stage from USGS MCS 2026, primary and secondary
    (scrap) output of a stage together, as USGS's apparent consumption counts them; withheld
    figures are left out. Columns: year, mineral, stage, unit, country, qty_t."""
    table = usgs_reference()
    rows = table[(table["measure"] == "us_production") & table["value"].notna()]
    # USGS counts secondary (scrap) output in apparent consumption: it is refined-stage output.
    rows = rows.assign(stage=rows["stage"].replace({"secondary": "refined"}))
    rows = rows[rows["stage"].isin(STAGES)]
    rows = rows.groupby(["year", "mineral", "stage", "unit"], as_index=False)["value"].sum()
    return rows.rename(columns={"value": "qty_t"}).assign(country="USA")


@functools.cache
def stage_shares() -> pd.DataFrame:
    """Published country shares of a stage where no tonnage series exists (shares, not tonnes).

    Columns: year, mineral, stage, country, share, measure, source, licence.
    """
    path = SOURCES_DIR / "stage_shares.csv"
    if not path.is_file():
        return pd.DataFrame(
            columns=["year", "mineral", "stage", "country", "share", "measure", "source"]
        )
    table = pd.DataFrame(read_commented_csv(path))
    table["year"] = pd.to_numeric(table["year"]).astype(int)
    table["share"] = pd.to_numeric(table["share"])
    return table


@functools.cache
def _stage_years(_data_dir: str, with_quantity: bool) -> pd.DataFrame:
    chain = supply_chain()
    chain = chain[chain["counted"]][["hs_revision", "hs6", "mineral", "stage"]]
    condition = "WHERE t.qty_t IS NOT NULL" if with_quantity else ""
    return query(
        "SELECT DISTINCT t.year, c.mineral, c.stage FROM "
        f"{trade_by_revision_sql()} t JOIN chain_frame c USING (hs_revision, hs6) {condition}",
        frames={"chain_frame": chain},
    )


def stage_years(with_quantity: bool = True) -> pd.DataFrame:
    """Years with counted trade per mineral × stage (quantities reported, unless asked otherwise).

    Columns: year, mineral, stage.
    """
    return _stage_years(dataset_stamp(), with_quantity)


def latest_common_year(pairs: list[tuple[str, str]], with_quantity: bool = True) -> int | None:
    """The latest year with trade for every (mineral, stage) in `pairs`; None if there is none."""
    years = stage_years(with_quantity)
    common: set[int] | None = None
    for mineral, stage in pairs:
        have = set(
            years.loc[(years["mineral"] == mineral) & (years["stage"] == stage), "year"].astype(int)
        )
        if not have:
            continue  # a stage without any trade answers no_trade_data whatever the year
        common = have if common is None else common & have
    return max(common) if common else None
