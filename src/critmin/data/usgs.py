"""Production by stage: the USGS Mineral Commodity Summaries 2026 tables (world production by
country and stage, sources/usgs_world_production.csv; the United States figures,
reference/usgs_mcs2026.csv), and the rows of production by mineral, stage and country that
the material balances read (World Mining Data or USGS, as supply_stages.csv names the source).
Re-exported by `critmin.data.stages`.

They are read with the csv module into `Table`s (pandas takes longer to import than a
one-question command may take, issue 18); the DataFrame functions wrap them for the Python API
and the validation against USGS.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.catalog import query_arrays
from critmin.data.columns import Table, frozen, group_sum, kahan_sums, numbers, text
from critmin.data.schema import CLASSIFICATIONS_DIR, csv_columns

if TYPE_CHECKING:
    import pandas as pd

SOURCES_DIR = CLASSIFICATIONS_DIR.parent / "sources"
REFERENCE_DIR = CLASSIFICATIONS_DIR.parent / "reference"
US_NATIONAL_SOURCE = "USGS Mineral Commodity Summaries 2026 (United States, primary and secondary)"
WORLD_COLUMNS = ["year", "country", "mineral", "stage", "qty_t"]
REFERENCE_COLUMNS = ["mineral", "year", "measure", "stage", "value", "usgs_text", "unit", "what"]


def _read(path: Path, columns: list[str], integer: str, number: str) -> Table:
    if not path.is_file():
        return frozen(Table.empty(columns))
    data = csv_columns(path)
    table = {name: text(values) for name, values in data.items()}
    table[integer] = np.array([int(v) for v in data[integer]], dtype=np.int64)
    table[number] = numbers(data[number])
    return frozen(Table(table, len(data[integer])))


@functools.cache
def usgs_world_production_table() -> Table:
    """USGS MCS 2026 world production tables by country and stage (no rows if not shipped):
    year, country, mineral, stage, qty_t (NaN where withheld), basis, usgs_table, flag."""
    return _read(SOURCES_DIR / "usgs_world_production.csv", WORLD_COLUMNS, "year", "qty_t")


@functools.cache
def usgs_world_production() -> pd.DataFrame:
    """`usgs_world_production_table` as a DataFrame."""
    return usgs_world_production_table().frame()


@functools.cache
def usgs_reference_table() -> Table:
    """USGS MCS 2026 figures for the United States (reference/usgs_mcs2026.csv): mineral, year,
    measure, stage, value, usgs_text, unit, what, chapter."""
    return _read(REFERENCE_DIR / "usgs_mcs2026.csv", REFERENCE_COLUMNS, "year", "value")


@functools.cache
def usgs_reference() -> pd.DataFrame:
    """`usgs_reference_table` as a DataFrame."""
    return usgs_reference_table().frame()


@functools.cache
def usgs_us_production_table() -> Table:
    """United States production by mineral and stage from USGS MCS 2026, primary and secondary
    (scrap) output of a stage together, as USGS's apparent consumption counts them; withheld
    figures are left out. Columns: year, mineral, stage, unit, qty_t, country; sorted by
    year, mineral, stage, unit."""
    from critmin.data.stages import STAGES

    table = usgs_reference_table()
    keys = ["year", "mineral", "stage", "unit"]
    if len(table):
        keep = (table["measure"] == "us_production") & ~np.isnan(table["value"])
        rows = table.where(keep).select([*keys, "value"])
        # USGS counts secondary (scrap) output in apparent consumption: refined-stage output.
        stage = np.where(rows["stage"] == "secondary", "refined", rows["stage"]).astype(object)
        rows = rows.assign(stage=stage).where(np.isin(stage.astype(str), list(STAGES)))
    else:
        rows = Table.empty([*keys, "value"])
    summed = group_sum(rows, keys, "value")
    columns = {
        "year": summed["year"].astype(np.int64),
        **{k: summed[k] for k in keys[1:]},
        "qty_t": summed["value"].astype(float),
        "country": text(["USA"] * len(summed)),
    }
    return frozen(Table(columns, len(summed)))


def usgs_us_production() -> pd.DataFrame:
    """`usgs_us_production_table` as a DataFrame."""
    return usgs_us_production_table().frame()


def stage_production_table(year: int, minerals: tuple[str, ...] | None = None) -> Table:
    """Production of one year by mineral, stage and country in the stage's unit.

    Sources as supply_stages.csv names them: World Mining Data (the bundled production table) or
    the USGS world tables (sources/usgs_world_production.csv); where a stage's source has no
    figure for the United States, USGS's national figure of the stage in the same unit
    (reference/usgs_mcs2026.csv, e.g. rare-earth compounds and metals; primary and secondary)
    fills it. A country whose figures are withheld keeps a row with qty_t NaN. Columns:
    mineral, stage, country, qty_t, source. Other countries of a `none` stage have no rows.
    Rows: World Mining Data's by stage in the order of supply_stages.csv and by country
    (they came in DuckDB's hash order before), then USGS's by mineral, stage and country,
    then the national figures.
    """
    from critmin.data.stages import supply_stages_table

    year = int(year)
    stages = supply_stages_table()
    if minerals is not None:
        stages = stages.where(np.isin(stages["mineral"], list(minerals)))
    # one list of (mineral, stage, country, qty_t, source) rows per source, in the old order
    parts: list[list[tuple]] = []
    wmd = [
        (m, s, p.removeprefix("wmd:"))
        for m, s, p in zip(
            stages["mineral"], stages["stage"], stages["production_source"], strict=True
        )
        if p.startswith("wmd:")
    ]
    if wmd:
        # The wanted (mineral, stage, commodity) go in as lists; DuckDB joins and sums.
        made = query_arrays(
            "WITH wanted AS (SELECT UNNEST(?) AS at, UNNEST(?) AS mineral, UNNEST(?) AS stage, "
            "UNNEST(?) AS commodity) "
            "SELECT w.mineral, w.stage, p.country, sum(p.qty_t) AS qty_t "
            "FROM {production} p JOIN wanted w USING (commodity) "
            "WHERE p.year = ? AND p.qty_t IS NOT NULL "
            "GROUP BY w.at, w.mineral, w.stage, p.country ORDER BY w.at, p.country",
            [list(range(len(wmd))), *(list(column) for column in zip(*wmd, strict=True)), year],
        )
        parts.append(
            list(
                zip(
                    made["mineral"].tolist(),
                    made["stage"].tolist(),
                    made["country"].tolist(),
                    made["qty_t"].tolist(),
                    ["World Mining Data"] * len(made["country"]),
                    strict=True,
                )
            )
        )
    usgs = {
        (m, s)
        for m, s, p in zip(
            stages["mineral"], stages["stage"], stages["production_source"], strict=True
        )
        if p == "usgs"
    }
    world = usgs_world_production_table()
    if usgs and len(world):
        # Several tables can feed one stage (ferrosilicon and silicon metal); a country whose
        # figures are all withheld (W) keeps a row without quantity.
        groups: dict[tuple[str, str, str], list[float]] = {}
        for y, country, mineral, stage, qty in zip(
            world["year"].tolist(),
            world["country"],
            world["mineral"],
            world["stage"],
            world["qty_t"].tolist(),
            strict=True,
        ):
            if y == year and country != "WLD" and (mineral, stage) in usgs:
                groups.setdefault((mineral, stage, country), []).append(qty)
        keys = sorted(groups)
        code = np.repeat(np.arange(len(keys)), [len(groups[k]) for k in keys])
        values = np.array([q for k in keys for q in groups[k]], dtype=float)
        sums = kahan_sums(code, values, len(keys), min_count=1).tolist()
        source = "USGS Mineral Commodity Summaries 2026"
        parts.append([(*key, total, source) for key, total in zip(keys, sums, strict=True)])
    have = {(m, s, c) for part in parts for m, s, c, qty, _ in part if qty == qty}
    units = set(zip(stages["mineral"], stages["stage"], stages["unit"], strict=True))
    us = usgs_us_production_table()
    national = [
        (m, s, c, qty, US_NATIONAL_SOURCE)
        for y, m, s, unit, c, qty in zip(
            us["year"].tolist(),
            us["mineral"],
            us["stage"],
            us["unit"],
            us["country"],
            us["qty_t"].tolist(),
            strict=True,
        )
        if y == year and (m, s, unit) in units and (m, s, "USA") not in have
    ]
    if national:
        filled = {(m, s) for m, s, *_ in national}
        parts = [[r for r in part if not (r[2] == "USA" and r[:2] in filled)] for part in parts]
        parts.append(national)
    rows = [r for part in parts for r in part]
    return Table(
        {
            "mineral": text([r[0] for r in rows]),
            "stage": text([r[1] for r in rows]),
            "country": text([r[2] for r in rows]),
            "qty_t": np.array([r[3] for r in rows], dtype=float),
            "source": text([r[4] for r in rows]),
        },
        len(rows),
    )


def stage_production(year: int, minerals: tuple[str, ...] | None = None) -> pd.DataFrame:
    """`stage_production_table` as a DataFrame."""
    return stage_production_table(year, minerals).frame()


@functools.cache
def stage_shares() -> pd.DataFrame:
    """Published country shares of a stage where no tonnage series exists (shares, not tonnes).

    Columns: year, mineral, stage, country, share, measure, source, licence.
    """
    import pandas as pd

    from critmin.data.schema import read_commented_csv

    path = SOURCES_DIR / "stage_shares.csv"
    if not path.is_file():
        return pd.DataFrame(
            columns=["year", "mineral", "stage", "country", "share", "measure", "source"]
        )
    table = pd.DataFrame(read_commented_csv(path))
    table["year"] = pd.to_numeric(table["year"]).astype(int)
    table["share"] = pd.to_numeric(table["share"])
    return table
