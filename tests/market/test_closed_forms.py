"""The market model against hand-derived closed forms on markets small enough to solve
on paper (hats = ratios to base; base prices 1)."""

from __future__ import annotations

import numpy as np
import pytest

from critmin.errors import InputError
from critmin.market import Ban, Quota, Release, Scenario, Tariff, simulate, simulate_batch
from critmin.market.calibration import calibrate
from critmin.market.parameters import resolve_parameters
from tests.market.conftest import market, params


def test_no_policy_reproduces_the_bundled_base_exactly():
    cal = calibrate("rare_earths", 2023)
    result = simulate(cal, Scenario("base"), resolve_parameters(cal.countries, "long"))
    assert np.abs(result.prices["price_index"] - 1).max() < 1e-9
    assert np.abs(result.markets["price_index"] - 1).max() < 1e-9
    flows = result.flows
    assert np.allclose(flows["flow_t"], flows["base_t"], rtol=1e-9, atol=0)
    assert result.summary["iterations"] == 0
    assert abs(result.summary["net_welfare_kusd"]) < 1e-6


def test_two_country_tariff(one_route):
    # A → B only. B's tariff t: landed p = P*(1+t); demand q = p^-η, supply X = P*^e, so
    # P* = (1+t)^(−η/(η+e)) and the consumer price (1+t)^(e/(η+e)).
    t, eta, e = 0.25, 0.5, 0.8
    cal = one_route
    scenario = Scenario("tariff", tariffs=(Tariff(("BBB",), t, ("AAA",)),))
    result = simulate(cal, scenario, params(cal, eta=eta, supply=e))
    world = (1 + t) ** (-eta / (eta + e))
    consumer = (1 + t) ** (e / (eta + e))
    prices = result.prices.set_index("country")
    markets = result.markets.set_index("country")
    assert prices.loc["AAA", "price_index"] == pytest.approx(world, rel=1e-10)
    assert markets.loc["BBB", "price_index"] == pytest.approx(consumer, rel=1e-10)
    q = consumer**-eta  # quantity hat
    assert result.flows["flow_t"].iloc[0] == pytest.approx(100 * q, rel=1e-10)
    base_kusd = 100.0  # 100 t at 1,000 USD/t
    revenue = t * world * q * base_kusd
    assert markets.loc["BBB", "tariff_revenue_kusd"] == pytest.approx(revenue, rel=1e-9)
    cs = -base_kusd * (consumer ** (1 - eta) - 1) / (1 - eta)
    ps = base_kusd * (world ** (1 + e) - 1) / (1 + e)
    assert markets.loc["BBB", "consumer_surplus_kusd"] == pytest.approx(cs, rel=1e-9)
    assert prices.loc["AAA", "producer_surplus_kusd"] == pytest.approx(ps, rel=1e-9)
    # Welfare signs: consumers and producers lose, the government gains, the world loses
    # (the deadweight triangle).
    assert cs < 0 and ps < 0 and revenue > 0
    assert result.summary["net_welfare_kusd"] < 0


def test_ban_with_one_remaining_supplier(two_sources):
    # V buys θ_A = 0.7 from A, θ_B = 0.3 from B. A is banned: P_V = θ_B^(1/(1−σ)) p_B and
    # clearing p_B^(e+η) = θ_B^((σ−η)/(1−σ)).
    sigma, eta, e = 3.0, 0.5, 0.8
    cal = two_sources
    scenario = Scenario("ban", bans=(Ban("AAA"),))
    result = simulate(cal, scenario, params(cal, sigma, eta, e))
    theta_b = 0.3
    p_b = theta_b ** ((sigma - eta) / ((1 - sigma) * (e + eta)))
    composite = theta_b ** (1 / (1 - sigma)) * p_b
    prices = result.prices.set_index("country")
    assert prices.loc["BBB", "price_index"] == pytest.approx(p_b, rel=1e-10)
    assert result.markets["price_index"].iloc[0] == pytest.approx(composite, rel=1e-10)
    flows = result.flows.set_index("exporter")
    assert flows.loc["AAA", "flow_t"] == 0.0 and flows.loc["AAA", "banned"]
    assert flows.loc["BBB", "flow_t"] == pytest.approx(30 * p_b**e, rel=1e-10)
    # A can sell nowhere: it loses its whole producer surplus X0/(1+e).
    assert prices.loc["AAA", "producer_surplus_kusd"] == pytest.approx(-70 / (1 + e))
    assert prices.loc["BBB", "producer_surplus_kusd"] > 0
    assert result.markets["consumer_surplus_kusd"].iloc[0] < 0


