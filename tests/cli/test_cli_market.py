"""`critmin shock`, `critmin zone`, `critmin backtest` run as a user would."""

from __future__ import annotations

import csv
import io
import json

from tests.cli.test_cli_end_to_end import critmin


def test_shock_json_has_prices_flows_and_a_converged_solve(isolated_user_data):
    done = critmin(
        "shock", "--exporter", "CHN", "--commodity", "rare_earths", "--ban",
        "--targets", "USA,JPN", "--year", "2023", "--format", "json",
        data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    summary = result["summary"]
    assert summary["bloc"] == ["USA", "JPN"] and summary["max_residual"] < 1e-9
    assert summary["bloc_supplier_share"] == 0
    banned = [f for f in result["flows"] if f["exporter"] == "CHN" and f["importer"] == "JPN"]
    assert banned[0]["banned"] and banned[0]["flow_t"] == 0
    japan = next(m for m in result["markets"] if m["country"] == "JPN")
    assert japan["shortfall_t"] > 0 and japan["price_index"] > 1


def test_quota_table_output_and_csv(isolated_user_data):
    done = critmin(
        "shock", "--exporter", "China", "--commodity", "graphite", "--quota", "0.5",
        "--aggregate", "--year", "2023", "--horizon", "long", "--format", "csv",
        "--table", "prices", data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {r["country"]: r for r in csv.DictReader(io.StringIO(done.stdout))}
    assert float(rows["CHN"]["quota_rent_kusd"]) > 0
    shown = critmin(
        "shock", "--exporter", "CHN", "--commodity", "graphite", "--quota", "0.5",
        "--year", "2023", data_dir=isolated_user_data,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Largest shortfalls" in shown.stdout and "quota rents (kUSD)" in shown.stdout


def test_zone_with_floors_and_a_ban(isolated_user_data):
    done = critmin(
        "zone", "--members", "ministerial_2026", "--floor", "rare_earths=1.3",
        "--floor", "graphite=1.2", "--mechanism", "guarantee", "--with-ban", "CHN",
        "--year", "2023", "--format", "json", data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert set(results) == {"rare_earths", "graphite"}
    for result in results.values():
        assert result["summary"]["bloc_supplier_share"] == 0
        assert result["summary"]["fund_cost_kusd"] >= 0


def test_backtest_lists_and_runs(isolated_user_data):
    listed = critmin("backtest", "--format", "csv", data_dir=isolated_user_data)
    assert listed.returncode == 0, listed.stderr
    assert "cn_rare_earths_2010" in listed.stdout
    done = critmin("backtest", "id_bauxite_2014", "--format", "json", data_dir=isolated_user_data)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["figures"]
    assert figures[0]["figure"] == "restricting exporter: export volume"


def test_market_user_errors_are_one_line(isolated_user_data):
    cases = [
        (["shock", "--exporter", "CHN", "--commodity", "rare_earths", "--quota", "1.5"],
         "quota fraction must be in [0, 1]"),
        (["shock", "--exporter", "CHN", "--commodity", "rare_earths", "--ban",
          "--param", "demand_elasticity=-1"], "cannot be negative"),
        (["zone", "--members", "USA,Germny", "--floor", "rare_earths=1.3"],
         "unknown country or group 'Germny'"),
        (["zone", "--members", "USA,JPN", "--floor", "rare_earths=-2"],
         "price floor must be a finite number"),
        (["shock", "--exporter", "CHL", "--commodity", "rare_earths", "--ban",
          "--targets", "JPN", "--year", "2023"], "no trade of rare_earths in 2023"),
        (["backtest", "nope"], "unknown backtest episode 'nope'"),
    ]  # fmt: skip
    for args, message in cases:
        done = critmin(*args, data_dir=isolated_user_data)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_shock_at_a_stage_and_linked(isolated_user_data):
    """issue 16: --stage names the market; --linked answers at every stage of the chain."""
    run = critmin
    done = run(
        "shock", "--exporter", "CHN", "--commodity", "rare_earths", "--ban", "--stage",
        "product", "--linked", "--year", "2024", "--format", "json",
        data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [s["stage"] for s in payload["stages"]] == ["mine", "refined", "product"]
    magnets = payload["stages"][2]
    assert magnets["others_output_t"] > magnets["others_output_base_t"]
    refused = run(
        "shock", "--exporter", "CHN", "--commodity", "rare_earths", "--quota", "0.5",
        "--stage", "refined", "--linked", data_dir=isolated_user_data,
    )  # fmt: skip
    assert refused.returncode == 2 and "--linked solves a ban" in refused.stderr
