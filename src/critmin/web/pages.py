"""Server-rendered pages (Jinja2, light JavaScript; Plotly.js served from the package)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from critmin.data import all_commodities, country
from critmin.data import commodity as resolve_commodity
from critmin.data.catalog import dataset_stamp
from critmin.errors import InputError
from critmin.metrics.api import commodity_dependence as dependence
from critmin.metrics.api import commodity_trace as trace
from critmin.metrics.concentration import concentration_history, world_concentration
from critmin.metrics.dependence import resolve_year
from critmin.registry.coverage import coverage
from critmin.registry.deadlines import deadlines, period_end
from critmin.registry.models import KINDS, STATUSES
from critmin.web.assets import topojson_url
from critmin.web.assets import url as asset_url
from critmin.web.cache import cached_html, html_answer
from critmin.web.encode import plain_records, script_json
from critmin.web.errors import _pages as error_templates

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=PackageLoader("critmin.web", "templates"), autoescape=select_autoescape(["html"])
)
for _env in (templates, error_templates):
    _env.globals["asset_url"] = asset_url
    _env.globals["topojson_url"] = topojson_url
STAGE_CHOICES = ("all", "mine", "refined", "product")
COVERED = ("ok", "basket_split", "production_implied", "net_exporter")


def _commodities():
    return all_commodities()


@lru_cache(maxsize=64)
def _traded(year: int) -> frozenset[str]:
    """Minerals with trade at some stage in `year` (the others are shown as not covered)."""
    from critmin.data.stages import stage_years

    years = stage_years()
    return frozenset(years.loc[years["year"] == year, "mineral"])


def _offered(year: int) -> tuple[list, list]:
    """(minerals with data, names of those without) for the pages' selectors."""
    traded = _traded(year)
    items = _commodities()
    return [c for c in items if c.id in traded], [c.name for c in items if c.id not in traded]


@lru_cache(maxsize=256)
def _stages(importer: str, supplier: str, year: int | None, stage: str) -> dict:
    """Dependence by stage (critmin.metrics.api.stage_dependence) as page rows."""
    from critmin.metrics.api import stage_dependence

    if stage not in STAGE_CHOICES:
        raise InputError(f"stage {stage!r} is not one of {', '.join(STAGE_CHOICES)}")
    table = stage_dependence(importer, None, year=year, supplier=supplier, stage=stage)
    rows = [
        {
            "commodity": row.commodity,
            "stage": row.stage,
            "unit": row.unit,
            "imports": _num(row.imports),
            "apparent_consumption": _num(row.apparent_consumption),
            "import_reliance": _num(row.import_reliance),
            "status": row.status,
            "covered": row.status in COVERED,
            "supplier_share": _num(row.supplier_share),
            "traced_supplier_share": _num(row.traced_supplier_share),
            "any_stage_share": _num(row.any_stage_share),
        }
        for row in table.itertuples()
    ]
    years = sorted({int(y) for y in table["year"]}) if len(table) else []
    return {"rows": rows, "year": years[-1] if years else year}


def overview_stage(commodity: str, year: int, stage: str | None) -> str | None:
    """The stage the overview shows: the one asked for, else the mineral's last stage with
    trade in `year` (magnets, else refined, else mine); None if no stage has trade."""
    from critmin.data.stages import stage_years, stages_of

    mapped = stages_of(commodity)
    if stage not in (None, "", "auto"):
        return stage if stage in mapped else None
    years = stage_years()
    have = set(years.loc[(years["mineral"] == commodity) & (years["year"] == year), "stage"])
    with_trade = [s for s in mapped if s in have]
    return with_trade[-1] if with_trade else None