def test_binding_quota_has_a_positive_rent(one_route):
    # Cap at φ: q = φ, so the consumer price is φ^(−1/η), the producer price φ^(1/e) and the
    # rent wedge 1 + τ = φ^(−1/η − 1/e).
    phi, eta, e = 0.6, 0.5, 0.8
    cal = one_route
    result = simulate(
        cal, Scenario("quota", quotas=(Quota("AAA", phi),)), params(cal, eta=eta, supply=e)
    )
    producer = phi ** (1 / e)
    wedge = phi ** (-1 / eta - 1 / e)
    flow = result.flows.iloc[0]
    assert flow["flow_t"] == pytest.approx(100 * phi, rel=1e-10)
    assert flow["quota_rent_pct"] == pytest.approx((wedge - 1) * 100, rel=1e-9)
    prices = result.prices.set_index("country")
    assert prices.loc["AAA", "price_index"] == pytest.approx(producer, rel=1e-10)
    rent = (wedge - 1) * producer * phi * 100
    assert prices.loc["AAA", "quota_rent_kusd"] == pytest.approx(rent, rel=1e-9)
    assert rent > 0


def test_slack_quota_has_no_rent_and_changes_nothing(one_route):
    # A 25 % tariff already cuts the flow to q = (1+t)^(−ηe/(η+e)) ≈ 0.93; a quota at 0.99
    # does not bind: rent 0 and the tariff's closed form unchanged.
    t, eta, e = 0.25, 0.5, 0.8
    cal = one_route
    tariff = Tariff(("BBB",), t, ("AAA",))
    alone = simulate(cal, Scenario("t", tariffs=(tariff,)), params(cal, eta=eta, supply=e))
    both = simulate(
        cal,
        Scenario("t+q", tariffs=(tariff,), quotas=(Quota("AAA", 0.99),)),
        params(cal, eta=eta, supply=e),
    )
    assert both.flows["quota_rent_pct"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert both.summary["quota_rent_kusd"] == pytest.approx(0.0, abs=1e-9)
    assert both.flows["flow_t"].iloc[0] == pytest.approx(alone.flows["flow_t"].iloc[0], rel=1e-12)
    assert both.flows["flow_t"].iloc[0] < 99.0


def test_homogeneity_in_the_scale_of_the_base():
    # Multiplying every base flow (or every unit value) by k leaves all hats unchanged.
    flows = {("AAA", "VVV"): 70.0, ("BBB", "VVV"): 30.0, ("AAA", "BBB"): 20.0, ("BBB", "AAA"): 5.0}
    made = {"AAA": 150.0, "BBB": 60.0}
    base = market(flows, made)
    scaled = market({k: v * 1000 for k, v in flows.items()}, {k: v * 1000 for k, v in made.items()})
    repriced = market(flows, made, prices={"AAA": 7000.0, "BBB": 7000.0})
    scenario = Scenario("mix", bans=(Ban("AAA", ("VVV",)),), tariffs=(Tariff(("AAA",), 0.1),))
    results = [simulate(c, scenario, params(c)) for c in (base, scaled, repriced)]
    for other in results[1:]:
        assert np.allclose(
            other.prices["price_index"], results[0].prices["price_index"], rtol=1e-10
        )
        assert np.allclose(
            other.markets["shortfall_pct"],
            results[0].markets["shortfall_pct"],
            rtol=1e-9,
            atol=1e-9,
        )
    assert np.allclose(results[1].flows["flow_t"], results[0].flows["flow_t"] * 1000, rtol=1e-9)


def test_markets_clear_under_combined_policies():
    cal = calibrate("graphite", 2023)
    scenario = Scenario(
        "mixed",
        bans=(Ban("CHN", ("USA", "JPN")),),
        quotas=(Quota("MOZ", 0.5, aggregate=True),),
        tariffs=(Tariff(("DEU", "FRA"), 0.05),),
    )
    batch = simulate_batch(cal, [scenario], resolve_parameters(cal.countries, "short"))
    solution, row = batch.solutions[0]
    state = solution.state
    flows = solution.problem.dense(state.flows[row])
    sales = flows.sum(axis=1)
    selling = cal.sales_kusd() > 0
    # Every origin sells exactly what it supplies (base-price kUSD).
    assert np.allclose(sales[selling], state.supply[row][selling], rtol=1e-10, atol=1e-9)
    # The aggregate quota binds: MOZ's exports sum to half their base (base-price value).
    moz = cal.countries.index("MOZ")
    foreign = np.arange(cal.size) != moz
    exported = flows[moz, foreign].sum() / cal.value_kusd[moz, foreign].sum()
    assert exported == pytest.approx(0.5, rel=1e-9)
    result = batch[0]
    assert result.summary["quota_rent_kusd"] > 0
    assert (result.prices["price_index"] > 0).all()


def test_capacity_cap_binds_and_producer_surplus_follows_the_kinked_supply(two_sources):
    # Ban A: B's price rises to p_B (closed form above) and it would supply p_B^e × base;
    # capped at 1.05 × base, its supply stops there and the price must rise further.
    sigma, eta, e = 3.0, 0.5, 0.8
    cal = two_sources
    free = simulate(cal, Scenario("ban", bans=(Ban("AAA"),)), params(cal, sigma, eta, e))
    capped = simulate(
        cal,
        Scenario("ban+cap", bans=(Ban("AAA"),), capacity={"BBB": 1.05}),
        params(cal, sigma, eta, e),
    )
    free_b = free.prices.set_index("country").loc["BBB"]
    capped_b = capped.prices.set_index("country").loc["BBB"]
    assert free_b["supply_t"] > 30 * 1.05
    assert capped_b["supply_t"] == pytest.approx(30 * 1.05, rel=1e-10)
    assert capped_b["price_index"] > free_b["price_index"]
    # ΔPS = X0 [(p_K^(1+e) − 1)/(1+e) + K (p − p_K)], p_K = K^(1/e).
    p, cap = capped_b["price_index"], 1.05
    kink = cap ** (1 / e)
    expected = 30 * ((kink ** (1 + e) - 1) / (1 + e) + cap * (p - kink))
    assert capped_b["producer_surplus_kusd"] == pytest.approx(expected, rel=1e-9)


def test_a_stockpile_release_lowers_the_members_price_and_shortfall(two_sources):
    cal = two_sources
    p = params(cal)
    ban = Scenario("ban", bans=(Ban("AAA"),))
    released = Scenario("ban+stock", bans=(Ban("AAA"),), releases=(Release("VVV", 20.0),))
    without, with_stock = simulate(cal, ban, p), simulate(cal, released, p)
    before = without.markets.iloc[0]
    after = with_stock.markets.iloc[0]
    assert after["stock_release_t"] == pytest.approx(20.0, rel=1e-3)  # soft minimum at 99 % cover
    assert after["price_index"] < before["price_index"]
    assert after["shortfall_t"] < before["shortfall_t"]
    assert with_stock.summary["stock_revenue_kusd"] > 0


def test_small_countries_merge_into_the_rest_of_the_world():
    full = calibrate("rare_earths", 2023)
    merged = calibrate("rare_earths", 2023, rest_of_world_share=0.001, keep=["ISL"])
    assert "ROW" in merged.countries and "ISL" in merged.countries
    assert merged.size < full.size
    assert merged.value_kusd.sum() == pytest.approx(full.value_kusd.sum(), rel=1e-12)
    assert merged.tonnes.sum() == pytest.approx(full.tonnes.sum(), rel=1e-12)
    assert merged.index(merged.rest_of_world[0]) == merged.countries.index("ROW")
    result = simulate(
        merged, Scenario("ban", bans=(Ban("CHN"),)), resolve_parameters(merged.countries)
    )
    assert result.summary["max_residual"] < 1e-10


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (Scenario("huge", releases=(Release("VVV", 1e30),)), "stockpile release to VVV (t)"),
        (Scenario("huge", capacity={"BBB": 1e300}), "capacity of BBB must be in [1, 1000]"),
    ],
)
def test_implausibly_large_releases_and_capacities_are_refused(two_sources, scenario, message):
    """Found by fuzzing: a 1e308-tonne release overflowed to an infinite stock in the solve."""
    import re

    from critmin.errors import InputError

    with pytest.raises(InputError, match=re.escape(message)):
        simulate(two_sources, scenario, params(two_sources))


def test_production_quota_closed_form(one_route):
    # Output capped at K < 1 of base (issue 16, China's 2010-2011 mining quota): the flow is K,
    # the price K^(−1/η) (inelastic demand), producer surplus K (P − P_K) + (P_K^(1+e) − 1)/(1+e).
    k, eta, e = 0.7, 0.5, 0.8
    cal = one_route
    result = simulate(
        cal,
        Scenario("made", production_quotas={"AAA": k}),
        params(cal, eta=eta, supply=e),
    )
    price = k ** (-1 / eta)
    assert result.flows.iloc[0]["flow_t"] == pytest.approx(100 * k, rel=1e-10)
    prices = result.prices.set_index("country")
    assert prices.loc["AAA", "price_index"] == pytest.approx(price, rel=1e-10)
    kink = k ** (1 / e)
    surplus = 100 * (k * (price - kink) + (kink ** (1 + e) - 1) / (1 + e))
    assert prices.loc["AAA", "producer_surplus_kusd"] == pytest.approx(surplus, rel=1e-9)
    with pytest.raises(InputError, match="production quota of AAA is 0"):
        simulate(cal, Scenario("none", production_quotas={"AAA": 0.0}), params(cal))
