"""Where an importer's supply of one stage came from, at that stage and up the chain.

For an import of a refined or product stage: who processed it (origin re-attribution within
the stage, proportional mixing: Kastner, Kastner & Nonhebel 2011; Schaffartzik et al. 2016)
and, through each processor's own availability mix at the stage above, whose ore or refined
input it carried. With S_s the origin matrix of stage s (`critmin.metrics.tracing`):

    processed_s(c) = S_s · M_s[:, c] / M_c              (shares of c's imports by processor)
    input_{s−1}(c) = Σ_r processed_s(c)[r] · Ŝ_{s−1}[:, r]  (Ŝ: columns normalised to 1)

and so on to the mine. A processor with no known input at the stage above is reported as
"untraced" there. Stages without a production series use the direct mix (each exporter is the
processor of what it exports), as in `critmin.metrics.stage_dependence`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from critmin.data.stages import STAGES
from critmin.metrics.balances import Balances, balance_sheet
from critmin.metrics.stage_dependence import direct_mix, merged_tables
from critmin.metrics.tracing import UNTRACED, origin_system

Origins = tuple[list[str], np.ndarray]  # countries, origin columns S[:, countries]


def _stage_system(flows: pd.DataFrame, sheet: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Countries and the full origin matrix S of one stage (direct mix without a series)."""
    if not bool(sheet["has_series"].any()):
        countries, mix, _ = direct_mix(flows, sheet)
        return countries, mix
    made = sheet[["country", "production"]].rename(columns={"production": "amount"})
    made = made[made["amount"].fillna(0.0) > 0]
    countries, own, system, _ = origin_system(flows, made)
    try:
        inverse = np.linalg.solve(system, np.eye(len(countries)))
    except np.linalg.LinAlgError:
        inverse = np.linalg.lstsq(system, np.eye(len(countries)), rcond=None)[0]
    return countries, np.clip(own[:, None] * inverse, 0.0, 1.0)


def trace_stage(
    bal: Balances,
    importer: str,
    mineral: str,
    stage: str,
    blocs: dict[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Shares of `importer`'s imports of `mineral` at `stage` by origin, per stage of the chain.

    Returns origin, direct_share (immediate supplier), and `{s}_share` for the stage itself
    (processed in) and every stage above (input from), each a distribution over origins that
    sums to 1 (with an `untraced` row where an origin is unknown).
    """
    from threadpoolctl import threadpool_limits

    flows, made = merged_tables(bal, blocs or {})
    flows = flows[flows["mineral"] == mineral]
    made = made[made["mineral"] == mineral]
    sheet = balance_sheet(bal, flows, made)
    chain = [s for s in STAGES if s in set(sheet["stage"])]
    if stage not in chain:
        return pd.DataFrame(columns=["origin", "direct_share", f"{stage}_share"])
    chain = chain[: chain.index(stage) + 1]
    with threadpool_limits(limits=1, user_api="blas"):
        systems = {
            s: _stage_system(flows[flows["stage"] == s], sheet[sheet["stage"] == s]) for s in chain
        }
    stage_flows = flows[flows["stage"] == stage]
    own = stage_flows[stage_flows["importer"] == importer]
    total = own["amount"].sum()
    if total <= 0:
        return pd.DataFrame(columns=["origin", "direct_share", f"{stage}_share"])
    direct = own.groupby("exporter")["amount"].sum() / total
    countries, origin = systems[stage]
    if bool(sheet.loc[sheet["stage"] == stage, "has_series"].any()):
        index = {c: i for i, c in enumerate(countries)}
        weights = np.zeros(len(countries))
        weights[[index[e] for e in direct.index]] = direct.to_numpy()
        current = pd.Series(origin @ weights, index=countries)  # processed in, at `stage`
    else:  # no production series: each exporter is the processor of what it exports
        current = direct.copy()
    columns = {f"{stage}_share": _with_untraced(current)}
    for above in reversed(chain[:-1]):
        up_countries, up_origin = systems[above]
        up_index = {c: i for i, c in enumerate(up_countries)}
        carried = np.zeros(len(up_countries))
        untraced = 0.0
        for processor, share in current[current > 1e-12].items():  # processors, not flows
            j = up_index.get(processor)
            column = up_origin[:, j] if j is not None else None
            if column is None or column.sum() <= 0:
                untraced += share
                continue
            carried += share * column / column.sum()
        current = pd.Series(carried, index=up_countries)
        columns[f"{above}_share"] = _with_untraced(current, untraced)
    table = pd.DataFrame(columns).fillna(0.0)
    table.insert(0, "direct_share", direct.reindex(table.index).fillna(0.0))
    table = table.rename_axis("origin").reset_index()
    table = table[table.drop(columns="origin").max(axis=1) > 1e-9]
    return table.sort_values(f"{stage}_share", ascending=False).reset_index(drop=True)


def _with_untraced(shares: pd.Series, untraced: float = 0.0) -> pd.Series:
    """A distribution over origins with what could not be traced as its own row."""
    shares = shares[shares > 1e-12]
    rest = untraced + max(0.0, 1.0 - shares.sum() - untraced)
    if rest > 1e-9:
        shares = pd.concat([shares, pd.Series({UNTRACED: rest})])
    return shares
