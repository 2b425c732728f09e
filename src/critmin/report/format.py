"""Number formats of the brief: one convention for shares (percent), units glued to their
number by a no-break space so a printed line never wraps between them."""

from __future__ import annotations

import datetime as dt
import math

NBSP = "\u00a0"
NAMES = {
    "rare_earths": "rare earths",
    "pgm": "platinum-group metals",
}
STAGES = {"mine": "mine", "refined": "refined", "product": "product"}
STATUS_TEXT = {
    "ok": "",
    "basket_split": "shared HS code split by a stated key",
    "production_implied": "no production series: reliance is an upper bound",
    "net_exporter": "net exporter",
    "no_production_data": "no production data",
    "not_traded": "not traded",
    "no_trade_data": "not covered (no trade data)",
}
PRODUCTION_SOURCES = {"usgs": "USGS Mineral Commodity Summaries 2026", "none": ""}


def missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def name(mineral: str) -> str:
    return NAMES.get(mineral, mineral.replace("_", " "))


def pct(value: float | None, digits: int = 0) -> str:
    """A fraction as a percentage: 0.853 → '85 %' (no-break space)."""
    return "–" if missing(value) else f"{value * 100:.{digits}f}{NBSP}%"


def pct_points(value: float | None, digits: int = 1) -> str:
    """A value already in percent: 12.34 → '12.3 %'."""
    return "–" if missing(value) else f"{value:.{digits}f}{NBSP}%"


def musd(kusd: float | None) -> str:
    """Thousand USD as million USD: 2,345 → '2 million USD'; under half a million said so."""
    if missing(kusd):
        return "–"
    value = kusd / 1000
    if abs(value) < 0.5:
        return f"under 1{NBSP}million{NBSP}USD"
    return f"{value:,.0f}{NBSP}million{NBSP}USD"


def number(value: float | None, unit: str = "") -> str:
    """Thousands separators, no decimals above 100, two significant digits below."""
    if missing(value):
        return "–"
    if abs(value) >= 100 or value == 0:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:,.1f}"
    else:
        text = f"{value:.2g}"
    return f"{text}{NBSP}{unit}" if unit else text


def fixed(value: float | None, digits: int = 2) -> str:
    """A plain number with `digits` decimals; '–' when missing."""
    return "–" if missing(value) else f"{value:.{digits}f}"


def tonnes(value: float | None, unit: str = "t") -> str:
    return number(value, unit)


def stage_label(mineral: str, stage: str) -> str:
    """A mineral at a stage as a phrase: 'refined rare earths', 'rare earths products'."""
    if stage == "mine":
        return f"{name(mineral)} ores and concentrates"
    if stage == "product":
        return f"{name(mineral)} products"
    return f"{STAGES.get(stage, stage)} {name(mineral)}"


def production_source(code: str | None) -> str:
    if not code:
        return ""
    if code.startswith("wmd:"):
        return "World Mining Data (Austrian Federal Ministry of Finance)"
    return PRODUCTION_SOURCES.get(code, code)


def long_date(text: str | None) -> str:
    """'2026-04-28' → '28 April 2026'; '2026-04' → 'April 2026'; '2026' stays."""
    if not text:
        return "–"
    parts = text.split("-")
    try:
        if len(parts) == 3:
            return dt.date.fromisoformat(text).strftime("%-d %B %Y")
        if len(parts) == 2:
            return dt.date(int(parts[0]), int(parts[1]), 1).strftime("%B %Y")
    except ValueError:
        return text
    return text


def due(row: dict) -> str:
    """'overdue since 26 April 2026' or 'due in 45 days' for a deadline row."""
    if row.get("overdue"):
        return f"overdue since {long_date(row.get('planned'))}"
    days = row.get("days_left")
    if days == 0:
        return "due today"
    return f"due in {days} day{'s' if days != 1 else ''}"
