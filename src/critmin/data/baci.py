"""Import a full BACI release (CSV: t,i,j,k,v,q) into the tidy trade table, streamed by DuckDB.

BACI (CEPII; Gaulier & Zignago 2010) gives t year, i exporter and j importer (BACI country
codes), k HS6 product, v value in thousand USD, q quantity in tonnes ('NA' when unknown).
A release has ~10 M rows a year across all products; DuckDB streams the file into Parquet
without holding it in memory. Errors name the file and the first bad line.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from critmin.data.catalog import user_data_dir
from critmin.data.io import atomic_path, sha256_file, sweep_stale_temporaries
from critmin.data.manifest import read_manifest, write_manifest
from critmin.data.resolve import all_countries
from critmin.data.schema import table_columns
from critmin.errors import InputError

COLUMNS = ("t", "i", "j", "k", "v", "q")
HS_REVISIONS = ("HS92", "HS96", "HS02", "HS07", "HS12", "HS17", "HS22")
_REVISION_IN_NAME = re.compile(r"BACI_(HS\d{2})_", re.IGNORECASE)
_LINE_IN_ERROR = re.compile(r"[Ll]ine:?\s*(\d+)")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: the file, its rows, years and HS revision."""

    path: Path
    rows: int
    years: tuple[int, int]
    hs_revision: str
    replaced: tuple[str, ...]


# Plausibility bounds for one bilateral flow of one HS6 product in one year: the largest
# in BACI (iron ore, Australia to China) is about 7e8 t and 1e8 thousand USD, so a figure
# over these is a unit or parsing error, not trade.
MAX_QTY_T = 1e10
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
MAX_VALUE_KUSD = 1e10


def hs_revision_of(paths: Iterable[Path], given: str | None) -> str:
    """The HS revision: given explicitly, or read from BACI file names (BACI_HS17_Y2022_...)."""
    if given:
        revision = given.upper()
        if revision not in HS_REVISIONS:
            raise InputError(f"unknown HS revision {given!r}; use one of {', '.join(HS_REVISIONS)}")
        return revision
    found = set()
    for path in paths:
        match = _REVISION_IN_NAME.search(Path(path).name)
        if match:
            found.add(match.group(1).upper())
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        raise InputError(f"files mix HS revisions {sorted(found)}; import them separately")
    raise InputError(
        "cannot tell the HS revision from the file names; pass --hs-revision (e.g. HS17)"
    )


