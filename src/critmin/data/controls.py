"""The export-controls table: real export restrictions on critical minerals, with sources."""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd

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


def export_controls() -> pd.DataFrame:
    """Export restrictions (bans, quotas, licences) from classifications/export_controls.csv;
    `commodities` as a tuple of commodity ids, `end` empty while in force."""
    text = resources.files("critmin.data").joinpath("classifications/export_controls.csv")
    frame = pd.read_csv(io.StringIO(text.read_text("utf-8")), comment="#", dtype=str)
    frame = frame.fillna("")
    frame["commodities"] = frame["commodities"].map(lambda v: tuple(v.split("|")))
    return frame[COLUMNS]
