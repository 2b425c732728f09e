"""The stage questions users ask, by name: how dependent a country or bloc is at each stage of a
mineral's chain, every importer at one stage (maps), and where a stage's supply came from up the
chain. The figures come from the material balances (`critmin.metrics.balances`); the
definitions are in `critmin.metrics.stage_dependence` and `critmin.metrics.stage_tracing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from critmin.data import commodity as resolve_commodity
from critmin.data import countries_of, country, group
from critmin.data.stages import (
    check_stage,
    latest_common_year,
    stage_minerals,
    stage_years,
    stages_of,
)
from critmin.errors import InputError, UnknownNameError
from critmin.metrics.balances import balances, check_stage_basis
from critmin.metrics.dependence import resolve_year, risky_countries
from critmin.metrics.stage_dependence import dependence_grid, stage_dependence_rows

if TYPE_CHECKING:
    import pandas as pd

    from critmin.data.columns import Table

DEFAULT_RISK_THRESHOLD = -0.5  # WGI political stability (−2.5…2.5) below which a supplier is risky


def importer_code(name: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The code an importer appears under and the blocs to merge: a country is itself, a
    group or a comma list becomes one economy named after it."""
    try:
        return country(name).iso3, {}
    except UnknownNameError:
        pass
    members = countries_of(name)  # raises the combined unknown-name error
    if not members:
        raise InputError(f"group {name!r} has no members")
    label = group(name).id if "," not in name else "+".join(members)
    if len(members) == 1:
        return members[0], {}
    return label, {label: members}


def stage_dependence(
    importer: str,
    commodity: str | None = None,
    year: int | None = None,
    supplier: str = "CHN",
    basis: str = "content",
    risk_threshold: float = DEFAULT_RISK_THRESHOLD,
    stage: str = "all",
) -> pd.DataFrame:
    """Dependence of a country or bloc at each stage of each mineral's chain.

    One row per mineral × stage (`commodity` None = every mapped mineral; `stage` mine, refined,
    product or all). Year None = the latest year with trade at every chosen stage. Quantities
    are in the stage's unit (`unit`) on `basis` (content t, gross t or thousand USD). Columns:
    importer, commodity (the mineral), stage, year, basis, unit, production,
    production_status, imports, exports, apparent_consumption, net_imports, import_reliance
    (USGS net import reliance as a fraction, NaN unless status is ok, basket_split or
    production_implied), status, flags, supplier, supplier_share, traced_supplier_share
    (processed in the supplier), upstream_supplier_share (its input from the stage above came
    from the supplier), any_stage_share (share of the importer's supply of the stage that passed
    through the supplier at any stage), hhi, top3_share, risky_share, n_suppliers, suppliers,
    codes_covered, codes_missing, codes_flagged, code_share, revisions. See
    `critmin.metrics.stage_dependence` and `critmin.metrics.balances` for the equations.
    """
    return stage_dependence_columns(
        importer, commodity, year, supplier, basis, risk_threshold, stage
    ).frame()


def stage_dependence_columns(
    importer: str,
    commodity: str | None = None,
    year: int | None = None,
    supplier: str = "CHN",
    basis: str = "content",
    risk_threshold: float = DEFAULT_RISK_THRESHOLD,
    stage: str = "all",
) -> Table:
    """`stage_dependence` as NumPy columns (a `Table`), computed without pandas: the command
    line's path."""
    chosen_stage = check_stage(stage, allow_all=True)
    stages = None if chosen_stage == "all" else [chosen_stage]
    minerals = None
    if commodity is not None:
        wanted = resolve_commodity(commodity).id
        if wanted not in stage_minerals():
            raise InputError(
                f"{wanted} has no supply-chain map (stages); mapped minerals: "
                + ", ".join(stage_minerals())
            )
        minerals = [wanted]
        mapped = stages_of(wanted)
        if stages is not None and chosen_stage not in mapped:
            raise InputError(
                f"{wanted} has no {chosen_stage} stage; its stages: {', '.join(mapped)}"
            )
    basis = {"qty": "content"}.get(basis, basis)
    check_stage_basis(basis)
    if year is None:
        pairs = [
            (m, s)
            for m in (minerals or stage_minerals())
            for s in stages_of(m)
            if stages is None or s in stages
        ]
        year = latest_common_year(pairs, with_quantity=basis != "value") or resolve_year(None)
    else:
        year = resolve_year(year)
    supplier_code = country(supplier).iso3
    code, blocs = importer_code(importer)
    table = stage_dependence_rows(
        balances(year, basis, None if minerals is None else tuple(minerals)),
        code,
        blocs,
        supplier_code,
        risky_countries(year, risk_threshold),
        minerals,
        stages,
    )
    return table.rename({"mineral": "commodity"})


