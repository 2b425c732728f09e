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
