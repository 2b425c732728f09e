"""`critmin dependence`, `critmin trace`, `critmin concentration`: how dependent, on whom."""

from __future__ import annotations

import typer

from critmin.cli.output import OutputFormat, emit, emit_json
from critmin.data import commodity as resolve_commodity
from critmin.errors import InputError
from critmin.metrics.stage_api import DEFAULT_RISK_THRESHOLD

FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or json.")
YEAR = typer.Option(None, help="Year (default: the latest with trade and production).")


STATUS_TEXT = {
    "no_trade_data": "no data",
    "not_traded": "none",
    "net_exporter": "exporter",
    "no_production_data": "no prod.",
    "transit": "transit",
}


def _compact(tonnes: float) -> str:
    """A tonnage in three significant digits with its prefix: 12,227 → '12.2 k', so a table
    of every mineral fits an 80-column terminal (JSON and CSV keep the full figure)."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(tonnes) >= factor:
            return f"{tonnes / factor:.3g} {prefix}"
    if 0 < abs(tonnes) < 1:
        return "<1 "
    return f"{tonnes:.3g} " if tonnes else "0 "


def dependence(
    importer: str = typer.Argument(..., help="ISO3 code, country name, group or A,B,C list."),
    commodity: str | None = typer.Argument(None, help="Commodity id or alias."),
    all_commodities: bool = typer.Option(False, "--all", help="Every commodity."),
    year: int | None = typer.Option(
        None, help="Year (default: the latest with trade at every chosen stage)."
    ),
    stage: str = typer.Option("all", help="mine, refined, product or all (one row per stage)."),
    supplier: str = typer.Option("CHN", help="Supplier whose share is reported."),
    basis: str = typer.Option(
        "content", help="content (t of metal/oxide), gross (t) or value (thousand USD)."
    ),
    risk_threshold: float = typer.Option(
        DEFAULT_RISK_THRESHOLD,
        min=-2.5,
        max=2.5,
        help="WGI political stability below which a supplier counts as risky (-2.5..2.5).",
    ),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Import reliance and the supplier's direct, traced and any-stage share, per stage."""
    from critmin.metrics.stage_api import stage_dependence_columns

    if (commodity is None) == (not all_commodities):
        raise InputError("name one COMMODITY or pass --all")
    columns = stage_dependence_columns(
        importer,
        commodity,
        year=year,
        supplier=supplier,
        basis=basis,
        risk_threshold=risk_threshold,
        stage=stage,
    )
    if fmt is OutputFormat.json:  # without pandas: a one-question command stays quick
        records = columns.records()
        emit_json(records[0] if commodity is not None and len(records) == 1 else records)
        return
    table = columns.frame()
    if fmt is OutputFormat.csv:
        table = table.assign(
            suppliers=table["suppliers"].map(
                lambda items: "|".join(f"{i['country']}:{i['share']:.6f}" for i in items)
            )
        )
        emit(table, fmt)
        return
    code = table["supplier"].iloc[0]
    shown = table.assign(
        reliance=[
            f"{'≤' if s == 'production_implied' else ''}{r:.0%}" if r == r else STATUS_TEXT[s]
            for r, s in zip(table["import_reliance"], table["status"], strict=True)
        ],
        imports=[f"{_compact(v)}{u}" for v, u in zip(table["imports"], table["unit"], strict=True)],
        **{
            label: table[column].map(lambda v: "–" if v != v else f"{v:.0%}")
            for column, label in (
                ("supplier_share", "direct"),
                ("traced_supplier_share", "traced"),
                ("any_stage_share", "any stage"),
            )
        },
    ).rename(columns={"commodity": "mineral"})
    emit(
        shown,
        fmt,
        title=f"{importer}: dependence by stage, shares from {code} "
        f"({table['year'].iloc[0]}, basis {basis})",
        caption="reliance = (imports − exports) / apparent consumption, within the stage "
        "(USGS); ≤ = the stage's production is unknown, so an upper bound. direct = share of "
        f"imports from {code}; traced = processed in {code}; any stage = passed through "
        f"{code} at this or an earlier stage. --format json for statuses and codes.",
        table_columns=["mineral", "stage", "imports", "reliance", "direct", "traced", "any stage"],
    )


