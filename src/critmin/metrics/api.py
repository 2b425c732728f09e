"""The dependence questions users ask, by name: a country or bloc, a commodity, a year."""

from __future__ import annotations

import pandas as pd

from critmin.data import all_commodities, all_countries, country, query
from critmin.data import commodity as resolve_commodity
from critmin.errors import InputError
from critmin.metrics.dependence import (
    commodity_flows,
    commodity_production,
    dependence_from_tables,
    merge_blocs,
    resolve_year,
    risky_countries,
    supplier_shares,
)
from critmin.metrics.geopolrisk_sql import risk_sql
from critmin.metrics.stage_api import (
    DEFAULT_RISK_THRESHOLD,
    importer_code,
    stage_dependence,
    stage_trace,
    world_stage_dependence,
)
from critmin.metrics.tracing import chained_origin_matrix, traced_import_origins


def stage_chains() -> dict[str, str]:
    """Refined commodity → its ore, from the commodity map (aluminium → bauxite)."""
    return {c.id: c.upstream for c in all_commodities() if c.upstream}


def _tables(importer: str, year: int, basis: str):
    code, blocs = importer_code(importer)
    flows, made = merge_blocs(
        commodity_flows(year, basis), commodity_production(year, basis), blocs
    )
    return code, flows, made


def commodity_dependence(
    importer: str,
    commodity: str | None = None,
    year: int | None = None,
    supplier: str = "CHN",
    basis: str = "qty",
    risk_threshold: float = DEFAULT_RISK_THRESHOLD,
) -> pd.DataFrame:
    """Dependence of a country or bloc, one row per commodity (all when `commodity` is None).

    Columns: importer, commodity, year, basis, production, imports, exports,
    apparent_consumption (t for `qty`, thousand USD for `value`), import_reliance, hhi,
    top3_share, supplier, supplier_share (direct), traced_supplier_share (origin-traced,
    see `critmin.metrics.tracing`), risky_share (suppliers with WGI political stability
    below `risk_threshold`), n_suppliers, suppliers (list of {country, share}).
    """
    year = resolve_year(year)
    supplier_code = country(supplier).iso3
    code, flows, made = _tables(importer, year, basis)
    if commodity is not None:
        wanted = resolve_commodity(commodity).id
        flows = flows[flows["commodity"] == wanted]
        made = made[made["commodity"] == wanted]
    table = dependence_from_tables(
        flows, made, supplier_code, risky_countries(year, risk_threshold)
    )
    table = table[table["importer"] == code]
    if table.empty:
        what = f" for {commodity}" if commodity else ""
        raise InputError(f"{importer} has no trade or production data{what} in {year}")
    chains = stage_chains()
    needed = set(table["commodity"]) | {chains[c] for c in table["commodity"] if c in chains}
    traced = traced_import_origins(flows[flows["commodity"].isin(needed)], made, chains)
    traced = traced[(traced["importer"] == code) & (traced["origin"] == supplier_code)]
    table = table.merge(
        traced[["commodity", "share"]].rename(columns={"share": "traced_supplier_share"}),
        on="commodity",
        how="left",
    )
    has_imports = table["imports"] > 0
    table["traced_supplier_share"] = table["traced_supplier_share"].fillna(0.0).where(has_imports)
    shares = supplier_shares(flows[flows["importer"] == code])
    shares["item"] = [
        {"country": c, "share": float(v)}
        for c, v in zip(shares["exporter"], shares["share"], strict=True)
    ]
    lists = shares.groupby("commodity")["item"].agg(list)
    table["suppliers"] = (
        table["commodity"].map(lists).apply(lambda v: v if isinstance(v, list) else [])
    )
    table.insert(2, "year", year)
    table.insert(3, "basis", basis)
    table.insert(table.columns.get_loc("supplier_share"), "supplier", supplier_code)
    return table.reset_index(drop=True)


def world_commodity_dependence(
    commodity: str, year: int | None = None, supplier: str = "CHN", basis: str = "qty"
) -> pd.DataFrame:
    """Every importer's direct and traced share from `supplier` for one commodity.

    The map view of `dependence`: the same definitions (direct share s_ie of the BACI
    imports, traced share from the origin re-attribution of `critmin.metrics.tracing`),
    computed for all countries in one pass. Columns: importer, imports (t or kUSD),
    import_reliance, supplier_share, traced_supplier_share; importers without imports
    are left out.
    """
    year = resolve_year(year)
    supplier_code = country(supplier).iso3
    wanted = resolve_commodity(commodity).id
    chains = stage_chains()
    needed = {wanted, chains.get(wanted)} - {None}
    flows = commodity_flows(year, basis)
    made = commodity_production(year, basis)
    flows, made = flows[flows["commodity"].isin(needed)], made[made["commodity"].isin(needed)]
    table = dependence_from_tables(
        flows[flows["commodity"] == wanted], made[made["commodity"] == wanted], supplier_code
    )
    table = table[table["imports"] > 0]
    if table.empty:
        raise InputError(f"no country imports {wanted} in {year} (basis {basis})")
    traced = traced_import_origins(flows, made, chains)
    traced = traced[(traced["commodity"] == wanted) & (traced["origin"] == supplier_code)]
    table = table.merge(
        traced[["importer", "share"]].rename(columns={"share": "traced_supplier_share"}),
        on="importer",
        how="left",
    )
    table["traced_supplier_share"] = table["traced_supplier_share"].fillna(0.0)
    columns = ["importer", "imports", "import_reliance", "supplier_share"]
    return table[[*columns, "traced_supplier_share"]].reset_index(drop=True)


