"""GeoPolRisk: the peer-compatible mode equals geopolrisk-py 2.0.1's stored outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import critmin as cm
from critmin.errors import InputError
from critmin.metrics.geopolrisk import CF_COPPER, geopolrisk

FIXTURE = Path(__file__).parent.parent / "fixtures" / "geopolrisk_peer.csv"
COLUMNS = ("score", "cf", "hhi", "import_risk", "price")


@pytest.fixture(scope="module")
def peer() -> pd.DataFrame:
    table = pd.read_csv(FIXTURE)
    assert len(table) >= 500
    return table


def entities_of(peer: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    entities = {}
    for name, members in zip(peer["entity"], peer["members"], strict=True):
        if name == "EU":
            entities[name] = cm.group("eu27").members
        else:
            entities[name] = tuple(cm.country(m).iso3 for m in members.split("|"))
    return entities


def material_ids(peer: pd.DataFrame) -> dict[str, str]:
    return {m: cm.commodity(m).id for m in peer["material"].unique()}


def test_fixture_spreads_over_countries_materials_years_and_blocs(peer):
    assert peer["entity"].nunique() >= 15 and peer["material"].nunique() >= 10
    assert set(peer["year"]) == set(range(2018, 2025))
    assert {"EU", "Quad"} <= set(peer["entity"])


@pytest.fixture(scope="module")
def compared(peer) -> pd.DataFrame:
    ours = geopolrisk(entities_of(peer), years=sorted(peer["year"].unique()), mode="peer")
    ids = material_ids(peer)
    merged = peer.assign(commodity=peer["material"].map(ids)).merge(
        ours, on=["entity", "commodity", "year"], suffixes=("_peer", ""), how="left"
    )
    assert len(merged) == len(peer)
    return merged


@pytest.mark.parametrize("column", COLUMNS)
def test_peer_mode_equals_the_peer_to_1e9(compared, column):
    theirs, ours = compared[f"{column}_peer"], compared[column]
    both_nan = theirs.isna() & ours.isna()
    close = np.isclose(ours, theirs, rtol=1e-9, atol=0.0) | both_nan
    bad = compared.loc[~close, ["entity", "material", "year", f"{column}_peer", column]]
    assert bad.empty, bad.head(10).to_string()


def test_peer_nans_are_reproduced_only_where_the_peer_has_them(compared):
    assert (compared["score"].isna() == compared["score_peer"].isna()).all()


def test_correct_mode_has_no_nan_and_fixes_the_units():
    grid = geopolrisk({"USA": ("USA",)}, years=[2022], mode="correct")
    assert grid[["score", "cf", "hhi", "import_risk", "price"]].notna().all().all()
    gas = grid.set_index("commodity").loc["natural_gas"]
    peer = geopolrisk({"USA": ("USA",)}, years=[2022], mode="peer").set_index("commodity")
    # Peer leaves US gas production in million m³; critmin converts it to tonnes (×730).
    assert gas["domestic_production"] == pytest.approx(
        peer.loc["natural_gas", "domestic_production"] * 730
    )


def test_score_and_cf_by_hand():
    row = geopolrisk({"DEU": ("DEU",)}, years=[2023], mode="correct").set_index("commodity")
    ree = row.loc["rare_earths"]
    assert ree["import_risk"] == pytest.approx(
        ree["numerator"] / (ree["total_trade_t"] + ree["domestic_production"])
    )
    assert ree["score"] == pytest.approx(ree["hhi"] * ree["import_risk"])
    assert ree["cf"] == pytest.approx(ree["score"] * ree["price"] / CF_COPPER)


def test_bad_mode_and_years():
    with pytest.raises(InputError, match="mode"):
        geopolrisk(mode="exact")
    with pytest.raises(InputError, match="2018-2024"):
        geopolrisk(years=[2017])


def test_eu_supply_risk_formula_by_hand():
    from critmin.metrics.eu_supply_risk import eu_supply_risk

    table = eu_supply_risk({"eu27": cm.group("eu27").members}, 2022, {"cobalt": 0.9})
    row = table.set_index(["commodity", "stage"]).loc[("cobalt", "mine")]
    half = row["import_reliance"] / 2
    expected = (
        (row["hhi_wgi_global"] * half + row["hhi_wgi_sourcing"] * (1 - half))
        * (1 - row["eol_rir"])
        * 0.9
    )
    assert row["supply_risk"] == pytest.approx(expected)
    assert row["eol_rir"] == pytest.approx(0.22)
    assert 0 <= row["import_reliance"] <= 1
    assert 0 < row["hhi_wgi_global"] <= 10


def test_eu_supply_risk_global_term_by_independent_query():
    from critmin.data import query
    from critmin.metrics.eu_supply_risk import eu_supply_risk

    made = query(
        "SELECT p.country, p.qty_t, g.value FROM {production} p LEFT JOIN "
        "(SELECT country, arg_max(value, year) AS value FROM {governance} "
        " WHERE indicator = 'pv_normalized' AND year <= 2022 GROUP BY country) g "
        "USING (country) WHERE p.commodity = 'tungsten' AND p.year = 2022 AND p.qty_t > 0"
    )
    shares = made["qty_t"] / made["qty_t"].sum()
    expected = float((shares**2 * (made["value"] * 10).fillna(5.0)).sum())
    table = eu_supply_risk({"JPN": ("JPN",)}, 2022).set_index(["commodity", "stage"])
    assert table.loc[("tungsten", "mine"), "hhi_wgi_global"] == pytest.approx(expected)
    # The JRC keeps the stage with the higher supply risk: one bottleneck per mineral.
    bottlenecks = table[table["bottleneck"]].reset_index()
    assert not bottlenecks["commodity"].duplicated().any()


def test_substitution_index_must_be_a_fraction():
    from critmin.metrics.eu_supply_risk import eu_supply_risk

    with pytest.raises(InputError, match="substitution"):
        eu_supply_risk({"JPN": ("JPN",)}, 2022, {"cobalt": 1.5})


def test_eu_supply_risk_for_an_importer_without_trade():
    from critmin.metrics.eu_supply_risk import eu_supply_risk

    # Pitcairn neither produces nor imports anything: no risk figure is made up for it (a
    # zero would read as "no risk"); the status says why.
    table = eu_supply_risk({"PCN": ("PCN",)}, 2022)
    assert table["supply_risk"].isna().all()
    assert set(table["status"]) <= {"not_traded", "no_trade_data"}
    assert not table["bottleneck"].any()
