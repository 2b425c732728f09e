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
