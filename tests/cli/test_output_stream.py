"""CSV and JSON of large frames go through DuckDB's writer (issue 18) and read back as the
row-wise writers wrote them: same text for CSV, same records for JSON."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from critmin.cli import output
from critmin.cli.output import OutputFormat, emit
from critmin.cli.sanitise import spreadsheet_cell


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity": pd.array(["DEU", "=HYPERLINK(1)", None, "a,b", "", "x\ny"], dtype="str"),
            "note": pd.Series(["ok", "", None, "'quoted", "+1", "-"], dtype=object),
            "year": [2018, 2019, 2020, 2021, 2022, 2023],
            "share": [0.30000000000000004, 2.0, np.nan, 1e20, -0.0, np.inf],
            "risky": [True, False, True, False, True, False],
        }
    )


def _written(frame: pd.DataFrame, fmt: OutputFormat, capsys) -> str:
    emit(frame, fmt)
    return capsys.readouterr().out


def test_csv_is_the_text_pandas_wrote(capsys, monkeypatch):
    frame = _frame()
    streamed = _written(frame, OutputFormat.csv, capsys)
    expected = frame.copy()
    for column in ("entity", "note"):
        expected[column] = expected[column].map(spreadsheet_cell)
    assert streamed == expected.to_csv(index=False, lineterminator="\n")
    monkeypatch.setattr(output, "_stream", lambda *_: False)  # the row-wise path
    assert _written(frame, OutputFormat.csv, capsys) == streamed


def test_json_records_are_the_row_wise_ones(capsys, monkeypatch):
    frame = _frame().drop(columns="share").assign(share=[0.1, 2.0, np.nan, 1e20, -0.0, 3.5])
    streamed = json.loads(_written(frame, OutputFormat.json, capsys))
    monkeypatch.setattr(output, "_stream", lambda *_: False)
    row_wise = json.loads(_written(frame, OutputFormat.json, capsys))
    assert streamed == row_wise
    assert streamed[2]["share"] is None and streamed[2]["entity"] is None


def test_lists_and_empty_frames_take_the_row_wise_path(capsys):
    frame = pd.DataFrame({"country": ["DEU"], "codes": [["260400", "280530"]]})
    assert _written(frame, OutputFormat.csv, capsys) == "country,codes\nDEU,260400|280530\n"
    assert json.loads(_written(frame, OutputFormat.json, capsys)) == [
        {"country": "DEU", "codes": ["260400", "280530"]}
    ]
    assert _written(frame.iloc[:0], OutputFormat.json, capsys) == "[]\n"


def test_a_text_stream_without_buffer_gets_the_same_text(capsys, monkeypatch):
    frame = _frame()
    streamed = _written(frame, OutputFormat.csv, capsys)
    sink = io.StringIO()
    monkeypatch.setattr("sys.stdout", sink)
    emit(frame, OutputFormat.csv)
    assert sink.getvalue() == streamed
