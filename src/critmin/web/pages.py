"""Server-rendered pages (Jinja2, light JavaScript; Plotly.js served from the package)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs
from starlette.concurrency import run_in_threadpool

from critmin.data import all_commodities, country
from critmin.data import commodity as resolve_commodity
from critmin.errors import InputError
from critmin.metrics.api import dependence, trace, world_dependence
from critmin.metrics.concentration import concentration_history, world_concentration
from critmin.metrics.dependence import resolve_year
from critmin.registry.coverage import coverage
from critmin.registry.deadlines import deadlines, period_end
from critmin.registry.models import KINDS, STATUSES
from critmin.web.cache import cached_html
from critmin.web.encode import plain_records, script_json

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=PackageLoader("critmin.web", "templates"), autoescape=select_autoescape(["html"])
)


@lru_cache(maxsize=1)
def _plotly() -> bytes:
    return get_plotlyjs().encode("utf-8")


CACHED = {"Cache-Control": "public, max-age=86400"}


@router.get("/static/plotly.min.js")
async def plotly_js() -> Response:
    return Response(_plotly(), media_type="application/javascript", headers=CACHED)


@lru_cache(maxsize=1)
def _world_outline() -> bytes:
    return (files("critmin.web") / "static" / "topojson" / "world_110m.json").read_bytes()


@router.get("/static/topojson/world_110m.json")
async def world_outline() -> Response:
    """The map outline Plotly.js asks for (`topojsonURL`), served from the package."""
    return Response(_world_outline(), media_type="application/json", headers=CACHED)


def _commodities():
    return all_commodities()


@lru_cache(maxsize=256)
def _overview(commodity: str, supplier: str, year: int) -> tuple[list[dict], list[dict]]:
    table = world_dependence(commodity, year, supplier)
    table = table[table["importer"] != supplier].sort_values("imports", ascending=False)
    rows = [
        {"importer": row.importer, "imports": float(row.imports),
         "supplier_share": _num(row.supplier_share),
         "traced_supplier_share": _num(row.traced_supplier_share)}
        for row in table.itertuples()
    ]  # fmt: skip
    return rows, _most_concentrated(year)


@lru_cache(maxsize=64)
def _most_concentrated(year: int) -> list[dict]:
    """The ten minerals with the most concentrated mine production (HHI) in `year`."""
    concentrated = []
    for item in all_commodities():
        try:
            table, hhi = world_concentration(item.id, year)
        except InputError:  # no data at all for this mineral in that year
            continue
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
    return concentrated[:10]


def _choice(commodity: str, supplier: str, year: int | None):
    """The page's mineral, supplier (ISO3) and year, resolved with clear errors."""
    return resolve_commodity(commodity), country(supplier).iso3, resolve_year(year)


def _num(value) -> float | None:
    value = float(value)
    return None if value != value else value


@router.get("/", response_class=HTMLResponse)
async def overview(
    commodity: Annotated[str, Query(max_length=80)] = "rare_earths",
    supplier: Annotated[str, Query(max_length=80)] = "CHN",
    year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
) -> Response:
    return await _overview_page(commodity, supplier, year)


@cached_html
def _overview_page(commodity: str, supplier: str, year: int | None) -> str:
    item, code, year = _choice(commodity, supplier, year)
    rows, concentrated = _overview(item.id, code, year)
    return templates.get_template("overview.html").render(
        title="Overview",
        commodity=item.id,
        commodity_name=item.name,
        supplier=code,
        year=year,
        commodities=_commodities(),
        rows=rows[:15],
        rows_json=script_json(rows),
        concentrated=concentrated,
    )


@router.get("/builder", response_class=HTMLResponse)
async def builder() -> Response:
    return await _builder_page()


@cached_html
def _builder_page() -> str:
    return templates.get_template("builder.html").render(
        title="Scenario builder", commodities=_commodities(), year=resolve_year(None)
    )


