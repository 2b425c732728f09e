"""Render DataFrames and records for the terminal: a Rich table, CSV or JSON."""

from __future__ import annotations

import enum
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from critmin.cli.sanitise import FORMULA_START, spreadsheet_cell, terminal_text

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from rich.console import Console

    from critmin.data.columns import Table


class LazyConsole:
    """A Rich console made on first use: a command that prints JSON or CSV never loads Rich
    (≈0.05 s of a one-question command, issue 18). Attributes go to the console; `get()`
    gives the console itself where Rich needs one (a progress bar)."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> object:
        return getattr(self.get(), name)


console = LazyConsole()
error_console = LazyConsole(stderr=True)


class OutputFormat(enum.StrEnum):
    """How a command prints its result."""

    table = "table"
    csv = "csv"
    json = "json"


def _plain(value: object) -> object:
    import numpy as np

    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.floating | float):
        return None if math.isnan(value) else float(value)
    pandas = sys.modules.get("pandas")  # pd.NA can only come from pandas if it is loaded
    if value is None or (pandas is not None and value is pandas.NA):
        return None
    return value


def _cell(value: object, column: str) -> str:
    value = _plain(value)
    if value is None:
        return "–"
    if isinstance(value, list):
        return ", ".join(str(_cell(v, column)) for v in value)
    if isinstance(value, str):
        return terminal_text(value)
    if isinstance(value, float):
        if "share" in column or column in ("hhi", "eol_rir"):
            return f"{value:.1%}" if "share" in column else f"{value:.3f}"
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def emit(
    frame: pd.DataFrame | Table,
    fmt: OutputFormat,
    title: str = "",
    caption: str = "",
    table_columns: list[str] | None = None,
) -> None:
    """Print `frame` (a DataFrame or a `critmin.data.columns.Table`) in the chosen format to
    standard output.

    `table_columns` narrows what the terminal table shows; CSV and JSON keep every column.
    """
    from critmin.data.columns import Table

    if isinstance(frame, Table):
        if fmt is OutputFormat.table:  # a terminal table needs no pandas
            _print_table(frame.select(table_columns) if table_columns else frame, title, caption)
            return
        frame = frame.frame()
    if fmt is OutputFormat.csv:
        out = frame.copy()
        for column in out.columns:
            if out[column].dtype == object and out[column].map(_is_sequence).any():
                out[column] = out[column].map(lambda v: "|".join(map(str, _plain(v))))
            if _text_column(out[column]):  # text cells: no formula for a spreadsheet
                out[column] = _spreadsheet_column(out[column])
        if not _stream(out, "csv"):
            out.to_csv(sys.stdout, index=False, lineterminator="\n")
    elif fmt is OutputFormat.json:
        if not _stream(frame, "json"):
            records = [
                {column: _plain(value) for column, value in row.items()}
                for row in frame.to_dict(orient="records")
            ]
            sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    else:
        import pandas as pd

        shown = frame[table_columns] if table_columns else frame
        numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
        _print_table(Table.from_frame(shown), title, caption, numeric)


def _print_table(rows: Table, title: str, caption: str, numeric: list[bool] | None = None) -> None:
    """A Rich table of `rows` on standard output; the `numeric` columns right-aligned (by
    default those of numbers and booleans, as pandas counts them)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text, not markup: a title or cell may hold what a user wrote, brackets included;
    # escape sequences in it are removed (terminal_text).
    table = RichTable(
        title=Text(terminal_text(title)) if title else None,
        caption=Text(terminal_text(caption)) if caption else None,
        header_style="bold",
    )
    names = rows.names
    if numeric is None:
        numeric = [rows[column].dtype.kind in "biufc" for column in names]
    for column, right in zip(names, numeric, strict=True):
        table.add_column(Text(terminal_text(column)), justify="right" if right else "left")
    for row in zip(*(rows[column] for column in names), strict=True):
        table.add_row(*(Text(_cell(v, c)) for v, c in zip(row, names, strict=True)))
    console.print(table)