def world_stage_dependence(
    commodity: str,
    stage: str | None = None,
    year: int | None = None,
    supplier: str = "CHN",
    basis: str = "content",
) -> pd.DataFrame:
    """Every importer's dependence at one stage of one mineral (the map view of
    `stage_dependence`, same definitions, one pass over all countries).

    stage None = the mineral's last stage with trade in the year. Columns: importer, imports
    (stage unit), import_reliance, status, supplier_share, traced_supplier_share,
    any_stage_share, unit, year, stage; importers without imports are left out.
    """
    wanted = resolve_commodity(commodity).id
    basis = check_stage_basis({"qty": "content"}.get(basis, basis))
    year = _stage_year(wanted, stage, year, basis)
    chosen = _stage_with_trade(wanted, stage, year, basis)
    grid = dependence_grid(
        balances(year, basis),
        supplier=country(supplier).iso3,
        minerals=[wanted],
        stages=[chosen],
    )
    grid = grid[grid["imports"] > 0]
    if grid.empty:
        raise InputError(f"no country imports {wanted} at the {chosen} stage in {year}")
    columns = ["importer", "imports", "import_reliance", "status", "supplier_share"]
    extra = ["traced_supplier_share", "any_stage_share", "unit", "year", "stage"]
    return grid[columns + extra].reset_index(drop=True)


def _stage_year(mineral: str, stage: str | None, year: int | None, basis: str) -> int:
    """The year asked for (checked), or the latest with trade at the stage (any stage)."""
    if year is not None:
        return resolve_year(year)
    pairs = [(mineral, s) for s in stages_of(mineral) if stage in (None, s)]
    return latest_common_year(pairs, with_quantity=basis != "value") or resolve_year(None)


def _stage_with_trade(mineral: str, stage: str | None, year: int, basis: str) -> str:
    """The stage asked for, or the mineral's last stage with trade in `year`; refused at once
    (before any balance is built) where the stage has no trade that year."""
    mapped = stages_of(mineral)
    if not mapped:
        raise InputError(f"{mineral} has no supply-chain map (stages)")
    years = stage_years(basis != "value")
    have = set(years.loc[(years["mineral"] == mineral) & (years["year"] == year), "stage"])
    if stage is None:
        with_trade = [s for s in mapped if s in have]
        if not with_trade:
            raise InputError(f"no trade data for {mineral} at any stage in {year}")
        return with_trade[-1]
    chosen = check_stage(stage)
    if chosen not in mapped:
        raise InputError(f"{mineral} has no {chosen} stage; its stages: {', '.join(mapped)}")
    if chosen not in have:
        raise InputError(f"no trade data for {mineral} at the {chosen} stage in {year}")
    return chosen


def stage_trace(
    importer: str,
    commodity: str,
    stage: str | None = None,
    year: int | None = None,
    basis: str = "content",
) -> pd.DataFrame:
    """Origins of a country's or bloc's imports at one stage, and up the chain.

    stage None = the mineral's last stage with trade (product, else refined, else mine).
    Returns origin, direct_share, `{stage}_share` (processed in) and one `{s}_share` column
    per stage above (input from), each summing to 1; see `critmin.metrics.stage_tracing`.
    Year None = the latest year with trade at that stage.
    """
    wanted = resolve_commodity(commodity).id
    mapped = stages_of(wanted)
    if not mapped:
        raise InputError(f"{wanted} has no supply-chain map (stages)")
    if stage is None:  # the last stage of the chain with trade (in the year asked for)
        years = stage_years(basis != "value")
        years = years[years["mineral"] == wanted]
        if year is not None:
            years = years[years["year"] == int(year)]
        with_trade = set(years["stage"])
        chosen = ([s for s in mapped if s in with_trade] or mapped)[-1]
    else:
        chosen = check_stage(stage)
    if chosen not in mapped:
        raise InputError(f"{wanted} has no {chosen} stage; its stages: {', '.join(mapped)}")
    basis = check_stage_basis({"qty": "content"}.get(basis, basis))
    if year is None:
        year = latest_common_year([(wanted, chosen)], with_quantity=basis != "value")
        year = year or resolve_year(None)
    else:
        year = resolve_year(year)
    from critmin.metrics.stage_tracing import trace_stage

    code, blocs = importer_code(importer)
    table = trace_stage(balances(year, basis), code, wanted, chosen, blocs)
    if table.empty:
        raise InputError(f"{importer} imports no {wanted} at the {chosen} stage in {year}")
    return table.assign(year=year, stage=chosen)
