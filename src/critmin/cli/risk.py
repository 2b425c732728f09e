"""`critmin risk`: GeoPolRisk and EU supply risk for countries, blocs and commodities."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import typer

from critmin.cli.output import (
    OutputFormat,
    console,
    emit,
    emit_query,
    sheet_frame,
    write_output,
)
from critmin.cli.sanitise import terminal_text
from critmin.errors import InputError
from critmin.metrics.geopolrisk_sql import risk_sql  # imports no pandas


def risk(
    importer: str = typer.Argument("all", help="Country, group, A,B,C list, or 'all'."),
    commodity: str = typer.Argument("all", help="Commodity id or alias, or 'all'."),
    all_: bool = typer.Option(False, "--all", help="Every country and every commodity."),
    year: int | None = typer.Option(None, help="Year (GeoPolRisk: 2018-2024)."),
    method: str = typer.Option("geopolrisk", help="geopolrisk or eu-sr."),
    peer_compatible: bool = typer.Option(
        False, help="Reproduce geopolrisk-py 2.0.1 exactly, quirks included."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or xlsx."),
    out: Path | None = typer.Option(None, help="File to write (needed for xlsx)."),
) -> None:
    """Supply risk: GeoPolRisk score and characterisation factor, or EU supply risk."""
    if fmt not in ("table", "csv", "json", "xlsx"):
        raise InputError(f"--format {fmt!r}: use table, csv, json or xlsx")
    everyone = all_ or importer.casefold() == "all"
    importer_name = None if everyone else importer
    commodity_name = None if all_ or commodity.casefold() == "all" else commodity
    if method == "geopolrisk" and fmt in ("csv", "json"):
        # The grid query streamed by DuckDB: no pandas for the whole grid (issue 18).
        sql, params = risk_sql(importer_name, commodity_name, year, peer_compatible)
        if out is None:
            emit_query(sql, params, OutputFormat(fmt))
            return
        rows = []

        def write_rows(tmp: Path) -> None:
            with (
                open(tmp, "w", encoding="utf-8", newline="") as handle,
                contextlib.redirect_stdout(handle),
            ):
                rows.append(emit_query(sql, params, OutputFormat(fmt)))

        write_output(out, write_rows)
        console.print(f"{rows[0]:,} rows written to {terminal_text(out)}")
        return
    from critmin.metrics.api import risk as risk_table

    table = risk_table(
        importer_name, commodity_name, year=year, method=method, peer_compatible=peer_compatible
    )
    if fmt == "xlsx":
        if out is None:
            raise InputError("--format xlsx needs --out FILE.xlsx")

        def write_xlsx(tmp: Path) -> None:
            buffer = io.BytesIO()  # the zip is built in memory: a full disk fails one write
            sheet_frame(table).to_excel(buffer, index=False, engine="openpyxl")
            tmp.write_bytes(buffer.getvalue())

        write_output(out, write_xlsx)
        console.print(f"{len(table):,} rows written to {terminal_text(out)}")
        return
    if out is not None and fmt == "table":
        raise InputError("--out writes csv, json or xlsx; add --format csv (or json, xlsx)")
    ranking = "score" if method == "geopolrisk" else "supply_risk"
    shown = table if fmt != "table" else table.sort_values(ranking, ascending=False)
    if method == "geopolrisk":
        columns = ["entity", "commodity", "year", "hhi", "import_risk", "score", "cf", "price"]
    else:
        from critmin.metrics.eu_supply_risk import EU_SR_COLUMNS

        hidden = ("eol_rir", "substitution_index", "global_source", "year")
        columns = [c for c in EU_SR_COLUMNS if c not in hidden]
    if out is not None:  # csv or json into the file, not to standard output

        def write(tmp: Path) -> None:
            with (
                open(tmp, "w", encoding="utf-8", newline="") as handle,
                contextlib.redirect_stdout(handle),
            ):
                emit(shown, OutputFormat(fmt))

        write_output(out, write)
        console.print(f"{len(table):,} rows written to {terminal_text(out)}")
        return
    emit(
        shown.head(40) if fmt == "table" else shown,
        OutputFormat(fmt),
        title=f"{method} supply risk" + (" (peer-compatible)" if peer_compatible else ""),
        caption="GeoPolRisk: Koyamparambath et al.; EU SR: EC 2017 guidelines (CRM 2023)",
        table_columns=columns,
    )
