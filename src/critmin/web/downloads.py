"""The numbers behind every chart and table of the pages as CSV or XLSX: the same functions
the pages call, with the same query parameters; text cells sanitised against formula
injection (critmin.cli.sanitise.spreadsheet_cell)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from critmin.cli.sanitise import spreadsheet_cell
from critmin.errors import InputError

router = APIRouter(include_in_schema=False)
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
Format = Literal["csv", "xlsx"]


def encode(frame: pd.DataFrame, fmt: str, sheet: str = "data") -> bytes:
    """`frame` as CSV (UTF-8, header row) or as one XLSX sheet; text cells escaped."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_cell)
    safe.columns = [str(spreadsheet_cell(str(c))) for c in safe.columns]
    if fmt == "csv":
        return safe.to_csv(index=False).encode("utf-8")
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe.to_excel(writer, index=False, sheet_name=sheet[:31])
    return buffer.getvalue()


def answer(frame: pd.DataFrame, fmt: str, name: str) -> Response:
    body = encode(frame, fmt, name)
    headers = {"Content-Disposition": f'attachment; filename="critmin-{name}.{fmt}"'}
    return Response(body, media_type=FORMATS[fmt], headers=headers)


def overview_tables(
    commodity: str, supplier: str, year: int | None, stage: str | None = None
) -> dict[str, pd.DataFrame]:
    from critmin.web.pages import _choice, _overview, overview_stage

    item, code, year = _choice(commodity, supplier, year)
    shown = overview_stage(item.id, year, stage)
    if shown is None:
        raise InputError(f"no trade data for {item.id} at that stage in {year}")
    rows, concentrated = _overview(item.id, code, year, shown)
    importers = pd.DataFrame(rows)
    importers.insert(0, "year", year)
    importers.insert(1, "commodity", item.id)
    importers.insert(2, "stage", shown)
    top = pd.DataFrame(concentrated).rename(columns={"top": "largest_producer"})
    return {"importers": importers, "concentrated": top}


def mineral_tables(commodity: str, year: int | None) -> dict[str, pd.DataFrame]:
    from critmin.web.pages import _choice, _mineral

    item, _, year = _choice(commodity, "CHN", year)
    figures = _mineral(item.id, year)
    countries = pd.DataFrame(figures["countries"])
    countries.insert(0, "year", year)
    history = pd.DataFrame(
        [
            {"country": name, "year": y, "export_share": share}
            for name, line in figures["lines"].items()
            for y, share in zip(line["year"], line["share"], strict=True)
        ]
    )
    from critmin.web.pages import _mineral_stages

    stages = _mineral_stages(item.id, year)
    by_stage = pd.DataFrame(stages["rows"]).assign(year=year)
    return {
        "countries": countries,
        "history": history,
        "hhi": pd.DataFrame(figures["hhi"]),
        "stages": by_stage,
        "stage_hhi": pd.DataFrame(stages["summary"]).assign(year=year),
    }


def country_tables(
    importer: str, commodity: str, supplier: str, year: int | None, stage: str
) -> dict[str, pd.DataFrame]:
    from critmin.web.pages import _choice, _country, _stages

    item, code, year = _choice(commodity, supplier, year)
    minerals, sankey = _country(importer, item.id, code, year)
    labels = sankey["labels"]
    flows = pd.DataFrame(
        {
            "from": [labels[i] for i in sankey["source"]],
            "to": [labels[i] for i in sankey["target"]],
            "share_of_imports_pct": sankey["value"],
        }
    )
    stages = pd.DataFrame(_stages(importer, code, year, stage)["rows"])
    return {"minerals": pd.DataFrame(minerals), "origins": flows, "stages": stages}


async def agreements_tables(request: Request, bloc: str, year: int | None) -> dict:
    from critmin.metrics.dependence import resolve_year
    from critmin.registry.coverage import coverage
    from critmin.registry.deadlines import deadlines

    records = await run_in_threadpool(request.app.state.registry().records)
    due = deadlines(records, dt.date.today(), within_days=365)
    cover = await run_in_threadpool(coverage, records, bloc, resolve_year(year))
    table = pd.DataFrame(
        [
            {
                "id": r["id"],
                "title": r["title"],
                "kind": r["kind"],
                "status": r["status"],
                "signed": r.get("signed"),
                "parties": ", ".join(p["party"] for p in r.get("parties") or []),
                "minerals": ", ".join(r.get("minerals") or []),
                "sources": " ".join(r.get("sources") or []),
            }
            for r in records
        ]
    )
    return {"registry": table, "deadlines": due, "coverage": cover}


def _pick(tables: dict[str, pd.DataFrame], table: str) -> pd.DataFrame:
    if table not in tables:
        raise HTTPException(404, f"no table {table!r}; tables: {', '.join(tables)}")
    return tables[table]


YearQuery = Annotated[int | None, Query(ge=1995, le=2100)]
Name = Annotated[str, Query(max_length=80)]


@router.get("/download/overview/{table}.{fmt}")
async def overview_download(
    table: str,
    fmt: Format,
    commodity: Name = "rare_earths",
    supplier: Name = "CHN",
    year: YearQuery = None,
    stage: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    tables = await run_in_threadpool(overview_tables, commodity, supplier, year, stage)
    return answer(_pick(tables, table), fmt, f"overview-{table}")


@router.get("/download/mineral/{table}.{fmt}")
async def mineral_download(
    table: str, fmt: Format, commodity: Name = "rare_earths", year: YearQuery = None
) -> Response:
    tables = await run_in_threadpool(mineral_tables, commodity, year)
    return answer(_pick(tables, table), fmt, f"mineral-{table}")


@router.get("/download/country/{table}.{fmt}")
async def country_download(
    table: str,
    fmt: Format,
    importer: Annotated[str, Query(max_length=2000)] = "DEU",
    commodity: Name = "rare_earths",
    supplier: Name = "CHN",
    year: YearQuery = None,
    stage: Name = "all",
) -> Response:
    tables = await run_in_threadpool(country_tables, importer, commodity, supplier, year, stage)
    return answer(_pick(tables, table), fmt, f"country-{table}")


@router.get("/download/agreements/{table}.{fmt}")
async def agreements_download(
    request: Request,
    table: str,
    fmt: Format,
    bloc: Annotated[str, Query(max_length=2000)] = "USA",
    year: YearQuery = None,
) -> Response:
    tables = await agreements_tables(request, bloc, year)
    return answer(_pick(tables, table), fmt, f"agreements-{table}")


@router.get("/download/runs/{ident}/{table}.{fmt}")
async def run_download(
    request: Request, ident: Annotated[str, Path(max_length=64)], table: str, fmt: Format
) -> Response:
    from critmin.web.jobs import TABLES

    if table not in TABLES:
        raise HTTPException(404, f"no table {table!r}; tables: {', '.join(TABLES)}")
    frame = await run_in_threadpool(request.app.state.runs.table, ident, table)
    return answer(frame, fmt, f"run-{ident[:8]}-{table}")


@router.get("/download/compare.{fmt}")
async def compare_download(
    request: Request,
    fmt: Format,
    a: Annotated[str, Query(max_length=64)],
    b: Annotated[str, Query(max_length=64)],
) -> Response:
    from critmin.web.pages import compare_rows

    rows, about = await run_in_threadpool(compare_rows, request.app.state.runs, a, b)
    frame = pd.DataFrame(rows, columns=["market", "figure", "kind", "a", "b"]).rename(
        columns={"a": f"A {about[0]['name']} ({a[:8]})", "b": f"B {about[1]['name']} ({b[:8]})"}
    )
    return answer(frame.drop(columns="kind"), fmt, "compare")
