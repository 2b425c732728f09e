"""The brief's first page: the findings that matter for the bloc, each a sentence with its
number, unit, stage and source, and the options the model compared with their cost. Every
sentence is built from figures already in the briefing data; nothing is computed anew."""

from __future__ import annotations

from typing import Any

from critmin.report.format import (
    musd,
    name,
    number,
    pct,
    pct_points,
    production_source,
    stage_label,
)

COVERED = ("ok", "basket_split", "production_implied", "net_exporter")
MAX_FINDINGS = 5


def ranked_risk(data: dict[str, Any], key: str = "geopolrisk", score: str = "score") -> list:
    """Risk rows of minerals with trade data and a score, riskiest first (the others are not
    covered and never ranked)."""
    rows = [
        r
        for r in data.get(key, [])
        if r["commodity"] in data.get("risk_covered", data.get("traded", []))
        and r.get(score) is not None
    ]
    return sorted(rows, key=lambda r: -r[score])


def covered_stages(data: dict[str, Any]) -> list[dict]:
    """Stage rows with figures (not 'no trade data'), most exposed first."""
    rows = [
        r
        for r in data.get("stages", [])
        if r["status"] in COVERED and r.get("any_stage_share") is not None
    ]
    return sorted(rows, key=lambda r: -(r["any_stage_share"] or 0))


def stage_source(data: dict[str, Any], row: dict) -> str:
    made = production_source(row.get("production_source"))
    return f"CEPII BACI {row['year']}" + (f"; {made}" if made else "")


def _reliance(row: dict) -> str:
    value = pct(row["import_reliance"])
    if row["status"] == "production_implied":
        return f"at most {value} (no production series for the stage)"
    if row["status"] == "net_exporter":
        return "none (the bloc is a net exporter at this stage)"
    return value


def _dependence_findings(data: dict[str, Any]) -> list[dict]:
    out = []
    seen = set()
    # A net exporter's share of its own supply is no headline: rank the importing stages.
    for row in [r for r in covered_stages(data) if r["status"] != "net_exporter"]:
        if row["commodity"] in seen or len(out) == 2:
            continue
        seen.add(row["commodity"])
        label = stage_label(row["commodity"], row["stage"])
        out.append(
            {
                "topic": "dependence",
                "text": (
                    f"{pct(row['any_stage_share'])} of the bloc's supply of {label} passed "
                    f"through China at some stage of the chain in {row['year']} "
                    f"({pct(row['supplier_share'])} of its imports came from China directly, "
                    f"{pct(row['traced_supplier_share'])} once re-exports are traced); net "
                    f"import reliance {_reliance(row)} of an apparent consumption of "
                    f"{number(row['apparent_consumption'], row['unit'])}."
                ),
                "source": stage_source(data, row),
            }
        )
    return out


def _ban_finding(data: dict[str, Any]) -> dict | None:
    ban = data.get("ban") or {}
    if not ban:
        return None
    worst = max(ban, key=lambda m: ban[m]["bloc_shortfall_pct"])
    b = ban[worst]
    return {
        "topic": "ban",
        "text": (
            f"A year-long Chinese export ban on the bloc would cut its consumption of "
            f"{stage_label(worst, b.get('stage') or 'refined')} by "
            f"{pct_points(b['bloc_shortfall_pct'])} "
            f"({number(b['bloc_shortfall_t'], b.get('unit') or 't')}) and raise the "
            f"world price to {b['world_price_index']:.2f}× its {data['year']} level."
        ),
        "source": f"critmin market model (short horizon) calibrated to CEPII BACI {data['year']}",
    }


