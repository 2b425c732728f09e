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


def test_a_solve_that_keeps_some_fields_gives_them_bitwise_and_drops_the_rest():
    """`solve(fields=...)` (what an ensemble chunk asks for) keeps exactly those fields, with
    the values of the full solve, and leaves the others None."""
    import numpy as np

    from critmin.market import Quota
    from critmin.market.model import build_problem
    from critmin.market.policies import compile_scenario
    from critmin.market.solver import solve

    cal = market({("A", "C"): 60, ("B", "C"): 40, ("A", "D"): 30, ("B", "D"): 50})
    parameters = params(cal)
    scenarios = [  # the same quota structure: one batch
        Scenario("tight", quotas=(Quota("A", 0.5, None, aggregate=True),)),
        Scenario("loose", quotas=(Quota("A", 0.9, None, aggregate=True),)),
    ]
    batch = [compile_scenario(cal, s) for s in scenarios]
    problem = build_problem(cal, batch, [parameters] * len(batch))
    full = solve(problem)
    some = solve(problem, fields=("demand_index", "composite"))
    assert full.iterations.sum() > 0
    for name in ("demand_index", "composite", "residual"):
        assert np.array_equal(getattr(some.state, name), getattr(full.state, name))
    assert some.state.flows is None and some.state.supply is None
    assert np.array_equal(some.z, full.z)
