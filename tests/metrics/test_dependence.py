"""Dependence and tracing: hand calculations on an invented market, invariants, real data."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import critmin as cm
from critmin.data import query
from critmin.metrics.api import commodity_dependence as dependence
from critmin.metrics.api import commodity_trace as trace
from critmin.metrics.api import world_commodity_dependence as world_dependence
from critmin.metrics.dependence import dependence_from_tables, merge_blocs, supplier_shares
from critmin.metrics.tracing import UNTRACED, traced_import_origins

# An invented market for one commodity "x" (tonnes):
#   mine C produces 100, mine B produces 20; C exports 60 to H (a hub) and 30 to D;
#   H re-exports 40 to D; B exports 10 to D; D produces 5 and exports 15 to E.
FLOWS = pd.DataFrame(
    [
        ("x", "C", "H", 60.0),
        ("x", "C", "D", 30.0),
        ("x", "H", "D", 40.0),
        ("x", "B", "D", 10.0),
        ("x", "D", "E", 15.0),
    ],
    columns=["commodity", "exporter", "importer", "amount"],
)
PRODUCTION = pd.DataFrame(
    [("x", "C", 100.0), ("x", "B", 20.0), ("x", "D", 5.0)],
    columns=["commodity", "country", "amount"],
)


def row(table: pd.DataFrame, importer: str) -> pd.Series:
    return table.set_index("importer").loc[importer]


def test_reliance_and_concentration_by_hand():
    table = dependence_from_tables(FLOWS, PRODUCTION, supplier="C", risky_suppliers=["H"])
    d = row(table, "D")
    # D: imports 30 + 40 + 10 = 80, exports 15, production 5 → AC = 70, reliance 65/70.
    assert (d["imports"], d["exports"], d["production"]) == (80.0, 15.0, 5.0)
    assert d["apparent_consumption"] == 70.0
    assert d["import_reliance"] == pytest.approx(65 / 70)
    # shares 30/80, 40/80, 10/80 → HHI = (9 + 16 + 1) / 64
    assert d["hhi"] == pytest.approx(26 / 64)
    assert d["supplier_share"] == pytest.approx(30 / 80)
    assert d["risky_share"] == pytest.approx(40 / 80)
    assert d["top3_share"] == pytest.approx(1.0)
    c = row(table, "C")  # a pure exporter: no imports, reliance −90/10
    assert c["import_reliance"] == pytest.approx(-90 / 10)
    assert pd.isna(c["hhi"]) and pd.isna(c["supplier_share"])


def test_tracing_by_hand():
    traced = traced_import_origins(FLOWS, PRODUCTION).set_index(["importer", "origin"])["share"]
    # H has no production: its 40 t to D are 100 % from C.
    # D's availability: 5 own + 30 C + 40 H(=C) + 10 B = 85 → imports 80 are 70 C, 10 B.
    assert traced[("D", "C")] == pytest.approx(70 / 80)
    assert traced[("D", "B")] == pytest.approx(10 / 80)
    # E imports D's mix: 5/85 D, 70/85 C, 10/85 B.
    assert traced[("E", "D")] == pytest.approx(5 / 85)
    assert traced[("E", "C")] == pytest.approx(70 / 85)
    assert traced[("E", "B")] == pytest.approx(10 / 85)


def test_closed_loop_without_production_is_untraced_not_invented():
    loop = pd.DataFrame(
        [("x", "P", "Q", 10.0), ("x", "Q", "P", 10.0)],
        columns=["commodity", "exporter", "importer", "amount"],
    )
    traced = traced_import_origins(loop, PRODUCTION.iloc[0:0])
    assert set(traced["origin"]) == {UNTRACED}


def test_bloc_of_one_equals_the_country():
    alone = dependence_from_tables(FLOWS, PRODUCTION, "C")
    flows, made = merge_blocs(FLOWS, PRODUCTION, {"D": ["D"]})
    assert row(dependence_from_tables(flows, made, "C"), "D").equals(row(alone, "D"))


def test_bloc_nets_out_intra_trade_and_sums_production():
    flows, made = merge_blocs(FLOWS, PRODUCTION, {"BLOC": ["D", "H"]})
    bloc = row(dependence_from_tables(flows, made, "C"), "BLOC")
    # H→D (40) is internal; imports from outside: C 60 + C 30 + B 10 = 100; exports 15.
    assert (bloc["imports"], bloc["exports"], bloc["production"]) == (100.0, 15.0, 5.0)
    assert bloc["supplier_share"] == pytest.approx(0.9)


flow_strategy = st.lists(
    st.tuples(
        st.sampled_from("ABCDEFG"),
        st.sampled_from("ABCDEFG"),
        st.floats(min_value=0.01, max_value=1e6),
    ),
    min_size=1,
    max_size=30,
).map(
    lambda rows: (
        pd.DataFrame(
            [("x", e, i, a) for e, i, a in rows if e != i] or [("x", "A", "B", 1.0)],
            columns=["commodity", "exporter", "importer", "amount"],
        )
        .groupby(["commodity", "exporter", "importer"], as_index=False)["amount"]
        .sum()
    )
)
production_strategy = st.dictionaries(
    st.sampled_from("ABCDEFG"), st.floats(min_value=0, max_value=1e6), max_size=7
).map(
    lambda d: pd.DataFrame(
        [("x", c, a) for c, a in d.items()], columns=["commodity", "country", "amount"]
    )
)


@settings(max_examples=60, deadline=None)
@given(flows=flow_strategy, production=production_strategy)
def test_shares_and_traced_shares_are_distributions(flows, production):
    shares = supplier_shares(flows).groupby("importer")["share"].sum()
    assert (shares - 1).abs().max() < 1e-9
    traced = traced_import_origins(flows, production)
    assert (traced["share"] >= 0).all()
    sums = traced.groupby("importer")["share"].sum()
    assert (sums - 1).abs().max() < 1e-6


@settings(max_examples=40, deadline=None)
@given(flows=flow_strategy, production=production_strategy)
def test_country_without_trade_has_zero_reliance(flows, production):
    made = pd.concat([production, pd.DataFrame([("x", "Z", 50.0)], columns=production.columns)])
    table = dependence_from_tables(flows, made, "A")
    assert row(table, "Z")["import_reliance"] == 0.0


def test_reexports_through_the_netherlands_raise_germany_china_share():
    table = dependence("Germany", "rare earths", year=2023)
    first = table.iloc[0]
    assert first["supplier_share"] < first["traced_supplier_share"]
    assert first["suppliers"][0]["country"] == "NLD"
    origins, carried = trace("DEU", "REE", year=2023)
    assert carried.set_index("partner").loc["NLD", "via_CHN"] > 0.2
    assert origins["traced_share"].sum() == pytest.approx(1.0)


def test_real_figures_match_an_independent_query():
    expected = query(
        "SELECT sum(qty_t) AS imports, "
        "sum(qty_t) FILTER (WHERE exporter = 'CHN') / sum(qty_t) AS china "
        "FROM {trade} WHERE year = 2023 AND importer = 'USA' "
        "AND hs6 IN ('282200', '810510') AND qty_t IS NOT NULL"
    ).iloc[0]
    got = dependence("USA", "cobalt", year=2023).iloc[0]
    assert got["imports"] == pytest.approx(expected["imports"])
    assert got["supplier_share"] == pytest.approx(expected["china"])
    mined = query(
        "SELECT qty_t FROM {production} WHERE year = 2023 AND country = 'USA' "
        "AND commodity = 'cobalt'"
    )["qty_t"]
    assert got["production"] == pytest.approx(mined.sum())


def test_eu_is_one_economy():
    eu = dependence("EU", "cobalt", year=2023).iloc[0]
    assert eu["importer"] == "eu27"
    members = set(cm.group("eu27").members)
    assert not {s["country"] for s in eu["suppliers"]} & members


def test_refined_imports_carry_the_refiners_ore_origins_by_hand():
    # Ore: mine G produces 100 and ships 80 to smelter S (no ore of its own).
    # Refined: S produces 50 and exports 40 to user U; T produces 10 (no ore data) → U 10.
    flows = pd.DataFrame(
        [("ore", "G", "S", 80.0), ("metal", "S", "U", 40.0), ("metal", "T", "U", 10.0)],
        columns=["commodity", "exporter", "importer", "amount"],
    )
    made = pd.DataFrame(
        [("ore", "G", 100.0), ("metal", "S", 50.0), ("metal", "T", 10.0)],
        columns=["commodity", "country", "amount"],
    )
    plain = traced_import_origins(flows, made).set_index(["commodity", "importer", "origin"])
    assert plain.loc[("metal", "U", "S"), "share"] == pytest.approx(0.8)
    chained = traced_import_origins(flows, made, {"metal": "ore"})
    chained = chained.set_index(["commodity", "importer", "origin"])["share"]
    # S's metal comes from G's ore: U's imports are 80 % G, 20 % T.
    assert chained[("metal", "U", "G")] == pytest.approx(0.8)
    assert chained[("metal", "U", "T")] == pytest.approx(0.2)
    assert ("metal", "U", "S") not in chained.index


def test_intermediaries_add_up_to_the_traced_shares():
    for importer, commodity in (("DEU", "REE"), ("USA", "aluminium")):
        origins, carried = trace(importer, commodity, year=2023)
        traced = origins.set_index("origin")["traced_share"]
        for column in [c for c in carried.columns if c.startswith("via_")]:
            assert carried[column].sum() == pytest.approx(traced[column[4:]], abs=1e-9)


def test_aluminium_is_traced_to_bauxite_mines():
    origins, _ = trace("USA", "aluminium", year=2023)
    top = origins["origin"].head(2).tolist()
    assert set(top) <= {"BRA", "GIN", "AUS"}  # bauxite miners, not the smelters (CAN)
    assert "CAN" not in origins[origins["traced_share"] > 0.01]["origin"].tolist()


def test_world_dependence_is_every_importer_at_once():
    table = world_dependence("cobalt", year=2015)
    assert table["supplier_share"].between(0, 1).all()
    assert table["traced_supplier_share"].between(0, 1 + 1e-12).all()
    # Direct shares from an independent query of the raw trade rows (HS 282200 + 810510).
    expected = query(
        "SELECT importer, sum(qty_t) FILTER (WHERE exporter = 'CHN') / sum(qty_t) AS china "
        "FROM {trade} WHERE year = 2015 AND hs6 IN ('282200', '810510') "
        "AND qty_t IS NOT NULL GROUP BY importer HAVING sum(qty_t) > 0"
    ).set_index("importer")["china"]
    got = table.set_index("importer")["supplier_share"]
    assert set(got.index) == set(expected.index)
    assert got.sort_index().to_numpy() == pytest.approx(
        expected.fillna(0.0).sort_index().to_numpy()
    )
    for importer in ("DEU", "JPN", "USA"):  # traced shares as the one-importer API has them
        one = dependence(importer, "cobalt", year=2015).iloc[0]
        assert got[importer] == pytest.approx(one["supplier_share"])
        assert table.set_index("importer").loc[importer, "traced_supplier_share"] == (
            pytest.approx(one["traced_supplier_share"])
        )
