"""Import dependence per importer and commodity: reliance, supplier shares, HHI, blocs.

All functions work on every importer × commodity of a year at once with pandas group-bys
(no per-row Python loops). The pure functions take tidy tables so tests can feed invented
data; `commodity_flows` and `commodity_production` read the bundled (or user) dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.catalog import query, query_arrays
from critmin.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

BASES = ("qty", "value")
FLOW_COLUMNS = ["commodity", "exporter", "importer", "amount"]
PRODUCTION_COLUMNS = ["commodity", "country", "amount"]


def check_basis(basis: str) -> str:
    """`qty` (tonnes) or `value` (thousand USD)."""
    if basis not in BASES:
        raise InputError(f"basis {basis!r} is not one of {', '.join(BASES)}")
    return basis


def commodity_flows(year: int, basis: str = "qty") -> pd.DataFrame:
    """Bilateral flows per commodity for one year: commodity, exporter, importer, amount.

    A commodity's flows are the sum over its main and complementary HS6 codes. `amount` is
    tonnes (`qty`; flows whose quantity BACI does not report are left out) or thousand USD
    (`value`).
    """
    column = "qty_t" if check_basis(basis) == "qty" else "value_kusd"
    return query(
        "WITH codes AS (SELECT commodity, UNNEST(list_concat(hs6, hs6_complementary)) AS hs6 "
        "FROM {commodities}) "
        f"SELECT c.commodity, t.exporter, t.importer, sum(t.{column}) AS amount "
        "FROM {trade} t JOIN codes c USING (hs6) "
        f"WHERE t.year = ? AND t.{column} IS NOT NULL GROUP BY ALL",
        [int(year)],
    )


def commodity_production(year: int, basis: str = "qty") -> pd.DataFrame:
    """Production per commodity and country for one year: commodity, country, amount.

    With `basis="value"` production is valued at the commodity's world average import
    unit value of that year (Σ value / Σ quantity over flows reporting both, USD/kg = kUSD/t),
    since World Mining Data gives tonnes only.
    """
    production = query(
        "SELECT commodity, country, qty_t AS amount FROM {production} "
        "WHERE year = ? AND qty_t IS NOT NULL",
        [int(year)],
    )
    if check_basis(basis) == "qty":
        return production
    unit_values = query(
        "WITH codes AS (SELECT commodity, UNNEST(list_concat(hs6, hs6_complementary)) AS hs6 "
        "FROM {commodities}) "
        "SELECT c.commodity, sum(t.value_kusd) / sum(t.qty_t) AS kusd_per_t "
        "FROM {trade} t JOIN codes c USING (hs6) "
        "WHERE t.year = ? AND t.qty_t > 0 GROUP BY c.commodity",
        [int(year)],
    )
    valued = production.merge(unit_values, on="commodity", how="inner")
    valued["amount"] = valued["amount"] * valued["kusd_per_t"]
    return valued[PRODUCTION_COLUMNS]


def merge_blocs(
    flows: pd.DataFrame, production: pd.DataFrame, blocs: Mapping[str, Sequence[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Treat each bloc as one economy: members renamed to the bloc, intra-bloc trade removed,
    members' production summed. Countries outside every bloc are unchanged.

    A country may belong to one bloc only in a single call. (Computed by
    `critmin.metrics.stage_grid.merge_blocs_tables`, which the stage metrics use too.)
    """
    from critmin.data.columns import Table
    from critmin.metrics.stage_grid import bloc_members, merge_blocs_tables

    if not bloc_members(blocs):
        return flows, production
    merged_flows, merged_made = merge_blocs_tables(
        Table.from_frame(flows[["commodity", "exporter", "importer", "amount"]]),
        Table.from_frame(production[["commodity", "country", "amount"]]),
        blocs,
        ["commodity"],
    )
    return merged_flows.frame(), merged_made.frame()


def supplier_shares(flows: pd.DataFrame) -> pd.DataFrame:
    """s_ie = M_ie / Σ_e' M_ie': each exporter's share of an importer's imports.

    Columns: commodity, importer, exporter, amount, share, rank (1 = largest supplier).
    Importers whose imports total zero are dropped (no shares to speak of).
    """
    keys = ["commodity", "importer"]
    out = flows[flows["amount"] > 0].copy()
    total = out.groupby(keys)["amount"].transform("sum")
    out["share"] = out["amount"] / total
    out = out.sort_values([*keys, "share", "exporter"], ascending=[True, True, False, True])
    out["rank"] = out.groupby(keys).cumcount() + 1
    return out[["commodity", "importer", "exporter", "amount", "share", "rank"]].reset_index(
        drop=True
    )


