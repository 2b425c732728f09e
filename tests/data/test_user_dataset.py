"""A user's dataset folder replaces (or, for trade, extends) the bundled tables."""

from __future__ import annotations

import pandas as pd
import pytest

import critmin as cm
from critmin.data.catalog import table_summary
from critmin.data.io import write_parquet_atomic
from critmin.data.schema import arrow_schema
from critmin.data.validate import run_checks


def write_user_production(folder, countries, quantities):
    """A user production table for gallium 2025 with the given rows."""
    rows = len(countries)
    frame = pd.DataFrame(
        {
            "year": pd.Series([2025] * rows, dtype="int16"),
            "country": countries,
            "commodity": ["gallium"] * rows,
            "stage": ["processing"] * rows,
            "qty_t": quantities,
            "flag": ["r"] * rows,
            "unit_source": ["metr. t"] * rows,
            "qty_source": quantities,
        }
    )
    write_parquet_atomic(folder / "production.parquet", frame, arrow_schema("production"))


def test_user_production_replaces_the_bundled_table(isolated_user_data):
    write_user_production(isolated_user_data, ["CHN", "USA"], [900.0, 100.0])
    shares = cm.production_shares("gallium")
    assert shares.set_index("country")["share"].to_dict() == {"CHN": 0.9, "USA": 0.1}
    summary = table_summary().set_index("table")
    assert summary.loc["production", "rows"] == 2
    assert summary.loc["production", "location"] == str(isolated_user_data)


def test_checks_catch_bad_user_data(isolated_user_data):
    write_user_production(isolated_user_data, ["CHN", "CHN"], [-1.0, 5.0])
    failed = {r.name for r in run_checks() if not r.ok}
    assert {"unique_keys", "non_negative"} <= failed


def _bundled(table: str) -> pd.DataFrame:
    from critmin.data.catalog import BUNDLED_DIR

    return pd.read_parquet(BUNDLED_DIR / f"{table}.parquet")


def _broken(kind: str, folder) -> None:
    """A user dataset of issue 19 that must be refused rather than give wrong figures."""
    import json

    production = _bundled("production")
    if kind == "duplicate_keys":  # China listed twice: 39.3 % instead of 64.7 %
        rare = production[production["commodity"] == "rare_earths"]
        pd.concat([production, rare]).to_parquet(folder / "production.parquet", index=False)
    elif kind == "negative":
        production.loc[production["commodity"] == "rare_earths", "qty_t"] *= -1
        production.to_parquet(folder / "production.parquet", index=False)
    elif kind == "text_quantities":
        production.assign(qty_t=production["qty_t"].astype(str)).to_parquet(
            folder / "production.parquet", index=False
        )
    elif kind == "empty":
        production.iloc[:0].to_parquet(folder / "production.parquet", index=False)
    elif kind == "manifest_list":
        (folder / "manifest.json").write_text(json.dumps({"tables": {"trade": []}}))
    elif kind == "wrong_checksum":
        production.to_parquet(folder / "production.parquet", index=False)
        entry = {"file": "production.parquet", "rows": 5, "sha256": "0" * 64}
        (folder / "manifest.json").write_text(json.dumps({"tables": {"production": entry}}))


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("duplicate_keys", "duplicated keys"),
        ("negative", "production.qty_t: "),
        ("text_quantities", "production.qty_t is varchar, not a number"),
        ("empty", "production: the table has no rows"),
        ("manifest_list", "tables.trade must be an object"),
        ("wrong_checksum", "does not match the SHA-256 of its manifest"),
    ],
)
def test_a_broken_user_table_is_refused_by_commands_and_data_check(
    kind, message, isolated_user_data, capsys
):
    from critmin.cli.main import run

    _broken(kind, isolated_user_data)
    assert run(["concentration", "REE"]) == 2
    said = capsys.readouterr()
    assert message in said.err and "Traceback" not in said.err and said.out == ""
    assert said.err.strip().count("\n") == 0
    code = run(["data", "check", "-f", "json"])
    said = capsys.readouterr()
    assert code != 0 and message in said.err + said.out


def test_governance_values_out_of_range_fail_the_check(isolated_user_data):
    governance = _bundled("governance")
    governance.loc[governance["indicator"] == "pv_estimate", "value"] = 999.0
    governance.to_parquet(isolated_user_data / "governance.parquet", index=False)
    failed = {r.name: r.problems for r in run_checks() if not r.ok}
    assert "governance.pv_estimate" in " ".join(failed["user_tables"])
