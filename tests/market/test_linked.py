"""Linked stages (critmin.market.linked): base equality, closed forms for a two-stage chain, the
analytic Jacobian against finite differences, and propagation up and down the chain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from critmin.market import Ban, Scenario, Tariff, Zone, calibrate_from_tables, resolve_parameters
from critmin.market.linked import LinkedScenario, calibrate_chain, chain_sellers, link, solve_chain
from critmin.market.linked_solver import _compile, _evaluate, _jacobian, _structure


def stage(name: str, flows: dict[tuple[str, str], float], price: float):
    rows = [
        {"exporter": e, "importer": i, "qty_t": t, "value_kusd": t * price / 1000.0}
        for (e, i), t in flows.items()
    ]
    made = pd.DataFrame(columns=["country", "qty_t"])
    return replace(calibrate_from_tables("testium", 2020, pd.DataFrame(rows), made), stage=name)


@pytest.fixture
def two_stage():
    """Miners AAA and BBB ship 100 t of ore each to refiner CCC (1,000 USD/t), which sells its
    200 t of refined output to DDD (4,000 USD/t): the ore cost share β is 1/4."""
    ore = stage("mine", {("AAA", "CCC"): 100.0, ("BBB", "CCC"): 100.0}, 1000.0)
    refined = stage("refined", {("CCC", "DDD"): 200.0}, 4000.0)
    return link([ore, refined])


def params(chain, sigma=3.0, eta=0.5, supply=(0.0, 0.8)):
    return [
        [
            resolve_parameters(
                cal.countries,
                "short",
                {"armington_sigma": sigma, "demand_elasticity": eta, "supply_elasticity": e},
            )
            for cal, e in zip(chain.calibrations, supply, strict=True)
        ]
    ]


def price(solution, stage_index, country):
    return solution.state.world_price[stage_index][0, solution.chain.countries.index(country)]


def test_link_reads_input_shares_from_the_balances(two_stage):
    c = two_stage.countries.index("CCC")
    assert two_stage.beta[1][c] == pytest.approx(0.25)
    assert two_stage.final_share[0][c] == pytest.approx(0.0)  # all of CCC's ore is refined
    assert two_stage.final_share[1][two_stage.countries.index("DDD")] == 1.0


def test_ore_ban_closed_form(two_stage):
    sigma, eta, e1 = 3.0, 0.5, 0.8
    scenario = LinkedScenario(stages={"mine": Scenario(bans=(Ban("AAA"),))})
    sol = solve_chain(two_stage, [scenario], params(two_stage, sigma, eta, (0.0, e1)))
    # Ore supply is fixed (e = 0): BBB's 100 t are all CCC gets, bought at the base mix's
    # composite, so refined output is Y = 2^(−σ/(σ−1)); demand then prices it P = Y^(−1/η);
    # the refiner's unit cost C = P · Y^(−1/e); the ore price in CCC is (C − 3/4) / (1/4), and
    # BBB's own price 2^(−1/(σ−1)) of that.
    y = 2.0 ** (-sigma / (sigma - 1.0))
    refined = y ** (-1.0 / eta)
    cost = refined * y ** (-1.0 / e1)
    ore_in_c = (cost - 0.75) / 0.25
    assert sol.state.supply[1][0, two_stage.countries.index("CCC")] == pytest.approx(y, rel=1e-9)
    assert price(sol, 1, "CCC") == pytest.approx(refined, rel=1e-9)
    assert sol.state.unit_cost[1][0, two_stage.countries.index("CCC")] == pytest.approx(cost)
    assert price(sol, 0, "BBB") == pytest.approx(ore_in_c * 2.0 ** (-1.0 / (sigma - 1.0)))
    assert sol.state.flows[0][0].sum() == pytest.approx(100.0)  # BBB's 100 t, base-price kUSD


def test_refined_floor_closed_form(two_stage):
    eta, e0, e1, floor = 0.5, 0.4, 0.8, 1.5
    zone = Zone(("DDD",), floor, "multiple", "tariff")
    scenario = LinkedScenario(stages={"refined": Scenario(zone=zone)})
    sol = solve_chain(two_stage, [scenario], params(two_stage, 3.0, eta, (e0, e1)))
    # DDD pays the floor for CCC's goods: it buys F^(−η); CCC's output falls to that, and so
    # does its ore demand; the two symmetric miners' price is Y^(1/e0); CCC's producer price
    # P = C · Y^(1/e1) with C = β P_ore + 1 − β.
    y = floor ** (-eta)
    ore = y ** (1.0 / e0)
    refined = (0.25 * ore + 0.75) * y ** (1.0 / e1)
    landed = sol.dense(1, sol.state.landed[1])[0]
    assert landed[two_stage.countries.index("CCC"), -1] == pytest.approx(floor)
    assert sol.state.supply[1][0, two_stage.countries.index("CCC")] == pytest.approx(y, rel=1e-9)
    assert price(sol, 0, "AAA") == pytest.approx(ore, rel=1e-9)
    assert price(sol, 0, "BBB") == pytest.approx(ore, rel=1e-9)
    assert price(sol, 1, "CCC") == pytest.approx(refined, rel=1e-9)


@pytest.fixture(scope="module")
def ree_chain():
    return calibrate_chain("rare_earths", 2023, ["mine", "refined"])


def test_no_policy_is_the_base_at_every_stage(ree_chain):
    sol = solve_chain(ree_chain, [LinkedScenario()], "short")
    for k in range(len(ree_chain.stages)):
        q0 = ree_chain.q0[k]
        assert np.abs(sol.dense(k, sol.state.flows[k])[0] - q0).max() <= 1e-9 * q0.max()
        sellers = chain_sellers(ree_chain)[k]
        assert np.abs(sol.state.world_price[k][0, sellers] - 1.0).max() <= 1e-9
        assert np.abs(sol.state.supply[k][0, sellers] - 1.0).max() <= 1e-9


def test_jacobian_matches_finite_differences(ree_chain):
    """A batch of three at random points: bans at both stages; a floor by tariff at the
    refined stage, a producer guarantee and a production quota at the mine; no policy."""
    members = ("USA", "JPN", "AUS", "DEU", "FRA")
    scenarios = [
        LinkedScenario(
            stages={
                "mine": Scenario(bans=(Ban("USA"),)),
                "refined": Scenario(bans=(Ban("CHN", ("USA", "JPN")),)),
            }
        ),
        LinkedScenario(
            stages={
                "mine": Scenario(zone=Zone(members, 1.1, "multiple", "guarantee")),
                "refined": Scenario(zone=Zone(members, 1.3, "multiple", "tariff")),
            },
            production_quotas={"mine": {"CHN": 0.9}},
        ),
        LinkedScenario(),
    ]
    per_stage = [[resolve_parameters(c.countries, "short") for c in ree_chain.calibrations]] * 3
    structure = _structure(ree_chain)
    arrays, _ = _compile(ree_chain, structure, scenarios, per_stage)
    width = sum(len(s) for s in chain_sellers(ree_chain))
    x = np.random.default_rng(1).normal(0.0, 0.2, (3, width))
    jac = _jacobian(structure, arrays, _evaluate(structure, arrays, x))
    h = 1e-6
    numeric = np.zeros_like(jac)
    for i in range(width):
        up, down = x.copy(), x.copy()
        up[:, i] += h
        down[:, i] -= h
        r_up = _evaluate(structure, arrays, up)
        r_down = _evaluate(structure, arrays, down)
        numeric[:, :, i] = (r_up.residual - r_down.residual) / (2 * h)
    assert np.abs(jac - numeric).max() < 1e-6
    assert _structure(ree_chain)[1].dense_width > 0 and len(_structure(ree_chain)[1].pp_i) > 0


def test_common_sigma_shortcut_matches_the_general_evaluation(ree_chain):
    """With σ the same in all of a scenario's markets and no floor, the CES terms are had
    without an exp over pairs; a batch with one scenario of country-specific σ takes the
    general path for all: residuals and Jacobians agree."""
    scenarios = [
        LinkedScenario(stages={"refined": Scenario(bans=(Ban("CHN", ("USA", "JPN")),))}),
        LinkedScenario(
            stages={
                "mine": Scenario(bans=(Ban("USA", ("CHN",)),)),
                "refined": Scenario(tariffs=(Tariff(("USA", "JPN"), 0.25, ("CHN",)),)),
            }
        ),
        LinkedScenario(),
    ]
    common = [[resolve_parameters(c.countries, "short") for c in ree_chain.calibrations]] * 2
    mixed = [[resolve_parameters(c.countries, "short", {"armington_sigma": {"USA": 3.0}})
              for c in ree_chain.calibrations]]  # fmt: skip
    structure = _structure(ree_chain)
    fast, _ = _compile(ree_chain, structure, scenarios[:2], common)
    general, _ = _compile(ree_chain, structure, scenarios, common + mixed)
    assert all(a.theta_w is not None for a in fast)
    assert all(a.theta_w is None for a in general)
    width = sum(len(s) for s in chain_sellers(ree_chain))
    x = np.random.default_rng(2).normal(0.0, 0.3, (3, width))
    one, two = _evaluate(structure, fast, x[:2]), _evaluate(structure, general, x)
    assert np.abs(one.residual - two.residual[:2]).max() < 1e-12
    jac_one, jac_two = _jacobian(structure, fast, one), _jacobian(structure, general, two)
    assert np.abs(jac_one - jac_two[:2]).max() < 1e-12


def test_restrictions_propagate_up_and_down(ree_chain):
    countries = ree_chain.countries
    mine, refined = 0, 1
    ban_ore = LinkedScenario(stages={"mine": Scenario(bans=(Ban("USA", ("CHN",)),))})
    ban_refined = LinkedScenario(stages={"refined": Scenario(bans=(Ban("CHN"),))})
    sol = solve_chain(ree_chain, [LinkedScenario(), ban_ore, ban_refined], "short")
    china, usa = countries.index("CHN"), countries.index("USA")
    # Up: US ore kept from China is cheaper at home (USA's ore price falls) ...
    assert sol.state.world_price[mine][1, usa] < 1.0
    # ... and China's refiners pay more for their ore and sell less refined output.
    assert sol.state.unit_cost[refined][1, china] > 1.0
    assert sol.state.supply[refined][1, china] < 1.0
    # Down: a Chinese ban on refined exports raises other refiners' output (in total; one whose
    # ore dearer still can lose) and with it their demand for ore and its price.
    others = [i for i in chain_sellers(ree_chain)[refined] if i != china]
    base_output = ree_chain.q0[refined].sum(axis=1)[others]
    assert (base_output * sol.state.supply[refined][2, others]).sum() > base_output.sum()
    assert sol.state.world_price[mine][2, usa] > 1.0
    malaysia = countries.index("MYS")  # Lynas: separates Australian ore in Malaysia
    assert sol.state.supply[refined][2, malaysia] > 1.0
    assert sol.state.world_price[mine][2, countries.index("AUS")] > 1.0


def test_a_ban_on_chinese_magnets_moves_the_refined_stage():
    chain = calibrate_chain("rare_earths", 2024)  # mine, refined, product (magnets, HS 850511)
    assert chain.stages == ("mine", "refined", "product")
    ban = LinkedScenario("magnets", stages={"product": Scenario(bans=(Ban("CHN"),))})
    sol = solve_chain(chain, [ban], "short")
    countries = chain.countries
    product, refined = 2, 1
    for code in ("JPN", "DEU", "USA", "VNM"):
        i = countries.index(code)
        assert sol.state.supply[product][0, i] > 1.0  # other magnet makers produce more ...
        assert sol.state.demand_volume[refined][0, i] > 1.0  # ... and buy more refined REE
    # China's magnet output stops: its home magnet market is not in the data (no magnet output
    # series; production is what its trade implies), a stated limit (docs/market.md).
    assert sol.state.supply[product][0, countries.index("CHN")] == 0.0
    # Finite prices: beyond the choke price a market that lost China's magnets buys less
    # instead of bidding its last supplier up without bound (was 7e8 × base without it).
    assert np.isfinite(sol.state.composite[product][0]).all()
    assert sol.state.world_price[product][0].max() < 1e4


def test_a_refined_floor_reaches_the_mine_stage():
    from critmin.market.linked_report import linked_zone

    table, _ = linked_zone(
        "ministerial_2026", "rare_earths", {"refined": 1.3}, mechanism="guarantee", year=2023
    )
    rows = table.set_index("stage")
    # Members' refiners paid the floor make more, and buy more ore: non-Chinese supply grows
    # at both stages, the fund pays at the refined stage only.
    assert rows.loc["refined", "non_supplier_supply_added_t"] > 0
    assert rows.loc["mine", "non_supplier_supply_added_t"] > 0
    assert rows.loc["refined", "fund_cost_kusd"] > 0 and rows.loc["mine", "fund_cost_kusd"] == 0
    assert list(rows["unit"]) == ["t REO", "t REO"]
