"""The export-control tracker: China's 2023–2025 measures on critical minerals with their
dates, instruments and public sources (seed/export_controls.json), their state on a date
(in force, suspended, suspension lapsed), and the lookup by id that scenario files use."""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from critmin.errors import UnknownNameError

KINDS = ("licence", "ban", "suspension")


@lru_cache(maxsize=1)
def _measures() -> tuple[dict[str, Any], ...]:
    text = (files("critmin.registry") / "seed" / "export_controls.json").read_text("utf-8")
    return tuple(json.loads(text)["measures"])


def measures() -> list[dict[str, Any]]:
    """Every measure of the tracker (copies: callers may change them freely)."""
    return [dict(m) for m in _measures()]


def measure(ident: str) -> dict[str, Any]:
    """One measure by id; an unknown id names the closest ones."""
    for item in _measures():
        if item["id"] == ident:
            return dict(item)
    raise UnknownNameError(
        "export-control measure", ident, [m["id"] for m in _measures()],
        "see 'critmin agreements controls'",
    )  # fmt: skip


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def state(ident: str, on: dt.date) -> str:
    """The measure's state on `on`: 'announced', 'in force', 'suspended until …',
    'in force (suspension ended …)', 'ended …' — from the dates recorded only (an extension
    announced after the tracker's as_of date is not known to it)."""
    item = measure(ident)
    start, end = _date(item["start"]), _date(item["end"])
    if start and on < start:
        return "announced"
    if end and on > end:
        return f"ended {end.isoformat()}"
    if item["kind"] == "suspension":
        return "in force"
    lapsed = None
    for other in _measures():
        if ident in other.get("suspends", []):
            s_start, s_end = _date(other["start"]), _date(other["end"])
            if s_start and s_start <= on and (s_end is None or on <= s_end):
                return f"suspended until {s_end.isoformat()}" if s_end else "suspended"
            if s_end and on > s_end:
                lapsed = s_end
    if lapsed:
        return f"in force (suspension ended {lapsed.isoformat()})"
    return "in force"


def tracker(on: dt.date | None = None) -> list[dict[str, Any]]:
    """Every measure with its state on `on` (default today), oldest first."""
    on = on or dt.date.today()
    rows = [{**m, "state": state(m["id"], on)} for m in _measures()]
    return sorted(rows, key=lambda r: (r["start"] or "", r["id"]))
