"""Backtests run on the bundled data and the model gets the big signs right where the
mechanism is the one it models (a quota with a scarcity rent, a ban diverting demand)."""

from __future__ import annotations

import math

import pytest

from critmin.data import export_controls
from critmin.errors import UnknownNameError
from critmin.scenarios import backtest, episodes


def test_every_episode_names_a_sourced_measure():
    table = episodes()
    assert len(table) >= 2
    controls = export_controls().set_index("measure")
    for row in table.itertuples():
        measure = controls.loc[row.measure]
        assert row.commodity in measure["commodities"]
        assert row.exporter == measure["country"]
        assert measure["source"] and row.base_year < row.outcome_year


def test_rare_earth_quota_2010_signs_match_the_data():
    result = backtest("cn_rare_earths_2010").table.set_index("figure")
    observed = result["observed_pct"]
    # The data: China's export unit value rose about tenfold, its volume fell, others sold
    # more at higher prices (BACI 2009 → 2011).
    assert observed["restricting exporter: export unit value"] > 500
    assert observed["restricting exporter: export volume"] < 0
    for figure in (
        "restricting exporter: export volume",
        "restricting exporter: export unit value",
        "other exporters: export volume",
        "other exporters: export unit value",
    ):
        assert result.loc[figure, "same_sign_short"], figure


def test_bauxite_ban_2014_diverts_demand_to_other_exporters():
    result = backtest("id_bauxite_2014").table.set_index("figure")
    assert result.loc[
        "restricting exporter: export volume", "predicted_short_pct"
    ] == pytest.approx(-100)
    assert result.loc["other exporters: export volume", "observed_pct"] > 0
    assert result.loc["other exporters: export volume", "predicted_long_pct"] > 0
    # A ban leaves no export price to compare: reported as missing, not as a match.
    assert math.isnan(result.loc["restricting exporter: export unit value", "predicted_short_pct"])
    assert result.loc["restricting exporter: export unit value", "same_sign_short"] is None


def test_unknown_episode_suggests_names():
    with pytest.raises(UnknownNameError, match="cn_rare_earths_2010"):
        backtest("cn_rare_earth")


def test_recent_controls_backtest_against_usgs_prices():
    from critmin.scenarios.stage_backtest import stage_backtest, stage_episodes, usgs_price_change

    # USGS MCS 2026: antimony metal 5.49 USD/lb in 2023, 10.24 in 2024, 25 in 2025.
    assert usgs_price_change("antimony", "metal, average", 2023, 2024) == pytest.approx(
        86.5, abs=0.1
    )
    assert usgs_price_change("antimony", "metal, average", 2024, 2025) == pytest.approx(
        144.1, abs=0.1
    )
    assert len(stage_episodes()) == 7
    graphite = stage_backtest("cn_graphite_licence_2023").iloc[0]
    assert graphite["stage"] == "mine" and graphite["observed_price_pct"] < 0
    # China's exports fall by the observed cut (a quota at 0.85 of 2023 tonnes) in the model.
    assert -20 < graphite["china_exports_short_pct"] < -10
    ban = stage_backtest("cn_antimony_usa_ban_2024").iloc[0]
    assert ban["predicted_short_pct"] > 0 and ban["observed_price_pct"] > 0  # same direction


def test_rare_earth_backtest_keeps_chinas_home_price_up():
    table = backtest("cn_rare_earths_2010").table.set_index("figure")
    home = table.loc["restricting exporter: domestic price"]
    assert home["predicted_short_pct"] > 0  # export and mining quotas: scarcity at home too
