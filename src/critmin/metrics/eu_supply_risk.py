"""EU supply risk (SR) of the European Commission's criticality methodology, for any importer.

Source: European Commission, "Methodology for establishing the EU list of critical raw
materials — Guidelines" (2017), applied in the 2023 assessment (Grohol & Veeh, "Study on
the critical raw materials for the EU 2023 — Final report", JRC/DG GROW):

    SR = [ HHI_WGI,GS · IR/2 + HHI_WGI,sourcing · (1 − IR/2) ] · (1 − EoL_RIR) · SI

    HHI_WGI = Σ_c s_c² · WGI_c     (s_c: share of country c; WGI_c on a 0–10 scale,
                                     10 = worst governance; the trade-restriction factor t_c
                                     of the guidelines is taken as 1)
    GS        = global supply: world production shares
    sourcing  = the importer's actual sourcing: its (members') own production plus imports
                by partner from outside the bloc
    IR        = import reliance (imports − exports) / (production + imports − exports),
                bounded to 0–1
    EoL_RIR   = end-of-life recycling input rate (commodity map, EC 2023 / SCRREEN2)
    SI        = substitution index for supply risk (default 1 = no substitute; overridable)

Deviation, stated: the guidelines scale the average of the six WGI dimensions; the bundled
data carries political stability only, so WGI_c = 10 × clip((2.5 − PV_c)/5, 0, 1); a
country without a value gets 5. Quantities are gross tonnes as traded (BACI) and produced
(World Mining Data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from critmin.data import query
from critmin.errors import InputError
from critmin.metrics.dependence import (
    commodity_flows,
    commodity_production,
    dependence_from_tables,
    merge_blocs,
)

MISSING_WGI = 5.0
EU_SR_COLUMNS = (
    "entity",
    "commodity",
    "year",
    "hhi_wgi_global",
    "hhi_wgi_sourcing",
    "import_reliance",
    "eol_rir",
    "substitution_index",
    "supply_risk",
)


def governance_0_10(year: int) -> pd.Series:
    """WGI on the 0–10 scale (10 = worst) per country, latest value up to `year`."""
    frame = query(
        "SELECT country, arg_max(value, year) AS value FROM {governance} "
        "WHERE indicator = 'pv_normalized' AND year <= ? GROUP BY country",
        [int(year)],
    )
    return frame.set_index("country")["value"] * 10.0


def _weighted_hhi(table: pd.DataFrame, keys: list[str], who: str, wgi: pd.Series) -> pd.Series:
    """Σ s² · WGI per `keys`, shares of `amount` across `who`."""
    table = table[table["amount"] > 0]
    if table.empty:  # nobody produces or imports: no term to weigh
        empty = pd.MultiIndex.from_arrays([[] for _ in keys], names=keys)
        return pd.Series(dtype=float, index=empty)
    share = table["amount"] / table.groupby(keys)["amount"].transform("sum")
    weight = table[who].map(wgi).astype(float).fillna(MISSING_WGI)
    return (share**2 * weight).groupby([table[k] for k in keys]).sum()


def _risk_rows(
    flows: pd.DataFrame,
    merged_made: pd.DataFrame,
    made: pd.DataFrame,
    names: list[str],
    members: dict[str, tuple],
    wgi: pd.Series,
    global_hhi: pd.Series,
) -> pd.DataFrame:
    """SR inputs for the importers `names` of (already bloc-merged) flows and production,
    all at once; `made` is the unmerged production (members keep their own governance)."""
    reliance = dependence_from_tables(flows[flows["importer"].isin(names)], merged_made, "CHN")
    reliance = reliance[reliance["importer"].isin(names)].rename(columns={"importer": "entity"})
    own = pd.concat(
        [made[made["country"].isin(members[n])].assign(entity=n) for n in names]
    ).rename(columns={"country": "who"})
    bought = flows[flows["importer"].isin(names)].rename(
        columns={"importer": "entity", "exporter": "who"}
    )
    sourcing = pd.concat(
        [
            own[["entity", "commodity", "who", "amount"]],
            bought[["entity", "commodity", "who", "amount"]],
        ]
    )
    keys = ["entity", "commodity"]
    table = _weighted_hhi(sourcing, keys, "who", wgi).rename("hhi_wgi_sourcing").to_frame()
    table = table.join(reliance.set_index(keys)["import_reliance"], how="outer")
    grid = pd.MultiIndex.from_product([names, global_hhi.index], names=keys)
    table = table.reindex(grid.union(table.index))
    table["hhi_wgi_global"] = global_hhi.reindex(table.index.get_level_values("commodity")).values
    table = table[table["hhi_wgi_global"].notna() | table["hhi_wgi_sourcing"].notna()]
    return table.reset_index()


def eu_supply_risk(
    entities: Mapping[str, Sequence[str]],
    year: int,
    substitution: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Supply risk per entity (name → member ISO3 codes) and commodity, for one year.

    Columns: entity, commodity, year, hhi_wgi_global, hhi_wgi_sourcing, import_reliance,
    eol_rir, substitution_index, supply_risk. `substitution` overrides SI per commodity id.
    Single countries are computed together in one pass; each bloc in one more.
    """
    substitution = dict(substitution or {})
    for commodity, value in substitution.items():
        if not 0 <= value <= 1 or np.isnan(value):
            raise InputError(f"substitution index for {commodity} must be in 0-1, got {value}")
    members = {name: tuple(codes) for name, codes in entities.items()}
    for name, codes in members.items():
        if not codes:
            raise InputError(f"group {name!r} has no members")
    flows = commodity_flows(year, "qty")
    made = commodity_production(year, "qty")
    wgi = governance_0_10(year)
    global_hhi = _weighted_hhi(made, ["commodity"], "country", wgi)
    global_hhi.index = global_hhi.index.get_level_values(0)
    singles = [n for n, codes in members.items() if codes == (n,)]
    parts = [_risk_rows(flows, made, made, singles, members, wgi, global_hhi)] if singles else []
    for name in (n for n in members if n not in singles):
        bloc_flows, bloc_made = merge_blocs(flows, made, {name: members[name]})
        parts.append(_risk_rows(bloc_flows, bloc_made, made, [name], members, wgi, global_hhi))
    table = pd.concat(parts, ignore_index=True)
    table["import_reliance"] = table["import_reliance"].clip(0.0, 1.0).fillna(0.0)
    table = table.fillna({"hhi_wgi_global": 0.0, "hhi_wgi_sourcing": 0.0})
    recycling = query("SELECT commodity, eol_rir FROM {commodities}").set_index("commodity")
    table["eol_rir"] = table["commodity"].map(recycling["eol_rir"]).fillna(0.0)
    table["substitution_index"] = table["commodity"].map(substitution).fillna(1.0)
    half = table["import_reliance"] / 2
    table["supply_risk"] = (
        (table["hhi_wgi_global"] * half + table["hhi_wgi_sourcing"] * (1 - half))
        * (1 - table["eol_rir"])
        * table["substitution_index"]
    )
    table.insert(2, "year", int(year))
    columns = list(EU_SR_COLUMNS)
    return table[columns].sort_values(["entity", "supply_risk"], ascending=[True, False])
