"""The outcome of one market scenario: prices, flows, shortfalls, welfare, bloc figures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from critmin.market.calibration import Calibration
from critmin.market.indices import (
    WORLD_PRICE_INDEX,
    producer_price_index,
    restricting_exporters,
    world_price_index,
)
from critmin.market.parameters import Parameters
from critmin.market.policies import PolicyArrays, Scenario
from critmin.market.solver import LOG_PRICE_BOUND
from critmin.market.welfare import (
    consumer_surplus_change,
    price_for_demand,
    producer_surplus_change,
    wedges,
)

if TYPE_CHECKING:
    import pandas as pd

SUPPLIER = "CHN"  # whose share inside the bloc the summary reports


def _pct(new: np.ndarray, base: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, (new / base - 1.0) * 100.0, np.nan)


@dataclass
class MarketResult:
    """Solved scenario. Frames: `prices` (per origin), `markets` (per importing market),
    `flows` (per base flow); `summary` holds totals, bloc figures and convergence."""

    calibration: Calibration
    scenario: Scenario
    prices: pd.DataFrame
    markets: pd.DataFrame
    flows: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_solution(
        cls,
        cal: Calibration,
        scenario: Scenario,
        policy: PolicyArrays,
        params: Parameters,
        solution: Any,
        row: int,
    ) -> MarketResult:
        import pandas as pd  # on first use: a Monte Carlo draw never builds a MarketResult

        state = solution.state
        dense = solution.problem.dense
        world_price = state.world_price[row]
        landed = dense(state.landed[row], 1.0)
        unfloored = dense(state.unfloored[row], 1.0)
        flows = dense(state.flows[row])
        producer_price = state.producer_price[row]
        supply = state.supply[row]
        q0 = cal.value_kusd
        x0, d0 = cal.sales_kusd(), cal.absorption_kusd()
        tonnes_per_kusd = np.divide(cal.tonnes, q0, out=np.zeros_like(q0), where=q0 > 0)
        flows_t = flows * tonnes_per_kusd
        pair_rent = np.zeros_like(q0)
        if len(policy.quota_fraction):
            on = policy.quota_id >= 0
            pair_rent[on] = np.expm1(solution.u[row][policy.quota_id[on]])

        alive = (policy.open & (q0 > 0)).any(axis=0)
        stock_ratio = np.divide(policy.stock, d0, out=np.zeros_like(d0), where=d0 > 0)
        # Consumption is measured as the CES composite (GSIM quantity units: tonnes at the
        # base mix of origins), so origins' different grades do not distort the totals. It
        # is demand at the composite price (imports + the release used), or the release
        # itself where that is larger: a release beyond what consumers buy at the import
        # price is sold at the lower price that clears it (imports fall to the 1 % trace
        # the solver keeps; docs/market.md).
        demand = np.where(alive, state.demand_index[row], 0.0)
        consumed = np.maximum(demand, stock_ratio)
        flooded = stock_ratio > demand
        with np.errstate(divide="ignore", over="ignore"):
            clearing = price_for_demand(
                np.maximum(stock_ratio, 1e-300),
                params.demand_elasticity,
                params.armington_sigma,
                params.cutoff_price,
            )
        composite = np.where(flooded, clearing, np.where(alive, state.composite[row], np.inf))
        used_ratio = np.where(flooded, stock_ratio, demand - state.purchases[row])
        stock_used = np.maximum(used_ratio, 0.0)
        consumption_base = cal.absorption_t()
        consumption = consumption_base * consumed
        stock_used_t = consumption_base * stock_used
        shortfall = consumption_base - consumption

        cs = consumer_surplus_change(
            d0, composite, params.demand_elasticity, params.armington_sigma, params.cutoff_price
        )
        selling = x0 > 0
        selling &= (policy.open & (q0 > 0) & alive[None, :]).any(axis=1)
        ps = producer_surplus_change(
            x0, producer_price, params.supply_elasticity, policy.capacity, selling
        )
        transfer = wedges(
            world_price,
            policy.export_tax,
            policy.tariff,
            pair_rent,
            landed,
            unfloored,
            flows,
        )
        fund = (producer_price - world_price) * supply
        stock_revenue = stock_used * d0 * np.where(np.isfinite(composite), composite, 0.0)

        names = np.asarray(cal.countries)
        price = cal.base_price_usd_t
        supply_base_t = cal.tonnes.sum(axis=1)
        supply_t = np.where(
            selling, supply_base_t * np.divide(supply, x0, out=np.zeros_like(x0), where=x0 > 0), 0.0
        )
        prices = pd.DataFrame(
            {
                "country": names,
                "base_price_usd_t": price,
                "price_index": world_price,
                "price_usd_t": price * world_price,
                "producer_price_usd_t": price * producer_price,
                "supply_base_t": supply_base_t,
                "supply_t": supply_t,
                "supply_change_pct": _pct(supply_t, supply_base_t),
                "producer_surplus_kusd": ps,
                "export_tax_kusd": transfer["export_tax"].sum(axis=1),
                "quota_rent_kusd": transfer["quota_rent"].sum(axis=1),
                "fund_kusd": fund,
            }
        )[x0 > 0]
        tariff_revenue = transfer["tariff"].sum(axis=0) + transfer["floor_tariff"].sum(axis=0)
        markets = pd.DataFrame(
            {
                "country": names,
                "consumption_base_t": consumption_base,
                "consumption_t": consumption,
                "shortfall_t": shortfall,
                "shortfall_pct": (1.0 - consumed) * 100.0,
                "price_index": composite,
                "stock_release_t": stock_used_t,
                "consumer_surplus_kusd": cs,
                "tariff_revenue_kusd": tariff_revenue,
                "cut_off": ~alive & (d0 > 0),
            }
        )[d0 > 0]
        rows, cols = np.nonzero(q0 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            floor_wedge = landed / unfloored - 1.0
        flow_frame = pd.DataFrame(
            {
                "exporter": names[rows],
                "importer": names[cols],
                "base_t": cal.tonnes[rows, cols],
                "flow_t": flows_t[rows, cols],
                "change_pct": _pct(flows_t[rows, cols], cal.tonnes[rows, cols]),
                "landed_price_index": landed[rows, cols],
                "landed_price_usd_t": price[rows] * landed[rows, cols],
                "floor_tariff_pct": floor_wedge[rows, cols] * 100.0,
                "quota_rent_pct": pair_rent[rows, cols] * 100.0,
                "banned": ~policy.open[rows, cols],
            }
        )
        totals = {
            "consumer_surplus_kusd": float(cs[d0 > 0].sum()),
            "producer_surplus_kusd": float(ps[x0 > 0].sum()),
            "tariff_revenue_kusd": float(tariff_revenue.sum()),
            "export_tax_kusd": float(transfer["export_tax"].sum()),
            "quota_rent_kusd": float(transfer["quota_rent"].sum()),
            "fund_cost_kusd": float(fund.sum()),
            "stock_revenue_kusd": float(stock_revenue.sum()),
        }
        totals["net_welfare_kusd"] = (
            totals["consumer_surplus_kusd"]
            + totals["producer_surplus_kusd"]
            + totals["tariff_revenue_kusd"]
            + totals["export_tax_kusd"]
            + totals["quota_rent_kusd"]
            + totals["stock_revenue_kusd"]
            - totals["fund_cost_kusd"]
        )
        summary = {
            "scenario": scenario.name,
            "commodity": cal.commodity,
            "stage": cal.stage,  # None: the HS bundle of the commodity, not a stage
            "unit": cal.unit,  # what the tonnes of the tables count (t REO, t Ga ...)
            "production_year": cal.production_year,
            "year": cal.year,
            "horizon": params.horizon,
            "parameters": params.as_dict(cal.countries),
            "countries": cal.size,
            "rest_of_world": list(cal.rest_of_world),
            "reference_price_usd_t": cal.reference_price_usd_t,
            "world_price_index": float(
                world_price_index(
                    d0,
                    composite,
                    params.cutoff_price,
                    cal.countries,
                    restricting_exporters(scenario),
                )
            ),
            "world_price_index_definition": WORLD_PRICE_INDEX,
            "producer_price_index": float(producer_price_index(x0, producer_price)),
            "world_consumption_base_t": float(consumption_base.sum()),
            "world_consumption_t": float(consumption.sum()),
            **totals,
            **_bloc_figures(cal, policy, flows, consumption, consumption_base),
            **_zone_figures(cal, scenario, policy, prices, cs, landed, unfloored, totals),
            "iterations": int(solution.iterations[row]),
            "max_residual": float(solution.residual[row]),
            "notes": [*cal.notes, *policy.notes, *_priced_out_notes(names, world_price, selling)],
        }
        return cls(
            cal,
            scenario,
            prices.reset_index(drop=True),
            markets.reset_index(drop=True),
            flow_frame,
            summary,
        )

    def to_dict(self) -> dict[str, Any]:
        """Summary and the three tables as JSON-ready records (NaN → null)."""

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return json.loads(frame.to_json(orient="records"))

        return {
            "summary": json.loads(json.dumps(self.summary, default=float)),
            "prices": records(self.prices),
            "markets": records(self.markets),
            "flows": records(self.flows),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<MarketResult {s['scenario']!r} {s['commodity']} {s['year']} ({s['horizon']}): "
            f"world price ×{s['world_price_index']:.3f}, consumption "
            f"{s['world_consumption_t']:,.0f} t of {s['world_consumption_base_t']:,.0f} t, "
            f"net welfare {s['net_welfare_kusd']:,.0f} kUSD>"
        )

    def _repr_html_(self) -> str:
        import pandas as pd

        keys = [k for k, v in self.summary.items() if isinstance(v, int | float | str)]
        head = pd.DataFrame({"value": [self.summary[k] for k in keys]}, index=keys)
        worst = self.markets.sort_values("shortfall_t", ascending=False).head(10)
        return (
            f"<h4>{self.summary['scenario']}</h4>"
            + head.to_html()
            + "<h5>Largest shortfalls</h5>"
            + worst.to_html(index=False)
        )


def _zone_figures(
    cal: Calibration,
    scenario: Scenario,
    policy: PolicyArrays,
    prices: pd.DataFrame,
    cs: np.ndarray,
    landed: np.ndarray,
    unfloored: np.ndarray,
    totals: dict[str, float],
) -> dict[str, Any]:
    """What a zone's floor does at this stage: the supply of origins other than the supplier
    (China) that becomes viable (t of the stage's unit, and as a share of their base supply),
    what it costs (members' consumer-surplus loss + fund − floor-tariff revenue, kUSD and per
    tonne added), and where the floor binds — the origins whose goods it makes dearer in the
    zone, with their base price against the floor (an origin selling above the floor is not
    touched, so the zone's purchases can shift towards it, China included)."""
    if scenario.zone is None:
        return {}
    others = prices[prices["country"] != SUPPLIER]
    added = float((others["supply_t"] - others["supply_base_t"]).sum())
    base = float(others["supply_base_t"].sum())
    members = np.isin(cal.countries, list(policy.members))
    d0 = cal.absorption_kusd()
    member_cs = float(cs[members & (d0 > 0)].sum())
    tariff = float(totals["tariff_revenue_kusd"])
    cost = -member_cs + totals["fund_cost_kusd"] - tariff
    floor = scenario.zone.floor
    floor_usd = (
        floor * cal.reference_price_usd_t if scenario.zone.floor_unit == "multiple" else floor
    )
    raised = (landed > unfloored * (1 + 1e-12)) & policy.open
    binding = sorted(str(c) for c in np.asarray(cal.countries)[raised.any(axis=1)])
    out: dict[str, Any] = {
        "zone_stage": cal.stage,
        "zone_floor_usd_t": float(floor_usd),
        "zone_non_supplier_supply_added_t": added,
        "zone_non_supplier_supply_added_pct_of_their_base": added / base * 100 if base else None,
        "zone_members_consumer_surplus_kusd": member_cs,
        "zone_cost_kusd": float(cost),
        "zone_cost_usd_per_t_added": float(cost * 1000 / added) if added > 0 else None,
        "zone_floor_binds_on": binding,
    }
    if SUPPLIER in cal.countries:
        out["zone_supplier_base_price_usd_t"] = float(
            cal.base_price_usd_t[cal.countries.index(SUPPLIER)]
        )
        out["zone_supplier_above_floor"] = bool(out["zone_supplier_base_price_usd_t"] >= floor_usd)
    return out


def _bloc_figures(
    cal: Calibration,
    policy: PolicyArrays,
    flows: np.ndarray,
    consumption: np.ndarray,
    consumption_base: np.ndarray,
) -> dict[str, Any]:
    """Bloc figures: shortfall, self-sufficiency (share of the bloc's purchases that come from
    bloc origins) and the supplier's (China's) share, before and after. Shares are of
    base-price value (GSIM quantity units), which weighs each origin's grade consistently."""
    if not policy.bloc:
        return {"bloc": []}
    inside = np.isin(cal.countries, [c if c in cal.countries else "ROW" for c in policy.bloc])
    base_flows = cal.value_kusd

    def share(matrix: np.ndarray, rows: np.ndarray) -> float | None:
        bought = matrix[:, inside].sum()
        return float(matrix[np.ix_(rows, inside)].sum() / bought) if bought > 0 else None

    base_used, used = consumption_base[inside].sum(), consumption[inside].sum()
    out: dict[str, Any] = {
        "bloc": list(policy.bloc),
        "bloc_consumption_base_t": float(base_used),
        "bloc_consumption_t": float(used),
        "bloc_shortfall_pct": float((1 - used / base_used) * 100) if base_used > 0 else None,
        "bloc_self_sufficiency_base": share(base_flows, inside),
        "bloc_self_sufficiency": share(flows, inside),
    }
    if SUPPLIER in cal.countries:
        supplier = np.asarray(cal.countries) == SUPPLIER
        out["supplier"] = SUPPLIER
        out["bloc_supplier_share_base"] = share(base_flows, supplier)
        out["bloc_supplier_share"] = share(flows, supplier)
    return out


# A world price at the solver's lower bound (`solver._at_bound`, e^-600 within roundoff): the
# seller is priced out, and its index is that corner, not a price anyone quotes.
PRICED_OUT = float(np.exp(1.0 - LOG_PRICE_BOUND))


def _priced_out_notes(names: np.ndarray, world_price: np.ndarray, selling: np.ndarray) -> list[str]:
    """A note per seller priced out (world price index below PRICED_OUT)."""
    out = names[(world_price < PRICED_OUT) & np.asarray(selling, bool)]
    return [
        f"{code} is priced out: no positive price clears its market (a floor or tariff far above "
        "its own price), so it sells next to nothing and its price index is ~0 (e^-600, the "
        "solver's bound), not a quoted price"
        for code in out
    ]
