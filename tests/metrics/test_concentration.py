"""Production shares and HHI: hand calculations and invariants."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import critmin as cm
from critmin.data import query
from critmin.metrics.concentration import (
    concentration_history,
    herfindahl_hirschman,
    shares,
    supply_concentration,
    world_concentration,
)


def test_hhi_by_hand():
    # shares 0.5, 0.3, 0.2 → 0.25 + 0.09 + 0.04 = 0.38
    assert herfindahl_hirschman(pd.Series([0.5, 0.3, 0.2])) == pytest.approx(0.38)


@given(st.lists(st.floats(min_value=0.001, max_value=1e9), min_size=1, max_size=50))
def test_shares_sum_to_one_and_hhi_is_bounded(quantities):
    values = shares(pd.Series(quantities))
    assert values.sum() == pytest.approx(1.0)
    hhi = herfindahl_hirschman(values)
    assert 1 / len(quantities) - 1e-9 <= hhi <= 1 + 1e-9


def test_zero_total_gives_zero_shares():
    assert shares(pd.Series([0.0, 0.0])).tolist() == [0.0, 0.0]


def test_gallium_2024_by_hand():
    # World Mining Data 2024: CHN 974, RUS 7, JPN 3, KOR 3, UKR 0 (t) → total 987.
    table = cm.production_shares("gallium", 2024)
    china = table[table["country"] == "CHN"].iloc[0]
    assert china["share"] == pytest.approx(974 / 987)
    assert china["rank"] == 1
    summary = supply_concentration("gallium", 2024).iloc[0]
    expected_hhi = (974**2 + 7**2 + 3**2 + 3**2) / 987**2
    assert summary["hhi"] == pytest.approx(expected_hhi)
    assert summary["top_share"] == pytest.approx((974 + 7 + 3) / 987)
    assert summary["focus_share"] == pytest.approx(974 / 987)


def test_latest_year_and_shares_sum_to_one_for_every_commodity():
    table = cm.production_shares(commodity=None, year="latest")
    sums = table.groupby(["commodity", "year"])["share"].sum()
    positive = table.groupby(["commodity", "year"])["world_qty_t"].first() > 0
    assert (sums[positive] - 1).abs().max() < 1e-9
    assert table.groupby("commodity")["year"].nunique().max() == 1


def test_world_concentration_export_shares_by_independent_query():
    from critmin.data import query
    from critmin.metrics.concentration import world_concentration

    table, summary = world_concentration("graphite", 2022)
    exports = query(
        "SELECT exporter, sum(qty_t) AS t FROM {trade} WHERE year = 2022 "
        "AND hs6 IN ('250410', '250490') AND qty_t IS NOT NULL GROUP BY exporter"
    )
    china = exports.set_index("exporter")["t"]
    row = table.set_index("country").loc["CHN"]
    assert row["export_share"] == pytest.approx(china["CHN"] / china.sum())
    assert summary["export_hhi"] == pytest.approx(((china / china.sum()) ** 2).sum())


def test_concentration_history_by_year():
    table, summary = concentration_history("cobalt")
    sums = table.groupby("year")["export_share"].sum()
    assert sums.to_numpy() == pytest.approx(1.0)
    assert sorted(table["year"].unique())[0] == 1995  # BACI from 1995, WMD later
    # China's 2010 share of world cobalt exports, from the raw rows (HS 282200 + 810510).
    raw = query(
        "SELECT sum(qty_t) FILTER (WHERE exporter = 'CHN') / sum(qty_t) AS china "
        "FROM {trade} WHERE year = 2010 AND hs6 IN ('282200', '810510') AND qty_t IS NOT NULL"
    )["china"].iloc[0]
    china = table[(table["year"] == 2010) & (table["country"] == "CHN")].iloc[0]
    assert china["export_share"] == pytest.approx(raw)
    # The latest year agrees with the one-year view, production and exports alike.
    _, hhi = world_concentration("cobalt", 2023)
    row = summary.set_index("year").loc[2023]
    assert row["production_hhi"] == pytest.approx(hhi["production_hhi"])
    assert row["export_hhi"] == pytest.approx(hhi["export_hhi"])
    assert pd.isna(summary.set_index("year").loc[2000, "production_hhi"])  # no WMD year
