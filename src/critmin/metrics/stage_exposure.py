"""Traced shares and exposure at any stage on the dense pair × country grid of
`critmin.metrics.stage_grid`: who processed each country's supply of a stage, whose input
from the stage above it carried, and the share that passed through the supplier at this or
any earlier stage (equations in `critmin.metrics.stage_dependence`'s module docstring).

Per mineral, one origin system per stage (`critmin.metrics.tracing.origin_system`, solved
once for all countries); a stage without a production series takes each exporter as the
processor of what it exports (`direct_mix_matrix`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.data.columns import Table
from critmin.data.stages import STAGES
from critmin.metrics.tracing import import_matrix, origin_system, weighted_origins

if TYPE_CHECKING:
    from critmin.metrics.stage_grid import Sheet

TRACED_COLUMNS = ("traced_supplier_share", "upstream_supplier_share", "any_stage_share")


def direct_mix_matrix(made: np.ndarray, imports: np.ndarray) -> np.ndarray:
    """For a stage without a production series, each exporter is the processor of what it
    exports: S[r, c] = (P_c·δ_rc + M_rc) / (P_c + M_c)."""
    supply = made + imports.sum(axis=0)
    return (np.diag(made) + imports) / np.where(supply > 0, supply, 1.0)


def traced(
    sheet: Sheet,
    flow_pair: np.ndarray,
    exporter: np.ndarray,
    importer: np.ndarray,
    amount: np.ndarray,
    supplier: str,
) -> dict[str, np.ndarray]:
    """Traced shares and exposure at any stage, dense (P × C), for every country: see
    `critmin.metrics.stage_dependence._traced_figures` for the equations."""
    shape = sheet.present.shape
    out = {name: np.full(shape, np.nan) for name in TRACED_COLUMNS}
    out["traced_as_direct"] = np.zeros(shape, dtype=bool)
    minerals = sheet.pairs["mineral"].astype(str)
    stages = sheet.pairs["stage"].astype(str)
    for mineral in sorted(set(minerals[sheet.present.any(axis=1)])):  # ≤ 3 solves each
        exposure: dict[str, float] | None = None
        above: tuple[list[str], np.ndarray, np.ndarray] | None = None
        for stage in STAGES:
            at = np.flatnonzero((minerals == mineral) & (stages == stage))
            if len(at) == 0 or not sheet.present[at[0]].any():
                continue
            p = int(at[0])
            rows = flow_pair == p
            stage_flows = Table(
                {
                    "exporter": sheet.countries[exporter[rows]],
                    "importer": sheet.countries[importer[rows]],
                    "amount": amount[rows],
                }
            )
            made = np.nan_to_num(sheet.production[p])
            as_direct = not bool(sheet.has_series[p])
            if as_direct:
                where = np.flatnonzero(sheet.present[p])
                countries = sheet.countries[where].tolist()
                imports = import_matrix(stage_flows, {c: i for i, c in enumerate(countries)})
                mix = direct_mix_matrix(made[where], imports)
                is_supplier = np.array([c == supplier for c in countries], dtype=float)
                here = _here(countries, is_supplier, exposure)
                supplier_row, reach, column_sums = is_supplier @ mix, here @ mix, mix.sum(axis=0)
                by_supplier = is_supplier @ imports
            else:
                producing = made > 0
                production = Table(
                    {"country": sheet.countries[producing], "amount": made[producing]}
                )
                countries, own_share, system, imports = origin_system(stage_flows, production)
                where = np.searchsorted(sheet.countries, np.asarray(countries, dtype=str))
                is_supplier = np.array([c == supplier for c in countries], dtype=float)
                here = _here(countries, is_supplier, exposure)
                weights = np.vstack([is_supplier, here, np.ones(len(countries))])
                supplier_row, reach, column_sums = weighted_origins(own_share, system, weights)
                by_supplier = supplier_row @ imports
            total = imports.sum(axis=0)
            safe = np.where(total > 0, total, 1.0)
            out["traced_supplier_share"][p, where] = np.where(total > 0, by_supplier / safe, np.nan)
            out["any_stage_share"][p, where] = reach
            out["traced_as_direct"][p, where] = as_direct
            if above is not None:
                weights_up = _upstream_weights(countries, above)
                if as_direct:
                    upstream = weights_up @ imports
                else:
                    upstream = weighted_origins(own_share, system, weights_up[None, :])[0] @ imports
                out["upstream_supplier_share"][p, where] = np.where(
                    total > 0, upstream / safe, np.nan
                )
            exposure = dict(zip(countries, reach, strict=True))
            above = (countries, supplier_row, column_sums)
    return out


def _here(countries: list[str], is_supplier: np.ndarray, exposure: dict | None) -> np.ndarray:
    """1 for the supplier, else the country's exposure at the stage above (0 if unknown)."""
    if exposure is None:
        return is_supplier
    return np.maximum(is_supplier, [exposure.get(c, 0.0) for c in countries])


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
