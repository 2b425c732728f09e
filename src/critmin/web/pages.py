"""Server-rendered pages (Jinja2, light JavaScript; Plotly.js served from the package)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs
from starlette.concurrency import run_in_threadpool

from critmin.data import all_commodities, country
from critmin.data import commodity as resolve_commodity
from critmin.metrics.api import dependence
from critmin.metrics.concentration import world_concentration
from critmin.metrics.dependence import commodity_flows, resolve_year

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=PackageLoader("critmin.web", "templates"), autoescape=select_autoescape(["html"])
)


@lru_cache(maxsize=1)
def _plotly() -> bytes:
    return get_plotlyjs().encode("utf-8")


@router.get("/static/plotly.min.js")
async def plotly_js() -> Response:
    return Response(_plotly(), media_type="application/javascript",
                    headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


def _commodities():
    return all_commodities()


@lru_cache(maxsize=256)
def _overview(commodity: str, supplier: str, year: int) -> tuple[list[dict], list[dict]]:
    flows = commodity_flows(year)
    flows = flows[(flows["commodity"] == commodity) & (flows["exporter"] != flows["importer"])]
    top = list(flows.groupby("importer")["amount"].sum().nlargest(15).index)
    rows = []
    for importer in top:
        row = dependence(importer, commodity, year=year, supplier=supplier).iloc[0]
        rows.append({"importer": importer, "imports": float(row["imports"]),
                     "supplier_share": _num(row["supplier_share"]),
                     "traced_supplier_share": _num(row["traced_supplier_share"])})  # fmt: skip
    concentrated = []
    for item in all_commodities():
        table, hhi = world_concentration(item.id, year)
        made = table.dropna(subset=["production_share"]).sort_values("production_share")
        if made.empty:
            continue
        best = made.iloc[-1]
        concentrated.append(
            {
                "commodity": item.name,
                "hhi": hhi["production_hhi"],
                "top": best["country"],
                "top_share": float(best["production_share"]),
            }
        )
    concentrated.sort(key=lambda r: -r["hhi"])
    return rows, concentrated[:10]


def _num(value) -> float | None:
    value = float(value)
    return None if value != value else value


@router.get("/", response_class=HTMLResponse)
async def overview(
    commodity: Annotated[str, Query(max_length=80)] = "rare_earths",
    supplier: Annotated[str, Query(max_length=80)] = "CHN",
    year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
) -> str:
    item = resolve_commodity(commodity)
    code = country(supplier).iso3
    year = resolve_year(year)
    rows, concentrated = await run_in_threadpool(_overview, item.id, code, year)
    return templates.get_template("overview.html").render(
        title="Overview",
        commodity=item.id,
        commodity_name=item.name,
        supplier=code,
        year=year,
        commodities=_commodities(),
        rows=rows,
        rows_json=json.dumps(rows),
        concentrated=concentrated,
    )


@router.get("/builder", response_class=HTMLResponse)
async def builder(request: Request) -> str:
    return templates.get_template("builder.html").render(
        title="Scenario builder", commodities=_commodities(), year=resolve_year(None)
    )