@lru_cache(maxsize=256)
def _overview(
    commodity: str, supplier: str, year: int, stage: str
) -> tuple[list[dict], list[dict]]:
    """Every importer at one stage (stage balances: content basis, quality rule Q1 applied)."""
    from critmin.metrics.api import world_stage_dependence

    table = world_stage_dependence(commodity, stage, year, supplier)
    table = table[table["importer"] != supplier].sort_values("imports", ascending=False)
    rows = [
        {"importer": row.importer, "imports": float(row.imports), "unit": row.unit,
         "status": row.status, "supplier_share": _num(row.supplier_share),
         "traced_supplier_share": _num(row.traced_supplier_share),
         "any_stage_share": _num(row.any_stage_share)}
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


_SEEN = {"stamp": None}


def _follow_dataset() -> None:
    """Drop the figures kept for another dataset (an import changed it): the pages' answers
    are keyed on `dataset_stamp`, and so must be what they are made of."""
    stamp = dataset_stamp()
    if _SEEN["stamp"] != stamp:
        kept = (_traded, _stages, _overview, _most_concentrated, _country, _mineral)
        for figures in (*kept, _mineral_stages):
            figures.cache_clear()
        _SEEN["stamp"] = stamp


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
    stage: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    return await _overview_page(commodity, supplier, year, stage)


@cached_html
def _overview_page(commodity: str, supplier: str, year: int | None, stage: str | None) -> str:
    _follow_dataset()
    from critmin.data.stages import stages_of

    item, code, year = _choice(commodity, supplier, year)
    offered, not_covered = _offered(year)
    why = None
    shown = overview_stage(item.id, year, stage) if item.id in _traded(year) else None
    if shown is not None:
        rows, concentrated = _overview(item.id, code, year, shown)
    else:  # an empty state that says why, not an error
        rows, concentrated = [], _most_concentrated(year)
        asked = f" at the {stage} stage" if stage not in (None, "", "auto") else ""
        why = f"No trade data for {item.name}{asked} in {year} in the bundled tables."
        offered = [*offered, item]
    return templates.get_template("overview.html").render(
        title="Overview",
        stage=shown or "",
        stages=stages_of(item.id),
        unit=rows[0]["unit"] if rows else "t",
        commodity=item.id,
        commodity_name=item.name,
        supplier=code,
        year=year,
        commodities=offered,
        not_covered=not_covered,
        why=why,
        rows=rows[:15],
        rows_json=script_json(rows),
        concentrated=concentrated,
    )


@router.get("/builder", response_class=HTMLResponse)
async def builder() -> Response:
    return await _builder_page()


@cached_html
def _builder_page() -> str:
    _follow_dataset()
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
    stage: Annotated[str, Query(max_length=20)] = "all",
) -> Response:
    return await _country_page(importer, commodity, supplier, year, stage)


