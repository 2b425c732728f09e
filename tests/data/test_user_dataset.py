"""A user's dataset folder replaces (or, for trade, extends) the bundled tables."""

from __future__ import annotations

import pandas as pd

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
