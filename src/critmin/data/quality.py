"""Data-quality rules for trade quantities, written down once and applied where flows are read.

Rule Q1 (mis-recorded quantity): within one HS code, revision and year, the reference unit value
is the tonnage-weighted median of the flows' unit values (value / quantity), so that a code whose
bulk is cheap ore (laterite nickel ore) keeps its bulk as the reference. A flow whose unit value is
below 1/20 of that reference *and* that carries at least 1 % of the code's world tonnage is taken
to have its quantity recorded in the wrong unit; its quantity is re-estimated as value / reference
unit value. Example: BACI 2024 records 40,700 t of rare-earth compounds (284690) from Turkey to
Benin worth 2.15 million USD (0.05 USD/kg against about 14 USD/kg for the code), which made Benin
the world's second importer; Q1 puts it at about 150 t. The value is kept as reported.
(CEPII's own BACI reconciliation estimates unit values the same way; Gaulier & Zignago 2010.)
"""

from __future__ import annotations

import pandas as pd

OUTLIER_FACTOR = 20.0
MIN_SHARE_OF_CODE = 0.01


def correct_quantities(rows: pd.DataFrame) -> pd.DataFrame:
    """Apply rule Q1 to trade rows (hs_revision, hs6, gross_t, value_kusd of one year).

    Returns a copy with `gross_t` corrected where the rule fires and two columns added:
    `reported_t` (the quantity as reported) and `quality` ("" or "Q1").
    """
    out = rows.copy()
    out["reported_t"] = out["gross_t"]
    out["quality"] = ""
    priced = (out["gross_t"] > 0) & (out["value_kusd"] > 0)
    if not priced.any():
        return out
    keys = ["hs_revision", "hs6"]
    unit_value = (out["value_kusd"] / out["gross_t"]).where(priced)
    reference = _weighted_median(
        out.loc[priced, keys], unit_value[priced], out.loc[priced, "gross_t"]
    )
    reference = out[keys].merge(reference, on=keys, how="left")["reference"].to_numpy()
    world = out["gross_t"].fillna(0.0).groupby([out[k] for k in keys]).transform("sum")
    fires = (
        priced
        & (unit_value < reference / OUTLIER_FACTOR)
        & (out["gross_t"] >= MIN_SHARE_OF_CODE * world)
    )
    out.loc[fires, "gross_t"] = out.loc[fires, "value_kusd"] / reference[fires.to_numpy()]
    out.loc[fires, "quality"] = "Q1"
    return out


def _weighted_median(keys: pd.DataFrame, values: pd.Series, weights: pd.Series) -> pd.DataFrame:
    """Per group of `keys`: the value at which the cumulative weight reaches half the total."""
    frame = keys.assign(value=values.to_numpy(), weight=weights.to_numpy())
    frame = frame.sort_values([*keys.columns, "value"])
    groups = [frame[c] for c in keys.columns]
    cumulative = frame.groupby(groups)["weight"].cumsum()
    half = frame.groupby(groups)["weight"].transform("sum") / 2
    first = frame[cumulative >= half].drop_duplicates(list(keys.columns))
    return first[[*keys.columns, "value"]].rename(columns={"value": "reference"})
