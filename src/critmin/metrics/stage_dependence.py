"""Dependence at each stage of a mineral's chain, read from the material balances.

For an importer (a country, or a bloc treated as one economy) and each mineral × stage:

- import reliance (USGS Mineral Commodity Summaries): (imports − exports) / apparent
  consumption, apparent consumption = production + imports − exports, all within one stage;
- supplier shares s_e = M_e / Σ M (direct), HHI = Σ s², top-3 share;
- traced shares: who processed the stage's imports (origin re-attribution, proportional mixing,
  `critmin.metrics.tracing.origin_matrix`, with the stage's own production as origin) and, up
  the chain, whose ore and whose refining they carry (each processor's availability at the
  stage above mixed in the same way);
- exposure at any stage: the share of the importer's supply of the stage (production plus
  imports) that passed through the supplier at this stage or any stage above,
  e_s(c) = Σ_r S_s[r, c] · (1 if r is the supplier else e_{s−1}(r)), which is
  1 − Π (1 − share at each stage) along the traced paths.

A figure that is not a share gets a status instead of a number that looks like one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from critmin.data.stages import STAGES
from critmin.metrics.balances import KEYS, Balances, balance_sheet
from critmin.metrics.dependence import merge_blocs, supplier_shares
from critmin.metrics.tracing import import_matrix, origin_system, weighted_origins

STATUSES = (
    "ok",
    "basket_split",
    "production_implied",
    "no_production_data",
    "transit",
    "net_exporter",
    "not_traded",
    "no_trade_data",
)


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(commodity=frame["mineral"] + "|" + frame["stage"])


def _unkeyed(frame: pd.DataFrame) -> pd.DataFrame:
    rest = frame.drop(columns="commodity")
    if frame.empty:
        return rest.assign(mineral=pd.Series(dtype=object), stage=pd.Series(dtype=object))
    parts = frame["commodity"].str.split("|", n=1, expand=True)
    return rest.assign(mineral=parts[0], stage=parts[1])


def merged_tables(
    bal: Balances, blocs: dict[str, Sequence[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The balances' flows and production with each bloc merged into one economy."""
    if not blocs:
        return bal.flows, bal.production[[*KEYS, "country", "amount"]]
    flows = _keyed(bal.flows)[["commodity", "exporter", "importer", "amount"]]
    made = _keyed(bal.production).rename(columns={"country": "country"})
    made = made[["commodity", "country", "amount"]]
    flows, made = merge_blocs(flows, made, blocs)
    return _unkeyed(flows), _unkeyed(made)


