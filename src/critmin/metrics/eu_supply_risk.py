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


def governance_0_10(year: int) -> pd.Series:
    """WGI on the 0–10 scale (10 = worst) per country, latest value up to `year`."""
    frame = query(
        "SELECT country, arg_max(value, year) AS value FROM {governance} "
        "WHERE indicator = 'pv_normalized' AND year <= ? GROUP BY country",
        [int(year)],
    )
    return frame.set_index("country")["value"] * 10.0


def _weighted_hhi(table: pd.DataFrame, group: str, who: str, wgi: pd.Series) -> pd.Series:
    """Σ s² · WGI per `group` value, shares of `amount` across `who`."""
    table = table[table["amount"] > 0]
    share = table["amount"] / table.groupby(group)["amount"].transform("sum")
    weight = table[who].map(wgi).fillna(MISSING_WGI)
    return (share**2 * weight).groupby(table[group]).sum()


def eu_supply_risk(
    entities: Mapping[str, Sequence[str]],
    year: int,
    substitution: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Supply risk per entity (name → member ISO3 codes) and commodity, for one year.

    Columns: entity, commodity, year, hhi_wgi_global, hhi_wgi_sourcing, import_reliance,
    eol_rir, substitution_index, supply_risk. `substitution` overrides SI per commodity id.
    """
    substitution = dict(substitution or {})
    for commodity, value in substitution.items():
        if not 0 <= value <= 1 or np.isnan(value):
            raise InputError(f"substitution index for {commodity} must be in 0-1, got {value}")
    flows = commodity_flows(year, "qty")
    made = commodity_production(year, "qty")
    wgi = governance_0_10(year)
    global_hhi = _weighted_hhi(made, "commodity", "country", wgi).rename("hhi_wgi_global")
    recycling = query("SELECT commodity, eol_rir FROM {commodities}").set_index("commodity")
    frames = []
    for name, members in entities.items():  # one vectorised pass per entity
        members = tuple(members)
        if not members:
            raise InputError(f"group {name!r} has no members")
        bloc_flows, bloc_made = merge_blocs(flows, made, {name: members})
        reliance = dependence_from_tables(bloc_flows, bloc_made, "CHN")
        reliance = reliance[reliance["importer"] == name].set_index("commodity")
        own = made[made["country"].isin(members)].rename(columns={"country": "who"})
        bought = bloc_flows[bloc_flows["importer"] == name].rename(columns={"exporter": "who"})
        sourcing = pd.concat(
            [own[["commodity", "who", "amount"]], bought[["commodity", "who", "amount"]]]
        )
        sourcing_hhi = _weighted_hhi(sourcing, "commodity", "who", wgi)
        table = pd.DataFrame(
            {
                "hhi_wgi_global": global_hhi,
                "hhi_wgi_sourcing": sourcing_hhi.rename("hhi_wgi_sourcing"),
                "import_reliance": reliance["import_reliance"].clip(0.0, 1.0),
            }
        )
        table = table[table["hhi_wgi_global"].notna() | table["hhi_wgi_sourcing"].notna()]
        table["import_reliance"] = table["import_reliance"].fillna(0.0)
        table = table.fillna({"hhi_wgi_global": 0.0, "hhi_wgi_sourcing": 0.0})
        table["eol_rir"] = recycling["eol_rir"].reindex(table.index).fillna(0.0)
        table["substitution_index"] = [substitution.get(c, 1.0) for c in table.index]
        half = table["import_reliance"] / 2
        table["supply_risk"] = (
            (table["hhi_wgi_global"] * half + table["hhi_wgi_sourcing"] * (1 - half))
            * (1 - table["eol_rir"])
            * table["substitution_index"]
        )
        frames.append(table.rename_axis("commodity").reset_index().assign(entity=name))
    out = pd.concat(frames, ignore_index=True)
    out.insert(2, "year", int(year))
    columns = [
        "entity",
        "commodity",
        "year",
        "hhi_wgi_global",
        "hhi_wgi_sourcing",
        "import_reliance",
        "eol_rir",
        "substitution_index",
        "supply_risk",
    ]
    return out[columns].sort_values(["entity", "supply_risk"], ascending=[True, False])
