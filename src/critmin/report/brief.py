"""Render the briefing numbers (critmin.scenarios.briefing) as one self-contained HTML file:
an executive page (findings and options), then the sections; Plotly.js inlined (works
offline), print styles for A4. No figure is computed here; the report only formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from critmin.data.io import write_text_atomic
from critmin.errors import InputError
from critmin.report.charts import charts
from critmin.report.findings import COVERED, covered_stages, findings, options, ranked_risk
from critmin.report.format import (
    STATUS_TEXT,
    due,
    fixed,
    long_date,
    musd,
    name,
    number,
    pct,
    pct_points,
    production_source,
    stage_label,
    tonnes,
)

__all__ = ["pct", "pct_points", "render_brief", "write_brief"]


def sentences(data: dict[str, Any]) -> dict[str, list[str]]:
    """A few sentences per section, each built from the figures it quotes."""
    out: dict[str, list[str]] = {}
    rows = [r for r in covered_stages(data) if r["status"] != "net_exporter"]
    if rows:
        top = rows[0]
        out["dependence"] = [
            f"The bloc's most China-exposed link is {stage_label(top['commodity'], top['stage'])}: "
            f"{pct(top['supplier_share'])} of its imports come directly from China, "
            f"{pct(top['traced_supplier_share'])} were processed in China once re-exports are "
            f"traced, and {pct(top['any_stage_share'])} passed through China at some stage.",
            "Each stage is counted in its own unit (metal or oxide content); a share is a share "
            "of the bloc's supply at that stage, not of all stages together.",
        ]
    if data.get("not_covered"):
        out.setdefault("dependence", []).append(
            "Not covered (no trade data at any mapped stage, kept out of every ranking): "
            + ", ".join(name(m) for m in data["not_covered"])
            + "."
        )
    geo = ranked_risk(data)
    if len(geo) > 1:
        out["risk"] = [
            f"By GeoPolRisk the riskiest supply is {name(geo[0]['commodity'])} "
            f"(score {geo[0]['score']:.3f}), the least risky of the covered minerals "
            f"{name(geo[-1]['commodity'])} (score {geo[-1]['score']:.3f}).",
        ]
    elif geo:
        out["risk"] = [f"GeoPolRisk of {name(geo[0]['commodity'])}: {geo[0]['score']:.3f}."]
    ban = data["ban"]
    if ban:
        worst = max(ban, key=lambda m: ban[m]["bloc_shortfall_pct"])
        b = ban[worst]
        out["ban"] = [
            f"A Chinese export ban on the bloc hits {name(worst)} hardest: the bloc loses "
            f"{pct_points(b['bloc_shortfall_pct'])} of its consumption "
            f"({tonnes(b['bloc_shortfall_t'])}) "
            f"and the world price index rises to {b['world_price_index']:.2f}.",
            f"Those who gain most are {', '.join(g['country'] for g in b['gainers'])}, "
            "producers outside China whose prices rise.",
        ]
    zone = data["zone"]
    if zone:
        best = max(
            zone,
            key=lambda m: (
                (zone[m]["tariff"]["china_share_base"] or 0)
                - (zone[m]["tariff"]["china_share"] or 0)
            ),
        )
        z = zone[best]
        out["zone"] = [
            f"With a floor at {data['floor']:g} × the reference price kept by tariffs, China's "
            f"share of the bloc's {name(best)} purchases falls from "
            f"{pct(z['tariff']['china_share_base'])} "
            f"to {pct(z['tariff']['china_share'])}; members' consumers pay "
            f"{musd(-z['tariff']['bloc_consumer_surplus_kusd'])} and the tariffs raise "
            f"{musd(z['tariff']['tariff_revenue_kusd'])}.",
            f"Guaranteeing the floor to member producers instead costs a fund "
            f"{musd(z['guarantee']['fund_cost_kusd'])} and adds "
            f"{tonnes(z['guarantee']['non_china_supply_added_t'])} of non-Chinese supply.",
        ]
    stock = data["stockpile"]
    if stock:
        total = sum(s["cost_musd"] for s in stock.values())
        biggest = max(stock, key=lambda m: stock[m]["months"] or 0)
        out["stockpile"] = [
            f"Bridging a year of the ban takes stocks worth {total:,.0f}\u00a0million\u00a0USD at "
            f"base prices; {name(biggest)} needs the most cover, "
            f"{stock[biggest]['months']:.1f}\u00a0months of consumption.",
        ]
    own = data.get("bloc_agreements") or []
    overdue = sum(1 for d in data["deadlines"] if d.get("overdue"))
    out["agreements"] = [
        f"The bloc is party to {len(own)} of the registry's {data['agreements']} agreements; "
        f"{overdue} of their milestones are overdue as of {long_date(data['deadlines_today'])}."
        if own
        else f"None of the registry's {data['agreements']} agreements has a party in this bloc."
    ]
    return out


def stage_table(data: dict[str, Any]) -> list[dict[str, str]]:
    """The dependence table by stage, formatted; not-covered rows say so and carry no share."""
    out = []
    for r in data.get("stages", []):
        covered = r["status"] in COVERED
        reliance = pct(r["import_reliance"])
        if r["status"] == "production_implied" and reliance != "–":
            reliance = f"≤\u00a0{reliance}"
        out.append(
            {
                "mineral": name(r["commodity"]),
                "stage": r["stage"],
                "unit": r["unit"],
                "imports": number(r["imports"]) if covered else "–",
                "consumption": number(r["apparent_consumption"])
                if covered and (r["apparent_consumption"] or 0) >= 0
                else "–",
                "reliance": reliance if covered else "–",
                "direct": pct(r["supplier_share"]) if covered else "–",
                "traced": pct(r["traced_supplier_share"]) if covered else "–",
                "any": pct(r["any_stage_share"]) if covered else "–",
                "status": STATUS_TEXT.get(r["status"], r["status"]),
                "covered": covered,
                "production": production_source(r.get("production_source")) or "none",
            }
        )
    return out


def coverage_table(data: dict[str, Any]) -> list[dict[str, str]]:
    """Coverage of the need by commitments, with units in the headers and shares in %."""
    out = []
    for r in data.get("coverage", []):
        covered = r["commodity"] in data["traded"]
        out.append(
            {
                "mineral": name(r["commodity"]),
                "need": number(r["need_t"]) if covered else "not covered",
                "committed": number(r["committed_t"]) if covered else "–",
                "covered_share": pct(r["covered_share"]) if covered else "–",
                "gap": number(r["gap_t"]) if covered else "–",
                "before": pct(r["supplier_share_before"]) if covered else "–",
                "after": pct(r["supplier_share_after"]) if covered else "–",
            }
        )
    return out


def member_matrix(data: dict[str, Any]) -> tuple[list[str], list[dict]]:
    """Rows 'mineral stage' × main members: 'direct / traced' China share."""
    cells: dict[str, dict[str, str]] = {}
    for row in data.get("member_dependence", []):
        label = stage_label(row["commodity"], row["stage"])
        cells.setdefault(label, {})[row["member"]] = (
            f"{pct(row['supplier_share'])} / {pct(row['traced_supplier_share'])}"
        )
    return data.get("main_members", []), [{"label": k, "cells": v} for k, v in cells.items()]


def render_brief(data: dict[str, Any]) -> str:
    """The whole HTML document."""
    from plotly.offline import get_plotlyjs

    env = Environment(
        loader=PackageLoader("critmin.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    env.filters.update(
        pct=pct,
        pct_points=pct_points,
        musd=musd,
        tonnes=tonnes,
        name=name,
        number=number,
        due=due,
        fixed=fixed,
        long_date=long_date,
    )
    template = env.get_template("brief.html.j2")
    members, matrix = member_matrix(data)
    return template.render(
        data=data,
        findings=findings(data),
        options=options(data),
        stage_rows=stage_table(data),
        coverage_rows=coverage_table(data),
        matrix_members=members,
        matrix=matrix,
        charts=charts(data),
        text=sentences(data),
        geopolrisk=ranked_risk(data),
        eu_supply_risk=ranked_risk(data, "eu_supply_risk", "supply_risk"),
        plotlyjs=get_plotlyjs(),
        # "</" would end the script element early; JSON allows the escaped form.
        data_json=json.dumps(data, default=str).replace("</", "<\\/"),
    )


def write_brief(data: dict[str, Any], out: Path) -> Path:
    """Write the brief to `out` (temporary name, then rename)."""
    if Path(out).is_dir():
        raise InputError(f"--out {out} is a folder; give a file name such as {out}/brief.html")
    write_text_atomic(Path(out), render_brief(data))
    return Path(out)