@cached_html
def _country_page(
    importer: str, commodity: str, supplier: str, year: int | None, stage: str = "all"
) -> str:
    _follow_dataset()
    item, code, year = _choice(commodity, supplier, year)
    offered, not_covered = _offered(year)
    minerals, sankey = _country(importer, item.id, code, year)
    stages = _stages(importer, code, year, stage)
    return templates.get_template("country.html").render(
        title=importer,
        importer=importer,
        supplier=code,
        year=year,
        stage=stage,
        stage_choices=STAGE_CHOICES,
        stage_year=stages["year"],
        stage_rows=stages["rows"],
        stages_json=script_json([r for r in stages["rows"] if r["covered"]]),
        commodity=item.id,
        commodity_name=item.name,
        commodities=offered,
        not_covered=not_covered,
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


@lru_cache(maxsize=128)
def _mineral_stages(commodity: str, year: int) -> dict:
    """Production and export shares per stage of the chain (stage balances; published shares
    where a stage has no production series), the twelve largest countries."""
    from critmin.metrics.concentration import stage_concentration

    try:
        table, summary = stage_concentration(commodity, year)
    except InputError:  # no supply-chain map for this mineral
        return {"columns": [], "rows": [], "summary": []}
    shares = [c for c in table.columns if c.endswith("_share")]
    top = table.assign(largest=table[shares].max(axis=1)).nlargest(12, "largest")
    rows = [
        {"country": row["country"], **{c: _num(row[c]) for c in shares}}
        for row in top.to_dict(orient="records")
    ]
    return {"columns": shares, "rows": rows, "summary": plain_records(summary)}


@cached_html
def _mineral_page(commodity: str, year: int | None) -> str:
    _follow_dataset()
    item, _, year = _choice(commodity, "CHN", year)
    figures = _mineral(item.id, year)
    return templates.get_template("mineral.html").render(
        stages=_mineral_stages(item.id, year),
        title=item.name,
        commodity=item.id,
        commodity_name=item.name,
        year=year,
        commodities=_offered(year)[0] + [item] * (item.id not in _traded(year)),
        not_covered=_offered(year)[1],
        figures=figures,
        figures_json=script_json(figures),
    )


def _digest(records: list[dict]) -> bytes:
    """A key of the registry's content (a write to the registry changes it)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).digest()


_AGREEMENTS: dict[tuple, str] = {}


@router.get("/agreements", response_class=HTMLResponse)
async def agreements_page(
    request: Request,
    bloc: Annotated[str, Query(max_length=2000)] = "USA",
    year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
) -> Response:
    registry = request.app.state.registry()
    records = await run_in_threadpool(registry.records)
    today = dt.date.today()
    year = resolve_year(year)
    # Kept per bloc, year, day and registry content (deadlines count from today).
    key = (bloc, year, today, _digest(records), dataset_stamp())
    page = _AGREEMENTS.get(key)
    if page is None:
        page = await run_in_threadpool(_agreements_page, records, bloc, year, today)
        if len(_AGREEMENTS) > 256:
            _AGREEMENTS.clear()
        _AGREEMENTS[key] = page
    return html_answer(page)


def _agreements_page(records: list[dict], bloc: str, year: int, today: dt.date) -> str:
    _follow_dataset()
    from critmin.data import countries_of

    due = deadlines(records, today, within_days=365)
    due["end"] = [period_end(p).isoformat() for p in due["planned"]]
    cover = coverage(records, bloc, year)
    members = set(countries_of(bloc)) | {bloc.upper()}
    if set(countries_of("eu27")) <= members:
        members.add("EU")
    has_agreement = any(p["party"] in members for r in records for p in r.get("parties") or [])
    return templates.get_template("agreements.html").render(
        title="Agreements",
        bloc_has_agreement=has_agreement,
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


COMPARED = (  # summary key, label, how shown
    ("world_price_index", "world price index (base = 1)", "index"),
    ("bloc_shortfall_pct", "bloc shortfall, % of consumption", "pct_points"),
    ("bloc_self_sufficiency_base", "bloc self-sufficiency before", "share"),
    ("bloc_self_sufficiency", "bloc self-sufficiency after", "share"),
    ("bloc_supplier_share_base", "bloc share from the supplier before", "share"),
    ("bloc_supplier_share", "bloc share from the supplier after", "share"),
    ("consumer_surplus_kusd", "consumers, million USD a year", "musd"),
    ("producer_surplus_kusd", "producers, million USD a year", "musd"),
    ("tariff_revenue_kusd", "tariff revenue, million USD a year", "musd"),
    ("fund_cost_kusd", "price-guarantee fund cost, million USD a year", "musd"),
    ("net_welfare_kusd", "net welfare, million USD a year", "musd"),
)


def compare_rows(runs, first: str, second: str) -> tuple[list[dict], list[dict]]:
    """Two finished runs side by side: one row per market × figure, and the two runs."""
    views = [runs.view(first), runs.view(second)]
    for view in views:
        if view["status"] != "done":
            raise InputError(f"run {view['id']} is {view['status']}; compare finished runs")
    markets = sorted(set().union(*(v["summary"]["markets"] for v in views)))
    rows = []
    for market in markets:
        for key, label, kind in COMPARED:
            values = [(v["summary"]["markets"].get(market) or {}).get(key) for v in views]
            if all(x is None for x in values):
                continue
            rows.append({"market": market, "figure": label, "kind": kind,
                         "a": values[0], "b": values[1]})  # fmt: skip
    about = [{"id": v["id"], "name": v["name"], "created": v["created"]} for v in views]
    return rows, about


def _shown(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "share":
        return f"{value * 100:.1f} %"
    if kind == "pct_points":
        return f"{value:.1f} %"
    if kind == "musd":
        return f"{value / 1000:,.0f}"
    return f"{value:.3f}"


RunId = Annotated[str, Query(max_length=64)]


@router.get("/builder/compare", response_class=HTMLResponse)
async def compare_page(request: Request, a: RunId, b: RunId) -> str:
    rows, about = await run_in_threadpool(compare_rows, request.app.state.runs, a, b)
    for row in rows:
        row["a_text"], row["b_text"] = _shown(row["a"], row["kind"]), _shown(row["b"], row["kind"])
    chart = [r for r in rows if r["kind"] in ("share", "pct_points")]
    return templates.get_template("compare.html").render(
        title="Two runs compared",
        rows=rows,
        about=about,
        params={"a": a, "b": b},
        chart_json=script_json(plain_records(__import__("pandas").DataFrame(chart)))
        if chart
        else "[]",
    )
