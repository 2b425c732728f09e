"""Stockpile sizing: the smallest stockpile that keeps a bloc's shortfall (or price spike)
under a target with a given probability, over the ensemble's disruption distribution.

A release is shared among the bloc's markets in proportion to their base consumption and
solved with the market model. For every draw the release it needs is the first point of a
fixed grid (0 … `max_months` of the bloc's consumption) at which the metric meets the
target; the stockpile is the smallest grid point covering a `probability` share of draws
(the `probability`-quantile of the needed releases). The grid and the draws are the same
whatever the target, so a stricter target (or a higher probability) never gets a smaller
stockpile. This is the
chance-constrained sizing of strategic stocks (e.g. the IEA's 90-days-of-net-imports rule
asks the same question for oil with a fixed cover instead of a probability).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from critmin.errors import InputError
from critmin.market import Calibration, Parameters, Scenario
from critmin.scenarios.chunks import in_process, solve_chunk
from critmin.scenarios.ensemble import (
    CHUNK,
    MAX_DRAWS,
    base_policy,
    candidate_suppliers,
    draw,
)
from critmin.scenarios.hazard import HazardModel

METRICS = ("shortfall", "price")


@dataclass
class StockpileResult:
    """The sized stockpile and the probability curve it was read from."""

    tonnes: float | None
    months: float | None
    cost_musd: float | None
    probability: float
    target: float
    metric: str
    curve: pd.DataFrame  # stock_t, months, probability

    def to_dict(self) -> dict:
        return {
            "stockpile_t": self.tonnes,
            "months_of_consumption": self.months,
            "cost_musd_at_base_prices": self.cost_musd,
            "probability": self.probability,
            "target": self.target,
            "metric": self.metric,
            "curve": self.curve.to_dict(orient="records"),
        }


def size_stockpile(
    cal: Calibration,
    params: Parameters,
    bloc: Sequence[str],
    target: float,
    probability: float = 0.95,
    metric: str = "shortfall",
    draws: int = 300,
    seed: int = 0,
    hazard: HazardModel | None = None,
    scenario: Scenario | None = None,
    max_months: float = 12.0,
    grid: int = 41,
    executor: Callable | None = None,
    progress: Callable[[int], None] | None = None,
) -> StockpileResult:
    """Smallest stockpile with P(bloc shortfall % ≤ target) ≥ probability (metric
    `shortfall`, target in % of base consumption) or P(bloc price index ≤ target) ≥
    probability (metric `price`, target as a ratio to base, e.g. 1.5)."""
    if metric not in METRICS:
        raise InputError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not 0.0 < probability < 1.0:
        raise InputError(f"probability must be in (0, 1), got {probability}")
    if metric == "shortfall" and not 0.0 <= target < 100.0:
        raise InputError(f"shortfall target is a % of consumption in [0, 100), got {target}")
    if metric == "price" and target < 1.0:
        raise InputError(f"price target is a price index ≥ 1 (base = 1), got {target}")
    if not 1 <= draws <= MAX_DRAWS or not 2 <= grid <= 401 or not 0 < max_months <= 120:
        raise InputError("draws must be 1..100,000, grid 2..401 and max_months in (0, 120]")
    hazard = hazard or HazardModel()
    scenario = scenario or Scenario("stockpile")
    inside = np.isin(cal.countries, list(bloc))
    if not inside.any():
        raise InputError(f"no member of the bloc trades {cal.commodity} in {cal.year}")
    consumption_t = cal.absorption_t()
    bloc_t = float(consumption_t[inside].sum())
    suppliers = candidate_suppliers(cal)
    rng = np.random.default_rng(seed)
    event, banned, fraction, multipliers = draw(
        rng, hazard.probabilities(suppliers, cal.year), hazard, draws
    )
    # Draws without an event and without policies are the base: no shortfall, price 1.
    solve_rows = np.arange(draws) if _has_policies(scenario) else np.flatnonzero(event.any(axis=1))
    policy, offset = base_policy(cal, scenario, suppliers, None)
    rows = np.array([cal.index(s) for s in suppliers], dtype=int)
    stocks_t = np.linspace(0.0, bloc_t * max_months / 12.0, grid)
    share = np.where(inside, consumption_t, 0.0) / bloc_t
    kusd_per_t = np.divide(
        cal.absorption_kusd(), consumption_t, out=np.zeros(cal.size), where=consumption_t > 0
    )
    weights = np.where(inside, consumption_t, 0.0)
    # needed[d]: the first grid point whose release meets the target in draw d. Grid points
    # are tried in order on the draws not yet satisfied, so a release is only ever as large
    # as a draw needs (the manager releases to cover a shortfall, not to flood the market).
    needed = np.full(draws, grid)
    calm = 0.0 if metric == "shortfall" else 1.0
    needed[np.setdiff1d(np.arange(draws), solve_rows)] = 0 if calm <= target else grid
    pending = solve_rows
    for g, stock_t in enumerate(stocks_t):
        if not len(pending):
            break
        release = stock_t * share * kusd_per_t + policy.stock
        shared = (cal, policy, params, rows, np.arange(cal.size), offset)
        chunks = [
            (
                banned[part], fraction[part], multipliers[part],
                np.broadcast_to(release, (len(part), cal.size)),
            )
            for part in np.array_split(pending, max(1, int(np.ceil(len(pending) / CHUNK))))
        ]  # fmt: skip
        outputs = (executor or in_process)(solve_chunk, shared, chunks, None)
        consumed = np.concatenate([o["consumed"] for o in outputs])
        composite = np.concatenate([o["composite"] for o in outputs])
        if metric == "shortfall":
            values = (1.0 - (consumed * weights).sum(axis=1) / bloc_t) * 100.0
        else:
            values = (np.minimum(composite, 1e6) * weights).sum(axis=1) / bloc_t
        met = values <= target + 1e-12
        needed[pending[met]] = g
        pending = pending[~met]
        if progress:
            progress(g + 1)
    chance = np.array([(needed <= g).mean() for g in range(grid)])
    curve = pd.DataFrame(
        {"stock_t": stocks_t, "months": stocks_t / bloc_t * 12.0, "probability": chance}
    )
    feasible = np.flatnonzero(chance >= probability)
    if not len(feasible):
        return StockpileResult(None, None, None, probability, target, metric, curve)
    tonnes = float(stocks_t[feasible[0]])
    unit_value = float(cal.absorption_kusd()[inside].sum() / bloc_t) * 1000.0  # USD/t
    return StockpileResult(
        tonnes=tonnes,
        months=tonnes / bloc_t * 12.0,
        cost_musd=tonnes * unit_value / 1e6,
        probability=probability,
        target=target,
        metric=metric,
        curve=curve,
    )


def _has_policies(scenario: Scenario) -> bool:
    return bool(
        scenario.tariffs
        or scenario.export_taxes
        or scenario.bans
        or scenario.quotas
        or scenario.zone
        or scenario.releases
    )
