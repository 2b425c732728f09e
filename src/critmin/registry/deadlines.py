"""Milestones and deadlines that are due or overdue."""

from __future__ import annotations

import calendar
import datetime as dt

import pandas as pd


def period_end(text: str) -> dt.date:
    """The last day a partial ISO date covers: '2026-01' → 2026-01-31, '2026' → 2026-12-31."""
    parts = [int(p) for p in text.split("-")]
    if len(parts) == 1:
        return dt.date(parts[0], 12, 31)
    if len(parts) == 2:
        return dt.date(parts[0], parts[1], calendar.monthrange(parts[0], parts[1])[1])
    return dt.date(*parts)


def deadlines(records: list[dict], today: dt.date, within_days: int = 90) -> pd.DataFrame:
    """Open milestones (planned or slipped, not done) due within `within_days` or overdue.

    Columns: agreement, title, planned, status, days_left (negative = overdue), overdue.
    A partial planned date counts until the end of the month or year it names.
    """
    rows = []
    for record in records:
        for milestone in record.get("milestones") or []:
            if milestone.get("actual") or milestone.get("status") not in ("planned", "slipped"):
                continue
            if not milestone.get("planned"):
                continue
            days_left = (period_end(milestone["planned"]) - today).days
            if days_left <= within_days:
                rows.append(
                    {
                        "agreement": record["id"],
                        "title": milestone["title"],
                        "planned": milestone["planned"],
                        "status": milestone["status"],
                        "days_left": days_left,
                        "overdue": days_left < 0,
                    }
                )
    columns = ["agreement", "title", "planned", "status", "days_left", "overdue"]
    return pd.DataFrame(rows, columns=columns).sort_values("days_left").reset_index(drop=True)
