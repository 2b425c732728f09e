"""Invariants of the market model on random small markets (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critmin.market import Ban, Scenario, Zone, simulate, simulate_batch
from tests.market.conftest import market, params

CODES = ["AAA", "BBB", "CCC", "DDD", "EEE"]


@st.composite
def markets(draw, price_range=(100.0, 50_000.0), outsider=False):
    """3-5 countries, random positive flows (some absent), production for some, random
    unit values (USD/t within `price_range`) and elasticities. With `outsider` the first
    country only exports (it buys and makes nothing) and origins are gross substitutes."""
    size = draw(st.integers(3, 5))
    codes = CODES[:size]
    flows = {}
    for e in codes:
        for i in codes:
            if e != i and (not outsider or i != codes[0]) and draw(st.booleans()):
                flows[(e, i)] = draw(st.floats(1.0, 1000.0))
    flows[(codes[0], codes[1])] = flows.get((codes[0], codes[1]), 10.0)
    made = {
        c: draw(st.floats(1.0, 2000.0))  # tonnes; data never hold 1e-142 t
        for c in codes
        if draw(st.booleans()) and not (outsider and c == codes[0])
    }
    prices = {c: draw(st.floats(*price_range)) for c in codes}
    cal = market(flows, made, prices)
    sigma = draw(st.floats(1.2, 8.0))
    elasticities = {
        "sigma": sigma,
        "eta": draw(st.floats(0.05, min(2.0, sigma) if outsider else 2.0)),
        "supply": draw(st.floats(0.05, 2.0)),
    }
    return cal, elasticities


# Floors are relative to the world reference price; unit values spread 5-fold (not 500-fold)
# keep the floors' ratios to origins' prices within what a policy would set.
FLOOR_MARKETS = markets(price_range=(1000.0, 5000.0))


# Repeatable by default (tests/conftest.py); HYPOTHESIS_PROFILE=explore searches afresh.
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(markets(), st.data())
def test_a_ban_never_raises_the_banned_flow_and_prices_stay_positive(case, data):
    cal, el = case
    exporters = [
        c
        for c, s in zip(cal.countries, cal.sales_kusd() - np.diag(cal.value_kusd), strict=True)
        if s > 0
    ]
    exporter = data.draw(st.sampled_from(exporters))
    buyers = [
        cal.countries[v]
        for v in np.flatnonzero(cal.value_kusd[cal.index(exporter)])
        if cal.countries[v] != exporter
    ]
    targets = tuple(data.draw(st.lists(st.sampled_from(buyers), min_size=1, unique=True)))
    result = simulate(
        cal,
        Scenario("ban", bans=(Ban(exporter, targets),)),
        params(cal, el["sigma"], el["eta"], el["supply"]),
    )
    banned = result.flows[(result.flows.exporter == exporter) & result.flows.importer.isin(targets)]
    assert (banned["flow_t"] <= banned["base_t"]).all()
    assert (banned["flow_t"] == 0).all()
    assert (result.prices["price_index"] > 0).all()
    assert (result.flows["landed_price_index"] > 0).all()
    assert result.summary["max_residual"] < 1e-10


@SETTINGS
@given(FLOOR_MARKETS, st.floats(0.5, 3.0), st.floats(1.01, 2.0), st.data())
def test_a_higher_guaranteed_floor_never_lowers_producer_prices_at_the_floor(
    case, low, factor, data
):
    # Members paid the floor under the lower floor get at least the higher floor. (A member
    # selling above the floor can lose: see the crowding-out test below.)
    cal, el = case
    producers = [c for c, s in zip(cal.countries, cal.sales_kusd(), strict=True) if s > 0]
    members = tuple(data.draw(st.lists(st.sampled_from(producers), min_size=1, unique=True)))
    p = params(cal, el["sigma"], el["eta"], el["supply"])
    scenarios = [
        Scenario(f"floor {f}", zone=Zone(members, f, mechanism="guarantee"))
        for f in (low, low * factor)
    ]
    batch = simulate_batch(cal, scenarios, p)
    first, second = (batch[i].prices.set_index("country") for i in (0, 1))
    at_floor = [m for m in members if first.loc[m, "fund_kusd"] > 0]
    before = first.loc[at_floor, "producer_price_usd_t"]
    assert (second.loc[at_floor, "producer_price_usd_t"] >= before * (1 - 1e-9)).all()
    if len(members) == 1:  # a single member always gains from a higher floor
        m = members[0]
        assert second.loc[m, "producer_price_usd_t"] >= first.loc[m, "producer_price_usd_t"] * (
            1 - 1e-9
        )


def test_a_higher_floor_can_crowd_out_a_member_selling_above_it():
    # Two members compete in one market. CHEAP's floor binds and its subsidised supply
    # expands with the floor; DEAR sells above the floor and its market price falls.
    cal = market(
        {("CHP", "BUY"): 50.0, ("DER", "BUY"): 50.0},
        prices={"CHP": 1000.0, "DER": 5000.0},
    )
    p = params(cal, 3.0, 0.5, 0.8)
    low, high = (
        simulate(cal, Scenario(str(f), zone=Zone(("CHP", "DER"), f, mechanism="guarantee")), p)
        for f in (1.0, 1.2)  # reference price 3,000 USD/t: binds for CHP only
    )
    dear_low = low.prices.set_index("country").loc["DER", "producer_price_usd_t"]
    dear_high = high.prices.set_index("country").loc["DER", "producer_price_usd_t"]
    assert dear_high < dear_low
    assert high.summary["fund_cost_kusd"] > low.summary["fund_cost_kusd"] > 0


@SETTINGS
@given(
    markets(price_range=(1000.0, 5000.0), outsider=True), st.floats(0.5, 3.0), st.floats(1.01, 2.0)
)
def test_a_higher_tariff_floor_never_lowers_member_producer_prices(case, low, factor):
    # With the tariff mechanism the floor protects member markets against an outsider. If
    # the outsider buys nothing (so no member sells outside the zone) and origins are gross
    # substitutes (σ ≥ η), a higher floor can only raise demand for members' goods. Outside
    # those conditions a member can lose: from trade diversion into the markets it sells to
    # outside the zone, or because with η > σ a dearer import shrinks the whole market.
    # The choke beyond the cut-off price makes demand elastic (σ + 1 > σ), so the property
    # is checked on the regular demand curve: cut-off far away.
    cal, el = case
    outsider = cal.countries[0]
    members = tuple(c for c in cal.countries if c != outsider)
    p = params(cal, el["sigma"], el["eta"], el["supply"], cutoff=1e6)
    scenarios = [Scenario(f"floor {f}", zone=Zone(members, f)) for f in (low, low * factor)]
    batch = simulate_batch(cal, scenarios, p)
    first, second = (batch[i].prices.set_index("country") for i in (0, 1))
    producers = [c for c in members if c in first.index]
    rise = second.loc[producers, "price_index"] - first.loc[producers, "price_index"]
    assert (rise >= -1e-9).all()


@SETTINGS
@given(markets(), st.data())
def test_shares_of_purchases_stay_within_zero_and_one(case, data):
    cal, el = case
    members = tuple(
        data.draw(st.lists(st.sampled_from(list(cal.countries)), min_size=1, unique=True))
    )
    result = simulate(
        cal,
        Scenario("zone", zone=Zone(members, 1.5)),
        params(cal, el["sigma"], el["eta"], el["supply"]),
    )
    for key in ("bloc_self_sufficiency", "bloc_self_sufficiency_base"):
        value = result.summary.get(key)
        assert value is None or -1e-12 <= value <= 1 + 1e-12
    assert (result.markets["shortfall_pct"] <= 100 + 1e-9).all()
