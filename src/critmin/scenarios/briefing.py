"""The numbers of the briefing (`critmin brief`): every figure comes from the same API call
the CLI makes, collected here in one JSON-ready structure the report only renders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from critmin.data import all_commodities, countries_of, manifests, production
from critmin.data.stages import stage_minerals, supply_stages
from critmin.errors import CritminError, InputError
from critmin.market.api import shock, zone
from critmin.metrics.api import risk, stage_dependence
from critmin.metrics.balances import balances
from critmin.metrics.dependence import commodity_flows, resolve_year
from critmin.metrics.stage_dependence import dependence_grid
from critmin.registry.controls import tracker
from critmin.registry.coverage import coverage, reserved_flows
from critmin.registry.deadlines import deadlines
from critmin.registry.store import Registry

DEFAULT_BLOC = "ministerial_2026"
DEFAULT_MINERALS = (
    "rare_earths",
    "graphite",
    "tungsten",
    "antimony",
    "cobalt",
    "lithium",
    "nickel",
    "germanium",
    "gallium",
)
MAIN_MEMBERS = 5
FLOOR = 1.3
# Statuses under which a stage's reliance and shares are figures (the others say why not).
COVERED = ("ok", "basket_split", "production_implied", "net_exporter")
STAGE_COLUMNS = [
    "commodity",
    "stage",
    "year",
    "unit",
    "production",
    "imports",
    "exports",
    "apparent_consumption",
    "import_reliance",
    "status",
    "supplier_share",
    "traced_supplier_share",
    "any_stage_share",
    "hhi",
    "top3_share",
]


def _records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    out = frame[list(columns)].replace({np.nan: None})
    return out.to_dict(orient="records")


def _traded(minerals: Sequence[str], year: int) -> list[str]:
    flows = commodity_flows(year)
    present = set(flows.loc[flows["amount"] > 0, "commodity"])
    return [m for m in minerals if m in present]


def briefing(
    bloc: str = DEFAULT_BLOC,
    minerals: Sequence[str] = DEFAULT_MINERALS,
    year: int | None = None,
    today: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    """All figures of the brief for `bloc` (group or list) and `minerals` in `year`; the ban
    and zone sections at `stage` (mine, refined, product; default: each mineral's market
    stage, `critmin.market.chain`). A mineral without that stage is listed as not modelled."""
    step = progress or (lambda stage: None)
    year = resolve_year(year)
    known = {c.id for c in all_commodities()}
    unknown = [m for m in minerals if m not in known]
    if unknown:
        raise InputError(f"unknown minerals: {', '.join(unknown)}")
    members = countries_of(bloc)
    # Minerals in the risk methods' trade table (BACI HS92 raw-material codes); the market
    # sections model every mineral whose stage market calibrates (gallium at the refined
    # stage from 2024 processed trade, for instance), found below.
    risk_covered = _traded(minerals, year)
    traded, untraded = list(minerals), []
    out: dict[str, Any] = {
        "bloc": bloc,
        "members": list(members),
        "year": year,
        "minerals": list(minerals),
        "traded": traded,
        "untraded": untraded,
        "risk_covered": risk_covered,
        "floor": FLOOR,
        "market_stage": stage,
    }

    step("dependence")
    mapped = set(stage_minerals())
    staged = [m for m in minerals if m in mapped]
    out["not_mapped"] = [m for m in minerals if m not in mapped]
    stage_rows = stage_dependence(bloc, None, year=year)
    stage_rows = stage_rows[stage_rows["commodity"].isin(staged)].copy()
    sources = supply_stages().set_index(["mineral", "stage"])["production_source"]
    stage_rows["production_source"] = [
        sources.get((m, st), "none")
        for m, st in zip(stage_rows["commodity"], stage_rows["stage"], strict=True)
    ]
    stage_rows["flags"] = stage_rows["flags"].map(list)
    out["stages"] = _records(stage_rows, [*STAGE_COLUMNS, "production_source", "flags"])
    covered = {r["commodity"] for r in out["stages"] if r["status"] in COVERED}
    out["not_covered"] = [m for m in minerals if m not in covered]
    made = production(year=year)
    china_made = made[made["commodity"].isin(minerals)].groupby("commodity")
    out["china_production_share"] = {
        name: float(g.loc[g["country"] == "CHN", "qty_t"].sum() / g["qty_t"].sum())
        for name, g in china_made
        if g["qty_t"].sum() > 0
    }
    # Main members: the largest importers of the minerals by value (market trade table).
    values = commodity_flows(year, "value")
    values = values[
        values["commodity"].isin(minerals)
        & values["importer"].isin(members)
        & (values["exporter"] != values["importer"])
    ]
    main = list(values.groupby("importer")["amount"].sum().nlargest(MAIN_MEMBERS).index)
    out["main_members"] = main if len(members) > 1 else []
    out["member_dependence"] = []
    if out["main_members"] and staged:
        grid = dependence_grid(balances(year, "content"), minerals=staged, importers=main)
        grid = grid[grid["status"].isin(COVERED)].rename(
            columns={"importer": "member", "mineral": "commodity"}
        )
        out["member_dependence"] = _records(
            grid, ["member", "commodity", "stage", "supplier_share", "traced_supplier_share"]
        )

    step("supply risk")
    geo = risk(bloc, None, year)
    geo = geo[geo["commodity"].isin(minerals)].sort_values("score", ascending=False)
    out["geopolrisk"] = _records(geo, ["commodity", "score", "hhi", "import_risk"])
    eu_year = min(year, 2024)
    eusr = risk(bloc, None, eu_year, method="eu-sr")
    eusr = eusr[eusr["commodity"].isin(minerals)].sort_values("supply_risk", ascending=False)
    out["eu_supply_risk"] = _records(eusr, ["commodity", "supply_risk", "import_reliance"])
    out["eu_supply_risk_year"] = eu_year

    step("Chinese export ban")
    out["ban"] = {}
    for mineral in minerals:
        try:
            result = shock("CHN", mineral, ban=True, targets=bloc, year=year, stage=stage)
        except CritminError:  # no market for it (no trade at its stage, no supplier flow)
            untraded.append(mineral)
            continue
        s = result.summary
        markets = result.markets[result.markets["country"].isin(s["bloc"])]
        worst = markets.sort_values("shortfall_t", ascending=False).head(5)
        gains = result.prices[result.prices["country"] != "CHN"].sort_values(
            "producer_surplus_kusd", ascending=False
        )
        out["ban"][mineral] = {
            "bloc_shortfall_pct": s["bloc_shortfall_pct"],
            "bloc_shortfall_t": s["bloc_consumption_base_t"] - s["bloc_consumption_t"],
            "bloc_consumption_base_t": s["bloc_consumption_base_t"],
            "world_price_index": s["world_price_index"],
            "consumer_surplus_kusd": s["consumer_surplus_kusd"],
            "net_welfare_kusd": s["net_welfare_kusd"],
            "bloc_supplier_share_base": s["bloc_supplier_share_base"],
            "worst": _records(worst, ["country", "shortfall_pct", "price_index"]),
            "gainers": _records(gains.head(3), ["country", "producer_surplus_kusd"]),
            "bloc_unit_value_usd_t": _bloc_unit_value(result, s["bloc"]),
            "stage": s.get("stage"),
            "unit": s.get("unit") or "t",
        }
    traded[:] = [m for m in minerals if m not in untraded]

    step("preferential zone")
    out["zone"] = {}
    for mechanism in ("tariff", "guarantee") if traded else ():
        results = zone(
            bloc, dict.fromkeys(traded, FLOOR), mechanism=mechanism, year=year, stage=stage
        )
        for mineral, result in results.items():
            s = result.summary
            prices = result.prices
            non_china = prices[prices["country"] != "CHN"]
            markets = result.markets[result.markets["country"].isin(s["bloc"])]
            out["zone"].setdefault(mineral, {})[mechanism] = {
                "self_sufficiency_base": s["bloc_self_sufficiency_base"],
                "self_sufficiency": s["bloc_self_sufficiency"],
                "china_share_base": s["bloc_supplier_share_base"],
                "china_share": s["bloc_supplier_share"],
                "non_china_supply_added_t": float(
                    (non_china["supply_t"] - non_china["supply_base_t"]).sum()
                ),
                "bloc_consumer_surplus_kusd": float(markets["consumer_surplus_kusd"].sum()),
                "tariff_revenue_kusd": s["tariff_revenue_kusd"],
                "fund_cost_kusd": s["fund_cost_kusd"],
                # issue 16: the stage the figures belong to, the cost per tonne of non-Chinese
                # supply added, and whether the floor misses China (it sells above it)
                "stage": s.get("stage"),
                "unit": s.get("unit"),
                "cost_usd_per_t_added": s.get("zone_cost_usd_per_t_added"),
                "china_above_floor": s.get("zone_supplier_above_floor"),
            }

    step("stockpile and agreements")
    out["stockpile"] = {
        mineral: {
            "tonnes": ban["bloc_shortfall_t"],
            "months": ban["bloc_shortfall_t"] / ban["bloc_consumption_base_t"] * 12.0
            if ban["bloc_consumption_base_t"] > 0
            else None,
            "cost_musd": ban["bloc_shortfall_t"] * ban["bloc_unit_value_usd_t"] / 1e6,
        }
        for mineral, ban in out["ban"].items()
    }
    records = Registry().records()
    cover = coverage(records, bloc, year, commodities=list(minerals))
    out["coverage"] = _records(cover, [c for c in cover.columns if c not in ("bloc", "year")])
    own = bloc_agreements(records, bloc, members)
    today = today or dt.date.today()
    due = deadlines(own, today, within_days=90)
    out["deadlines_today"] = today.isoformat()
    out["deadlines"] = _records(due, list(due.columns))
    out["agreements"] = len(records)
    out["bloc_agreements"] = [
        {
            "id": r["id"],
            "title": r["title"],
            "kind": r["kind"],
            "status": r["status"],
            "signed": r.get("signed"),
            "parties": [p["party"] for p in r.get("parties") or []],
            "minerals": list(r.get("minerals") or []),
            "source": (r.get("sources") or [r.get("source_url")])[0],
        }
        for r in own
    ]
    out["secured"] = _secured(records, bloc, members, out["ban"], year, today)
    out["controls"] = [
        {k: row[k] for k in ("id", "title", "commodities", "scope", "start", "end", "state")}
        | {"source": row["sources"][0]}
        for row in tracker(today)
        if set(row["commodities"]) & set(minerals)
    ]

    step("sources")
    from critmin import __version__

    out["sources"] = [
        {
            "table": name,
            "source": entry.get("source"),
            "licence": entry.get("licence"),
            "version": entry.get("version"),
            "rows": entry.get("rows"),
        }
        for name, entry in manifests().items()
    ]
    out["critmin_version"] = __version__
    return out


def bloc_agreements(records: list[dict], bloc: str, members: Sequence[str]) -> list[dict]:
    """The records with a party in the bloc (a member country or the bloc itself, e.g. EU)."""
    names = {*members, bloc.upper()}
    if len(members) > 1 and set(countries_of("eu27")) <= set(members):
        names.add("EU")
    return [
        r
        for r in records
        if not r.get("archived") and any(p["party"] in names for p in r.get("parties") or [])
    ]


def _secured(records, bloc, members, bans, year, today) -> list[dict[str, Any]]:
    """What the active commitments change (`agreements: active` in a study): per mineral
    with committed tonnes to the bloc's members this year, the ban's shortfall again with
    those tonnes as secured supply."""
    flows = reserved_flows(records, today.year)
    flows = flows[flows["recipient"].isin(members) & flows["commodity"].isin(list(bans))]
    out = []
    for mineral, rows in flows.groupby("commodity"):
        releases = rows.groupby("recipient")["tonnes"].sum().to_dict()
        result = shock("CHN", mineral, ban=True, targets=bloc, year=year, releases=releases)
        out.append(
            {
                "commodity": mineral,
                "tonnes": float(rows["tonnes"].sum()),
                "agreements": sorted(set(rows["agreement"])),
                "shortfall_pct": bans[mineral]["bloc_shortfall_pct"],
                "shortfall_pct_secured": result.summary["bloc_shortfall_pct"],
            }
        )
    return out


def _bloc_unit_value(result, bloc: Sequence[str]) -> float:
    """Base value per tonne of the bloc's consumption (USD/t)."""
    cal = result.calibration
    inside = np.isin(cal.countries, list(bloc))
    tonnes = cal.absorption_t()[inside].sum()
    return float(cal.absorption_kusd()[inside].sum() / tonnes * 1000.0) if tonnes > 0 else 0.0
