"""The shipped reference and source CSVs (USGS MCS 2026, stage shares) are well formed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import critmin
from critmin.data import all_commodities, all_countries

DATA = Path(critmin.__file__).parent / "data"
MCS = DATA / "reference" / "usgs_mcs2026.csv"
WORLD = DATA / "sources" / "usgs_world_production.csv"
SHARES = DATA / "sources" / "stage_shares.csv"

# Stage-map minerals that the bundled commodity list did not always carry (accepted either way).
STAGE_MAP_ADDITIONS = {"magnesium", "silicon"}
STAGES = {"mine", "refined", "product", "secondary"}


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of a CSV whose leading comment lines start with '#'."""
    text = path.read_text(encoding="utf-8")
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    reader = csv.DictReader(io.StringIO(body))
    return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def iso3() -> set[str]:
    return {c.iso3 for c in all_countries()}


@pytest.fixture(scope="module")
def minerals() -> set[str]:
    return {c.id for c in all_commodities()} | STAGE_MAP_ADDITIONS


@pytest.mark.parametrize("path", [MCS, WORLD, SHARES], ids=lambda p: p.name)
def test_file_has_provenance_comments(path: Path):
    head = path.read_text(encoding="utf-8").splitlines()[0]
    assert head.startswith("#")
    assert "github.com/" in path.read_text(encoding="utf-8")


def test_usgs_mcs2026(minerals: set[str], iso3: set[str]):
    columns, rows = read_rows(MCS)
    assert columns == [
        "mineral", "year", "measure", "stage", "value", "usgs_text", "unit", "what", "chapter",
    ]  # fmt: skip
    assert rows
    measures = {
        "net_import_reliance", "china_share_of_us_imports", "us_production", "us_imports_t",
        "us_exports_t", "us_apparent_consumption_t", "price", "us_consumption_reported_t",
        "us_apparent_supply_t", "us_imports_general_t",
    }  # fmt: skip
    for row in rows:
        assert row["mineral"] in minerals, row
        assert 2021 <= int(row["year"]) <= 2025, row
        assert row["stage"] in STAGES, row
        measure = row["measure"]
        if measure.startswith("source_share:"):
            code = measure.split(":", 1)[1]
            assert code == "other" or code in iso3, row
        else:
            assert measure in measures, row
        if row["value"] == "":
            continue
        value = float(row["value"])
        if measure in ("net_import_reliance", "china_share_of_us_imports") or measure.startswith(
            "source_share:"
        ):
            assert 0.0 <= value <= 1.0, row
        elif measure != "price":
            assert value >= 0.0, row
    for row in rows:
        if row["measure"] == "net_import_reliance" and row["usgs_text"] == "E":
            assert row["value"] == ""


def test_usgs_import_source_shares_sum_to_at_most_one():
    _, rows = read_rows(MCS)
    totals: dict[tuple[str, str, str], float] = {}
    for row in rows:
        if row["measure"].startswith("source_share:"):
            key = (row["mineral"], row["year"], row["what"])
            totals[key] = totals.get(key, 0.0) + float(row["value"])
    assert totals
    # USGS rounds each share to a whole percent: a category may add up to 101%.
    assert all(total <= 1.01 + 1e-6 for total in totals.values()), totals


def test_usgs_world_production(minerals: set[str], iso3: set[str]):
    columns, rows = read_rows(WORLD)
    assert columns == [
        "year", "country", "mineral", "stage", "qty_t", "basis", "usgs_table", "flag",
    ]  # fmt: skip
    assert rows
    for row in rows:
        assert row["country"] == "WLD" or row["country"] in iso3, row
        assert row["mineral"] in minerals, row
        assert row["stage"] in {"mine", "refined"}, row
        assert int(row["year"]) in (2023, 2024, 2025), row
        assert row["basis"] and row["usgs_table"], row
        if row["qty_t"] == "":
            assert row["flag"].split(";")[0] in ("W", "NA"), row
        else:
            assert float(row["qty_t"]) >= 0.0, row
    world = {(r["year"], r["mineral"], r["usgs_table"]) for r in rows if r["country"] == "WLD"}
    assert ("2024", "gallium") in {(y, m) for y, m, _ in world}


def test_stage_shares(minerals: set[str], iso3: set[str]):
    columns, rows = read_rows(SHARES)
    assert columns == [
        "year", "mineral", "stage", "country", "share", "measure", "source", "licence",
    ]  # fmt: skip
    assert rows
    totals: dict[tuple[str, str, str, str], float] = {}
    for row in rows:
        assert row["mineral"] in minerals, row
        assert row["country"] in iso3, row
        assert row["stage"] in STAGES, row
        assert row["measure"] in ("production share", "capacity share"), row
        assert row["source"] and row["licence"], row
        assert "BGS" not in row["source"], row
        share = float(row["share"])
        assert 0.0 <= share <= 1.0, row
        key = (row["year"], row["mineral"], row["stage"], row["source"])
        totals[key] = totals.get(key, 0.0) + share
    assert all(total <= 1.0 + 1e-6 for total in totals.values()), totals