def commodity_trace(
    importer: str, commodity: str, year: int | None = None, basis: str = "qty"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Direct vs traced origins of an importer's imports, and the intermediaries.

    Returns (origins, intermediaries). origins: origin, direct_share, traced_share.
    intermediaries: partner, direct_share, and for each of the top traced origins the share
    of the importer's imports that the partner carries from that origin (M_rc / M_c ·
    S[o, r]), so each origin's column sums to its traced share.
    """
    year = resolve_year(year)
    wanted = resolve_commodity(commodity).id
    code, flows, made = _tables(importer, year, basis)
    chains = stage_chains()
    ore = chains.get(wanted)
    all_flows, all_made = flows, made
    flows = flows[flows["commodity"] == wanted]
    made = made[made["commodity"] == wanted]
    direct = supplier_shares(flows[flows["importer"] == code])
    if direct.empty:
        raise InputError(f"{importer} imports no {wanted} in {year} (basis {basis})")
    keep = {wanted, ore} - {None}
    traced = traced_import_origins(
        all_flows[all_flows["commodity"].isin(keep)],
        all_made[all_made["commodity"].isin(keep)],
        chains,
    )
    traced = traced[(traced["importer"] == code) & (traced["commodity"] == wanted)]
    origins = (
        direct[["exporter", "share"]]
        .rename(columns={"exporter": "origin", "share": "direct_share"})
        .merge(
            traced[["origin", "share"]].rename(columns={"share": "traced_share"}),
            on="origin",
            how="outer",
        )
        .fillna(0.0)
        .sort_values("traced_share", ascending=False)
        .reset_index(drop=True)
    )
    labels, countries, origin = chained_origin_matrix(wanted, all_flows, all_made, chains)
    where = {c: i for i, c in enumerate(labels)}
    index = {c: i for i, c in enumerate(countries)}
    top = [o for o in origins["origin"].head(3) if o in where]
    carried = direct[["exporter", "share"]].rename(
        columns={"exporter": "partner", "share": "direct_share"}
    )
    for name in top:
        row = origin[where[name]]
        carried[f"via_{name}"] = carried["direct_share"] * carried["partner"].map(
            lambda p, row=row: row[index[p]]
        )
    return origins, carried.reset_index(drop=True)


RISK_METHODS = ("geopolrisk", "eu-sr")


def risk(
    importer: str | None = None,
    commodity: str | None = None,
    year: int | None = None,
    method: str = "geopolrisk",
    peer_compatible: bool = False,
) -> pd.DataFrame:
    """Supply risk of an importer (country, group or comma list; None = every country) for a
    commodity (None = all) and year (None = 2024 for EU SR, 2018–2024 for GeoPolRisk).

    method `geopolrisk`: see `critmin.metrics.geopolrisk` (columns hhi, import_risk, score,
    cf, price); `peer_compatible` reproduces geopolrisk-py 2.0.1 exactly. method `eu-sr`:
    see `critmin.metrics.eu_supply_risk`.
    """
    if method not in RISK_METHODS:
        raise InputError(f"risk method {method!r} is not one of {', '.join(RISK_METHODS)}")
    if peer_compatible and method != "geopolrisk":
        raise InputError("--peer-compatible applies to the geopolrisk method only")
    if method == "geopolrisk":  # the grid query of critmin.metrics.geopolrisk, into pandas
        return query(*risk_sql(importer, commodity, year, peer_compatible))
    from critmin.metrics.eu_supply_risk import eu_supply_risk  # the stage balances, on use

    if importer is None:
        entities = {c.iso3: (c.iso3,) for c in all_countries() if c.baci_codes}
    else:
        code, blocs = importer_code(importer)
        entities = blocs or {code: (code,)}
    table = eu_supply_risk(entities, resolve_year(2024 if year is None else year))
    if commodity is not None:
        wanted = resolve_commodity(commodity).id
        table = table[table["commodity"] == wanted]
        if table.empty:
            raise InputError(f"no {method} result for {wanted} (no HS code or no data)")
    return table.reset_index(drop=True)


__all__ = [
    "DEFAULT_RISK_THRESHOLD",
    "commodity_dependence",
    "commodity_trace",
    "importer_code",
    "risk",
    "stage_dependence",
    "stage_trace",
    "world_commodity_dependence",
    "world_stage_dependence",
]