def stage_dependence_table(
    bal: Balances,
    importer: str,
    blocs: dict[str, Sequence[str]] | None = None,
    supplier: str = "CHN",
    risky_suppliers: Sequence[str] = (),
    minerals: Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per mineral × stage for `importer` (see the module docstring).

    Quantities are in the stage's unit on the balances' basis (content t, gross t or kUSD).
    `import_reliance` is a fraction in [0, 1] or NaN, and `status` says why when NaN or bounded.
    """
    flows, made = merged_tables(bal, blocs or {})
    table = dependence_grid(
        bal, flows, made, supplier, risky_suppliers, minerals, stages, importers=[importer]
    )
    return table.drop(columns="country").rename(columns={"importer": "importer"})


def dependence_grid(
    bal: Balances,
    flows: pd.DataFrame | None = None,
    made: pd.DataFrame | None = None,
    supplier: str = "CHN",
    risky_suppliers: Sequence[str] = (),
    minerals: Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
    importers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Dependence of every country (or of `importers`) at every mineral × stage, in one pass.

    The same figures as `stage_dependence_table`, one row per importer × mineral × stage; the
    origin systems are solved once per stage for all countries. The `suppliers` lists are
    built only when `importers` is given (they are one dict per flow).
    """
    flows = bal.flows if flows is None else flows
    made = bal.production if made is None else made
    coverage = bal.coverage
    if minerals is not None:
        coverage = coverage[coverage["mineral"].isin(list(minerals))]
    if stages is not None:
        coverage = coverage[coverage["stage"].isin(list(stages))]
    wanted = coverage[KEYS]
    flows = flows.merge(wanted, on=KEYS)
    made = made.merge(wanted, on=KEYS)
    sheet = balance_sheet(bal, flows, made)
    if importers is None:
        countries = sheet[["country"]].drop_duplicates()
    else:
        countries = pd.DataFrame({"country": list(importers)})
    grid = wanted.merge(countries, how="cross")
    grid = grid.merge(sheet.drop(columns="has_series"), on=[*KEYS, "country"], how="left")
    grid[["imports", "exports"]] = grid[["imports", "exports"]].fillna(0.0)
    grid = grid.merge(coverage, on=KEYS, how="left")
    grid["net_imports"] = grid["imports"] - grid["exports"]
    chosen = flows if importers is None else flows[flows["importer"].isin(list(importers))]
    grid = grid.merge(
        _share_figures(chosen, supplier, risky_suppliers, with_lists=importers is not None),
        on=[*KEYS, "country"],
        how="left",
    )
    grid = grid.merge(traced_figures(flows, sheet, supplier), on=[*KEYS, "country"], how="left")
    grid["traced_as_direct"] = grid["traced_as_direct"].astype("boolean").fillna(False).astype(bool)
    _set_status(grid, bal)
    grid.insert(0, "importer", grid["country"])
    grid.insert(3, "year", bal.year)
    grid.insert(4, "basis", bal.basis)
    grid["supplier"] = supplier
    order = {s: i for i, s in enumerate(STAGES)}
    grid = grid.sort_values(
        ["importer", "mineral", "stage"], key=lambda c: c.map(order) if c.name == "stage" else c
    )
    return grid.reset_index(drop=True)


def _share_figures(
    flows: pd.DataFrame, supplier: str, risky: Sequence[str], with_lists: bool
) -> pd.DataFrame:
    """Direct supplier shares per importer × mineral × stage: supplier_share, risky_share, hhi,
    top3_share, n_suppliers (and `suppliers`, [{country, share}], when `with_lists`)."""
    columns = [*KEYS, "country", "supplier_share", "risky_share", "hhi", "top3_share"]
    if flows.empty:
        return pd.DataFrame(columns=[*columns, "n_suppliers", "suppliers"])
    shares = supplier_shares(_keyed(flows))
    key = [shares["commodity"], shares["importer"]]
    share = shares["share"]
    out = pd.DataFrame(
        {
            "supplier_share": share.where(shares["exporter"] == supplier, 0.0).groupby(key).sum(),
            "risky_share": share.where(shares["exporter"].isin(list(risky)), 0.0)
            .groupby(key)
            .sum(),
            "hhi": (share**2).groupby(key).sum(),
            "top3_share": share.where(shares["rank"] <= 3, 0.0).groupby(key).sum(),
            "n_suppliers": share.groupby(key).count(),
        }
    )
    if with_lists:
        shares["item"] = [
            {"country": c, "share": float(s)}
            for c, s in zip(shares["exporter"], shares["share"], strict=True)
        ]
        out["suppliers"] = shares.groupby(key)["item"].agg(list)
    out = out.rename_axis(["commodity", "country"]).reset_index()
    return _unkeyed(out)


def traced_figures(flows: pd.DataFrame, sheet: pd.DataFrame, supplier: str) -> pd.DataFrame:
    """Traced shares along the chain and the any-stage exposure for every country at once (see
    `_traced_figures`); BLAS held to one thread: the ~45 small solves (n ≈ 220) run 10× slower
    when OpenBLAS splits each across cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _traced_figures(flows, sheet, supplier)


def _traced_figures(flows: pd.DataFrame, sheet: pd.DataFrame, supplier: str) -> pd.DataFrame:
    """Traced shares along the chain and the any-stage exposure for every country at once.

    Returns mineral, stage, country, traced_supplier_share (share of the country's imports of the
    stage processed in `supplier`), upstream_supplier_share (share whose input from the stage
    above came from `supplier`), any_stage_share (share of its supply that passed through
    `supplier` at this or any stage above), traced_as_direct (the stage has no production
    series, so each exporter is taken as the processor of what it exports).
    """
    frames = []
    flow_groups = dict(tuple(flows.groupby(KEYS)))
    sheet_groups = dict(tuple(sheet.groupby(KEYS)))
    empty_flows = flows.iloc[0:0]
    for mineral in sorted(set(sheet["mineral"])):  # one chain of ≤ 3 solves per mineral
        exposure: dict[str, float] | None = None
        above: tuple[list[str], np.ndarray, np.ndarray] | None = None  # countries, S[χ], 1ᵀS
        for stage in STAGES:
            stage_flows = flow_groups.get((mineral, stage), empty_flows)
            stage_sheet = sheet_groups.get((mineral, stage))
            if stage_sheet is None:
                continue
            as_direct = not bool(stage_sheet["has_series"].any())
            if as_direct:
                countries, mix, imports = direct_mix(stage_flows, stage_sheet)
                total = imports.sum(axis=0)
                is_supplier = np.array([c == supplier for c in countries], dtype=float)
                here = _here(countries, is_supplier, exposure)
                supplier_row, reach, column_sums = is_supplier @ mix, here @ mix, mix.sum(axis=0)
                traced_by_supplier = is_supplier @ imports
            else:
                made = stage_sheet[["country", "production"]].rename(
                    columns={"production": "amount"}
                )
                made = made[made["amount"].fillna(0.0) > 0]
                countries, own, system, imports = origin_system(stage_flows, made)
                total = imports.sum(axis=0)
                is_supplier = np.array([c == supplier for c in countries], dtype=float)
                here = _here(countries, is_supplier, exposure)
                weights = np.vstack([is_supplier, here, np.ones(len(countries))])
                supplier_row, reach, column_sums = weighted_origins(own, system, weights)
                traced_by_supplier = supplier_row @ imports
            safe = np.where(total > 0, total, 1.0)
            frame = pd.DataFrame(
                {
                    "mineral": mineral,
                    "stage": stage,
                    "country": countries,
                    "traced_supplier_share": np.where(total > 0, traced_by_supplier / safe, np.nan),
                    "any_stage_share": reach,
                    "traced_as_direct": as_direct,
                }
            )
            if above is not None:
                weights_up = _upstream_weights(countries, above)
                if as_direct:
                    upstream = weights_up @ imports
                else:
                    upstream = weighted_origins(own, system, weights_up[None, :])[0] @ imports
                frame["upstream_supplier_share"] = np.where(total > 0, upstream / safe, np.nan)
            frames.append(frame)
            exposure = dict(zip(countries, reach, strict=True))
            above = (countries, supplier_row, column_sums)
    columns = [
        *KEYS,
        "country",
        "traced_supplier_share",
        "upstream_supplier_share",
        "any_stage_share",
        "traced_as_direct",
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).reindex(columns=columns)


def _here(countries: list[str], is_supplier: np.ndarray, exposure: dict | None) -> np.ndarray:
    """1 for the supplier, else the country's exposure at the stage above (0 if unknown)."""
    if exposure is None:
        return is_supplier
    return np.maximum(is_supplier, [exposure.get(c, 0.0) for c in countries])


def direct_mix(
    flows: pd.DataFrame, sheet: pd.DataFrame
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """For a stage without a production series: each exporter is the processor of what it
    exports (no re-export tracing), and a country's supply is its implied production plus its
    imports by immediate source: S[r, c] = (P_c·δ_rc + M_rc) / (P_c + M_c). Returns countries,
    S and the import matrix M.
    """
    countries = sorted(set(flows["exporter"]) | set(flows["importer"]) | set(sheet["country"]))
    index = {c: i for i, c in enumerate(countries)}
    imports = import_matrix(flows, index)
    made = np.zeros(len(countries))
    produced = sheet[sheet["production"].fillna(0.0) > 0]
    made[produced["country"].map(index).to_numpy(dtype=np.int64)] = produced["production"]
    supply = made + imports.sum(axis=0)
    mix = (np.diag(made) + imports) / np.where(supply > 0, supply, 1.0)
    return countries, mix, imports


def _upstream_weights(
    countries: list[str], above: tuple[list[str], np.ndarray, np.ndarray]
) -> np.ndarray:
    """w[r] = S_above[supplier, r] / Σ_o S_above[o, r]: the share of processor r's input from
    the stage above that came from the supplier (0 where r has no known input)."""
    up_countries, supplier_row, column_sums = above
    up_index = {c: i for i, c in enumerate(up_countries)}
    weights = np.zeros(len(countries))
    for i, r in enumerate(countries):  # one entry per country of the stage, not per flow
        j = up_index.get(r)
        if j is not None and column_sums[j] > 0:
            weights[i] = supplier_row[j] / column_sums[j]
    return weights


def _set_status(row: pd.DataFrame, bal: Balances) -> None:
    has_any = (row["imports"] > 0) | (row["exports"] > 0) | (row["production"].fillna(0) > 0)
    consumption = row["apparent_consumption"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        reliance = row["net_imports"].astype(float) / consumption
    status = np.select(
        [
            ~row["has_trade"].fillna(False).astype(bool),
            ~has_any,
            row["net_imports"] < 0,
            row["production_status"].isin(["missing", "none", "withheld"]) | consumption.isna(),
            consumption <= 0,
            row["production_status"].eq("implied"),
            row["basket_split"].fillna(False).astype(bool),
        ],
        [
            "no_trade_data",
            "not_traded",
            "net_exporter",
            "no_production_data",
            "transit",
            "production_implied",
            "basket_split",
        ],
        "ok",
    )
    row["status"] = status
    shown = np.isin(status, ["ok", "basket_split", "production_implied"]) & (consumption > 0)
    row["import_reliance"] = reliance.where(shown).clip(0.0, 1.0)
    no_imports = row["imports"] <= 0
    for column in (
        "supplier_share",
        "risky_share",
        "hhi",
        "top3_share",
        "traced_supplier_share",
        "upstream_supplier_share",
    ):
        row[column] = row[column].where(~no_imports & (status != "no_trade_data"))
    row["any_stage_share"] = row["any_stage_share"].where(
        ~np.isin(status, ["no_trade_data", "not_traded"])
    )
    row["n_suppliers"] = row["n_suppliers"].fillna(0).astype(int)
    if "suppliers" in row:
        row["suppliers"] = row["suppliers"].apply(lambda v: v if isinstance(v, list) else [])
    touched = bal.corrections[["mineral", "stage", "importer"]].drop_duplicates()
    touched = touched.rename(columns={"importer": "country"}).assign(corrected=True)
    corrected = row[[*KEYS, "country"]].merge(touched, how="left")["corrected"].notna()
    flags = {
        "basket_split": row["basket_split"].fillna(False).astype(bool).to_numpy(),
        "partial_codes": (row["codes_missing"].map(len) > 0).to_numpy(),
        "quantity_corrected": corrected.to_numpy(),
        "production_implied": row["production_status"].eq("implied").to_numpy(),
        "traced_as_direct": row["traced_as_direct"].eq(True).to_numpy(),
    }
    names = np.array(list(flags))
    matrix = np.column_stack(list(flags.values()))
    row["flags"] = [list(names[on]) for on in matrix]
