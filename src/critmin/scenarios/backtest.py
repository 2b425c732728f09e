"""Backtests: calibrate the market model on the year before a real export restriction,
apply the restriction as a policy, and compare the predicted changes with the data.

The comparison is of percentage changes from the base year to the outcome year: the
restricting exporter's export volume and unit value, the other exporters' export volume
and unit value, and world trade volume. The data move for reasons the model leaves out
(demand cycles, stocks, smuggling, new capacity), so the point is the sign and the order of
magnitude, reported as they come (docs/backtests.md).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from critmin.errors import InputError, UnknownNameError
from critmin.market import Ban, Calibration, Quota, Scenario, resolve_parameters
from critmin.market import simulate as simulate_market
from critmin.market.chain import calibrate_market
from critmin.market.parameters import HORIZONS

if TYPE_CHECKING:
    import pandas as pd

FIGURES = [
    ("exporter_volume_pct", "restricting exporter: export volume"),
    ("exporter_unit_value_pct", "restricting exporter: export unit value"),
    ("others_volume_pct", "other exporters: export volume"),
    ("others_unit_value_pct", "other exporters: export unit value"),
    ("world_trade_volume_pct", "world trade volume"),
    # Not in trade data (observed –): what the restriction does to the exporter's own market,
    # its consumers' composite price (issue 16: must not collapse under an export quota).
    ("exporter_domestic_price_pct", "restricting exporter: domestic price"),
]


def episodes() -> pd.DataFrame:
    """The bundled backtest episodes (scenarios/episodes.csv) joined to their measure."""
    import pandas as pd  # on first use: `critmin.scenarios` binds this module at import

    text = resources.files("critmin.scenarios").joinpath("episodes.csv").read_text("utf-8")
    table = pd.read_csv(
        io.StringIO(text), comment="#", dtype={"fraction": float, "production_quota": float}
    )
    table["aggregate"] = table["aggregate"].fillna(False).astype(bool)
    from critmin.data import export_controls

    measures = export_controls().set_index("measure")
    unknown = sorted(set(table["measure"]) - set(measures.index))
    if unknown:
        raise InputError(f"episodes refer to unknown export-control measures: {unknown}")
    table["source"] = table["measure"].map(measures["source"])
    table["start"] = table["measure"].map(measures["start"])
    return table


def trade_changes(cal: Calibration, exporter: str, flows_t, value_kusd) -> dict[str, float]:
    """Export volume (t) and value (kUSD) of `exporter` and of everybody else, foreign flows
    only, from (N, N) matrices over `cal.countries`."""
    foreign = ~np.eye(cal.size, dtype=bool)
    row = np.asarray(cal.countries) == exporter
    mine = foreign & row[:, None]
    others = foreign & ~row[:, None]
    return {
        "exporter_t": float(flows_t[mine].sum()),
        "exporter_kusd": float(value_kusd[mine].sum()),
        "others_t": float(flows_t[others].sum()),
        "others_kusd": float(value_kusd[others].sum()),
    }


def _figures(base: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def pct(new: float, old: float) -> float:
        return (new / old - 1.0) * 100.0 if old > 0 else float("nan")

    def unit(d: dict[str, float], who: str) -> float:
        return d[f"{who}_kusd"] / d[f"{who}_t"] if d[f"{who}_t"] > 0 else float("nan")

    return {
        "exporter_volume_pct": pct(after["exporter_t"], base["exporter_t"]),
        "exporter_unit_value_pct": pct(unit(after, "exporter"), unit(base, "exporter")),
        "others_volume_pct": pct(after["others_t"], base["others_t"]),
        "others_unit_value_pct": pct(unit(after, "others"), unit(base, "others")),
        "world_trade_volume_pct": pct(
            after["exporter_t"] + after["others_t"], base["exporter_t"] + base["others_t"]
        ),
    }


@dataclass
class Backtest:
    """Predicted (per horizon) and observed changes for one episode."""

    episode: dict
    table: pd.DataFrame  # figure, observed_pct, predicted_short_pct, predicted_long_pct

    def to_dict(self) -> dict:
        return {
            "episode": {
                k: (v.item() if hasattr(v, "item") else v) for k, v in self.episode.items()
            },
            "figures": self.table.to_dict(orient="records"),
        }


def backtest(name: str) -> Backtest:
    """Run the episode `name` (see `episodes()`): model both horizons, compare with data."""
    import pandas as pd

    table = episodes()
    match = table[table["episode"] == name]
    if match.empty:
        raise UnknownNameError("backtest episode", name, list(table["episode"]))
    episode = match.iloc[0].to_dict()
    exporter, commodity = episode["exporter"], episode["commodity"]
    # The stage market of the balances (issue 16): what the commodity's HS codes are a stage of.
    base = calibrate_market(commodity, int(episode["base_year"]))
    outcome = calibrate_market(commodity, int(episode["outcome_year"]))
    if episode["policy"] == "ban":
        policy = {"bans": (Ban(exporter),)}
    else:
        policy = {
            "quotas": (Quota(exporter, float(episode["fraction"]), None, episode["aggregate"]),)
        }
    made = episode.get("production_quota")
    if made is not None and np.isfinite(made):
        policy["production_quotas"] = {exporter: float(made)}
    scenario = Scenario(name=name, **policy)

    observed = _figures(
        trade_changes(base, exporter, base.tonnes, base.value_kusd),
        trade_changes(outcome, exporter, outcome.tonnes, outcome.value_kusd),
    )
    rows = {
        key: {"figure": label, "observed_pct": observed.get(key, float("nan"))}
        for key, label in FIGURES
    }
    for horizon in HORIZONS:
        result = simulate_market(base, scenario, resolve_parameters(base.countries, horizon))
        flows = result.flows
        position = {c: i for i, c in enumerate(base.countries)}
        rows_idx = flows["exporter"].map(position).to_numpy()
        cols_idx = flows["importer"].map(position).to_numpy()
        tonnes = np.zeros((base.size, base.size))
        value = np.zeros((base.size, base.size))
        tonnes[rows_idx, cols_idx] = flows["flow_t"].to_numpy()
        # Export values at the new FOB prices (the landed price: no tariffs in these cases).
        value[rows_idx, cols_idx] = (
            flows["flow_t"].to_numpy() * flows["landed_price_usd_t"].to_numpy() / 1000.0
        )
        predicted = _figures(
            trade_changes(base, exporter, base.tonnes, base.value_kusd),
            trade_changes(base, exporter, tonnes, value),
        )
        home = result.markets[result.markets["country"] == exporter]["price_index"]
        predicted["exporter_domestic_price_pct"] = (
            float(home.iloc[0] - 1.0) * 100.0 if len(home) else float("nan")
        )
        for key, _ in FIGURES:
            rows[key][f"predicted_{horizon}_pct"] = predicted[key]
    frame = pd.DataFrame(rows.values())
    for horizon in HORIZONS:
        predicted = frame[f"predicted_{horizon}_pct"]
        same = np.sign(frame["observed_pct"]) == np.sign(predicted)
        known = frame["observed_pct"].notna() & predicted.notna()
        frame[f"same_sign_{horizon}"] = same.where(known, None)
    return Backtest(episode=episode, table=frame)
