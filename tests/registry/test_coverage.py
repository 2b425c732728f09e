"""Coverage and deadlines: hand calculations on small invented cases."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from critmin.registry.coverage import committed_flows, coverage_from_tables
from critmin.registry.deadlines import deadlines, period_end


def test_coverage_by_hand():
    # Need 1,000 t of x; today 60 % from CHN, 40 % from AUS.
    # Commitments: 200 t from AUS and 100 t from CAN → covered 30 %, gap 700 t;
    # after: CHN = 0.6 × 700 = 420 t of 1,000 t → 42 %.
    need = pd.DataFrame({"commodity": ["x", "y"], "need_t": [1000.0, 0.0]})
    shares = pd.DataFrame(
        {"commodity": ["x", "x"], "exporter": ["CHN", "AUS"], "share": [0.6, 0.4]}
    )
    committed = pd.DataFrame(
        {"commodity": ["x", "x"], "supplier": ["AUS", "CAN"], "tonnes": [200.0, 100.0]}
    )
    table = coverage_from_tables(need, shares, committed, "CHN").set_index("commodity")
    x = table.loc["x"]
    assert x["committed_t"] == 300 and x["covered_share"] == pytest.approx(0.3)
    assert x["gap_t"] == 700
    assert x["supplier_share_before"] == pytest.approx(0.6)
    assert x["supplier_share_after"] == pytest.approx(0.42)
    assert pd.isna(table.loc["y", "covered_share"])


def test_oversubscribed_need_is_fully_covered_and_china_free():
    need = pd.DataFrame({"commodity": ["x"], "need_t": [100.0]})
    shares = pd.DataFrame({"commodity": ["x"], "exporter": ["CHN"], "share": [1.0]})
    committed = pd.DataFrame({"commodity": ["x"], "supplier": ["AUS"], "tonnes": [250.0]})
    x = coverage_from_tables(need, shares, committed, "CHN").iloc[0]
    assert x["covered_share"] == 1.0 and x["gap_t"] == 0 and x["supplier_share_after"] == 0


def test_only_active_commitments_in_their_period_count():
    records = [
        {
            "id": "a",
            "status": "in_force",
            "archived": False,
            "commitments": [
                {
                    "mineral": "x",
                    "supplier": "AUS",
                    "recipient": "USA",
                    "tonnes_per_year": 10,
                    "start": "2024",
                    "end": "2030",
                }
            ],
        },
        {
            "id": "b",
            "status": "negotiating",
            "archived": False,
            "commitments": [
                {"mineral": "x", "supplier": "AUS", "recipient": "USA", "tonnes_per_year": 99}
            ],
        },
        {
            "id": "c",
            "status": "signed",
            "archived": True,
            "commitments": [
                {"mineral": "x", "supplier": "AUS", "recipient": "USA", "tonnes_per_year": 99}
            ],
        },
        {
            "id": "d",
            "status": "signed",
            "archived": False,
            "commitments": [
                {
                    "mineral": "x",
                    "supplier": "AUS",
                    "recipient": "USA",
                    "tonnes_per_year": 5,
                    "start": "2027-01",
                }
            ],
        },
    ]
    flows = committed_flows(records, {"USA"}, 2025)
    assert flows["agreement"].tolist() == ["a"] and flows["tonnes"].tolist() == [10.0]


def test_deadlines_due_and_overdue():
    records = [
        {
            "id": "eu-talks",
            "milestones": [
                {
                    "title": "conclude with European partners",
                    "planned": "2026-01",
                    "actual": None,
                    "status": "slipped",
                },
                {"title": "review", "planned": "2026-12-15", "actual": None, "status": "planned"},
                {"title": "far", "planned": "2028", "actual": None, "status": "planned"},
                {"title": "done", "planned": "2025-01", "actual": "2025-01-10", "status": "done"},
            ],
        }
    ]
    table = deadlines(records, dt.date(2026, 11, 24), within_days=30)
    assert table["title"].tolist() == ["conclude with European partners", "review"]
    assert table["overdue"].tolist() == [True, False]
    assert table["days_left"].tolist() == [(dt.date(2026, 1, 31) - dt.date(2026, 11, 24)).days, 21]
    assert period_end("2024-02") == dt.date(2024, 2, 29)


def test_reserved_flows_for_the_market_model():
    from critmin.registry.coverage import reserved_flows

    records = [
        {
            "id": "floor",
            "status": "in_force",
            "archived": False,
            "commitments": [
                {
                    "mineral": "rare_earths",
                    "supplier": "USA",
                    "recipient": "USA",
                    "tonnes_per_year": 1000,
                    "floor_usd_per_t": 110000,
                    "start": "2025",
                }
            ],
        }
    ]
    flows = reserved_flows(records, 2026)
    assert flows.to_dict(orient="records") == [
        {
            "commodity": "rare_earths",
            "supplier": "USA",
            "recipient": "USA",
            "tonnes": 1000.0,
            "floor_usd_per_t": 110000,
            "agreement": "floor",
        }
    ]
    assert reserved_flows(records, 2024).empty
