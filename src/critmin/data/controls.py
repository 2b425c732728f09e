"""The export-controls table: real export restrictions on critical minerals, with sources."""

from __future__ import annotations

import io
from importlib import resources
from typing import TYPE_CHECKING

from critmin.data.columns import Table, text

if TYPE_CHECKING:
    import pandas as pd

CONTROLS_FILE = "classifications/export_controls.csv"
COLUMNS = [
    "measure",
    "country",
    "commodities",
    "start",
    "end",
    "kind",
    "scope",
    "description",
    "source",
]


def export_controls_table() -> Table:
    """`export_controls` without pandas: every column as text, `commodities` as tuples."""
    from critmin.data.schema import csv_columns

    data = csv_columns(resources.files("critmin.data").joinpath(CONTROLS_FILE))
    columns = {name: text([v or "" for v in data[name]]) for name in COLUMNS}
    columns["commodities"] = text([tuple(v.split("|")) for v in columns["commodities"]])
    return Table(columns, len(data["measure"]))


def export_controls() -> pd.DataFrame:
    """Export restrictions (bans, quotas, licences) from classifications/export_controls.csv;
    `commodities` as a tuple of commodity ids, `end` empty while in force."""
    import pandas as pd

    source = resources.files("critmin.data").joinpath(CONTROLS_FILE)
    frame = pd.read_csv(io.StringIO(source.read_text("utf-8")), comment="#", dtype=str)
    frame = frame.fillna("")
    frame["commodities"] = frame["commodities"].map(lambda v: tuple(v.split("|")))
    return frame[COLUMNS]
