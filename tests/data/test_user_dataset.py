"""A user's dataset folder replaces (or, for trade, extends) the bundled tables."""

from __future__ import annotations

import pandas as pd

import critmin as cm
from critmin.data.catalog import table_summary
from critmin.data.io import write_parquet_atomic
from critmin.data.schema import arrow_schema
from critmin.data.validate import run_checks


def test_user_production_replaces_the_bundled_table(isolated_user_data):
    frame = pd.DataFrame(
        {
            "year": pd.Series([2025, 2025], dtype="int16"),
            "country": ["CHN", "USA"],
            "commodity": ["gallium", "gallium"],
            "stage": ["processing", "processing"],
            "qty_t": [900.0, 100.0],
            "flag": ["r", "e"],
            "unit_source": ["metr. t", "metr. t"],
        }
    )
    write_parquet_atomic(
        isolated_user_data / "production.parquet", frame, arrow_schema("production")
    )
    shares = cm.production_shares("gallium")
    assert shares.set_index("country")["share"].to_dict() == {"CHN": 0.9, "USA": 0.1}
    summary = table_summary().set_index("table")
    assert summary.loc["production", "rows"] == 2
    assert summary.loc["production", "location"] == str(isolated_user_data)


def test_checks_catch_bad_user_data(isolated_user_data):
    frame = pd.DataFrame(
        {
            "year": pd.Series([2025, 2025], dtype="int16"),
            "country": ["CHN", "CHN"],
            "commodity": ["gallium", "gallium"],
            "stage": ["processing", "processing"],
            "qty_t": [-1.0, 5.0],
            "flag": ["r", "r"],
            "unit_source": ["metr. t", "metr. t"],
        }
    )
    write_parquet_atomic(
        isolated_user_data / "production.parquet", frame, arrow_schema("production")
    )
    failed = {r.name for r in run_checks() if not r.ok}
    assert {"unique_keys", "non_negative"} <= failed
