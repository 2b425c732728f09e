"""Calibration of the market of one mineral at one stage of its supply chain, on the material
balances (`critmin.metrics.balances`) — the flows of that stage only, never a mix of stages.

The base is the GSIM calibration of Francois & Hall (2003, "Global Simulation Analysis of
Industry-Level Trade Policy", version 3.0) as in `calibration.py`: bilateral trade with domestic
absorption on the diagonal. What this module adds is where the diagonal comes from:

- **Trade** of the stage: content basis (t of the stage's unit: t REO, t Ga ...) for tonnes,
  value basis (thousand USD) for values; a flow with a value and no tonnes gets its tonnes from
  its origin's unit value (and the reverse), as in BACI's own practice.
- **Production** of the stage from its series (World Mining Data, USGS). Where the stage has no
  country series (`none` in supply_stages.csv) the balances give the least production trade
  implies, max(0, exports − imports); for a refined stage whose mine stage is counted in the
  same unit, production is instead **derived from the ore available** to the country,
  mine production + ore imports − ore exports (a content balance: a tonne of oxide in, a tonne
  out; recovery losses are not in the data), whichever is larger. This is what keeps China's
  separation output — and its domestic absorption of refined rare earths — at its real order
  of magnitude (≈ 260 kt REO in 2023) instead of the ≈ 0 that its trade alone implies. A
  product stage (magnets) is not derived from refined output (only part of it becomes magnets,
  and no series says which part): its producers' domestic absorption is a lower bound, and the
  notes say so.
- **Domestic absorption** of each country = production − exports where positive.
- **Years before a production series** (World Mining Data starts in 2018 in the bundle, the
  USGS world tables give 2024): production is taken from the nearest year of the series that
  has figures for the stage — the first one for an earlier base year — and the calibration says
  so in its notes and in `production_year`. This is a documented fallback, not an estimate of
  that year's output (USGS Mineral Commodity Summaries 2011 put China's 2009 rare-earth mine
  output at 129 kt REO; World Mining Data's 2018 figure used in its place is 120 kt). A stage
  with no production figure in any year and nothing to derive it from is calibrated on its
  traded flows only and the notes say that its domestic markets are missing.

The calibration reads the balances' `Table`s and never imports pandas (issue 18: a model
command would spend 0.35 s on it); `stage_tables` and `stage_production` give the same tables
as a DataFrame and a Series for the Python API.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.columns import Table, frozen, group_rows, group_sums
from critmin.data.stages import STAGES, check_stage, stages_of, supply_stages_table
from critmin.errors import InputError
from critmin.market.calibration import Calibration, calibrate_from_tables

if TYPE_CHECKING:
    import pandas as pd

PRODUCTION_YEARS = range(2018, 2025)  # years with production series in the bundle
KEYS = ["exporter", "importer"]


def _balances(year: int, basis: str, mineral: str):
    """The balances of one mineral: a market is one mineral's, and its balances are the rows
    of that mineral in the whole build (a test holds them equal) at a tenth of the cost."""
    from critmin.metrics.balances import balances  # the metrics layer reads the data once

    return balances(year, basis, (mineral,))


def _rows(table: Table, mineral: str, stage: str) -> Table:
    """The rows of one mineral and stage."""
    return table.where((table["mineral"] == mineral) & (table["stage"] == stage))


def _sheet(year: int, mineral: str) -> Table:
    """The content balance sheet of one mineral in `year` (the rows of `balances.balance_sheet`:
    mineral, stage, country, production, imports, exports ...), built once per year, mineral
    and dataset: a brief reads it several times (callers filter it and never change it)."""
    from critmin.data.catalog import dataset_stamp

    return _sheet_of(int(year), mineral, dataset_stamp())


@functools.lru_cache(maxsize=64)
def _sheet_of(year: int, mineral: str, _stamp: str) -> Table:
    from critmin.metrics.stage_grid import balance_grid, sheet_rows

    bal = _balances(year, "content", mineral)
    grid = balance_grid(bal.coverage_table, bal.flow_table, bal.production_table, bal.basis)
    return frozen(sheet_rows(grid[0]))


def _stage_row(mineral: str, stage: str) -> dict[str, object]:
    """The supply_stages.csv row of a stage (unit, production_source ...)."""
    match = _rows(supply_stages_table(), mineral, stage)
    if not len(match):
        raise InputError(
            f"{mineral} has no {stage} stage in the supply-chain map "
            f"(stages: {', '.join(stages_of(mineral)) or 'none'})"
        )
    return match.records()[0]


def stage_unit(mineral: str, stage: str) -> str:
    """The content unit of a stage (supply_stages.csv), e.g. `t REO`."""
    return str(_stage_row(mineral, stage)["unit"])


def _reported(mineral: str, stage: str, year: int) -> Table | None:
    """Production of the stage by country in `year` (country, qty_t in the stage's unit,
    sorted by country) where its series has figures, else None."""
    made = _rows(_balances(year, "content", mineral).production_table, mineral, stage)
    amount = np.asarray(made["amount"], dtype=float)
    known = ~np.isnan(amount)
    if not (amount[known] > 0).any():
        return None
    country, qty_t = group_sums(made["country"][known], amount[known])  # sources add up
    return Table({"country": country, "qty_t": qty_t})


@functools.lru_cache(maxsize=256)
def production_series_year(mineral: str, stage: str, year: int) -> int | None:
    """The year whose production figures stand for `year` at this stage: `year` itself if the
    series covers it, else the nearest covered year (the earlier one on a tie), None if none."""
    years = sorted(PRODUCTION_YEARS, key=lambda y: (abs(y - year), y))
    for candidate in years:
        if _reported(mineral, stage, candidate) is not None:
            return candidate
    return None


def stage_production(
    mineral: str, stage: str, year: int
) -> tuple[pd.Series, list[str], int | None]:
    """(production by country in the stage's unit, notes, year of the production figures).

    Reported where the stage has a series; for a refined stage without one, the larger of what
    its trade implies and the ore available to the country (same unit only); see the module
    docstring. `_made` gives the same as a Table (country, qty_t), without pandas."""
    import pandas as pd

    made, notes, used = _made(mineral, stage, year)
    index = pd.Index(made["country"].tolist(), name="country", dtype=object)
    return pd.Series(made["qty_t"], index=index, dtype=float), notes, used


def _made(mineral: str, stage: str, year: int) -> tuple[Table, list[str], int | None]:
    """`stage_production` as a Table: country (sorted), qty_t."""
    notes: list[str] = []
    source = str(_stage_row(mineral, stage)["production_source"])
    sheet = _sheet(year, mineral)
    here = _rows(sheet, mineral, stage)
    if source != "none":
        used = production_series_year(mineral, stage, year)
        if used is None:
            notes.append(
                f"{mineral} {stage}: no production figures in any year of the series; "
                "domestic markets are missing and the market covers traded flows only"
            )
            return Table({"country": np.empty(0, dtype=object), "qty_t": np.empty(0)}), notes, None
        made = _reported(mineral, stage, used)
        if used != year:
            notes.append(
                f"{mineral} {stage}: production of {used} stands for {year} (the series covers "
                f"{min(PRODUCTION_YEARS)}-{max(PRODUCTION_YEARS)}; nearest year with figures)"
            )
        return made, notes, used
    implied = np.where(np.isnan(here["production"]), 0.0, here["production"])  # fillna(0)
    position = STAGES.index(stage)
    upstream = STAGES[position - 1] if position > 0 else ""
    if stage == "refined" and upstream in stages_of(mineral):
        if stage_unit(mineral, upstream) == stage_unit(mineral, stage):
            ore, ore_notes, ore_year = _made(mineral, upstream, year)
            ore_sheet = _rows(sheet, mineral, upstream)
            # Dense over the countries of the ore, the ore sheet and this stage's sheet (sorted,
            # as pandas aligns the Series); a country absent from one of them counts 0 there.
            countries = np.unique(
                np.concatenate([t["country"].astype(str) for t in (ore, ore_sheet, here)])
            )

            def spread(table: Table, name: str) -> np.ndarray:
                out = np.zeros(len(countries))
                out[np.searchsorted(countries, table["country"].astype(str))] = table[name]
                return out

            available = spread(ore, "qty_t") + spread(ore_sheet, "imports")
            available = np.maximum(available - spread(ore_sheet, "exports"), 0.0)
            if (available > 0).any():
                made = np.maximum(available, spread(here.assign(production=implied), "production"))
                notes.extend(ore_notes)
                notes.append(
                    f"{mineral} {stage}: no country series; production = max(ore available "
                    f"(mine output + ore imports − ore exports, {stage_unit(mineral, stage)}), "
                    "exports − imports)"
                )
                chosen = made > 0
                table = Table({"country": countries[chosen].astype(object), "qty_t": made[chosen]})
                return table, notes, ore_year
        else:
            notes.append(
                f"{mineral} {stage}: ore counted in {stage_unit(mineral, upstream)}, the stage in "
                f"{stage_unit(mineral, stage)}: production not derived from ore"
            )
    notes.append(
        f"{mineral} {stage}: no country series; production is the least trade implies, "
        "max(0, exports − imports), so domestic absorption of producers is a lower bound"
    )
    chosen = implied > 0
    return Table({"country": here["country"][chosen], "qty_t": implied[chosen]}), notes, year


def stage_tables(mineral: str, stage: str, year: int) -> pd.DataFrame:
    """Flows (exporter, importer, value_kusd, qty_t) of one stage from the content and value
    balances. A flow with tonnes and no value is valued at its origin's unit value (the world's
    where the origin reports none); the reverse is done by `calibrate_from_tables`.
    `_flows` gives the same as a Table, without pandas."""
    return _flows(mineral, stage, year).frame()


def _flows(mineral: str, stage: str, year: int) -> Table:
    """`stage_tables` as a Table, rows sorted by exporter and importer."""
    value = _rows(_balances(year, "value", mineral).flow_table, mineral, stage)
    content = _rows(_balances(year, "content", mineral).flow_table, mineral, stage)
    # The outer join of the two bases on (exporter, importer), in sorted key order as pandas'
    # outer merge gives it (each basis has one row per pair: the balances sum them).
    both = {key: np.concatenate([value[key], content[key]]) for key in KEYS}
    if not len(both["exporter"]):
        return Table({**both, "value_kusd": np.empty(0), "qty_t": np.empty(0)})
    code, first = group_rows([both[key] for key in KEYS])
    value_kusd, qty_t = np.full(len(first), np.nan), np.full(len(first), np.nan)
    value_kusd[code[: len(value)]] = value["amount"]
    qty_t[code[len(value) :]] = content["amount"]
    qty_t[~(qty_t > 0)] = np.nan
    exporter = both["exporter"][first]
    missing = ~(value_kusd > 0) & (qty_t > 0)
    if missing.any():
        priced = (value_kusd > 0) & (qty_t > 0)
        if not priced.any():
            raise InputError(f"no {mineral} {stage} trade in {year} reports both value and tonnes")
        # Sums add as pandas adds them (ndarray.sum is pandas' Series.sum).
        world = value_kusd[priced].sum() / qty_t[priced].sum()
        paid = np.column_stack([value_kusd[priced], qty_t[priced]])
        origins, sums = group_sums(exporter[priced], paid)
        origins = origins.astype(str)  # sorted (group order), at least one: `priced.any()`
        wanted = exporter[missing].astype(str)
        at = np.minimum(np.searchsorted(origins, wanted), len(origins) - 1)
        unit = np.where(origins[at] == wanted, (sums[:, 0] / sums[:, 1])[at], world)
        value_kusd[missing] = qty_t[missing] * unit
    value_kusd[np.isnan(value_kusd)] = 0.0
    columns = {"exporter": exporter, "importer": both["importer"][first]}
    return Table({**columns, "value_kusd": value_kusd, "qty_t": qty_t})


def calibrate_stage(
    mineral: str,
    stage: str,
    year: int,
    rest_of_world_share: float = 0.0,
    keep: Iterable[str] = (),
) -> Calibration:
    """Calibrate the market of `mineral` at `stage` in `year` on the material balances (see the
    module docstring). Tonnes are in the stage's content unit (`Calibration.unit`)."""
    stage = check_stage(stage)
    unit = stage_unit(mineral, stage)
    flows = _flows(mineral, stage, int(year))
    if not len(flows):
        raise InputError(
            f"no {mineral} {stage} trade in {year} in the bundled data; the market cannot be "
            "calibrated (try another --stage or --year)"
        )
    production, notes, used = _made(mineral, stage, int(year))
    if not (flows["qty_t"] > 0).any():
        raise InputError(
            f"no {mineral} {stage} trade in {year} reports tonnes, so the market has no base "
            "prices (the processed-stage table has values only for 2022); try --year 2024"
        )
    cal = calibrate_from_tables(mineral, int(year), flows, production, rest_of_world_share, keep)
    return replace(
        cal,
        stage=stage,
        unit=unit,
        production_year=used,
        notes=(*notes, *cal.notes),
    )


