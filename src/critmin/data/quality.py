"""Data-quality rules for trade quantities, written down once and applied where flows are read.

Rule Q1 (mis-recorded quantity): within one HS code, revision and year, the reference unit value
is the tonnage-weighted median of the flows' unit values (value / quantity), so that a code whose
bulk is cheap ore (laterite nickel ore) keeps its bulk as the reference. A flow whose unit value is
below 1/20 of that reference *and* that carries at least 1 % of the code's world tonnage (each
flow counted once, however many minerals share the code) is taken to have its quantity recorded
in the wrong unit; its quantity is re-estimated as value / reference unit value. Example: BACI
2024 records 40,700 t of rare-earth compounds (284690) from Turkey to Benin worth 2.15 million
USD (0.05 USD/kg against about 14 USD/kg for the code), which made Benin the world's second
importer; Q1 puts it at about 150 t. The value is kept as reported.
(CEPII's own BACI reconciliation estimates unit values the same way; Gaulier & Zignago 2010.)

Rule Q2 (implausible importer, flagged only): a country taking more than 20 % of the world's
imports of a stage at a unit value below 1/5 of the stage's world unit value — the pattern of a
quantity error that Q1's per-flow test did not catch, or of re-exports through a free zone.

Mirror flows: BACI itself reconciles exporter- and importer-reported flows into one figure per
pair (Gaulier & Zignago 2010), so the bundled tables hold no mirror pairs to compare; a user's
raw Comtrade file is not a supported input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.data.columns import Table, group_rows

if TYPE_CHECKING:
    import pandas as pd

OUTLIER_FACTOR = 20.0
MIN_SHARE_OF_CODE = 0.01


def corrected_quantities(rows: Table) -> Table:
    """Apply rule Q1 to trade rows (hs_revision, hs6, exporter, importer, gross_t, value_kusd
    of one year; a flow may be several rows, one per mineral and stage its code maps to).

    Returns a table with `gross_t` corrected where the rule fires and two columns added:
    `reported_t` (the quantity as reported) and `quality` ("" or "Q1"). The input's arrays
    are not changed.
    """
    gross = np.asarray(rows["gross_t"], dtype=float)
    value = np.asarray(rows["value_kusd"], dtype=float)
    quality = np.full(len(rows), "", dtype=object)
    with np.errstate(invalid="ignore"):
        priced = (gross > 0) & (value > 0)
    if not priced.any():
        return rows.assign(gross_t=gross.copy(), reported_t=gross, quality=quality)
    # The code's unit values and world tonnage are over its trade flows, each counted once:
    # a flow of a code that several minerals or stages share (811292: gallium, germanium,
    # indium) is a row of each, and counting it once per row would make the 1 % threshold
    # depend on how many minerals the code is mapped to, and on which were asked for.
    pairs = [k for k in ("exporter", "importer") if k in rows]
    if pairs:
        flow, first = group_rows([rows[k] for k in ("hs_revision", "hs6", *pairs)])
    else:  # rows without partners: each its own flow
        flow = first = np.arange(len(rows))
    group = group_rows([rows["hs_revision"][first], rows["hs6"][first]])[0]
    once_gross, once_priced = gross[first], priced[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_value = np.where(priced, value / gross, np.nan)
    reference = _weighted_median(
        group[once_priced], unit_value[first][once_priced], once_gross[once_priced], len(first)
    )
    world = np.bincount(group, weights=np.where(np.isnan(once_gross), 0.0, once_gross))
    reference, world = reference[group][flow], world[group][flow]
    with np.errstate(invalid="ignore"):
        fires = (
            priced
            & (unit_value < reference / OUTLIER_FACTOR)
            & (gross >= MIN_SHARE_OF_CODE * world)
        )
    used = gross.copy()
    used[fires] = value[fires] / reference[fires]
    quality[fires] = "Q1"
    return rows.assign(gross_t=used, reported_t=gross, quality=quality)


def correct_quantities(rows: pd.DataFrame) -> pd.DataFrame:
    """`corrected_quantities` on a DataFrame: a copy (same index and columns) with `gross_t`
    corrected and `reported_t` and `quality` added."""
    fixed = corrected_quantities(
        Table(
            {
                "hs_revision": rows["hs_revision"].to_numpy(dtype=object),
                "hs6": rows["hs6"].to_numpy(dtype=object),
                **{
                    k: rows[k].to_numpy(dtype=object)
                    for k in ("exporter", "importer")
                    if k in rows.columns
                },
                "gross_t": rows["gross_t"].to_numpy(dtype=float, na_value=np.nan),
                "value_kusd": rows["value_kusd"].to_numpy(dtype=float, na_value=np.nan),
            },
            len(rows),
        )
    )
    out = rows.copy()
    out["reported_t"] = out["gross_t"]
    out["quality"] = fixed["quality"]
    out["gross_t"] = fixed["gross_t"]
    return out


def _weighted_median(
    group: np.ndarray, values: np.ndarray, weights: np.ndarray, groups: int
) -> np.ndarray:
    """Per group: the value at which the cumulative weight (in order of value) reaches half the
    group's total; NaN for a group without rows."""
    order = np.lexsort((values, group))  # stable: equal values keep their order
    group, values, weights = group[order], values[order], weights[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    out = np.full(groups, np.nan)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):  # per group, not per row
        cumulative = np.cumsum(weights[start:end])
        out[group[start]] = values[start + int(np.argmax(cumulative >= cumulative[-1] / 2))]
    return out


