"""The GeoPolRisk grid query: the command line streams it without pandas, and the streamed
CSV and JSON are the bytes the DataFrame path (`geopolrisk()` → `emit`) writes."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import critmin as cm
from critmin.cli.output import OutputFormat, emit, emit_query
from critmin.data import query
from critmin.metrics.geopolrisk import COLUMNS, geopolrisk
from critmin.metrics.geopolrisk_sql import grid_sql, risk_sql

# Runs in a fresh interpreter: the command's output goes to a file, then the list of heavy
# packages it imported is printed.
PROBE = """
import contextlib, json, sys
from critmin.cli.main import run
with open({out!r}, "w", encoding="utf-8", newline="") as handle:
    with contextlib.redirect_stdout(handle):
        code = run({argv!r})
heavy = {{m.split(".")[0] for m in sys.modules}} & {{"pandas", "pyarrow"}}
print(json.dumps([code, sorted(heavy)]))
"""


def _printed(write) -> bytes:
    """What `write()` prints to standard output, as bytes (through a real file, so the
    binary copy path of the writers is the one tested)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out"
        with (
            open(path, "w", encoding="utf-8", newline="") as handle,
            contextlib.redirect_stdout(handle),
        ):
            write()
        return path.read_bytes()


@pytest.mark.parametrize(
    "argv",
    [
        ["risk", "--all", "--all", "--method", "geopolrisk", "--format", "csv"],
        ["risk", "--all", "--all", "--format", "json", "--peer-compatible"],
        ["risk", "--all", "--all", "--format", "csv", "--out", "{tmp}/grid.csv"],
    ],
    ids=["csv", "json-peer", "csv-out"],
)
def test_the_grid_on_the_command_line_imports_no_pandas(argv, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = tmp_path / "stdout"
    probe = PROBE.format(out=str(out), argv=argv)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    code, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0, done.stderr
    assert heavy == []
    written = tmp_path / "grid.csv" if "--out" in argv else out
    lines = written.read_bytes().count(b"\n")
    assert lines >= 80_000  # 237 countries × 53 commodities × 7 years, and a header


@pytest.fixture(scope="module")
def bloc() -> dict[str, tuple[str, ...]]:
    # A bloc, a country, a name a spreadsheet would read as a formula, an empty bloc.
    return {
        "eu27": cm.group("eu27").members,
        "GUY": ("GUY",),
        "=HYPERLINK(1)": ("AUS", "IND", "JPN", "USA"),
        "-empty": (),
    }


@pytest.mark.parametrize("mode", ["correct", "peer"])
@pytest.mark.parametrize("fmt", [OutputFormat.csv, OutputFormat.json])
def test_streamed_bloc_output_equals_the_dataframe_path(bloc, mode, fmt):
    years = [2022, 2018, 2024]  # the order given is the order of the rows
    frame = geopolrisk(bloc, years, mode)
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["entity"].unique()) == list(bloc)
    assert list(frame["year"].head(3)) == years
    assert len(frame) == len(bloc) * frame["commodity"].nunique() * len(years)
    sql, params = grid_sql(bloc, years, mode)
    streamed = _printed(lambda: emit_query(sql, params, fmt))
    assert streamed == _printed(lambda: emit(frame, fmt))
    if fmt is OutputFormat.csv:
        assert b"\n'=HYPERLINK(1),aluminium,2022," in streamed
        assert b"\n'-empty,aluminium,2022,0." in streamed


@pytest.mark.parametrize("mode", ["correct", "peer"])
def test_streamed_grid_csv_equals_the_dataframe_path(mode):
    frame = geopolrisk(mode=mode)
    assert frame.dtypes.astype(str).tolist() == ["str", "str", "int64"] + ["float64"] * 8
    assert frame["entity"].is_monotonic_increasing
    sql, params = grid_sql(mode=mode)
    streamed = _printed(lambda: emit_query(sql, params, OutputFormat.csv))
    assert streamed == _printed(lambda: emit(frame, OutputFormat.csv))
    assert streamed.count(b"\n") == len(frame) + 1
    # The peer's NaN results are missing cells, as pandas writes NaN.
    assert (b",," in streamed) == bool(frame["score"].isna().any())
    assert frame["score"].isna().any() == (mode == "peer")


def test_risk_sql_is_what_the_python_api_returns():
    from critmin.metrics.api import risk

    sql, params = risk_sql("EU", "REE", 2023, peer_compatible=True)
    table = risk("EU", "REE", 2023, peer_compatible=True)
    assert table.equals(query(sql, params))
    assert table[["entity", "commodity", "year"]].values.tolist() == [["eu27", "rare_earths", 2023]]
    whole = geopolrisk({"eu27": cm.group("eu27").members}, [2023], "peer")
    expected = whole[whole["commodity"] == "rare_earths"].reset_index(drop=True)
    pd.testing.assert_frame_equal(table, expected)


def test_emit_query_writes_text_numbers_and_booleans_as_emit_does():
    sql = (
        "SELECT * FROM (VALUES ('=1+1', 1.5, 'NaN'::DOUBLE, true, 3), "
        "('plain', NULL, 2.0, false, NULL), ('', 0.1, 1e-7, NULL, -1), "
        "(chr(9) || 'tab', 1e300, -0.0, true, 0), ('''quoted', 2.5, 3.0, false, 7)) "
        "t(name, x, y, flag, n)"
    )
    frame = query(sql)
    for fmt in (OutputFormat.csv, OutputFormat.json):
        assert _printed(lambda fmt=fmt: emit_query(sql, None, fmt)) == _printed(
            lambda fmt=fmt: emit(frame, fmt)
        )
