"""The tidy table schema (read from classifications/columns.csv) as Arrow schemas, and the
readers of the bundled CSV files whose leading '#' lines are comments."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from critmin.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

CLASSIFICATIONS_DIR = Path(__file__).parent / "classifications"


@dataclass(frozen=True)
class Column:
    """One column of a tidy table: its name, Arrow type name, unit and meaning."""

    table: str
    name: str
    type: str
    unit: str
    description: str


def _commented_reader(path: Path) -> csv.DictReader:
    """A reader of the rows of a CSV file whose leading '#' lines are comments."""
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return csv.DictReader(lines)


def read_commented_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file whose leading '#' lines are comments."""
    return list(_commented_reader(path))


def csv_columns(path: Path) -> dict[str, list]:
    """The columns of a CSV file whose leading '#' lines are comments, as lists of text
    (the rows `read_commented_csv` gives, by column; a short row's missing cells are None)."""
    reader = _commented_reader(path)
    rows = list(reader)
    for number, row in enumerate(rows, start=1):
        if None in row:  # more cells than the header: an unquoted comma, say
            raise DataError(
                f"{path.name}: data row {number} has more cells than the header "
                f"({', '.join(reader.fieldnames or [])}); quote a cell that holds a comma"
            )
    return {name: [row[name] for row in rows] for name in reader.fieldnames or []}


@functools.cache
def columns() -> tuple[Column, ...]:
    """Every column of every table, in declaration order."""
    rows = read_commented_csv(CLASSIFICATIONS_DIR / "columns.csv")
    return tuple(
        Column(r["table"], r["column"], r["type"], r["unit"], r["description"]) for r in rows
    )


def table_columns(table: str) -> list[Column]:
    """The columns of one table."""
    return [c for c in columns() if c.table == table]


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of one table (pyarrow is imported here: reading schemas' names, units
    and meanings does not need it)."""
    import pyarrow as pa

    types = {
        "int16": pa.int16(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "list<string>": pa.list_(pa.string()),
        "list<int32>": pa.list_(pa.int32()),
    }
    return pa.schema([(c.name, types[c.type]) for c in table_columns(table)])
