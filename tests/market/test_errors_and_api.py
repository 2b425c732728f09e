"""User errors are one clear line; solver failures name the scenario; the API by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import critmin as cm
from critmin.errors import InputError, SolverError, UnknownNameError
from critmin.market import Ban, Quota, Scenario, Tariff, Zone, simulate, simulate_batch
from critmin.market.model import build_problem
from critmin.market.parameters import parameter_specs, parse_overrides
from critmin.market.policies import compile_scenario
from critmin.market.solver import solve
from tests.market.conftest import market, params


def test_unknown_member_names_the_closest_countries():
    with pytest.raises(UnknownNameError, match=r"unknown country or group 'Germny'.*Germany"):
        cm.zone("USA,Germny", {"rare_earths": 1.3}, year=2023)


def test_negative_elasticity_is_refused():
    with pytest.raises(InputError, match="cannot be negative"):
        parse_overrides(["demand_elasticity=-0.2"])
    with pytest.raises(InputError, match=r"must be at least 1\.0001"):
        parse_overrides(["armington_sigma=0.9"])
    with pytest.raises(InputError, match="unknown market parameter 'sigma'"):
        parse_overrides(["sigma=2"])
    with pytest.raises(InputError, match="not a market of this calibration"):
        cm.shock(
            "CHN", "rare_earths", ban=True, year=2023, parameters={"supply_elasticity": {"XXX": 1}}
        )


@pytest.mark.parametrize("floor", ["-1", "0", "-5000usd", "abc"])
def test_a_floor_at_or_below_zero_is_refused(floor):
    with pytest.raises(InputError, match="floor"):
        cm.zone("USA,JPN", {"rare_earths": floor}, year=2023)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_a_quota_outside_zero_one_is_refused(fraction):
    with pytest.raises(InputError, match=r"quota fraction must be in \[0, 1\]"):
        cm.shock("CHN", "rare_earths", quota=fraction, year=2023)


def test_a_policy_on_a_pair_without_trade_is_refused(two_sources):
    with pytest.raises(InputError, match="no trade of testium in 2020 between AAA and BBB"):
        compile_scenario(two_sources, Scenario("t", tariffs=(Tariff(("BBB",), 0.1, ("AAA",)),)))
    with pytest.raises(InputError, match="AAA → BBB has no trade of testium in 2020"):
        compile_scenario(
            two_sources, Scenario("t", tariffs=(Tariff(("VVV", "BBB"), 0.1, ("AAA",)),))
        )
    with pytest.raises(InputError, match="ban by VVV: no trade of testium in 2020 between VVV"):
        compile_scenario(two_sources, Scenario("b", bans=(Ban("VVV"),)))
    with pytest.raises(InputError, match="ZZZ neither trades nor produces testium"):
        compile_scenario(two_sources, Scenario("b", bans=(Ban("ZZZ"),)))
    # By name on the real data: Chile sells no rare-earth compounds to Japan in 2023.
    with pytest.raises(InputError, match="no trade of rare_earths in 2023"):
        cm.shock("CHL", "rare_earths", ban=True, targets="JPN", year=2023)


def test_ban_and_quota_are_exclusive():
    with pytest.raises(InputError, match="exactly one of a ban or a quota"):
        cm.shock("CHN", "rare_earths", year=2023)


def test_a_solver_failure_names_the_scenario_and_the_residual():
    cal = market({("AAA", "VVV"): 70.0, ("BBB", "VVV"): 30.0, ("BBB", "AAA"): 10.0}, {"AAA": 90.0})
    policy = compile_scenario(cal, Scenario("ban A", bans=(Ban("AAA", ("VVV",)),)))
    problem = build_problem(cal, [policy], [params(cal)])
    with pytest.raises(SolverError, match=r"scenario 'ban A' \(max residual .* after 1 iterations"):
        solve(problem, names=["ban A"], max_iterations=1)


def test_batch_equals_one_by_one():
    cal = market({("AAA", "VVV"): 70.0, ("BBB", "VVV"): 30.0, ("BBB", "AAA"): 10.0}, {"AAA": 90.0})
    scenarios = [Scenario(f"q{f}", quotas=(Quota("AAA", f),)) for f in (0.3, 0.6, 0.9, 1.0)]
    scenarios += [Scenario("zone", zone=Zone(("VVV",), 1.4)), Scenario("ban", bans=(Ban("BBB"),))]
    batch = simulate_batch(cal, scenarios, params(cal), chunk=3)
    for index, scenario in enumerate(scenarios):
        alone = simulate(cal, scenario, params(cal))
        assert np.allclose(
            batch[index].prices["price_index"], alone.prices["price_index"], rtol=1e-10
        )
    assert len(batch) == 6 and batch.world_price_index.shape == (6, cal.size)


def test_shock_by_name_reports_the_bloc_and_china_share():
    result = cm.shock("China", "REE", ban=True, targets="USA,JPN", year=2023)
    summary = result.summary
    assert summary["bloc"] == ["USA", "JPN"]
    # Refined rare earths (the stage balances): China sells a fifth of the USA's and Japan's
    # purchases by base-price value, their own refining (USA 800 t REO) and others the rest.
    assert summary["bloc_supplier_share_base"] > 0.15 and summary["bloc_supplier_share"] == 0
    assert summary["stage"] == "refined" and summary["unit"] == "t REO"
    assert summary["bloc_shortfall_pct"] > 0
    flows = result.flows
    banned = flows[(flows.exporter == "CHN") & flows.importer.isin(["USA", "JPN"])]
    assert banned["banned"].all() and (banned["flow_t"] == 0).all()
    assert "CHN bans rare_earths (refined) exports to USA,JPN" in repr(result)
    payload = result.to_dict()
    assert set(payload) == {"summary", "prices", "markets", "flows"}


def test_zone_with_a_group_skips_members_without_trade():
    results = cm.zone("ministerial_2026", {"rare_earths": 1.3, "graphite": "1500usd"}, year=2023)
    assert set(results) == {"rare_earths", "graphite"}
    zone = results["rare_earths"]
    assert 30 < len(zone.summary["bloc"]) <= 55
    assert zone.summary["tariff_revenue_kusd"] > 0
    assert zone.summary["bloc_self_sufficiency"] > zone.summary["bloc_self_sufficiency_base"]


def test_parameter_table_is_documented():
    text = Path("docs/market.md").read_text(encoding="utf-8")
    for spec in parameter_specs().values():
        short, long = spec.defaults["short"], spec.defaults["long"]
        row = f"| `{spec.name}` | {spec.symbol} | {short:g} | {long:g} |"
        assert row in text, f"docs/market.md lacks the row for {spec.name}: {row}"


def test_group_targets_without_trade_are_refused_not_widened(two_sources):
    # Scenario files and the API share this check: a group none of whose members trades
    # the commodity must not turn into "every destination" (targets None).
    from critmin.market.api import in_market

    with pytest.raises(InputError, match="none of XXX, YYY trades testium in 2020"):
        in_market(two_sources, ("XXX", "YYY"), strict=False)
    assert in_market(two_sources, ("XXX", "VVV"), strict=False) == ("VVV",)
    assert in_market(two_sources, None, strict=False) is None
