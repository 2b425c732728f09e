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
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pandas as pd

from critmin.data.stages import STAGES, check_stage, stages_of, supply_stages
from critmin.errors import InputError
from critmin.market.calibration import Calibration, calibrate_from_tables

PRODUCTION_YEARS = range(2018, 2025)  # years with production series in the bundle


def _balances(year: int, basis: str, mineral: str):
    """The balances of one mineral: a market is one mineral's, and its balances are the rows
    of that mineral in the whole build (a test holds them equal) at a tenth of the cost."""
    from critmin.metrics.balances import balances  # the metrics layer reads the data once

    return balances(year, basis, (mineral,))


def _sheet(year: int, mineral: str) -> pd.DataFrame:
    """The content balance sheet of one mineral in `year`, built once per year, mineral and
    dataset: a brief reads it several times (callers filter it and never change it)."""
    from critmin.data.catalog import dataset_stamp

    return _sheet_of(int(year), mineral, dataset_stamp())


@functools.lru_cache(maxsize=64)
def _sheet_of(year: int, mineral: str, _stamp: str) -> pd.DataFrame:
    from critmin.metrics.balances import balance_sheet

    return balance_sheet(_balances(year, "content", mineral))


def stage_unit(mineral: str, stage: str) -> str:
    """The content unit of a stage (supply_stages.csv), e.g. `t REO`."""
    rows = supply_stages()
    match = rows[(rows["mineral"] == mineral) & (rows["stage"] == stage)]
    if match.empty:
        raise InputError(
            f"{mineral} has no {stage} stage in the supply-chain map "
            f"(stages: {', '.join(stages_of(mineral)) or 'none'})"
        )
    return str(match.iloc[0]["unit"])


def _reported(mineral: str, stage: str, year: int) -> pd.Series | None:
    """Production of the stage by country in `year` where its series has figures, else None."""
    made = _balances(year, "content", mineral).stage_made(mineral, stage)
    made = made[made["amount"].notna()]
    if made.empty or not (made["amount"] > 0).any():
        return None
    return made.groupby("country")["amount"].sum()


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
    docstring."""
    notes: list[str] = []
    source = supply_stages().set_index(["mineral", "stage"]).loc[(mineral, stage)]
    source = str(source["production_source"])
    sheet = _sheet(year, mineral)
    here = sheet[(sheet["mineral"] == mineral) & (sheet["stage"] == stage)].set_index("country")
    if source != "none":
        used = production_series_year(mineral, stage, year)
        if used is None:
            notes.append(
                f"{mineral} {stage}: no production figures in any year of the series; "
                "domestic markets are missing and the market covers traded flows only"
            )
            return pd.Series(dtype=float), notes, None
        made = _reported(mineral, stage, used)
        if used != year:
            notes.append(
                f"{mineral} {stage}: production of {used} stands for {year} (the series covers "
                f"{min(PRODUCTION_YEARS)}-{max(PRODUCTION_YEARS)}; nearest year with figures)"
            )
        return made, notes, used
    implied = here["production"].fillna(0.0)
    position = STAGES.index(stage)
    upstream = STAGES[position - 1] if position > 0 else ""
    if stage == "refined" and upstream in stages_of(mineral):
        if stage_unit(mineral, upstream) == stage_unit(mineral, stage):
            ore, ore_notes, ore_year = stage_production(mineral, upstream, year)
            ore_sheet = sheet[(sheet["mineral"] == mineral) & (sheet["stage"] == upstream)]
            ore_sheet = ore_sheet.set_index("country")
            available = ore.reindex(ore.index.union(ore_sheet.index)).fillna(0.0)
            available = available.add(ore_sheet["imports"], fill_value=0.0)
            available = available.sub(ore_sheet["exports"], fill_value=0.0).clip(lower=0.0)
            if (available > 0).any():
                derived = available.reindex(available.index.union(implied.index)).fillna(0.0)
                made = np.maximum(derived, implied.reindex(derived.index).fillna(0.0))
                notes.extend(ore_notes)
                notes.append(
                    f"{mineral} {stage}: no country series; production = max(ore available "
                    f"(mine output + ore imports − ore exports, {stage_unit(mineral, stage)}), "
                    "exports − imports)"
                )
                return made[made > 0], notes, ore_year
        else:
            notes.append(
                f"{mineral} {stage}: ore counted in {stage_unit(mineral, upstream)}, the stage in "
                f"{stage_unit(mineral, stage)}: production not derived from ore"
            )
    notes.append(
        f"{mineral} {stage}: no country series; production is the least trade implies, "
        "max(0, exports − imports), so domestic absorption of producers is a lower bound"
    )
    return implied[implied > 0], notes, year


def stage_tables(mineral: str, stage: str, year: int) -> pd.DataFrame:
    """Flows (exporter, importer, value_kusd, qty_t) of one stage from the content and value
    balances. A flow with tonnes and no value is valued at its origin's unit value (the world's
    where the origin reports none); the reverse is done by `calibrate_from_tables`."""
    content = _balances(year, "content", mineral).stage_flows(mineral, stage)
    value = _balances(year, "value", mineral).stage_flows(mineral, stage)
    keys = ["exporter", "importer"]
    flows = pd.merge(
        value.rename(columns={"amount": "value_kusd"}),
        content.rename(columns={"amount": "qty_t"}),
        on=keys,
        how="outer",
    )
    flows.loc[~(flows["qty_t"] > 0), "qty_t"] = np.nan
    missing = ~(flows["value_kusd"] > 0) & (flows["qty_t"] > 0)
    if missing.any():
        priced = flows[(flows["value_kusd"] > 0) & (flows["qty_t"] > 0)]
        if priced.empty:
            raise InputError(f"no {mineral} {stage} trade in {year} reports both value and tonnes")
        world = priced["value_kusd"].sum() / priced["qty_t"].sum()
        by_origin = (
            priced.groupby("exporter")["value_kusd"].sum()
            / priced.groupby("exporter")["qty_t"].sum()
        )
        unit = flows.loc[missing, "exporter"].map(by_origin).fillna(world)
        flows.loc[missing, "value_kusd"] = flows.loc[missing, "qty_t"] * unit
    return flows.fillna({"value_kusd": 0.0})


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
    flows = stage_tables(mineral, stage, int(year))
    if flows.empty:
        raise InputError(
            f"no {mineral} {stage} trade in {year} in the bundled data; the market cannot be "
            "calibrated (try another --stage or --year)"
        )
    made, notes, used = stage_production(mineral, stage, int(year))
    production = pd.DataFrame({"country": made.index, "qty_t": made.to_numpy(dtype=float)})
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
    from critmin.data import query

    stages = supply_stages()
    known = set(zip(stages["mineral"], stages["stage"], strict=True))
    out: dict[str, tuple[str, str]] = {}
    for _, row in stages.iterrows():
        source = str(row["production_source"])
        if source.startswith("wmd:") and source[4:] != row["mineral"]:
            out[source[4:]] = (row["mineral"], row["stage"])  # bauxite → aluminium mine
    table = query("SELECT commodity, stage FROM {commodities}")
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
