"""`critmin dependence`, `critmin trace`, `critmin concentration`: how dependent, on whom."""

from __future__ import annotations

import typer

from critmin.cli.output import OutputFormat, console, emit, emit_json
from critmin.data import commodity as resolve_commodity
from critmin.errors import InputError
from critmin.metrics.api import DEFAULT_RISK_THRESHOLD
from critmin.metrics.api import dependence as dependence_table
from critmin.metrics.api import trace as trace_tables
from critmin.metrics.concentration import world_concentration
from critmin.metrics.dependence import resolve_year

FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or json.")
YEAR = typer.Option(None, help="Year (default: the latest with trade and production).")


def dependence(
    importer: str = typer.Argument(..., help="ISO3 code, country name, group or A,B,C list."),
    commodity: str | None = typer.Argument(None, help="Commodity id or alias."),
    all_commodities: bool = typer.Option(False, "--all", help="Every commodity."),
    year: int | None = YEAR,
    supplier: str = typer.Option("CHN", help="Supplier whose share is reported."),
    basis: str = typer.Option("qty", help="qty (tonnes) or value (thousand USD)."),
    risk_threshold: float = typer.Option(
        DEFAULT_RISK_THRESHOLD,
        min=-2.5,
        max=2.5,
        help="WGI political stability below which a supplier counts as risky (-2.5..2.5).",
    ),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Import reliance, supplier concentration and the supplier's direct and traced share."""
    if (commodity is None) == (not all_commodities):
        raise InputError("name one COMMODITY or pass --all")
    table = dependence_table(
        importer,
        commodity,
        year=year,
        supplier=supplier,
        basis=basis,
        risk_threshold=risk_threshold,
    )
    unit = "t" if basis == "qty" else "kusd"
    table = table.rename(
        columns={
            c: f"{c}_{unit}" for c in ("production", "imports", "exports", "apparent_consumption")
        }
    )
    if fmt is OutputFormat.json:
        records = table.to_dict(orient="records")
        emit_json(records[0] if commodity is not None else records)
        return
    if fmt is OutputFormat.csv:
        table = table.assign(
            suppliers=table["suppliers"].map(
                lambda items: "|".join(f"{i['country']}:{i['share']:.6f}" for i in items)
            )
        )
        emit(table, fmt)
        return
    table = table.assign(
        main_suppliers=table["suppliers"].map(
            lambda items: "  ".join(f"{i['country']} {i['share']:.0%}" for i in items[:3])
        )
    )
    code = table["supplier"].iloc[0]
    emit(
        table,
        fmt,
        title=f"Dependence of {importer} ({table['year'].iloc[0]}, basis {basis})",
        caption=f"import reliance = (imports − exports) / apparent consumption (USGS); "
        f"traced = {code}'s share after re-exports are traced to their producing country",
        table_columns=[
            "commodity",
            f"imports_{unit}",
            "import_reliance",
            "hhi",
            "supplier_share",
            "traced_supplier_share",
            "main_suppliers",
        ],
    )


def trace(
    importer: str = typer.Argument(..., help="ISO3 code, country name, group or A,B,C list."),
    commodity: str = typer.Argument(..., help="Commodity id or alias."),
    year: int | None = YEAR,
    basis: str = typer.Option("qty", help="qty (tonnes) or value (thousand USD)."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Direct vs traced origins of an importer's supply, and the partners that carry them."""
    origins, carried = trace_tables(importer, commodity, year=year, basis=basis)
    if fmt is OutputFormat.json:
        emit_json(
            {
                "importer": importer,
                "commodity": resolve_commodity(commodity).id,
                "year": resolve_year(year),
                "basis": basis,
                "origins": origins.to_dict(orient="records"),
                "intermediaries": carried.to_dict(orient="records"),
            }
        )
        return
    emit(
        origins.head(15) if fmt is OutputFormat.table else origins,
        fmt,
        title=f"Origins of {importer}'s {commodity} imports: direct vs traced",
    )
    if fmt is OutputFormat.table:
        emit(carried.head(10), fmt, title="Partners and the origins they carry")
        console.print(
            "Traced shares assume proportional mixing: each partner's exports carry "
            "its average origin mix (see docs/methods.md)."
        )


def concentration(
    commodity: str = typer.Argument(..., help="Commodity id or alias."),
    year: int | None = YEAR,
    fmt: OutputFormat = FORMAT,
) -> None:
    """World supply concentration: mine-production shares and export-market shares."""
    item = resolve_commodity(commodity)
    year = resolve_year(year)
    table, hhi = world_concentration(item.id, year)
    if fmt is OutputFormat.json:
        emit_json(
            {
                "commodity": item.id,
                "year": year,
                **hhi,
                "countries": table.to_dict(orient="records"),
            }
        )
        return
    emit(
        table.head(20) if fmt is OutputFormat.table else table,
        fmt,
        title=f"{item.name}, {year}: production HHI {hhi['production_hhi']:.3f}, "
        f"export HHI {hhi['export_hhi']:.3f}",
    )