def _check_header(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as handle:
        first = handle.readline(4096)
    try:
        text = first.decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}:1: not UTF-8 text (a BACI CSV starts 't,i,j,k,v,q')") from exc
    names = [name.strip().strip('"') for name in text.split(",")]
    # The columns are read by position (as BACI writes them), so another order is refused
    # rather than read with exporter and importer swapped.
    if names != list(COLUMNS):
        raise InputError(
            f"{path}:1: expected the header t,i,j,k,v,q (in this order), found {text[:80]!r}"
        )


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def first_bad_line(path: Path, known_codes: set[int]) -> tuple[int, str] | None:
    """Scan `path` line by line for the first malformed row (only run after a failed import).

    Returns (line number, reason) or None when every row is valid.
    """
    # Undecodable bytes become lone surrogates, so the row that holds them can be named.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        try:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader)]
            position = {name: header.index(name) for name in COLUMNS}
            for number, row in enumerate(reader, start=2):
                if _NOT_UTF8.search(",".join(row)):
                    return number, "not UTF-8 text"
                reason = _row_problem(row, position, known_codes)
                if reason:
                    return number, reason
        except csv.Error as exc:
            return (reader.line_num, f"malformed CSV ({exc})")
    return None


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '²' and '٢', which int() refuses."""
    return text.isascii() and text.isdigit()


def _row_problem(row: list[str], position: dict[str, int], known_codes: set[int]) -> str | None:
    if len(row) != len(position):
        return f"expected {len(position)} fields, found {len(row)}"
    field = {name: row[index].strip() for name, index in position.items()}
    if not _digits(field["t"]) or not 1900 <= int(field["t"]) <= 2100:
        return f"year t={field['t']!r} is not a year"
    for name in ("i", "j"):
        if not _digits(field[name]):
            return f"country code {name}={field[name]!r} is not a number"
        if int(field[name]) not in known_codes:
            return f"unknown BACI country code {name}={field[name]}"
    if not _digits(field["k"]) or len(field["k"]) > 6:
        return f"product code k={field['k']!r} is not an HS6 code"
    value = _number(field["v"])
    if value is None or value < 0:
        return f"value v={field['v']!r} must be a finite number >= 0"
    if value > MAX_VALUE_KUSD:
        return f"value v={field['v']!r} is over {MAX_VALUE_KUSD:.0e} thousand USD; check the units"
    if field["q"] not in ("", "NA"):
        qty = _number(field["q"])
        if qty is None or qty < 0:
            return f"quantity q={field['q']!r} must be a finite number >= 0 or NA"
        if qty > MAX_QTY_T:
            return f"quantity q={field['q']!r} is over {MAX_QTY_T:.0e} t; check the units"
    return None


def _concordance() -> list[tuple[int, str]]:
    return [(code, c.iso3) for c in all_countries() for code in c.baci_codes]


def _connect(memory_limit: str, temp_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")  # lets COPY stream in bounded memory
    con.execute(f"SET temp_directory = '{temp_dir.as_posix()}'")
    con.execute("SET enable_progress_bar = false")
    return con


def _stage_sql(paths: list[Path], only_codes: list[str] | None) -> tuple[str, list]:
    listed = ", ".join("'" + p.as_posix().replace("'", "''") + "'" for p in paths)
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS) + "}"
    source = (
        f"read_csv([{listed}], header = true, delim = ',', quote = '\"', columns = {columns}, "
        "strict_mode = true, auto_detect = false)"
    )
    params: list = []
    filter_sql = ""
    if only_codes is not None:
        filter_sql = "WHERE lpad(trim(k), 6, '0') IN (SELECT UNNEST(?))"
        params.append(only_codes)
    sql = f"""
        SELECT CAST(trim(t) AS SMALLINT) AS year,
               ce.iso3 AS exporter,
               ci.iso3 AS importer,
               -- lpad truncates longer strings: keep them whole so validation sees them
               CASE WHEN length(trim(k)) <= 6 THEN lpad(trim(k), 6, '0') ELSE trim(k) END
                   AS hs6,
               CAST(trim(v) AS DOUBLE) AS value_kusd,
               CASE WHEN q IS NULL OR trim(q) IN ('', 'NA') THEN NULL
                    ELSE CAST(trim(q) AS DOUBLE) END AS qty_t
        FROM {source} AS raw
        LEFT JOIN concordance AS ce ON ce.code = TRY_CAST(trim(raw.i) AS INTEGER)
        LEFT JOIN concordance AS ci ON ci.code = TRY_CAST(trim(raw.j) AS INTEGER)
        {filter_sql}
    """
    return sql, params


def _problems(con: duckdb.DuckDBPyConnection, staged: Path) -> list[str]:
    """Aggregate checks on the staged Parquet: unknown codes, bad numbers, duplicate keys."""
    relation = f"read_parquet('{staged.as_posix()}')"
    row = con.execute(
        f"""SELECT
            count(*) FILTER (WHERE exporter IS NULL OR importer IS NULL),
            count(*) FILTER (WHERE year IS NULL OR year < 1900 OR year > 2100),
            count(*) FILTER (WHERE hs6 IS NULL OR NOT regexp_full_match(hs6, '[0-9]{{6}}')),
            count(*) FILTER (WHERE value_kusd IS NULL OR isnan(value_kusd) OR isinf(value_kusd)
                             OR value_kusd < 0 OR value_kusd > {MAX_VALUE_KUSD}),
            count(*) FILTER (WHERE isnan(qty_t) OR isinf(qty_t) OR qty_t < 0
                             OR qty_t > {MAX_QTY_T})
        FROM {relation}"""
    ).fetchone()
    labels = (
        "unknown BACI country codes",
        "years missing or outside 1900-2100",
        "product codes missing or not HS6",
        "values that are missing, negative, not finite or implausibly large",
        "quantities that are negative, not finite or implausibly large",
    )
    problems = [
        f"{count} rows with {label}" for count, label in zip(row, labels, strict=True) if count
    ]
    duplicates = con.execute(
        f"SELECT year, exporter, importer, hs6, count(*) OVER () FROM {relation} "
        "GROUP BY year, exporter, importer, hs6 HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if duplicates:
        year, exporter, importer, hs6, count = duplicates
        problems.append(
            f"{count} duplicated (t, i, j, k) keys after mapping codes to countries, "
            f"e.g. {year} {exporter}->{importer} {hs6}"
        )
    return problems


def _locate_problem(paths: list[Path], fallback: str) -> InputError:
    known = {code for code, _ in _concordance()}
    for path in paths:
        found = first_bad_line(path, known)
        if found:
            line, reason = found
            return InputError(f"{path}:{line}: {reason}")
    return InputError(f"{', '.join(str(p) for p in paths)}: {fallback}")


def import_baci(
    paths: Iterable[Path | str],
    hs_revision: str | None = None,
    target_dir: Path | None = None,
    replace: bool = False,
    only_codes: list[str] | None = None,
    memory_limit: str = "1GB",
    progress: Progress | None = None,
) -> ImportResult:
    """Import BACI CSV files into `<target_dir>/trade/` (default: the user's dataset folder).

    Years already imported are refused unless `replace=True`. The new Parquet file is
    written to a temporary name and renamed, then the manifest (the commit point, which
    lists the files the trade table reads) is rewritten atomically; replaced files are
    removed last. An error at any step leaves the previous dataset as it was.
    """
    say = progress or (lambda _message: None)
    files = [Path(p).expanduser() for p in paths]
    if not files:
        raise InputError("no BACI file given")
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", memory_limit.strip(), re.IGNORECASE):
        raise InputError(f"memory limit {memory_limit!r} is not like '1GB' or '1500MB'")
    say("check headers")
    for path in files:
        _check_header(path)
    revision = hs_revision_of(files, hs_revision)
    target = Path(target_dir) if target_dir else user_data_dir()
    trade_dir = target / "trade"
    trade_dir.mkdir(parents=True, exist_ok=True)
    for folder in (target, trade_dir):  # what an import killed earlier left half written
        sweep_stale_temporaries(folder)
    manifest = read_manifest(target)
    entry = manifest["tables"].get("trade", {})
    imports = list(entry.get("imports", []))

    con = _connect(memory_limit, trade_dir)
    try:
        con.execute("CREATE TEMP TABLE concordance (code INTEGER, iso3 VARCHAR)")
        con.executemany("INSERT INTO concordance VALUES (?, ?)", _concordance())
        sql, params = _stage_sql(files, only_codes)
        digest = hashlib.sha256("|".join(sorted(p.name for p in files)).encode()).hexdigest()
        # Never write over a file the manifest lists (a re-import of the same files): until
        # the new manifest is written, the listed file must keep the checksum it records.
        listed, number = {i["file"] for i in imports}, 0
        final = trade_dir / f"baci_{revision}_{digest[:12]}.parquet"
        while final.name in listed:
            number += 1
            final = trade_dir / f"baci_{revision}_{digest[:12]}_{number}.parquet"
        with atomic_path(final) as staged:
            say("stream CSV into Parquet")
            try:
                con.execute(
                    # USE_TMP_FILE false: the staged name is already temporary, and DuckDB's
                    # own extra temporary file would outlive a killed import.
                    f"COPY ({sql}) TO '{staged.as_posix()}' "
                    "(FORMAT parquet, COMPRESSION zstd, USE_TMP_FILE false)",
                    params,
                )
            except duckdb.Error as exc:
                # Our own row check names the reason (encoding, fields, number); DuckDB's
                # message ("CSV Error on Line: 5") is the fallback.
                line = _LINE_IN_ERROR.search(str(exc))
                first = str(exc).strip().splitlines()[0]
                fallback = f"line {line.group(1)}: {first}" if line else first
                raise _locate_problem(files, fallback) from exc
            say("validate")
            problems = _problems(con, staged)
            if problems:
                raise _locate_problem(files, "; ".join(problems))
            rows, first_year, last_year = con.execute(
                f"SELECT count(*), min(year), max(year) FROM read_parquet('{staged.as_posix()}')"
            ).fetchone()
            if not rows:
                raise InputError(f"{', '.join(map(str, files))}: no data rows to import")
            years = (int(first_year), int(last_year))
            file_years = {
                int(y)
                for (y,) in con.execute(
                    f"SELECT DISTINCT year FROM read_parquet('{staged.as_posix()}')"
                ).fetchall()
            }
            clashing = [i for i in imports if file_years & set(i.get("year_list", []))]
            if clashing and not replace:
                names = ", ".join(i["file"] for i in clashing)
                raise InputError(
                    f"years {sorted(file_years)} overlap an earlier import ({names}); "
                    "pass --replace to replace it"
                )
    finally:
        con.close()

    kept = [i for i in imports if i not in clashing and i["file"] != final.name]
    record = {
        "file": final.name,
        "sources": [p.name for p in files],
        "hs_revision": revision,
        "rows": int(rows),
        "years": list(years),
        "year_list": sorted(file_years),
        "sha256": sha256_file(final),
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "only_codes": only_codes is not None,
    }
    kept.append(record)
    say("write manifest")
    write_manifest(
        target,
        {
            "trade": {
                "source": "CEPII BACI (user import)",
                "url": "https://www.cepii.fr/CEPII/en/bdd_modele/bdd_modele_item.asp?id=37",
                "licence": "Etalab Open Licence 2.0",
                "version": ", ".join(sorted({i["hs_revision"] for i in kept})),
                "hs_revision": revision,
                "files": [i["file"] for i in kept],
                "imports": kept,
                "rows": sum(i["rows"] for i in kept),
                "years": [min(i["years"][0] for i in kept), max(i["years"][1] for i in kept)],
                "columns": {
                    c.name: {"type": c.type, "unit": c.unit, "description": c.description}
                    for c in table_columns("trade")
                },
            }
        },
    )
    replaced = tuple(i["file"] for i in clashing)
    for name in replaced:
        if name != final.name:
            (trade_dir / name).unlink(missing_ok=True)
    return ImportResult(final, int(rows), years, revision, replaced)
