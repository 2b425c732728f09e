"""A restriction on a linked chain by name (`linked_shock`) and its answer stage by stage.

The chain and its solver are in `linked.py`; this module turns a solution into one row per
stage, each figure in the stage's own unit, with the world price index of `indices.py` (the
same definition as every single-stage result) — so that a ban at one stage shows what it does
upstream and downstream (Francois & Hall 2003 for the Armington markets; linked as in
`linked.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from critmin.data import commodity as resolve_commodity
from critmin.data import country
from critmin.errors import InputError
from critmin.market.indices import WORLD_PRICE_INDEX, world_price_index
from critmin.market.linked import (
    LinkedScenario,
    LinkedSolution,
    calibrate_chain,
    chain_sellers,
    solve_chain,
)
from critmin.market.parameters import check_horizon, resolve_parameters
from critmin.market.policies import Ban, Scenario
from critmin.metrics.dependence import resolve_year

SUPPLIER = "CHN"


def stage_table(solution: LinkedSolution, row: int = 0, restricting: Sequence[str] = ()):
    """One row per stage: unit, output of the restricting exporter(s) and of everyone else
    (t of the stage's unit, before and after), world price index, consumption, unit-cost and
    margin changes of the other producers (price / unit cost, base = 1)."""
    chain, st = solution.chain, solution.state
    records = []
    for k, stage in enumerate(chain.stages):
        sellers = chain_sellers(chain)[k]
        made_t = chain.tonnes[k].sum(axis=1)
        names = np.asarray(chain.countries)
        hit = np.isin(names[sellers], list(restricting))
        out = st.supply[k][row, sellers]
        base_t = made_t[sellers]
        others = ~hit
        cal = chain.calibrations[k]
        at = np.array([chain.countries.index(c) for c in cal.countries])
        composite = st.composite[k][row, at]
        cutoff = resolve_parameters(cal.countries, "short").cutoff_price
        d0 = cal.absorption_kusd()
        volume = st.demand_volume[k][row, at]
        margin = st.world_price[k][row, sellers] / st.unit_cost[k][row, sellers]
        weights = base_t[others]
        records.append(
            {
                "stage": stage,
                "unit": chain.units[k],
                "restricting_output_base_t": float(base_t[hit].sum()),
                "restricting_output_t": float((base_t * out)[hit].sum()),
                "others_output_base_t": float(weights.sum()),
                "others_output_t": float((base_t * out)[others].sum()),
                "world_price_index": float(
                    world_price_index(d0, composite, cutoff, cal.countries, restricting)
                ),
                "consumption_index": float((d0 * volume).sum() / d0.sum()),
                "others_margin_index": float((weights * margin[others]).sum() / weights.sum())
                if weights.sum() > 0
                else None,
            }
        )
    frame = pd.DataFrame(records)
    frame.attrs["world_price_index"] = WORLD_PRICE_INDEX
    return frame


def linked_shock(
    exporter: str,
    commodity: str,
    stage: str,
    *,
    targets: str | Sequence[str] | None = None,
    year: int | None = None,
    horizon: str = "short",
    production_quota: float | None = None,
    stages: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, LinkedSolution]:
    """`exporter` bans its exports of `commodity` at `stage` (to `targets`, or everyone),
    solved on the mineral's linked chain; the per-stage table and the solution.

    >>> cm.linked_shock("CHN", "rare_earths", "product")  # doctest: +SKIP
    """
    from critmin.market.api import resolve_countries
    from critmin.market.chain import stage_market

    check_horizon(horizon)
    item = resolve_commodity(commodity)
    target = stage_market(item.id, stage)
    if target is None:
        raise InputError(f"{item.id} has no stages in the supply-chain map")
    mineral, stage = target
    source = country(exporter).iso3
    codes, strict = resolve_countries(targets)
    chain = calibrate_chain(mineral, resolve_year(year), stages, [source, *(codes or ())])
    position = chain.position(stage)
    cal = chain.calibrations[position]
    if codes is not None and not strict:
        codes = tuple(c for c in codes if c in cal.countries) or None
    scenario = LinkedScenario(
        f"{source} bans {mineral} ({stage}) exports",
        stages={stage: Scenario(bans=(Ban(source, codes, strict),))},
        production_quotas={stage: {source: production_quota}} if production_quota else {},
    )
    params = [resolve_parameters(c.countries, horizon) for c in chain.calibrations]
    solution = solve_chain(chain, [scenario], [params])
    table = stage_table(solution, 0, (source,))
    table.attrs["scenario"] = scenario.name
    table.attrs["notes"] = list(chain.notes)
    return table, solution