def _is_sequence(value: object) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray | list)


def _spreadsheet_column(series: pd.Series) -> pd.Series:
    """`spreadsheet_cell` on a text column, vectorised where every cell is text or missing."""
    import pandas as pd

    if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        return series.map(spreadsheet_cell)
    risky = series.str.startswith((*FORMULA_START, "'")).fillna(False).astype(bool)
    if not risky.any():
        return series
    return series.where(~risky, "'" + series.astype(object).where(risky, ""))


# Object columns DuckDB writes as pandas would: text, numbers; anything else (lists, dates,
# mixed objects) goes through the row-wise path.
_STREAMABLE = ("string", "empty", "integer", "floating", "mixed-integer-float", "boolean")


def _stream(frame: pd.DataFrame, fmt: str) -> bool:
    """Write `frame` as CSV (header, pandas' number format, True/False) or as a JSON array
    of records (NaN as null) to standard output through DuckDB's writer: the rows are
    formatted in C into a temporary file, then copied out in blocks. False (nothing
    written) when a column holds values DuckDB would not write as pandas does."""
    import pandas as pd

    from critmin.data.catalog import connection

    names = list(frame.columns)
    if (
        len(frame) == 0
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) for n in names)
    ):
        return False
    for column in names:
        dtype = frame[column].dtype
        if pd.api.types.is_object_dtype(dtype):
            if pd.api.types.infer_dtype(frame[column]) not in _STREAMABLE:
                return False
        elif not (
            pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
        ):
            return False  # dates, categories, intervals: as pandas writes them
    selects = []
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        if fmt == "csv" and pd.api.types.is_bool_dtype(frame[name].dtype):
            selects.append(
                f"CASE WHEN {quoted} THEN 'True' WHEN NOT {quoted} THEN 'False' END AS {quoted}"
            )
        elif fmt == "csv" and not pd.api.types.is_numeric_dtype(frame[name].dtype):
            selects.append(f"NULLIF({quoted}, '') AS {quoted}")  # pandas: "" and NA alike
        else:
            selects.append(quoted)
    con = connection()
    view = "critmin_output_frame"
    con.register(view, frame)
    try:
        _copy_out(con, f"SELECT {', '.join(selects)} FROM {view}", None, fmt)
    finally:
        con.unregister(view)
    return True


def emit_query(sql: str, params: list | dict | None, fmt: OutputFormat) -> int:
    """Print the result of a DuckDB query in CSV or JSON with the bytes `emit` prints for the
    same rows in a DataFrame, without pandas: DuckDB writes the rows, text cells get the
    spreadsheet-formula guard in SQL (as `spreadsheet_cell`), NaN is written as a missing
    value. `sql` may hold table tokens (`{trade}` ...: `critmin.data.catalog.resolved_sql`);
    values go in `params`. Columns must be text, integers, floats or booleans. Returns the
    number of rows written."""
    import duckdb

    from critmin.data.catalog import connection, resolved_sql
    from critmin.errors import DataError

    if fmt not in (OutputFormat.csv, OutputFormat.json):
        raise ValueError(f"emit_query writes csv or json, not {fmt}")
    csv = fmt is OutputFormat.csv
    con = connection()
    sql = resolved_sql(sql)
    try:
        described = con.execute(f"DESCRIBE ({sql})", params or []).fetchall()
        selects = []
        for name, kind, *_ in described:
            quoted = '"' + name.replace('"', '""') + '"'
            if kind == "VARCHAR" and csv:  # as _spreadsheet_column, then "" as missing
                selects.append(f"NULLIF({_formula_guard_sql(quoted)}, '') AS {quoted}")
            elif kind == "BOOLEAN" and csv:
                selects.append(
                    f"CASE WHEN {quoted} THEN 'True' WHEN NOT {quoted} THEN 'False' END AS {quoted}"
                )
            elif kind in ("DOUBLE", "FLOAT"):  # NaN as pandas writes it: missing
                selects.append(f"CASE WHEN NOT isnan({quoted}) THEN {quoted} END AS {quoted}")
            elif kind in _PLAIN_TYPES:
                selects.append(quoted)
            else:
                raise ValueError(f"emit_query cannot write column {name!r} of type {kind}")
        return _copy_out(con, f"SELECT {', '.join(selects)} FROM ({sql})", params, fmt.value)
    except duckdb.Error as exc:  # the first line says it (critmin.data.catalog.query)
        first = next((line for line in str(exc).splitlines() if line.strip()), "DuckDB error")
        raise DataError(f"query failed: {first}") from exc