def trace(
    importer: str = typer.Argument(..., help="ISO3 code, country name, group or A,B,C list."),
    commodity: str = typer.Argument(..., help="Commodity id or alias."),
    year: int | None = typer.Option(None, help="Year (default: the latest with trade)."),
    stage: str | None = typer.Option(
        None, help="mine, refined or product (default: the mineral's last stage)."
    ),
    basis: str = typer.Option("content", help="content (t), gross (t) or value (kUSD)."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Who processed an importer's supply of a stage, and whose input it carried up the chain."""
    from critmin.metrics.api import stage_trace

    table = stage_trace(importer, commodity, stage=stage, year=year, basis=basis)
    chosen, year_used = table["stage"].iloc[0], int(table["year"].iloc[0])
    table = table.drop(columns=["stage", "year"])
    mineral = resolve_commodity(commodity).id
    if fmt is OutputFormat.json:
        emit_json(
            {
                "importer": importer,
                "commodity": mineral,
                "stage": chosen,
                "year": year_used,
                "basis": basis,
                "origins": table.to_dict(orient="records"),
            }
        )
        return
    if fmt is OutputFormat.csv:
        emit(table, fmt)
        return
    columns = [c for c in table.columns if c.endswith("_share")]
    verbs = {"mine": "mined", "refined": "refined", "product": "made"}
    lead = []
    for column in columns[1:]:
        known = table[table["origin"] != "untraced"]
        top = known.sort_values(column, ascending=False).iloc[0]
        lead.append(f"{top[column]:.0%} {verbs[column[:-6]]} in {top['origin']}")
    shown = table.head(15).copy()
    for column in columns:
        shown[column] = shown[column].map(lambda v: f"{v:.0%}")
    shown.columns = [
        "origin" if c == "origin" else "direct" if c == "direct_share" else f"{verbs[c[:-6]]} in"
        for c in shown.columns
    ]
    emit(
        shown,
        fmt,
        title=f"Of {importer}'s {mineral} imports at the {chosen} stage ({year_used}): "
        + ", ".join(lead),
        caption="direct = immediate supplier; at the stage itself, imports are traced to the "
        "country that produced them (re-exports followed by proportional mixing); up the chain, "
        "each processor's input by its own supply mix (docs/stages.md)",
    )


def concentration(
    commodity: str = typer.Argument(..., help="Commodity id or alias."),
    year: int | None = YEAR,
    fmt: OutputFormat = FORMAT,
) -> None:
    """World supply concentration at each stage: production and export shares side by side."""
    from critmin.data.stages import latest_common_year, stages_of
    from critmin.metrics.concentration import stage_concentration
    from critmin.metrics.dependence import resolve_year

    item = resolve_commodity(commodity)
    if year is None:
        pairs = [(item.id, s) for s in stages_of(item.id)]
        year = latest_common_year(pairs) or resolve_year(None)
    else:
        year = resolve_year(year)
    table, summary = stage_concentration(item.id, year)
    if fmt is OutputFormat.json:
        emit_json(
            {
                "commodity": item.id,
                "year": year,
                "stages": summary.to_dict(orient="records"),
                "countries": table.to_dict(orient="records"),
            }
        )
        return
    if fmt is OutputFormat.csv:
        emit(table, fmt)
        return
    shown = table.head(15).copy()
    for column in [c for c in shown.columns if c.endswith("_share")]:
        shown[column] = shown[column].map(lambda v: "–" if v != v else f"{v:.0%}")
    shown.columns = [
        c.replace("_production_share", " prod.")
        .replace("_export_share", " exp.")
        .replace("_published_share", " publ.*")
        for c in shown.columns
    ]
    notes = "; ".join(
        f"{r.stage} ({r.unit}): production HHI "
        + ("–" if r.production_hhi != r.production_hhi else f"{r.production_hhi:.2f}")
        + ", export HHI "
        + ("–" if r.export_hhi != r.export_hhi else f"{r.export_hhi:.2f}")
        + (f"; *published shares: {r.published_source}" if r.published_source else "")
        for r in summary.itertuples()
    )
    emit(
        shown,
        fmt,
        title=f"{item.name}, {year}: shares of world production and exports by stage",
        caption=notes,
    )
