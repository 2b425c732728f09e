"""The market calibration runs without pandas (issue 18: importing it costs 0.35 s of a model
command) and adds as pandas adds, so its figures are those of the former DataFrame code."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from critmin.data.columns import Table
from critmin.market.calibration import calibrate_from_tables, group_sums
from critmin.market.chain import calibrate_stage, stage_production, stage_tables

PROBE = """
import json, sys
from critmin.market.chain import calibrate_market
from critmin.market.calibration import calibrate
cal = calibrate_market("rare_earths", 2023)
hs = calibrate("antimony", 2023, 0.01, ("USA",))
loaded = sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'pyarrow'})
print(json.dumps({"pandas": "pandas" in sys.modules, "loaded": loaded,
                  "size": cal.size, "stage": cal.stage, "hs": hs.size}))
"""


def test_calibrate_market_imports_no_pandas():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=180
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["pandas"] is False
    assert result["loaded"] == []
    assert result["size"] > 10 and result["stage"] == "refined" and result["hs"] > 10


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
@pytest.mark.parametrize("gaps", ["none", "nan", "no_key"])
def test_group_sums_add_as_pandas_groupby_sum(order, gaps):
    # pandas adds a key's rows with np.add.reduceat when they come sorted and hold no NaN,
    # else with Kahan's compensation: the two differ in the last bit on such values.
    rng = np.random.default_rng(18)
    for _ in range(50):
        n = int(rng.integers(1, 120))
        keys = rng.choice(np.array(list("ABCDEFG"), dtype=object), n)
        if order == "sorted":
            keys = np.sort(keys.astype(str)).astype(object)
        values = np.round(rng.lognormal(3.0, 3.0, (n, 2)), 3)
        if gaps == "nan":
            values[rng.random(n) < 0.2, 0] = np.nan
        if gaps == "no_key":
            keys[rng.random(n) < 0.1] = None
        by_key = pd.Series(keys, dtype=object)
        expected = [pd.Series(column).groupby(by_key).sum() for column in values.T]
        distinct, sums = group_sums(keys, values)
        assert distinct.tolist() == expected[0].index.tolist()
        assert np.array_equal(sums, np.column_stack([e.to_numpy() for e in expected]))
        assert np.array_equal(group_sums(keys, values[:, 1])[1], expected[1].to_numpy())


def test_tables_and_frames_calibrate_alike():
    flows = pd.DataFrame(
        {
            "exporter": ["AAA", "AAA", "BBB", "CCC", "CCC", "BBB"],
            "importer": ["BBB", "CCC", "AAA", "AAA", "BBB", "BBB"],
            "value_kusd": [10.0, 3.3, 7.1, 0.0, 2.2, 5.0],
            "qty_t": [4.0, np.nan, 2.5, 1.0, 0.7, 1.0],
        }
    )
    made = pd.DataFrame({"country": ["AAA", "DDD", "AAA"], "qty_t": [50.0, 9.0, np.nan]})
    frame_cal = calibrate_from_tables("testium", 2020, flows, made)
    table_made = Table(
        {"country": made["country"].to_numpy(object), "qty_t": made["qty_t"].to_numpy()}
    )
    table_cal = calibrate_from_tables("testium", 2020, Table.from_frame(flows), table_made)
    assert frame_cal.countries == table_cal.countries == ("AAA", "BBB", "CCC")
    for name in ("value_kusd", "tonnes", "base_price_usd_t"):
        assert np.array_equal(getattr(frame_cal, name), getattr(table_cal, name))
    assert frame_cal.notes == table_cal.notes == ("1 producers without trade are left out: DDD",)
    # AAA's price is its unit value over the flow reporting tonnes; CCC→BBB is priced by CCC.
    assert frame_cal.base_price_usd_t[0] == pytest.approx(10.0 / 4.0 * 1000.0)
    assert frame_cal.tonnes[0, 0] == pytest.approx(50.0 - 4.0 - 3.3 / 2.5)


def test_the_python_api_keeps_its_frames():
    flows = stage_tables("rare_earths", "refined", 2023)
    assert list(flows.columns) == ["exporter", "importer", "value_kusd", "qty_t"]
    assert flows[["exporter", "importer"]].equals(
        flows[["exporter", "importer"]].sort_values(["exporter", "importer"]).reset_index(drop=True)
    )
    made, notes, used = stage_production("rare_earths", "refined", 2023)
    assert isinstance(made, pd.Series) and made.index.is_monotonic_increasing
    assert made["CHN"] > 150_000 and used == 2023 and notes


@pytest.mark.parametrize(
    ("mineral", "stage", "year"),
    [("rare_earths", "refined", 2023), ("antimony", "mine", 2024), ("cobalt", "refined", 2019)],
)
def test_a_stage_calibrates_alike_from_its_frames(mineral, stage, year):
    # The former path: the stage's flows and production as DataFrames, through pandas.
    cal = calibrate_stage(mineral, stage, year)
    made, _, _ = stage_production(mineral, stage, year)
    production = pd.DataFrame({"country": made.index, "qty_t": made.to_numpy(dtype=float)})
    again = calibrate_from_tables(mineral, year, stage_tables(mineral, stage, year), production)
    assert again.countries == cal.countries
    for name in ("value_kusd", "tonnes", "base_price_usd_t"):
        assert np.array_equal(getattr(again, name), getattr(cal, name))
    assert again.reference_price_usd_t == cal.reference_price_usd_t
