"""How far active agreements cover a bloc's import need, and the supplier mix after them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from critmin.data import countries_of
from critmin.metrics.api import importer_code
from critmin.metrics.dependence import (
    commodity_flows,
    commodity_production,
    dependence_from_tables,
    merge_blocs,
    resolve_year,
    supplier_shares,
)
from critmin.registry.records import canonical_record

ACTIVE = ("signed", "in_force")
# World Mining Data's mineral fuels: out of coverage tables unless asked for (a critical-
# minerals question led by petroleum and coal answers the wrong question).
FUELS = ("coking_coal", "lignite", "natural_gas", "oil_sands", "oil_shales", "petroleum",
         "steam_coal", "uranium")  # fmt: skip


def coverage_from_tables(
    need: pd.DataFrame, shares: pd.DataFrame, committed: pd.DataFrame, supplier: str = "CHN"
) -> pd.DataFrame:
    """Coverage per commodity (pure function; tonnes).

    need: commodity, need_t (net import need = max(imports − exports, 0));
    shares: commodity, exporter, share (current import shares);
    committed: commodity, supplier, tonnes (active commitments to the bloc that year).
    covered_share = min(committed / need, 1); gap_t = max(need − committed, 0); the mix
    after commitments fills the gap with today's suppliers in today's proportions:
    share_after_e = (committed_e + gap · s_e) / (committed + gap).
    """
    total = committed.groupby("commodity")["tonnes"].sum().rename("committed_t")
    table = (
        need.set_index("commodity")
        .join(total, how="outer")
        .fillna({"need_t": 0.0, "committed_t": 0.0})
    )
    table["covered_share"] = np.where(
        table["need_t"] > 0,
        np.minimum(table["committed_t"] / table["need_t"].where(table["need_t"] > 0, 1.0), 1.0),
        np.nan,
    )
    table["gap_t"] = (table["need_t"] - table["committed_t"]).clip(lower=0.0)
    before = shares[shares["exporter"] == supplier].set_index("commodity")["share"]
    table["supplier_share_before"] = before.reindex(table.index).fillna(0.0)
    from_supplier = (
        committed[committed["supplier"] == supplier].groupby("commodity")["tonnes"].sum()
    )
    after_volume = from_supplier.reindex(table.index).fillna(0.0) + (
        table["gap_t"] * table["supplier_share_before"]
    )
    supply = table["committed_t"] + table["gap_t"]
    table["supplier_share_after"] = (after_volume / supply.where(supply > 0, 1.0)).where(
        supply > 0, np.nan
    )
    table.insert(0, "supplier", supplier)
    return table.rename_axis("commodity").reset_index()


def _year_in(year: int, start: str | None, end: str | None) -> bool:
    return (start is None or int(start[:4]) <= year) and (end is None or int(end[:4]) >= year)


def reserved_flows(records: list[dict], year: int) -> pd.DataFrame:
    """Every active commitment with tonnes in `year` as a flow the market model can reserve:
    commodity, supplier, recipient, tonnes, floor_usd_per_t, agreement."""
    rows = [
        {
            # Written canonical since issue 19; an older row may still say "REE".
            "commodity": canonical_record({"minerals": [item["mineral"]]})["minerals"][0],
            "supplier": item.get("supplier"),
            "recipient": item.get("recipient"),
            "tonnes": float(item["tonnes_per_year"]),
            "floor_usd_per_t": item.get("floor_usd_per_t"),
            "agreement": record["id"],
        }
        for record in records
        if not record.get("archived") and record["status"] in ACTIVE
        for item in record.get("commitments") or []
        if item.get("tonnes_per_year") and _year_in(year, item.get("start"), item.get("end"))
    ]
    columns = ["commodity", "supplier", "recipient", "tonnes", "floor_usd_per_t", "agreement"]
    return pd.DataFrame(rows, columns=columns)


def bloc_parties(bloc: str) -> set[str]:
    """The party codes that stand for `bloc` in records: its members, the bloc's own code,
    and "EU" when the bloc holds every EU member."""
    code, blocs = importer_code(bloc)
    members = set(blocs.get(code, (code,)))
    names = {*members, code, bloc.upper()}
    if set(countries_of("eu27")) <= members:
        names.add("EU")
    return names


def agreements_of(records: list[dict], bloc: str) -> list[dict]:
    """The records (not archived) with a party standing for `bloc`."""
    names = bloc_parties(bloc)
    return [
        r
        for r in records
        if not r.get("archived") and any(p["party"] in names for p in r.get("parties") or [])
    ]


def committed_flows(records: list[dict], members: set[str], year: int) -> pd.DataFrame:
    """Active commitments with tonnes received by the bloc (members, or "EU" for EU members)."""
    flows = reserved_flows(records, year)
    eu = set(countries_of("eu27"))
    receives = flows["recipient"].isin(members) | (
        (flows["recipient"] == "EU") & bool(members & eu)
    )
    return flows.loc[receives, ["commodity", "supplier", "tonnes", "agreement"]].reset_index(
        drop=True
    )


def coverage(
    records: list[dict],
    bloc: str,
    year: int | None = None,
    supplier: str = "CHN",
    include_fuels: bool = False,
    commodities: list[str] | None = None,
) -> pd.DataFrame:
    """Coverage of `bloc`'s net import need by the active commitments in `records` (mineral
    fuels left out unless `include_fuels`; only `commodities` when given)."""
    year = resolve_year(year)
    code, blocs = importer_code(bloc)
    members = set(blocs.get(code, (code,)))
    flows, made = commodity_flows(year), commodity_production(year)
    if commodities is not None:  # the same figures for fewer minerals, at a fraction of the cost
        flows = flows[flows["commodity"].isin(commodities)]
        made = made[made["commodity"].isin(commodities)]
    flows, made = merge_blocs(flows, made, blocs)
    table = dependence_from_tables(flows, made, supplier)
    table = table[table["importer"] == code]
    need = pd.DataFrame(
        {
            "commodity": table["commodity"],
            "need_t": (table["imports"] - table["exports"]).clip(lower=0.0),
        }
    )
    shares = supplier_shares(flows[flows["importer"] == code])
    committed = committed_flows(records, members, year)
    # A commitment from inside the bloc is domestic supply: label it with the bloc's code.
    committed["supplier"] = committed["supplier"].where(~committed["supplier"].isin(members), code)
    out = coverage_from_tables(need, shares, committed, supplier)
    out.insert(0, "bloc", code)
    out.insert(1, "year", year)
    if not include_fuels:
        out = out[~out["commodity"].isin(FUELS)]
    if commodities is not None:
        out = out[out["commodity"].isin(commodities)]
    return out.sort_values(["committed_t", "need_t"], ascending=False).reset_index(drop=True)
