"""`critmin run --format csv|xlsx`: a finished run's tables in the formats people hand on: CSV
files or one XLSX workbook, next to the Parquet files and summary.json the run writes (same rows,
text cells made formula-safe, each file written to a temporary name and renamed)."""

from __future__ import annotations

import json
from pathlib import Path

EXPORT_FORMATS = ("csv", "xlsx")
STALE_TABLES = ("markets", "prices", "flows", "ensemble")  # critmin.web.jobs.TABLES


def _summary_rows(summary: dict) -> list[dict]:
    rows = []
    for commodity, figures in (summary.get("markets") or {}).items():
        for key, value in figures.items():
            if isinstance(value, int | float | str | bool) or value is None:
                rows.append({"commodity": commodity, "figure": key, "value": value})
    return rows


def export_run(out: Path, fmt: str) -> list[Path]:
    """Write the run in `out` (Parquet tables + summary.json) as CSV files (`name.csv`, and
    `summary.csv` with one row per market × figure) or as `results.xlsx` (a sheet per table
    and a summary sheet). Returns the files written."""
    import pandas as pd

    from critmin.cli.sanitise import spreadsheet_cell
    from critmin.data.io import atomic_path
    from critmin.errors import InputError

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    tables = {Path(name).stem: pd.read_parquet(out / name) for name in summary.get("files") or []}
    tables["summary"] = pd.DataFrame(
        _summary_rows(summary), columns=["commodity", "figure", "value"]
    )
    for frame in tables.values():
        text = frame.select_dtypes(include=["object", "string"]).columns
        frame[text] = frame[text].map(spreadsheet_cell)
    # An earlier run's exports (either format) would describe another run: gone first.
    for stale in [out / "results.xlsx", *(out / f"{n}.csv" for n in (*STALE_TABLES, "summary"))]:
        stale.unlink(missing_ok=True)
    written = []
    if fmt == "csv":
        for name, frame in tables.items():
            with atomic_path(out / f"{name}.csv") as tmp:
                frame.to_csv(tmp, index=False)
            written.append(out / f"{name}.csv")
        return written
    with atomic_path(out / "results.xlsx") as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as book:
        for name, frame in tables.items():
            frame.to_excel(book, sheet_name=name[:31], index=False)
    return [out / "results.xlsx"]