def _zone_finding(data: dict[str, Any]) -> dict | None:
    zone = data.get("zone") or {}
    if not zone:
        return None

    def cut(m: str) -> float:
        z = zone[m]["tariff"]
        return (z["china_share_base"] or 0) - (z["china_share"] or 0)

    best = max(zone, key=cut)
    t, g = zone[best]["tariff"], zone[best]["guarantee"]
    return {
        "topic": "zone",
        "text": (
            f"A floor at {data['floor']:g}× the reference price on {name(best)} kept by tariffs "
            f"cuts China's share of the bloc's purchases from {pct(t['china_share_base'])} to "
            f"{pct(t['china_share'])}, at a cost of {musd(-t['bloc_consumer_surplus_kusd'])} "
            f"to members' consumers; guaranteeing it to member producers instead costs a fund "
            f"{musd(g['fund_cost_kusd'])} a year."
        ),
        "source": f"critmin market model calibrated to CEPII BACI {data['year']}",
    }


def _stock_finding(data: dict[str, Any]) -> dict | None:
    stock = data.get("stockpile") or {}
    if not stock:
        return None
    total = sum(s["cost_musd"] for s in stock.values())
    biggest = max(stock, key=lambda m: stock[m]["months"] or 0)
    s = stock[biggest]
    return {
        "topic": "stockpile",
        "text": (
            f"Bridging a year of the ban takes stocks worth {total:,.0f}\u00a0million\u00a0USD at "
            f"{data['year']} prices; {name(biggest)} needs the most cover, "
            f"{number(s['tonnes'], data['ban'][biggest].get('unit') or 't')} or "
            f"{s['months']:.1f}\u00a0months of consumption."
        ),
        "source": f"critmin market model, CEPII BACI {data['year']} unit values",
    }


def _agreements_finding(data: dict[str, Any]) -> dict:
    own = data.get("bloc_agreements") or []
    overdue = [d for d in data.get("deadlines", []) if d.get("overdue")]
    if not own:
        text = "The registry holds no agreement with a party in this bloc."
    else:
        text = (
            f"The bloc is party to {len(own)} agreement{'s' if len(own) != 1 else ''} in the "
            f"registry; {len(overdue)} of their milestones are overdue as of "
            f"{data['deadlines_today']}."
        )
    return {"topic": "agreements", "text": text, "source": "critmin agreements registry"}


def findings(data: dict[str, Any]) -> list[dict]:
    """Three to five findings: dependence (two most exposed minerals), the ban, the zone,
    the stockpile, the bloc's agreements — in that order of priority."""
    out = _dependence_findings(data)
    for make in (_ban_finding, _zone_finding, _stock_finding):
        found = make(data)
        if found:
            out.append(found)
    if len(out) < MAX_FINDINGS:
        out.append(_agreements_finding(data))
    return out[:MAX_FINDINGS]


def options(data: dict[str, Any]) -> list[dict]:
    """The options the model compared, one row per mineral: the floor kept by tariffs, the
    floor guaranteed to member producers, the stockpile, and the partners adding most."""
    rows = []
    for mineral, z in (data.get("zone") or {}).items():
        t, g = z["tariff"], z["guarantee"]
        s = (data.get("stockpile") or {}).get(mineral)
        ban = (data.get("ban") or {}).get(mineral) or {}
        unit = g.get("unit") or ban.get("unit") or "t"

        def per_t(z: dict) -> str:
            cost = z.get("cost_usd_per_t_added")
            text = f", {number(cost)}\u00a0USD per t added" if cost and cost > 0 else ""
            return text + ("; China sells above the floor" if z.get("china_above_floor") else "")

        rows.append(
            {
                "mineral": name(mineral),
                "china_today": pct(t["china_share_base"]),
                "tariff": f"{pct(t['china_share'])}; consumers pay "
                f"{musd(-t['bloc_consumer_surplus_kusd'])}, tariffs raise "
                f"{musd(t['tariff_revenue_kusd'])}{per_t(t)}",
                "guarantee": f"{pct(g['china_share'])}; fund {musd(g['fund_cost_kusd'])}, "
                f"+{number(g['non_china_supply_added_t'], unit)} non-Chinese supply{per_t(g)}",
                "stockpile": f"{number(s['tonnes'], unit)} "
                f"({s['months']:.1f}\u00a0months), "
                f"{musd(s['cost_musd'] * 1000)}"
                if s
                else "–",
                "partners": ", ".join(g["country"] for g in ban.get("gainers") or []) or "–",
            }
        )
    return rows
