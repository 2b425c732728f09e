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

Rule Q2 (implausible importer, flagged only): a country taking more than 20 % of the world's
imports of a stage at a unit value below 1/5 of the stage's world unit value — the pattern of a
quantity error that Q1's per-flow test did not catch, or of re-exports through a free zone.

Mirror flows: BACI itself reconciles exporter- and importer-reported flows into one figure per
pair (Gaulier & Zignago 2010), so the bundled tables hold no mirror pairs to compare; a user's
raw Comtrade file is not a supported input.
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


def quality_notes(year: int) -> pd.DataFrame:
    """The flows rule Q1 corrected and the importers rule Q2 flags in one year.

    Columns: rule, year, mineral, stage, hs6, exporter, importer, reported_t, used_t,
    unit_value_usd_per_kg (of the flow or importer), reference_usd_per_kg, note.
    """
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
