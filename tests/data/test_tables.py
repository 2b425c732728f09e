"""Filtered reads of trade, production and governance."""

from __future__ import annotations

import pandas as pd
import pytest

import critmin as cm
from critmin.errors import InputError, UnknownNameError


def test_trade_filters_by_commodity_codes_and_group():
    frame = cm.trade(year=2022, commodity="cobalt", importer="EU")
    assert set(frame["hs6"]) <= {"282200", "810510"}
    assert set(frame["importer"]) <= set(cm.group("eu27").members)
    assert frame["year"].eq(2022).all()
    assert len(frame) > 50


def test_trade_main_codes_only():
    frame = cm.trade(year=2022, commodity="cobalt", complementary=False)
    assert set(frame["hs6"]) == {"282200"}


def test_trade_year_list_and_exporter():
    frame = cm.trade(year=[2020, 2021], exporter="China", commodity="REE")
    assert set(frame["year"]) == {2020, 2021}
    assert set(frame["exporter"]) == {"CHN"}


def test_production_china_gallium_share_is_about_99_percent():
    frame = cm.production(commodity="gallium", year=2024)
    china = frame.loc[frame["country"] == "CHN", "qty_t"].iloc[0]
    assert china / frame["qty_t"].sum() == pytest.approx(0.987, abs=0.005)


def test_governance_indicator_filter():
    frame = cm.governance(year=2022, country="Norway", indicator="pv_normalized")
    assert len(frame) == 1
    assert 0 <= frame["value"].iloc[0] <= 1


@pytest.mark.parametrize("bad", [1800, "soon", 3000])
def test_bad_years_are_refused(bad):
    with pytest.raises(InputError):
        cm.production(year=bad)


def test_sql_looking_input_is_only_a_name():
    with pytest.raises(UnknownNameError):
        cm.trade(importer="USA'; DROP TABLE trade; --")


def test_unknown_indicator():
    with pytest.raises(UnknownNameError, match="pv_estimate"):
        cm.governance(indicator="pv_estimat")


def test_empty_result_is_an_empty_frame_with_columns():
    frame = cm.trade(year=2022, commodity="gallium")  # gallium has no HS6 code
    assert isinstance(frame, pd.DataFrame) and frame.empty
    assert list(frame.columns) == ["year", "exporter", "importer", "hs6", "value_kusd", "qty_t"]