@lru_cache(maxsize=256)
def _country(importer: str, commodity: str, supplier: str, year: int) -> tuple[list, dict]:
    table = dependence(importer, None, year=year, supplier=supplier)
    table = table[table["imports"] > 0].sort_values("traced_supplier_share", ascending=False)
    shown = (table["traced_supplier_share"].fillna(0) >= 0.01) | (
        table["supplier_share"].fillna(0) >= 0.01
    )
    table = table[shown]  # minerals with at least 1 % from the supplier, directly or traced
    minerals = [
        {
            "commodity": row.commodity,
            "supplier_share": _num(row.supplier_share),
            "traced_supplier_share": _num(row.traced_supplier_share),
        }
        for row in table.itertuples()
    ]
    _, carried = trace(importer, commodity, year)
    labels: list[str] = []

    def node(label: str) -> int:
        if label not in labels:
            labels.append(label)
        return labels.index(label)

    sankey: dict[str, list] = {"source": [], "target": [], "value": []}
    target = node(f"{importer} (importer)")
    rows = carried.to_dict(orient="records")
    for rank, row in enumerate(rows):
        # The eight largest partners by name, the long tail as one node (readability).
        partner = node(f"{row['partner']} (partner)" if rank < 8 else "other partners")
        through = 0.0
        for key, value in row.items():
            if key.startswith("via_") and value and value > 0:
                sankey["source"].append(node(f"{key[4:]} (mine)"))
                sankey["target"].append(partner)
                sankey["value"].append(float(value) * 100)
                through += float(value)
        if through > 0:
            sankey["source"].append(partner)
            sankey["target"].append(target)
            sankey["value"].append(through * 100)
    sankey["labels"] = labels
    return minerals, sankey


@router.get("/country", response_class=HTMLResponse)
async def country_page(
    importer: Annotated[str, Query(max_length=2000)] = "DEU",
    commodity: Annotated[str, Query(max_length=80)] = "rare_earths",
    supplier: Annotated[str, Query(max_length=80)] = "CHN",
    year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
) -> Response:
    return await _country_page(importer, commodity, supplier, year)


@cached_html
def _country_page(importer: str, commodity: str, supplier: str, year: int | None) -> str:
    item, code, year = _choice(commodity, supplier, year)
    minerals, sankey = _country(importer, item.id, code, year)
    return templates.get_template("country.html").render(
        title=importer,
        importer=importer,
        supplier=code,
        year=year,
        commodity=item.id,
        commodity_name=item.name,
        commodities=_commodities(),
        minerals_json=script_json(minerals),
        sankey_json=script_json(sankey),
    )


@lru_cache(maxsize=256)
def _mineral(commodity: str, year: int) -> dict:
    now, hhi = world_concentration(commodity, year)
    now = now.assign(
        largest=now[["production_share", "export_share"]].fillna(0).max(axis=1)
    ).nlargest(12, "largest")
    history, summary = concentration_history(commodity)
    latest = history[history["year"] == history["year"].max()]
    leaders = list(latest.nlargest(5, "export_share")["country"])
    leaders += [c for c in ("CHN",) if c not in leaders and c in set(history["country"])]
    # A year without a country's row means it exported nothing that year: plot a zero.
    grid = history.pivot_table(index="year", columns="country", values="export_share")
    grid = grid.reindex(columns=leaders).fillna(0.0)
    lines = {name: {"year": grid.index.tolist(), "share": grid[name].tolist()} for name in leaders}
    plain = summary.astype(object).where(summary.notna(), None)
    return {
        "countries": [
            {
                "country": row.country,
                "production_share": _num(row.production_share),
                "export_share": _num(row.export_share),
                "production_t": _num(row.qty_t),
                "exports_t": _num(row.exports_t),
            }
            for row in now.itertuples()
        ],
        "production_hhi": _num(hhi["production_hhi"]),
        "export_hhi": _num(hhi["export_hhi"]),
        "lines": lines,
        "hhi": plain.to_dict(orient="list"),
    }


@router.get("/mineral", response_class=HTMLResponse)
async def mineral_page(
    commodity: Annotated[str, Query(max_length=80)] = "rare_earths",
    year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
) -> Response:
    return await _mineral_page(commodity, year)


@cached_html
def _mineral_page(commodity: str, year: int | None) -> str:
    item, _, year = _choice(commodity, "CHN", year)
    figures = _mineral(item.id, year)
    return templates.get_template("mineral.html").render(
        title=item.name,
        commodity=item.id,
        commodity_name=item.name,
        year=year,
        commodities=_commodities(),
        figures=figures,
        figures_json=script_json(figures),
    )


@router.get("/agreements", response_class=HTMLResponse)
async def agreements_page(
    request: Request,
    bloc: Annotated[str, Query(max_length=2000)] = "USA",
    year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
) -> str:
    registry = request.app.state.registry()
    records = await run_in_threadpool(registry.records)
    today = dt.date.today()
    due = deadlines(records, today, within_days=365)
    due["end"] = [period_end(p).isoformat() for p in due["planned"]]
    year = resolve_year(year)
    cover = await run_in_threadpool(coverage, records, bloc, year)
    return templates.get_template("agreements.html").render(
        title="Agreements",
        records=records,
        kinds=KINDS,
        statuses=STATUSES,
        overdue=int(due["overdue"].sum()) if len(due) else 0,
        today=today.isoformat(),
        bloc=bloc,
        year=year,
        deadlines_json=script_json(plain_records(due)),
        coverage_json=script_json(plain_records(cover[["commodity", "covered_share"]])),
    )
