"""The supply-chain map (supply_chain.csv, supply_stages.csv, hs_baskets.csv) is whole and sound."""

from __future__ import annotations

import pandas as pd

from critmin.data import all_commodities
from critmin.data.stages import (
    HS_REVISIONS,
    STAGES,
    stage_production,
    stage_trade_rows,
    supply_chain,
    supply_stages,
)

ISSUE_MINERALS = [
    "rare_earths",
    "gallium",
    "germanium",
    "antimony",
    "graphite",
    "tungsten",
    "cobalt",
    "lithium",
    "nickel",
    "manganese",
    "magnesium",
    "silicon",
    "titanium",
    "vanadium",
    "niobium",
    "tantalum",
    "tin",
    "bismuth",
    "indium",
    "platinum",
    "palladium",
    "copper",
    "aluminium",
    "fluorspar",
    "chromium",
]


def test_every_key_mineral_has_a_refined_or_mine_stage():
    stages = supply_stages()
    for mineral in ISSUE_MINERALS:
        have = set(stages.loc[stages["mineral"] == mineral, "stage"])
        assert have, mineral
        assert have <= set(STAGES)
    assert "product" in set(stages.loc[stages["mineral"] == "rare_earths", "stage"])
    known = {c.id for c in all_commodities()}
    assert set(stages["mineral"]) <= known  # every mapped mineral resolves by name


def test_every_product_has_a_code_in_every_revision_and_a_sourced_factor():
    chain = supply_chain()
    per_row = chain.groupby("row")["hs_revision"].nunique()
    assert (per_row == len(HS_REVISIONS)).all()
    assert chain["hs6"].str.fullmatch(r"\d{6}").all()
    counted = chain[chain["counted"]]
    assert counted["content_factor"].between(0.01, 1.2).all()
    assert (counted["content_source"].str.len() > 5).all()
    flagged = chain[chain["content_factor"].isna()]
    assert flagged["content_source"].str.contains("flagged").all()


def test_shared_codes_are_split_by_a_stated_key_never_counted_twice():
    chain = supply_chain()
    counted = chain[chain["counted"]].drop_duplicates(["hs_revision", "hs6", "mineral"])
    totals = counted.groupby(["hs_revision", "hs6"])["share"].sum()
    assert (totals <= 1 + 1e-9).all()
    hs17 = chain[(chain["hs_revision"] == "HS17") & (chain["hs6"] == "811292")]
    split = hs17[hs17["counted"]].set_index("mineral")["share"]
    assert set(split.index) == {"gallium", "germanium", "indium"}
    assert hs17.loc[hs17["counted"], "share_key"].str.contains("refinery output").all()


def test_concordance_follows_the_germanium_code_into_the_basket():
    chain = supply_chain()
    germanium = chain[
        (chain["mineral"] == "germanium") & chain["product"].str.contains("unwrought")
    ]
    codes = dict(zip(germanium["hs_revision"], germanium["hs6"], strict=True))
    assert codes["HS92"] == codes["HS02"] == "811230"
    assert codes["HS07"] == codes["HS17"] == "811292"


def test_one_unit_per_stage_and_sources_named():
    stages = supply_stages()
    assert not stages.duplicated(["mineral", "stage"]).any()
    assert stages["production_source"].str.match(r"^(wmd:\w+|usgs|none)$").all()
    assert (stages["unit"].str.len() > 0).all()


def test_a_product_counts_once_per_year_across_revisions():
    rows = stage_trade_rows(2024)
    per_product = rows.groupby("row")["hs_revision"].nunique()
    assert (per_product == 1).all()
    made = stage_production(2024)
    assert not made.duplicated(["mineral", "stage", "country"]).any()
    assert (made["qty_t"].dropna() >= 0).all()
    withheld = made[made["qty_t"].isna()]  # USGS's W: kept as a row without quantity
    assert set(withheld["source"]) <= {"USGS Mineral Commodity Summaries 2026"}
    assert isinstance(made, pd.DataFrame)
