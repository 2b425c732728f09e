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

The grid is one DuckDB query (`critmin.metrics.geopolrisk_sql`, where each quirk is one SQL
fragment): `geopolrisk()` reads it into pandas, and `critmin risk --format csv|json`
streams the same query through DuckDB's writer without importing pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from critmin.data import query
from critmin.metrics.geopolrisk_sql import (
    CF_COPPER,
    COLUMNS,
    MODES,
    YEARS,
    check_mode,
    grid_sql,
    part_sql,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CF_COPPER", "COLUMNS", "MODES", "YEARS", "check_mode", "geopolrisk"]


def material_flows(years: Sequence[int], mode: str) -> pd.DataFrame:
    """Imports per (year, importer, partner, commodity): qty_t, value_kusd, as each mode reads
    them (peer: missing quantity counts 0 t and its value stays; correct: such flows are left
    out). Only commodities with HS codes. The grid's own input, for inspection."""
    return query(*part_sql("flows", years, mode))


def partner_governance(years: Sequence[int], mode: str) -> pd.DataFrame:
    """Normalised political stability per (year, partner) as each mode reads it.

    correct: critmin's pv_normalized; missing → 0.5 (applied at use).
    peer: the peer's table (first row per BACI code and year; 'NA' codes never match;
    'nan' → NaN; null → 0.5), mapped to critmin codes through the BACI codes.
    """
    return query(*part_sql("governance", years, mode))


def production_inputs(years: Sequence[int], mode: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hhi per commodity and year, domestic production per country, commodity and year)."""
    return query(*part_sql("hhi", years, mode)), query(*part_sql("domestic", years, mode))


def geopolrisk(
    entities: Mapping[str, Sequence[str]] | None = None,
    years: Sequence[int] = YEARS,
    mode: str = "correct",
) -> pd.DataFrame:
    """The GeoPolRisk grid: every entity × commodity (with HS codes) × year.

    `entities` maps an entity name to its member ISO3 codes; None = every country as
    itself. Columns: entity, commodity, year, hhi, import_risk, score, cf (eq. kg-Cu/kg),
    price (USD/kg), total_trade_t, numerator, domestic_production; rows in the order of
    `entities` (None: by ISO3 code), commodity id and `years`.
    """
    return query(*grid_sql(entities, years, mode))
