"""`critmin run`, `ensemble`, `coalition`, `stockpile` run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.cli.test_cli_end_to_end import critmin

ROOT = Path(__file__).resolve().parents[2]


def test_run_writes_parquet_and_a_summary_with_provenance(isolated_user_data, tmp_path):
    out = tmp_path / "results"
    done = critmin(
        "run", str(ROOT / "examples/ministerial_2026_chinese_ban.yaml"), "--out", str(out),
        "--format", "json", data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == ["flows.parquet", "markets.parquet", "prices.parquet"]
    provenance = summary["provenance"]
    assert len(provenance["scenario_hash"]) == 64 and provenance["critmin_version"]
    assert len(provenance["dataset"]["trade"]["sha256"]) == 64
    markets = pd.read_parquet(out / "markets.parquet")
    assert set(markets["commodity"]) == {"rare_earths", "graphite", "tungsten"}
    assert summary["markets"]["rare_earths"]["bloc_supplier_share"] == 0


def test_run_also_writes_csv_or_xlsx(isolated_user_data, tmp_path):
    import openpyxl

    out = tmp_path / "results"
    scenario = str(ROOT / "examples/ministerial_2026_chinese_ban.yaml")
    done = critmin("run", scenario, "--out", str(out), "--format", "xlsx",
                   data_dir=isolated_user_data)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "results.xlsx" in done.stdout
    book = openpyxl.load_workbook(out / "results.xlsx", read_only=True)
    assert set(book.sheetnames) == {"flows", "markets", "prices", "summary"}
    markets = pd.read_parquet(out / "markets.parquet")
    assert len(list(book["markets"].values)) == len(markets) + 1  # header + the same rows
    done = critmin("run", scenario, "--out", str(out), "--format", "csv",
                   data_dir=isolated_user_data)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (out / "results.xlsx").exists()  # an earlier run's export is not left behind
    again = pd.read_csv(out / "markets.csv")
    assert len(again) == len(markets) and list(again.columns) == list(markets.columns)
    summary = pd.read_csv(out / "summary.csv")
    assert {"commodity", "figure", "value"} <= set(summary.columns)
    assert "world_price_index" in set(summary["figure"])
    bad = critmin("run", scenario, "--out", str(out), "--format", "pdf",
                  data_dir=isolated_user_data)  # fmt: skip
    assert bad.returncode == 2 and "--format 'pdf'" in bad.stderr


def test_a_bad_scenario_file_fails_before_writing_anything(isolated_user_data, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncommodities: [graphite]\nensemble: {draws: 1000000000}\n")
    out = tmp_path / "never"
    done = critmin("run", str(bad), "--out", str(out), data_dir=isolated_user_data)
    assert done.returncode == 2
    assert "bad.yaml: ensemble.draws: Input should be less than or equal to 1000000 " in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_ensemble_json_is_reproducible(isolated_user_data):
    args = ("ensemble", "--commodity", "graphite", "--bloc", "eu27", "--draws", "128",
            "--seed", "4", "--year", "2023", "--format", "json")  # fmt: skip
    first = critmin(*args, data_dir=isolated_user_data)
    second = critmin(*args, data_dir=isolated_user_data)
    assert first.returncode == 0, first.stderr
    assert (
        json.loads(first.stdout)["summary"]["bloc_cvar95_t"]
        == json.loads(second.stdout)["summary"]["bloc_cvar95_t"]
    )
    shown = critmin(*args[:-2], data_dir=isolated_user_data)
    assert "Restriction hazard by supplier" in shown.stdout


def test_coalition_and_stockpile(isolated_user_data):
    done = critmin(
        "coalition", "--core", "USA", "--candidates", "AUS,MYS,JPN,VNM,IND,EST", "--k", "2",
        "--commodities", "rare_earths", "--year", "2023", "--format", "json",
        data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert len(payload["members"]) == 2
    assert sum(r["shapley"] for r in payload["shapley"]) == __import__("pytest").approx(
        payload["security"]
    )
    # The market model chooses among the 15 pairs (issue 16); its best pair heads the check.
    assert len(payload["market_members"]) == 2
    assert payload["market_check"][0]["coalition"] == ",".join(payload["market_members"])
    assert payload["market_check"][0]["market_security"] == payload["market_security"]
    sized = critmin(
        "stockpile", "--bloc", "eu27", "--commodity", "rare_earths", "--target", "25",
        "--probability", "0.9", "--draws", "40", "--year", "2023", "--format", "json",
        data_dir=isolated_user_data,
    )  # fmt: skip
    assert sized.returncode == 0, sized.stderr
    result = json.loads(sized.stdout)
    assert result["metric"] == "shortfall" and len(result["curve"]) == 41
