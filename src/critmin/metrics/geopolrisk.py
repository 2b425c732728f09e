"""GeoPolRisk supply-risk indicator for every country or bloc × commodity × year at once.

Method: Koyamparambath, Helbig, Schraml et al. — the GeoPolRisk method as implemented by
the reference library geopolrisk-py 2.0.1 (Koyamparambath et al. 2024, "geopolrisk-py: a
Python library for the GeoPolRisk method"; Santillán-Saldivar et al. 2022 for the
characterisation factors). For entity E (a country or a bloc of members M), raw material
k and year t:

    HHI_kt          = Σ_c P_ckt² / (Σ_c P_ckt)²                 (world production)
    import_risk_Ekt = Σ_{m∈M} Σ_i q_imkt · w_it / (Σ_{m∈M} Σ_i q_imkt + Σ_{m∈M} P_mkt)
                      with w_it = normalised WGI political stability of partner i
                      (clip((2.5 − estimate)/5, 0, 1)) and w_it = 0 for partners i ∈ M
    score           = HHI × import_risk
    price           = Σ value / Σ q   (USD/kg = kUSD/t)
    CF              = score × price / 0.409412948   (eq. kg-Cu/kg; 0.409412948 = average
                      copper CF of OECD countries 2017–2021, as in the peer)

Intra-bloc imports carry zero risk but stay in the denominator and the price, as in the
peer. Two modes (docs/geopolrisk.md lists every difference):

- `correct` (default): production in tonnes without truncation, natural gas converted to
  tonnes, each country's own production row, flows without a reported quantity left out
  of quantity and price, missing governance (no estimate, 'nan', the peer's 0.0 fill)
  taken as 0.5, Taiwan's real governance value;
- `peer`: reproduces geopolrisk-py 2.0.1 exactly, quirks included (integer-truncated HHI,
  unconverted natural gas, Guyana reading French Guiana's gold, missing quantities as 0,
  partner governance from the peer's own table with its NaN and 0.5 rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from critmin.data import query
from critmin.errors import InputError

CF_COPPER = 0.409412948
MODES = ("correct", "peer")
YEARS = tuple(range(2018, 2025))


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"GeoPolRisk mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def material_flows(years: Sequence[int], mode: str) -> pd.DataFrame:
    """Imports per (year, importer, partner, commodity): qty_t, value_kusd, as each mode reads
    them (peer: missing quantity counts 0 t and its value stays; correct: such flows are left
    out). Only commodities with HS codes."""
    missing = "coalesce(t.qty_t, 0)" if mode == "peer" else "t.qty_t"
    keep = "" if mode == "peer" else "AND t.qty_t IS NOT NULL"
    return query(
        "WITH codes AS (SELECT DISTINCT commodity, "
        "UNNEST(list_concat(hs6, hs6_complementary)) AS hs6 FROM {commodities}) "
        f"SELECT t.year, t.importer, t.exporter AS partner, c.commodity, "
        f"sum({missing}) AS qty_t, sum(t.value_kusd) AS value_kusd "
        "FROM {trade} t JOIN codes c USING (hs6) "
        f"WHERE t.year IN (SELECT UNNEST(?)) {keep} GROUP BY ALL",
        [list(years)],
    )


def partner_governance(years: Sequence[int], mode: str) -> pd.DataFrame:
    """Normalised political stability per (year, partner) as each mode reads it.

    correct: critmin's pv_normalized; missing → 0.5 (applied at use).
    peer: the peer's table (first row per BACI code and year; 'NA' codes never match;
    'nan' → NaN; null → 0.5), mapped to critmin codes through the BACI codes.
    """
    if mode == "correct":
        return query(
            "SELECT year, country AS partner, value AS wgi FROM {governance} "
            "WHERE indicator = 'pv_normalized' AND year IN (SELECT UNNEST(?))",
            [list(years)],
        )
    peer = query(
        "SELECT g.year, c.iso3 AS partner, arg_min(g.value_raw, g.row) AS raw "
        "FROM {governance_geopolrisk} g "
        "JOIN (SELECT iso3, UNNEST(baci_codes) AS code FROM {countries}) c "
        "ON g.baci_code = CAST(c.code AS VARCHAR) "
        "WHERE g.year IN (SELECT UNNEST(?)) GROUP BY ALL",
        [list(years)],
    )
    raw = peer["raw"]
    peer["wgi"] = pd.to_numeric(raw.where(raw.notna() & (raw != "NA"), "0.5"), errors="coerce")
    return peer[["year", "partner", "wgi"]]


def production_inputs(years: Sequence[int], mode: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hhi per commodity and year, domestic production per country, commodity and year)."""
    made = query(
        "SELECT year, country, commodity, qty_t, qty_source, unit_source FROM {production} "
        "WHERE year IN (SELECT UNNEST(?))",
        [list(years)],
    )
    if mode == "peer":
        # HHI over the source values truncated to integers (the peer's astype(int)).
        basis = np.trunc(made["qty_source"]).astype("int64").astype(float)
        # Domestic production: kg tables / 1000, every other unit left as stored.
        domestic = made["qty_source"].where(made["unit_source"] != "kg", made["qty_source"] / 1000)
    else:
        basis = made["qty_t"]
        domestic = made["qty_t"]
    made = made.assign(basis=basis, domestic=domestic)
    grouped = made.groupby(["commodity", "year"])["basis"]
    hhi = (grouped.apply(lambda s: float((s**2).sum())) / grouped.sum() ** 2).rename("hhi")
    domestic_table = made[["year", "country", "commodity", "domestic"]]
    if mode == "peer":
        # The peer reads the first row with Guyana's code 328, which is French Guiana's.
        guf = domestic_table[domestic_table["country"] == "GUF"]
        domestic_table = pd.concat(
            [
                domestic_table[domestic_table["country"] != "GUY"],
                guf.assign(country="GUY"),
                domestic_table[
                    (domestic_table["country"] == "GUY")
                    & ~domestic_table["commodity"].isin(guf["commodity"])
                ],
            ],
            ignore_index=True,
        )
    return hhi.reset_index(), domestic_table