LEGACY_STAGE = {"processing": "refined", "extraction": "mine"}


@functools.cache
def _stage_of_commodity() -> dict[str, tuple[str, str]]:
    from critmin.data.catalog import query_arrays

    stages = supply_stages_table()
    known = set(zip(stages["mineral"], stages["stage"], strict=True))
    out: dict[str, tuple[str, str]] = {}
    for row in stages.records():
        source = str(row["production_source"])
        if source.startswith("wmd:") and source[4:] != row["mineral"]:
            out[source[4:]] = (row["mineral"], row["stage"])  # bauxite → aluminium mine
    table = query_arrays("SELECT commodity, stage FROM {commodities}")
    for commodity, legacy in zip(table["commodity"], table["stage"], strict=True):
        stage = LEGACY_STAGE.get(str(legacy))
        if (commodity, stage) in known:
            out[commodity] = (commodity, stage)
        elif commodity not in out and any(m == commodity for m, _ in known):
            out[commodity] = (commodity, stages_of(commodity)[0])
    return out


def stage_market(commodity: str, stage: str | None) -> tuple[str, str] | None:
    """(mineral, stage) whose balances calibrate the market of `commodity` (a commodity id):
    the named stage, or by default the stage the commodity's HS bundle sits at (rare_earths →
    refined, nickel → mine, bauxite → aluminium mine); None for a commodity outside the
    supply-chain map (calibrated on its HS bundle, `calibration.calibrate`)."""
    mapped = _stage_of_commodity().get(commodity)
    if stage is None:
        return mapped
    stage = check_stage(stage)
    mineral = mapped[0] if mapped else commodity
    stage_unit(mineral, stage)  # one clear line for a stage the mineral does not have
    return mineral, stage


def calibrate_market(
    commodity: str,
    year: int,
    rest_of_world_share: float = 0.0,
    keep: Iterable[str] = (),
    stage: str | None = None,
) -> Calibration:
    """The market every model command solves: `commodity` (a commodity id) at `stage` on the
    stage balances; by default the stage of the commodity's HS bundle, and the HS bundle itself
    (`calibration.calibrate`) for a commodity outside the supply-chain map or whose default
    stage has no trade that year (said in the notes). A stage named and not calibratable is
    refused."""
    from critmin.market.calibration import calibrate

    target = stage_market(commodity, stage)
    if target is None:
        return calibrate(commodity, year, rest_of_world_share, keep)
    try:
        return calibrate_stage(target[0], target[1], year, rest_of_world_share, keep)
    except InputError as error:
        if stage is not None:
            raise
        cal = calibrate(commodity, year, rest_of_world_share, keep)
        note = f"calibrated on the HS bundle of {commodity}, not a stage: {error}"
        return replace(cal, notes=(note, *cal.notes))
