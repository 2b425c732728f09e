"""A seller priced out by a floor: the market clears at the corner of the complementarity
condition (price at its lower bound, supply above demand) instead of failing to converge."""

from __future__ import annotations

import pytest

from critmin.market import Scenario, Zone, simulate
from critmin.market.solver import LOG_PRICE_BOUND
from tests.market.conftest import market, params


def test_a_floor_hundreds_of_times_a_sellers_price_prices_it_out():
    # AAA sells only to BBB at 100 USD/t; the zone's floor is 1.5 × the world reference
    # price (~50,000 USD/t), so BBB's demand for AAA's good falls by (750)^-8 and, with a
    # supply elasticity of 0.055, no positive price of AAA's clears it (the hypothesis case
    # that made `test_shares_of_purchases_stay_within_zero_and_one` fail).
    cal = market(
        {("AAA", "BBB"): 1.0, ("CCC", "AAA"): 1.0},
        {},
        {"AAA": 100.0, "BBB": 50_000.0, "CCC": 50_000.0},
    )
    result = simulate(
        cal, Scenario("zone", zone=Zone(("BBB",), 1.5)), params(cal, 8.0, 2.0, 0.0546875)
    )
    prices = result.prices.set_index("country")["price_index"]
    assert prices["AAA"] == pytest.approx(0.0, abs=1e-200)  # e^-600: priced out
    assert prices["AAA"] > 0.0
    assert prices["CCC"] == pytest.approx(1.0)
    assert result.summary["bloc_self_sufficiency"] == 0.0
    assert LOG_PRICE_BOUND == 600.0
    assert any("AAA is priced out" in note for note in result.summary["notes"])
    assert not any("CCC is priced out" in note for note in result.summary["notes"])