def geopolrisk(
    entities: Mapping[str, Sequence[str]] | None = None,
    years: Sequence[int] = YEARS,
    mode: str = "correct",
) -> pd.DataFrame:
    """The GeoPolRisk grid: every entity × commodity (with HS codes) × year.

    `entities` maps an entity name to its member ISO3 codes; None = every country as
    itself. Columns: entity, commodity, year, hhi, import_risk, score, cf (eq. kg-Cu/kg),
    price (USD/kg), total_trade_t, numerator, domestic_production.
    """
    _check_mode(mode)
    years = [int(y) for y in years]
    outside = [y for y in years if y not in YEARS]
    if outside:
        raise InputError(f"GeoPolRisk needs production data: years 2018-2024, not {outside}")
    flows = material_flows(years, mode)
    governance = partner_governance(years, mode)
    hhi, domestic = production_inputs(years, mode)
    # Every commodity with an HS code and every BACI country, traded that year or not.
    commodities = sorted(
        query("SELECT commodity FROM {commodities} WHERE len(hs6) > 0")["commodity"]
    )
    if entities is None:
        countries = query("SELECT iso3 FROM {countries} WHERE len(baci_codes) > 0")["iso3"]
        entities = {c: (c,) for c in sorted(countries)}

    membership = pd.DataFrame(
        [(name, member) for name, members in entities.items() for member in members],
        columns=["entity", "member"],
    )
    flows = flows.merge(governance, on=["year", "partner"], how="left")
    if mode == "correct":
        flows["wgi"] = flows["wgi"].fillna(0.5)
    else:
        flows["wgi"] = flows["wgi"].where(flows["partner"].isin(set(governance["partner"])), 0.5)
    flows = flows.merge(membership, left_on="importer", right_on="member")
    intra = (
        flows.merge(
            membership.rename(columns={"member": "partner"}),
            on=["entity", "partner"],
            how="left",
            indicator=True,
        )["_merge"]
        .eq("both")
        .to_numpy()
    )
    flows["weighted"] = flows["qty_t"] * np.where(intra, 0.0, flows["wgi"])
    # A NaN governance value poisons its entity's sum, as Python's sum does in the peer.
    flows["poisoned"] = flows["weighted"].isna()
    flows["weighted"] = flows["weighted"].fillna(0.0)
    keys = ["entity", "commodity", "year"]
    trade = flows.groupby(keys)[["qty_t", "weighted", "value_kusd", "poisoned"]].sum()
    trade.columns = ["total_trade_t", "numerator", "value_kusd", "poisoned"]
    trade.loc[trade["poisoned"] > 0, "numerator"] = np.nan
    made = domestic.merge(membership, left_on="country", right_on="member")
    made = made.groupby(keys)["domestic"].sum().rename("domestic_production")

    grid = pd.MultiIndex.from_product([list(entities), commodities, years], names=keys)
    grid = grid.to_frame(index=False)
    grid = grid.merge(trade.drop(columns="poisoned").reset_index(), on=keys, how="left")
    grid = grid.merge(made.reset_index(), on=keys, how="left")
    grid = grid.merge(hhi, on=["commodity", "year"], how="left")
    no_trade = grid["total_trade_t"].isna()
    for column in ("total_trade_t", "value_kusd", "domestic_production"):
        grid[column] = grid[column].fillna(0.0)
    grid.loc[no_trade, "numerator"] = 0.0
    denominator = grid["total_trade_t"] + grid["domestic_production"]
    safe = denominator.where(denominator != 0, 1.0)
    grid["import_risk"] = (grid["numerator"] / safe).where(denominator != 0, 0.0)
    grid["score"] = grid["hhi"] * grid["import_risk"]
    grid["price"] = np.where(
        grid["total_trade_t"] != 0,
        grid["value_kusd"] / grid["total_trade_t"].where(grid["total_trade_t"] != 0, 1.0),
        0.0,
    )
    grid["cf"] = grid["score"] * grid["price"] / CF_COPPER
    return grid[
        [
            "entity",
            "commodity",
            "year",
            "hhi",
            "import_risk",
            "score",
            "cf",
            "price",
            "total_trade_t",
            "numerator",
            "domestic_production",
        ]
    ]