def dependence_from_tables(
    flows: pd.DataFrame,
    production: pd.DataFrame,
    supplier: str = "CHN",
    risky_suppliers: Sequence[str] = (),
) -> pd.DataFrame:
    """Dependence of every importer on its suppliers, per commodity (pure function).

    Inputs: `flows` (commodity, exporter, importer, amount) and `production`
    (commodity, country, amount) in one unit (t or kUSD). Output columns, one row per
    (commodity, importer):

    - production, imports, exports, apparent_consumption = production + imports − exports;
    - import_reliance = (imports − exports) / apparent_consumption, the USGS net import
      reliance (USGS Mineral Commodity Summaries, "net import reliance as a percentage of
      apparent consumption"; stock changes are not in the data). Negative = net exporter;
      NaN where apparent consumption ≤ 0;
    - hhi = Σ s² of supplier shares (0–1), top3_share, supplier_share (share of imports
      from `supplier`), risky_share (share from `risky_suppliers`), n_suppliers.
    """
    import pandas as pd

    keys = ["commodity", "importer"]
    shares = supplier_shares(flows)
    imports = flows.groupby(keys)["amount"].sum().rename("imports")
    exports = (
        flows.groupby(["commodity", "exporter"])["amount"].sum().rename("exports").rename_axis(keys)
    )
    made = production.groupby(["commodity", "country"])["amount"].sum().rename("production")
    made = made.rename_axis(keys)
    table = pd.concat([made, imports, exports], axis=1).fillna(0.0)
    table["apparent_consumption"] = table["production"] + table["imports"] - table["exports"]
    net = table["imports"] - table["exports"]
    table["import_reliance"] = (net / table["apparent_consumption"]).where(
        table["apparent_consumption"] > 0, np.nan
    )
    grouped = shares.groupby(keys)
    table["hhi"] = grouped["share"].apply(lambda s: float((s**2).sum()))
    table["top3_share"] = shares[shares["rank"] <= 3].groupby(keys)["share"].sum()
    table["supplier_share"] = shares[shares["exporter"] == supplier].groupby(keys)["share"].sum()
    table["risky_share"] = (
        shares[shares["exporter"].isin(list(risky_suppliers))].groupby(keys)["share"].sum()
    )
    table["n_suppliers"] = grouped["exporter"].count()
    has_imports = table["imports"] > 0
    for column in ("top3_share", "supplier_share", "risky_share"):
        table[column] = table[column].fillna(0.0).where(has_imports, np.nan)
    table.loc[~has_imports, "hhi"] = np.nan
    table["n_suppliers"] = table["n_suppliers"].fillna(0).astype(int)
    table = table.reset_index().rename(columns={"level_0": "commodity", "level_1": "importer"})
    return table.sort_values(keys).reset_index(drop=True)


def trade_years() -> list[int]:
    """Years with trade data."""
    years = query_arrays("SELECT DISTINCT year FROM {trade} ORDER BY year")["year"]
    return [int(y) for y in years]


def resolve_year(year: int | None) -> int:
    """The year asked for, or the latest with both trade and production data."""
    years = trade_years()
    if year is None:
        made = query_arrays("SELECT DISTINCT year FROM {production}")["year"]
        made = {int(y) for y in made if y == y}
        common = [y for y in years if y in made]
        return common[-1] if common else years[-1]
    if int(year) not in years:
        raise InputError(f"no trade data for {year}; years with data: {years[0]}-{years[-1]}")
    return int(year)


def risky_countries(year: int, threshold: float) -> list[str]:
    """Countries whose WGI political-stability estimate is below `threshold` (−2.5…2.5),
    taking each country's latest estimate up to `year`."""
    latest = query_arrays(
        "SELECT country, arg_max(value, year) AS value FROM {governance} "
        "WHERE indicator = 'pv_estimate' AND year <= ? GROUP BY country",
        [int(year)],
    )
    with np.errstate(invalid="ignore"):
        below = latest["value"].astype(float) < threshold
    return sorted(str(c) for c in latest["country"][below])
