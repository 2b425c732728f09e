"""Backtests of the 2023-2025 Chinese export controls on the stage markets (issue 16).

Each episode (stage_episodes.csv) calibrates the market of a mineral at one stage on the
material balances of the base year (`market.chain.calibrate_stage`), applies the measure as a
policy (a licence as a quota on China's exports, a ban on the United States as a ban) and
compares the predicted change of the composite price in the market a USGS price describes
(U.S. import unit value, a European price) with the change of that USGS price between the two
years (Mineral Commodity Summaries 2026 salient statistics, bundled in reference/
usgs_mcs2026.csv). Both horizons of the documented defaults; nothing is tuned to the outcome.
A static model cannot know stocks built ahead of a control, speculation, transshipment through
third countries, or demand moving for other reasons; docs/backtests.md states, per episode,
which of these the figures show.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import pandas as pd

from critmin.data import countries_of
from critmin.errors import InputError, UnknownNameError
from critmin.market import Ban, Quota, Scenario, resolve_parameters, simulate
from critmin.market.chain import calibrate_stage
from critmin.market.parameters import HORIZONS


def stage_episodes() -> pd.DataFrame:
    """The episodes of stage_episodes.csv."""
    text = resources.files("critmin.scenarios").joinpath("stage_episodes.csv").read_text("utf-8")
    return pd.read_csv(io.StringIO(text), comment="#", dtype={"fraction": float, "targets": str})


def usgs_price_change(mineral: str, what: str, start: int, end: int) -> float:
    """% change of one USGS salient-statistics price line between two years."""
    from critmin.data.stages import usgs_reference

    ref = usgs_reference()
    rows = ref[(ref["mineral"] == mineral) & (ref["measure"] == "price") & (ref["what"] == what)]
    by_year = rows.set_index("year")["value"]
    if start not in by_year or end not in by_year:
        raise InputError(f"no USGS price {what!r} of {mineral} for {start} and {end}")
    return float((by_year[end] / by_year[start] - 1.0) * 100.0)


def _market_index(result, market: str) -> float:
    """Base-consumption-weighted composite price index of the market(s) a price describes."""
    codes = countries_of(market) if market.lower() == "eu27" else [market]
    m = result.markets[result.markets["country"].isin(codes)]
    weight = m["consumption_base_t"]
    price = np.minimum(m["price_index"], 10.0)  # the choke price (docs/market.md)
    return float((price * weight).sum() / weight.sum())


def stage_backtest(name: str) -> pd.DataFrame:
    """One episode: observed USGS price change and predicted market price change per horizon,
    with China's predicted export cut and the calibration's notes."""
    table = stage_episodes()
    match = table[table["episode"] == name]
    if match.empty:
        raise UnknownNameError("stage backtest episode", name, list(table["episode"]))
    e = match.iloc[0]
    cal = calibrate_stage(e["mineral"], e["stage"], int(e["base_year"]))
    targets = tuple(str(e["targets"]).split("|")) if isinstance(e["targets"], str) else None
    if e["policy"] == "ban":
        policy = {"bans": (Ban(e["exporter"], targets),)}
    else:
        policy = {"quotas": (Quota(e["exporter"], float(e["fraction"]), targets, True),)}
    scenario = Scenario(name=name, **policy)
    observed = usgs_price_change(
        e["mineral"], e["price_what"], int(e["price_from"]), int(e["price_to"])
    )
    row = {
        "episode": name,
        "mineral": e["mineral"],
        "stage": e["stage"],
        "base_year": int(e["base_year"]),
        "policy": e["policy"]
        + (f" {e['fraction']:g}" if e["policy"] == "quota" else "")
        + (f" to {e['targets']}" if targets else ""),
        "market": e["market"],
        "observed_price_pct": observed,
        "price_years": f"{int(e['price_from'])}-{int(e['price_to'])}",
    }
    for horizon in HORIZONS:
        result = simulate(cal, scenario, resolve_parameters(cal.countries, horizon))
        row[f"predicted_{horizon}_pct"] = (_market_index(result, e["market"]) - 1.0) * 100.0
        flows = result.flows
        china = flows[(flows["exporter"] == e["exporter"]) & (flows["importer"] != e["exporter"])]
        row[f"china_exports_{horizon}_pct"] = float(
            (china["flow_t"].sum() / china["base_t"].sum() - 1.0) * 100.0
        )
    row["notes"] = " | ".join(cal.notes)
    return pd.DataFrame([row])


def stage_backtests() -> pd.DataFrame:
    """Every episode of stage_episodes.csv."""
    return pd.concat(
        [stage_backtest(name) for name in stage_episodes()["episode"]], ignore_index=True
    )
