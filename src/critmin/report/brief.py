"""Render the briefing numbers (critmin.scenarios.briefing) as one self-contained HTML file:
Plotly.js inlined (works offline), one chart per section, sentences built from the numbers,
print styles. No figure is computed here; the report only formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

from critmin.data.io import write_text_atomic
from critmin.errors import InputError

NAMES = {
    "rare_earths": "rare earths",
    "graphite": "graphite",
    "tungsten": "tungsten",
    "antimony": "antimony",
    "cobalt": "cobalt",
    "lithium": "lithium",
    "nickel": "nickel",
    "germanium": "germanium",
    "gallium": "gallium",
}
CHINA, ALLY, OTHER = "#c0392b", "#1f5f8b", "#8fa9bf"


def name(mineral: str) -> str:
    return NAMES.get(mineral, mineral.replace("_", " "))


def pct(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def pct_points(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f} %"


def musd(kusd: float | None) -> str:
    if kusd is None:
        return "–"
    value = kusd / 1000
    return "under 1 million USD" if abs(value) < 0.5 else f"{value:,.0f} million USD"


def tonnes(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} t"


def _chart(figure: go.Figure, chart_id: str, height: int = 360) -> str:
    figure.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 40, "b": 60},
        font={"family": "Georgia, serif", "size": 13},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.2},
    )
    return figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=chart_id, config={"displaylogo": False}
    )


def charts(data: dict[str, Any]) -> dict[str, str]:
    """One Plotly chart per section, as HTML fragments keyed by section."""
    out = {}
    dep = [r for r in data["dependence"] if r["commodity"] in data["minerals"]]
    out["dependence"] = _chart(
        go.Figure(
            [
                go.Bar(
                    name="China, direct share of imports",
                    x=[name(r["commodity"]) for r in dep],
                    y=[(r["supplier_share"] or 0) * 100 for r in dep],
                    marker_color=OTHER,
                ),
                go.Bar(
                    name="China, traced through third countries",
                    x=[name(r["commodity"]) for r in dep],
                    y=[(r["traced_supplier_share"] or 0) * 100 for r in dep],
                    marker_color=CHINA,
                ),
            ],
            layout={"barmode": "group", "yaxis": {"title": "% of the bloc's imports"}},
        ),
        "chart-dependence",
    )
    geo = data["geopolrisk"]
    out["risk"] = _chart(
        go.Figure(
            [
                go.Bar(
                    x=[r["score"] for r in geo],
                    y=[name(r["commodity"]) for r in geo],
                    orientation="h",
                    marker_color=ALLY,
                    name="GeoPolRisk score",
                )
            ],
            layout={
                "xaxis": {"title": "GeoPolRisk score (HHI × import risk)"},
                "yaxis": {"autorange": "reversed"},
            },
        ),
        "chart-risk",
    )
    ban = data["ban"]
    out["ban"] = _chart(
        go.Figure(
            [
                go.Bar(
                    name="bloc shortfall, % of consumption",
                    x=[name(m) for m in ban],
                    y=[b["bloc_shortfall_pct"] for b in ban.values()],
                    marker_color=CHINA,
                ),
                go.Scatter(
                    name="world price index (base = 1)",
                    x=[name(m) for m in ban],
                    y=[b["world_price_index"] for b in ban.values()],
                    mode="markers",
                    marker={"size": 12, "color": "black"},
                    yaxis="y2",
                ),
            ],
            layout={
                "yaxis": {"title": "shortfall, %"},
                "yaxis2": {"title": "price index", "overlaying": "y", "side": "right"},
            },
        ),
        "chart-ban",
    )
    zone = data["zone"]
    traces = []
    for mechanism, colour in (("tariff", ALLY), ("guarantee", OTHER)):
        traces.append(
            go.Bar(
                name=f"China's share of bloc purchases, {mechanism} floor",
                x=[name(m) for m in zone],
                y=[(z[mechanism]["china_share"] or 0) * 100 for z in zone.values()],
                marker_color=colour,
            )
        )
    traces.insert(
        0,
        go.Bar(
            name="China's share today",
            x=[name(m) for m in zone],
            y=[(z["tariff"]["china_share_base"] or 0) * 100 for z in zone.values()],
            marker_color=CHINA,
        ),
    )
    out["zone"] = _chart(
        go.Figure(traces, layout={"barmode": "group", "yaxis": {"title": "% of bloc purchases"}}),
        "chart-zone",
    )
    stock = data["stockpile"]
    out["stockpile"] = _chart(
        go.Figure(
            [
                go.Bar(
                    x=[name(m) for m in stock],
                    y=[s["months"] for s in stock.values()],
                    marker_color=ALLY,
                    text=[tonnes(s["tonnes"]) for s in stock.values()],
                    name="months of bloc consumption",
                )
            ],
            layout={"yaxis": {"title": "months of consumption"}},
        ),
        "chart-stockpile",
    )
    return out


def sentences(data: dict[str, Any]) -> dict[str, list[str]]:
    """A few sentences per section, each built from the figures it quotes."""
    out: dict[str, list[str]] = {}
    dep = sorted(data["dependence"], key=lambda r: -(r["traced_supplier_share"] or 0))
    if dep:
        top = dep[0]
        out["dependence"] = [
            f"The bloc's most China-dependent mineral is {name(top['commodity'])}: "
            f"{pct(top['supplier_share'])} of its imports come directly from China, "
            f"{pct(top['traced_supplier_share'])} once re-exports are traced to the mine.",
            "Traced shares count what partners re-export from Chinese production; "
            f"the bloc's largest importers are {', '.join(data['main_members'])}.",
        ]
    geo = data["geopolrisk"]
    if geo:
        out["risk"] = [
            f"By GeoPolRisk the riskiest supply is {name(geo[0]['commodity'])} "
            f"(score {geo[0]['score']:.3f}), the least risky {name(geo[-1]['commodity'])} "
            f"(score {geo[-1]['score']:.3f}).",
        ]
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
        # The mineral where the tariff floor cuts China's share the most.
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
            f"Bridging a year of the ban takes stocks worth {total:,.0f} million USD at base "
            f"prices; {name(biggest)} needs the most cover, "
            f"{stock[biggest]['months']:.1f} months of consumption.",
            f"The registry holds {data['agreements']} agreements; "
            f"{sum(1 for d in data['deadlines'] if d.get('overdue'))} of their milestones are "
            f"overdue as of {data['deadlines_today']}.",
        ]
    return out


def render_brief(data: dict[str, Any]) -> str:
    """The whole HTML document."""
    env = Environment(
        loader=PackageLoader("critmin.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    env.filters.update(pct=pct, pct_points=pct_points, musd=musd, tonnes=tonnes, name=name)
    template = env.get_template("brief.html.j2")
    members: dict[str, dict[str, dict]] = {}
    for row in data["member_dependence"]:
        members.setdefault(row["commodity"], {})[row["member"]] = row
    return template.render(
        data=data,
        member_matrix=members,
        charts=charts(data),
        text=sentences(data),
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
