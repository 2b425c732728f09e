"""The data package loads what is used: the catalog and `query_arrays` read tables without
pandas or pyarrow (the command-line paths that must start quickly depend on it)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

PROBE = """
import json, sys
from critmin.data.catalog import query_arrays
columns = query_arrays("SELECT iso3, iso_num FROM {countries} ORDER BY iso3")
loaded = sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'pyarrow'})
print(json.dumps({"loaded": loaded, "rows": len(columns["iso3"])}))
"""


def test_catalog_reads_tables_without_pandas():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["rows"] > 200  # every country of the bundled table


def test_query_arrays_agrees_with_query_and_turns_nulls_into_nan_and_none():
    from critmin.data.catalog import query, query_arrays

    sql = "SELECT iso3, iso2, iso_num FROM {countries} ORDER BY iso3"
    arrays, frame = query_arrays(sql), query(sql)
    assert list(arrays) == list(frame.columns)
    assert arrays["iso3"].tolist() == frame["iso3"].tolist()
    missing = frame["iso_num"].isna().to_numpy()
    assert missing.any()  # aggregates and historic entities have no ISO number
    assert np.isnan(arrays["iso_num"][missing]).all()
    assert np.array_equal(arrays["iso_num"][~missing], frame["iso_num"][~missing].to_numpy())
    assert all(v is None for v in arrays["iso2"][frame["iso2"].isna().to_numpy()])


def test_unknown_names_of_the_data_package_are_attribute_errors():
    import critmin.data

    assert critmin.data.country("DEU").iso3 == "DEU"
    assert set(critmin.data.__all__) <= set(dir(critmin.data))
    with pytest.raises(AttributeError):
        _ = critmin.data.no_such_name
