"""The brief's markets are calibrated once per process: `_calibrate` hands back the same
read-only Calibration for the same question on the same dataset (the bans and the zones of
one mineral share it), a new one when the dataset changes, and the answers are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import critmin.market.api as api
from critmin.market.chain import calibrate_market


@pytest.fixture
def fresh():
    api._calibrated.cache_clear()
    yield
    api._calibrated.cache_clear()


def test_one_calibration_per_question_read_only(fresh):
    ban = api._calibrate("gallium", 2024, 0.0, ["CHN", "USA", "JPN"])
    zone = api._calibrate("gallium", None, 0.0, ["USA", "JPN"])  # keep: moot without ROW
    assert zone is ban
    for array in (ban.value_kusd, ban.tonnes, ban.base_price_usd_t):
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        ban.value_kusd[0, 0] = 1.0
    fresh_one = calibrate_market("gallium", 2024, 0.0, ["USA"], None)
    assert fresh_one.countries == ban.countries
    np.testing.assert_array_equal(fresh_one.value_kusd, ban.value_kusd)
    assert api._calibrated.cache_info().misses == 1


def test_keep_counts_when_small_countries_merge_and_the_stamp_keys_it(fresh, monkeypatch):
    a = api._calibrate("gallium", 2024, 0.05, ["USA"])
    b = api._calibrate("gallium", 2024, 0.05, ["USA", "DEU"])
    assert a is not b and api._calibrate("gallium", 2024, 0.05, ["USA"]) is a
    monkeypatch.setattr(api, "dataset_stamp", lambda: "another dataset")
    assert api._calibrate("gallium", 2024, 0.05, ["USA"]) is not a


def test_shock_answers_do_not_depend_on_the_memo(fresh):
    first = api.shock("CHN", "gallium", ban=True, targets="USA,JPN", year=2024)
    again = api.shock("CHN", "gallium", ban=True, targets="USA,JPN", year=2024)
    assert api._calibrated.cache_info().hits >= 1
    assert first.summary["world_price_index"] == again.summary["world_price_index"]
    assert first.summary["bloc_shortfall_pct"] == again.summary["bloc_shortfall_pct"]