def quality_notes(year: int) -> pd.DataFrame:
    """The flows rule Q1 corrected and the importers rule Q2 flags in one year.

    Columns: rule, year, mineral, stage, hs6, exporter, importer, reported_t, used_t,
    unit_value_usd_per_kg (of the flow or importer), reference_usd_per_kg, note.
    """
    import pandas as pd

    from critmin.data.stages import stage_trade_rows

    rows = correct_quantities(stage_trade_rows(year))
    q1 = rows[rows["quality"] == "Q1"]
    notes = [
        pd.DataFrame(
            {
                "rule": "Q1",
                "year": year,
                "mineral": q1["mineral"],
                "stage": q1["stage"],
                "hs6": q1["hs6"],
                "exporter": q1["exporter"],
                "importer": q1["importer"],
                "reported_t": q1["reported_t"],
                "used_t": q1["gross_t"],
                "unit_value_usd_per_kg": q1["value_kusd"] / q1["reported_t"],
                "reference_usd_per_kg": q1["value_kusd"] / q1["gross_t"],
                "note": "quantity re-estimated from value at the code's reference unit value",
            }
        )
    ]
    priced = rows[rows["counted"] & (rows["gross_t"] > 0) & rows["value_kusd"].notna()]
    per_importer = priced.groupby(["mineral", "stage", "importer"])[["gross_t", "value_kusd"]].sum()
    world = per_importer.groupby(level=["mineral", "stage"]).transform("sum")
    share = per_importer["gross_t"] / world["gross_t"]
    unit_value = per_importer["value_kusd"] / per_importer["gross_t"]
    world_value = world["value_kusd"] / world["gross_t"]
    flagged = (share > 0.2) & (unit_value < world_value / 5)
    hit = per_importer[flagged].reset_index()
    notes.append(
        pd.DataFrame(
            {
                "rule": "Q2",
                "year": year,
                "mineral": hit["mineral"],
                "stage": hit["stage"],
                "hs6": "",
                "exporter": "",
                "importer": hit["importer"],
                "reported_t": hit["gross_t"],
                "used_t": hit["gross_t"],
                "unit_value_usd_per_kg": unit_value[flagged].to_numpy(),
                "reference_usd_per_kg": world_value[flagged].to_numpy(),
                "note": [
                    f"{s:.0%} of world imports at under 1/5 of the world unit value"
                    for s in share[flagged]
                ],
            }
        )
    )
    return pd.concat(notes, ignore_index=True)
