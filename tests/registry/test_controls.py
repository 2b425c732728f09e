"""The registry beyond the US and the export-control tracker (issue 17): sourced records,
every named Chinese measure with its dates, states on a date, coverage without fuels, and
the tracker's ids in scenario files (as bans or quotas) and `agreements: active`."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from critmin.registry.controls import measure, measures, state, tracker
from critmin.registry.coverage import FUELS, agreements_of, coverage
from critmin.registry.records import validate_records
from critmin.registry.store import SEED_FILE, Registry

SEED = json.loads(SEED_FILE.read_text(encoding="utf-8"))["agreements"]


def test_the_seed_goes_beyond_the_us_with_sources():
    validate_records(SEED)
    assert len(SEED) >= 40
    without_us = [r for r in SEED if all(p["party"] != "USA" for p in r["parties"])]
    assert len(without_us) >= 10
    for record in SEED:
        sources = record["sources"]
        assert sources and all(s.startswith("http") for s in sources), record["id"]
        assert record["source_url"], record["id"]
    parties = {p["party"] for r in without_us for p in r["parties"]}
    assert {"EU", "JPN", "KOR"} <= parties
    assert any("Strategic Projects" in r["title"] for r in SEED)  # CRMA strategic projects


def test_the_tracker_holds_every_named_measure_with_dates_and_sources():
    rows = {m["id"]: m for m in measures()}
    expected = {  # id: (minerals, start)
        "cn-ga-ge-licence-2023": ({"gallium", "germanium"}, "2023-08-01"),
        "cn-graphite-licence-2023": ({"graphite"}, "2023-12-01"),
        "cn-antimony-licence-2024": ({"antimony"}, "2024-09-15"),
        "cn-us-ban-2024": ({"gallium", "germanium", "antimony"}, "2024-12-03"),
        "cn-ree-licence-2025-04": ({"rare_earths"}, "2025-04-04"),
        "cn-ree-controls-2025-10": ({"rare_earths"}, "2025-10-09"),
        "cn-october-2025-suspension": ({"rare_earths", "lithium", "graphite"}, "2025-11-07"),
    }
    for ident, (minerals, start) in expected.items():
        assert minerals <= set(rows[ident]["commodities"]), ident
        assert rows[ident]["start"] == start and rows[ident]["sources"], ident
    suspension = rows["cn-october-2025-suspension"]
    assert suspension["end"] == "2026-11-10"
    assert set(suspension["suspends"]) == {
        "cn-ree-controls-2025-10",
        "cn-battery-materials-2025-10",
    }
    assert rows["cn-us-ban-2024"]["scope"] == "USA"


def test_states_follow_the_recorded_dates():
    assert state("cn-ree-controls-2025-10", dt.date(2025, 10, 20)) == "in force"
    assert state("cn-ree-controls-2025-10", dt.date(2026, 3, 1)) == "suspended until 2026-11-10"
    assert state("cn-ree-controls-2025-10", dt.date(2026, 12, 1)).startswith(
        "in force (suspension ended 2026-11-10"
    )
    assert state("cn-us-ban-2024", dt.date(2026, 1, 1)) == "suspended until 2026-11-27"
    assert state("cn-ga-ge-licence-2023", dt.date(2023, 7, 10)) == "announced"
    assert [r["start"] for r in tracker(dt.date(2026, 1, 1))] == sorted(
        r["start"] for r in measures()
    )
    with pytest.raises(Exception, match="closest: cn-us-ban-2024"):
        measure("cn-us-ban-2025")


def test_coverage_leaves_fuels_out_unless_asked(isolated_user_data):
    records = Registry().records()
    plain = coverage(records, "EU", 2024)
    assert not set(plain["commodity"]) & set(FUELS)
    with_fuels = coverage(records, "EU", 2024, include_fuels=True)
    assert set(with_fuels["commodity"]) & set(FUELS)
    assert agreements_of(records, "eu27") and agreements_of(records, "JPN")
    assert agreements_of(records, "BRA") == []


def test_scenario_files_name_measures_and_count_active_commitments(isolated_user_data):
    from critmin.scenarios.runner import run_study
    from critmin.scenarios.schema import validate_study

    by_id = validate_study(
        {"name": "by id", "base_year": 2024, "commodities": ["gallium"], "bloc": "USA",
         "policies": {"controls": [{"measure": "cn-ga-ge-licence-2023", "model": "quota",
                                    "fraction": 0.5}]}, "outputs": ["markets"]},
        "test",
    )  # fmt: skip
    by_hand = validate_study(
        {"name": "by hand", "base_year": 2024, "commodities": ["gallium"], "bloc": "USA",
         "policies": {"quotas": [{"exporter": "CHN", "fraction": 0.5}]}, "outputs": ["markets"]},
        "test",
    )  # fmt: skip
    a = run_study(by_id)["summary"]["markets"]["gallium"]
    b = run_study(by_hand)["summary"]["markets"]["gallium"]
    assert a["world_price_index"] == pytest.approx(b["world_price_index"], rel=1e-12)
    with pytest.raises(Exception, match="suspends measures"):
        validate_study(
            {"name": "x", "commodities": ["gallium"],
             "policies": {"controls": [{"measure": "cn-us-ban-suspension-2025"}]}},
            "test",
        )  # fmt: skip
    # An active commitment with tonnes is secured supply to its recipient.
    registry = Registry()
    registry.add(
        {"id": "test-offtake", "title": "A test offtake of refined gallium", "kind": "offtake",
         "status": "in_force", "signed": "2025-01-01",
         "parties": [{"party": "USA"}, {"party": "AUS"}], "minerals": ["gallium"],
         "commitments": [{"mineral": "gallium", "supplier": "AUS", "recipient": "USA",
                          "tonnes_per_year": 20.0}],
         "sources": ["https://example.org/test-offtake"]},
        "test",
    )  # fmt: skip
    ban = {"name": "ban", "base_year": 2024, "commodities": ["gallium"], "bloc": "USA",
           "policies": {"controls": [{"measure": "cn-ga-ge-licence-2023"}]},
           "outputs": ["markets"]}  # fmt: skip
    without = run_study(validate_study(ban, "test"))["summary"]
    secured = run_study(validate_study({**ban, "agreements": "active"}, "test"))["summary"]
    assert secured["secured_supply"] == [
        {"commodity": "gallium", "recipient": "USA", "tonnes": 20.0, "agreement": "test-offtake"}
    ]
    assert (
        secured["markets"]["gallium"]["bloc_shortfall_pct"]
        < without["markets"]["gallium"]["bloc_shortfall_pct"]
    )
