"""The bundled dataset is complete, consistent and small enough to ship."""

from __future__ import annotations

import re

import pytest

from critmin.data import query
from critmin.data.catalog import BUNDLED_DIR, bundled_manifest
from critmin.data.validate import run_checks

EXPECTED_TABLES = {
    "trade",
    "production",
    "governance",
    "governance_geopolrisk",
    "commodities",
    "countries",
    "stage_trade",
}


def test_every_named_check_passes():
    failures = {r.name: r.problems for r in run_checks() if not r.ok}
    assert failures == {}


def test_manifest_lists_every_table_with_provenance():
    tables = bundled_manifest()["tables"]
    assert set(tables) == EXPECTED_TABLES
    for name, entry in tables.items():
        for key in ("source", "licence", "version", "rows", "sha256", "url", "columns"):
            assert entry.get(key), f"{name} lacks {key}"
        (rows,) = query(f"SELECT count(*) AS n FROM {{{name}}}")["n"]
        assert rows == entry["rows"], name


def test_bundled_data_stays_under_30_mb():
    size = sum(p.stat().st_size for p in BUNDLED_DIR.iterdir())
    assert size < 30 * 1024 * 1024


@pytest.mark.parametrize(
    ("table", "first", "last"),
    [("trade", 1995, 2024), ("production", 2018, 2024), ("governance", 1996, 2024)],
)
def test_year_coverage(table, first, last):
    lo, hi = query(f"SELECT min(year) AS lo, max(year) AS hi FROM {{{table}}}").iloc[0]
    assert (lo, hi) == (first, last)


def test_trade_keeps_its_74_raw_material_codes_and_missing_quantities():
    stats = query(
        "SELECT count(DISTINCT hs6) AS codes, count(*) - count(qty_t) AS missing, "
        "min(qty_t) AS smallest FROM {trade}"
    ).iloc[0]
    assert stats["codes"] == 74
    assert stats["missing"] > 0  # BACI's unreported quantities stay null, not 0
    assert stats["smallest"] >= 0


def test_codes_are_iso3_shaped():
    codes = query("SELECT iso3 FROM {countries}")["iso3"]
    assert all(re.fullmatch(r"[A-Z]{3}", c) for c in codes)


def test_production_is_in_tonnes_with_total_rows_dropped():
    units = set(query("SELECT DISTINCT unit_source FROM {production}")["unit_source"])
    assert units == {"metr. t", "kg", "ct", "Mio m3"}
    assert query("SELECT count(*) AS n FROM {production} WHERE country = 'DELETE'")["n"][0] == 0


def test_normalised_political_stability_matches_its_formula():
    frame = query(
        "SELECT e.value AS estimate, n.value AS normalized FROM {governance} e "
        "JOIN {governance} n USING (year, country) "
        "WHERE e.indicator = 'pv_estimate' AND n.indicator = 'pv_normalized'"
    )
    expected = ((2.5 - frame["estimate"]) / 5).clip(0, 1)
    assert len(frame) > 5000
    assert (frame["normalized"] - expected).abs().max() == 0
