"""What the trade data cover per mineral × stage, the `coverage` of the material balances
(`critmin.metrics.balances`): codes with data, codes missing, codes flagged, with NumPy on Tables.
"""

from __future__ import annotations

import numpy as np

from critmin.data.columns import Table, group_rows, join_index
from critmin.data.stages import HS_REVISIONS, STAGES, supply_chain_table, supply_stages_table
from critmin.metrics.balances import KEYS

CODE_LISTS = ("codes_covered", "codes_missing", "codes_flagged", "revisions")


def coverage_table(
    rows: Table, production: Table, basis: str, minerals: tuple[str, ...] | None
) -> Table:
    """One row per mineral × stage of the map (in mineral, then chain order): unit,
    production_source, production_note, codes_covered, codes_missing, codes_flagged, revisions
    (lists), basket_split, has_trade, has_production, code_share.

    `rows` are the year's stage trade rows, `production` the balances' production.
    """
    chain = supply_chain_table()
    if minerals is not None:
        chain = chain.where(np.isin(chain["mineral"], list(minerals)))
    _, first = np.unique(chain["row"], return_index=True)
    products = chain.where(np.sort(first))
    # The revision and code a product's data come in, and whether a flow of it has a quantity.
    data_rows, data_first, data_of = np.unique(rows["row"], return_index=True, return_inverse=True)
    has_qty = (
        np.bincount(data_of.reshape(-1), weights=(~np.isnan(rows["gross_t"])).astype(float)) > 0
    )
    at = join_index([products["row"]], [data_rows])
    revision = _take(rows["hs_revision"][data_first], at, None)
    hs6 = _take(rows["hs6"][data_first], at, None)
    has_qty = _take(has_qty, at, False)
    has_revision = np.not_equal(revision, None)
    # Whether a product is counted or split depends on the revision its data come in (the
    # newest revision where it has none): germanium has its own code in HS92, a shared one later.
    revisions = np.array(HS_REVISIONS, dtype=object)
    rank = join_index([chain["hs_revision"]], [revisions])
    newest_rank = np.full(int(chain["row"].max()) + 1 if len(chain) else 0, -1)
    np.maximum.at(newest_rank, chain["row"], rank)
    newest = revisions[newest_rank[products["row"]]]
    used = np.where(has_revision, revision, newest)
    on_map = [chain["row"], chain["hs_revision"]]
    used_at = join_index([products["row"], used], on_map)
    newest_at = join_index([products["row"], newest], on_map)
    keep = (used_at >= 0) & (newest_at >= 0)
    products = products.where(keep)
    hs6, has_qty, has_revision = hs6[keep], has_qty[keep], has_revision[keep]
    counted = np.asarray(chain["counted"], dtype=bool)[used_at[keep]]
    basket = np.asarray(chain["basket"], dtype=bool)[used_at[keep]]
    label = np.where(np.not_equal(hs6, None), hs6, chain["hs6"][newest_at[keep]])
    covered = counted & has_revision & (has_qty | (basis == "value"))
    revision = revision[keep]

    code, first = group_rows([products[k] for k in KEYS])
    pairs = [products[k][first] for k in KEYS]
    lists: dict[str, list[list]] = {name: [] for name in CODE_LISTS}
    split = []
    for g in range(len(first)):  # one mineral × stage at a time
        mine = code == g
        for name, mask, values in (
            ("codes_covered", covered, label),
            ("codes_missing", counted & ~covered, label),
            ("codes_flagged", ~counted, label),
            ("revisions", covered, revision),
        ):
            lists[name].append(sorted(set(values[mine & mask].tolist())))
        split.append(bool((mine & covered & basket).any()))
    _add_moved(rows, pairs, lists["codes_covered"])

    table = supply_stages_table()
    if minerals is not None:
        table = table.where(np.isin(table["mineral"], list(minerals)))
    table = table.select([*KEYS, "unit", "production_source", "production_note"])
    at = join_index([table[k] for k in KEYS], pairs)
    columns = {
        name: _lists([values[i] if i >= 0 else [] for i in at]) for name, values in lists.items()
    }
    n_covered = np.array([len(v) for v in columns["codes_covered"]], dtype=float)
    n_counted = n_covered + [len(v) for v in columns["codes_missing"]]
    made = join_index([table[k] for k in KEYS], [production[k] for k in KEYS])
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n_counted > 0, n_covered / n_counted, np.nan)
    table = table.assign(
        **columns,
        basket_split=np.array([split[i] if i >= 0 else False for i in at], dtype=bool),
        has_trade=n_covered > 0,
        has_production=made >= 0,
        code_share=share,
    )
    stage_rank = join_index([table["stage"]], [np.array(STAGES, dtype=object)])
    stage_rank[stage_rank < 0] = len(STAGES)  # a stage outside the chain sorts last
    _, mineral_code = np.unique(table["mineral"].astype(str), return_inverse=True)
    return table.where(np.lexsort((stage_rank, mineral_code.reshape(-1))))


def _add_moved(rows: Table, pairs: list[np.ndarray], covered: list[list]) -> None:
    """Flows moved to another stage by stage_overrides.csv count there: their codes, marked."""
    if "stage_override" not in rows or not len(pairs[0]):
        return
    moved = rows.where(np.asarray(rows["stage_override"], dtype=bool))
    if not len(moved):
        return
    code, first = group_rows([moved[k] for k in KEYS])
    at = join_index([moved[k][first] for k in KEYS], pairs)
    for g, i in enumerate(at.tolist()):
        if i >= 0:
            codes = {f"{c} (moved)" for c in moved["hs6"][code == g].tolist()}
            covered[i] = sorted(set(covered[i]) | codes)


def _take(values: np.ndarray, at: np.ndarray, fill: object) -> np.ndarray:
    """values[at], `fill` where `at` is -1."""
    out = np.full(len(at), fill, dtype=values.dtype)
    found = at >= 0
    out[found] = values[at[found]]
    return out


def _lists(values: list[list]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out