_PLAIN_TYPES = ("VARCHAR", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT")


def _formula_guard_sql(column: str) -> str:
    """`spreadsheet_cell` in SQL: text starting like a formula (or with an apostrophe) gets
    a leading apostrophe. The prefixes are written as chr() codes, never as quoted text."""

    def text(prefix: str) -> str:
        return " || ".join(f"chr({ord(c)})" for c in prefix)

    starts = " OR ".join(f"starts_with({column}, {text(p)})" for p in (*FORMULA_START, "'"))
    return f"CASE WHEN {starts} THEN chr(39) || {column} ELSE {column} END"


def _copy_out(con: object, select: str, params: list | dict | None, fmt: str) -> int:
    """COPY `select` as CSV (header) or a JSON array into a temporary file, then copy the
    file to standard output in blocks; the number of rows."""
    import shutil
    import tempfile
    from pathlib import Path

    options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT json, ARRAY true"
    with tempfile.TemporaryDirectory(prefix="critmin-output-") as folder:
        path = Path(folder) / f"out.{fmt}"
        target = "'" + str(path).replace("'", "''") + "'"
        done = con.execute(f"COPY ({select}) TO {target} ({options})", params or [])
        rows = done.fetchone()
        sys.stdout.flush()
        binary = getattr(sys.stdout, "buffer", None)
        if binary is None:  # a text stream without a buffer (redirect_stdout in tests)
            sys.stdout.write(path.read_text(encoding="utf-8"))
        else:
            with path.open("rb") as source:
                shutil.copyfileobj(source, binary, 1 << 20)
            binary.flush()
    return int(rows[0]) if rows else 0


def write_output(out: Path, write: Callable[[Path], None]) -> Path:
    """The one place a command writes a file the user named with --out: `write(tmp)` fills
    a temporary file beside it, renamed over `out` when complete. Only a regular file (or
    nothing) is replaced: a device, FIFO, symbolic link or folder is refused; an empty
    name, a read-only folder or a full disk is one error line (critmin.data.io)."""
    from critmin.data.io import atomic_path

    with atomic_path(out) as tmp:
        write(tmp)
    return out


def sheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its text cells made safe for a spreadsheet (numbers left as numbers)."""
    out = frame.copy()
    for column in out.columns:
        if _text_column(out[column]):
            out[column] = out[column].map(spreadsheet_cell)
    return out


def _text_column(series: pd.Series) -> bool:
    """Object or string dtype (pandas 3 stores text as `str`, not object)."""
    import pandas as pd

    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def emit_json(payload: object) -> None:
    """Print a JSON document (dicts/lists) to standard output."""
    sys.stdout.write(json.dumps(_deep_plain(payload), indent=2, default=str) + "\n")


def _deep_plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _deep_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_plain(v) for v in value]
    return _plain(value)


@contextmanager
def stages(total: int, description: str) -> Iterator[Callable[[str], None]]:
    """A progress bar over named stages (on stderr, so piped output stays clean)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=error_console.get(),
        transient=True,
        disable=not error_console.is_terminal,  # no bar (nor blank line) in a pipe or log
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(stage: str) -> None:
            progress.update(task, advance=1, description=f"{description}: {stage}")

        yield advance
