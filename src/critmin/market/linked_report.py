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


def stage_table(
    solution: LinkedSolution,
    row: int = 0,
    restricting: Sequence[str] = (),
    split: Sequence[str] | None = None,
):
    """One row per stage: unit, output of the restricting exporter(s) (or of `split`) and of
    everyone else (t of the stage's unit, before and after), world price index (markets of
    `restricting` left out), consumption, margin of the other producers (price / unit cost,
    base = 1)."""
    split = restricting if split is None else split
    chain, st = solution.chain, solution.state
    records = []
    for k, stage in enumerate(chain.stages):
        sellers = chain_sellers(chain)[k]
        made_t = chain.tonnes[k].sum(axis=1)
        names = np.asarray(chain.countries)
        hit = np.isin(names[sellers], list(split))
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


def linked_zone(
    members: str | Sequence[str],
    commodity: str,
    floors: dict[str, float],
    *,
    mechanism: str = "tariff",
    with_ban: str | None = None,
    year: int | None = None,
    horizon: str = "short",
) -> tuple[pd.DataFrame, LinkedSolution]:
    """A zone of `members` with a reference-price floor at each stage named in `floors`
    ({stage: multiple of the stage's base reference price}), kept by tariffs or guaranteed to
    member producers, optionally under `with_ban`'s export ban at every stage; solved on the
    linked chain. The table says, per stage, the supply of origins other than China that
    becomes viable (t of the stage's unit) and what it costs: the fund (guarantee) and the
    floor tariffs members' buyers pay (kUSD at base prices)."""
    from critmin.market.api import in_market, resolve_countries
    from critmin.market.chain import stage_market
    from critmin.market.policies import Zone

    check_horizon(horizon)
    if not floors:
        raise InputError("give a floor at one stage at least, e.g. {'refined': 1.3}")
    item = resolve_commodity(commodity)
    target = stage_market(item.id, next(iter(floors)))
    if target is None:
        raise InputError(f"{item.id} has no stages in the supply-chain map")
    mineral = target[0]
    codes, strict = resolve_countries(members)
    banner = country(with_ban).iso3 if with_ban else None
    chain = calibrate_chain(
        mineral, resolve_year(year), None, [*codes, *([banner] if banner else [])]
    )
    per_stage = {}
    for stage in chain.stages:
        cal = chain.calibrations[chain.position(stage)]
        policy = {}
        if stage in floors:
            present = in_market(cal, codes, strict)
            policy["zone"] = Zone(present, float(floors[stage]), "multiple", mechanism)
        if banner and banner in cal.countries and (cal.value_kusd[cal.index(banner)] > 0).any():
            policy["bans"] = (Ban(banner),)
        if policy:
            per_stage[stage] = Scenario(**policy)
    unknown = set(floors) - set(chain.stages)
    if unknown:
        raise InputError(f"no {', '.join(sorted(unknown))} stage in the {mineral} chain")
    scenario = LinkedScenario(f"zone, {mineral} floors {floors} ({mechanism})", stages=per_stage)
    params = [resolve_parameters(c.countries, horizon) for c in chain.calibrations]
    solution = solve_chain(chain, [scenario], [params])
    table = stage_table(solution, 0, (banner,) if banner else (), (SUPPLIER,))
    table.columns = [c.replace("restricting_", "china_") for c in table.columns]
    st = solution.state
    fund, tariff, added = [], [], []
    for k in range(len(chain.stages)):
        x0 = chain.q0[k].sum(axis=1)
        made = st.supply[k][0] * x0
        fund.append(float(((st.producer_price[k][0] - st.world_price[k][0]) * made).sum()))
        structure = solution.structure[k]
        unfloored = st.world_price[k][0][structure.pr] * np.exp(solution_wedge(solution, k))
        wedge = np.maximum(st.landed[k][0] - unfloored, 0.0)
        tariff.append(float((wedge * st.flows[k][0] / st.landed[k][0]).sum()))
        names = np.asarray(chain.countries)
        others = (names != SUPPLIER) & (x0 > 0)
        base_t = chain.tonnes[k].sum(axis=1)
        added.append(float((base_t[others] * (st.supply[k][0][others] - 1.0)).sum()))
    table["non_supplier_supply_added_t"] = added
    table["fund_cost_kusd"] = fund
    table["floor_tariff_kusd"] = tariff
    table.attrs["scenario"] = scenario.name
    table.attrs["notes"] = list(chain.notes)
    return table, solution


def solution_wedge(solution: LinkedSolution, k: int) -> np.ndarray:
    """log (tariff × export tax) of stage k's pairs in the solved scenario (row 0)."""
    structure = solution.structure[k]
    policy = solution.policies[k][0]
    return np.log((policy.tariff * policy.export_tax)[structure.lr, structure.lv])
