"""The material balances of a year: per country × mineral × stage, production, imports and exports
by partner and apparent consumption — built once per (year, basis) and read by every metric.

Basis `content` (default): tonnes of the stage's content unit (metal, oxide, REO ...; see
supply_stages.csv), gross trade tonnes × content factor × shared-code share. `gross`: gross tonnes
of trade; production has no gross figure, so it is left out (status `no_production_data`).
`value`: thousand USD; production is valued at the stage's world unit value of the year
(Σ value / Σ content over its flows).

Apparent consumption (USGS Mineral Commodity Summaries, appendix: "apparent consumption =
production + imports − exports"; stock changes are not in the data) is computed within one
stage only. Stages with no open production series (`none` in supply_stages.csv) take the least
production the trade implies, max(0, exports − imports), and say so in `production_status`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from critmin.data.catalog import dataset_stamp
from critmin.data.quality import correct_quantities
from critmin.data.stages import (
    HS_REVISIONS,
    STAGES,
    stage_production,
    stage_trade_rows,
    supply_chain,
    supply_stages,
)
from critmin.errors import InputError

STAGE_BASES = ("content", "gross", "value")
KEYS = ["mineral", "stage"]


def check_stage_basis(basis: str) -> str:
    """`content` (t of the stage's unit), `gross` (t) or `value` (thousand USD)."""
    if basis not in STAGE_BASES:
        raise InputError(f"basis {basis!r} is not one of {', '.join(STAGE_BASES)}")
    return basis


@dataclass(frozen=True)
class Balances:
    """The balances of one year and basis (see the module docstring for units)."""

    year: int
    basis: str
    flows: pd.DataFrame  # mineral, stage, exporter, importer, amount
    production: pd.DataFrame  # mineral, stage, country, amount, source
    coverage: pd.DataFrame  # one row per mineral × stage
    corrections: pd.DataFrame  # flows changed by data-quality rules

    def stage_flows(self, mineral: str, stage: str) -> pd.DataFrame:
        """Flows of one mineral and stage: exporter, importer, amount."""
        rows = self.flows[(self.flows["mineral"] == mineral) & (self.flows["stage"] == stage)]
        return rows[["exporter", "importer", "amount"]]

    def stage_made(self, mineral: str, stage: str) -> pd.DataFrame:
        """Production of one mineral and stage: country, amount."""
        rows = self.production[
            (self.production["mineral"] == mineral) & (self.production["stage"] == stage)
        ]
        return rows[["country", "amount"]]


def balances(
    year: int, basis: str = "content", minerals: tuple[str, ...] | None = None
) -> Balances:
    """The balances of `year` on `basis`, computed once per process and dataset folder;
    `minerals` builds only those minerals' (one question from the command line)."""
    chosen = None if minerals is None else tuple(sorted(set(minerals)))
    return _balances(int(year), check_stage_basis(basis), dataset_stamp(), chosen)


def clear_cache() -> None:
    """Forget computed balances (after an import changes the dataset)."""
    _balances.cache_clear()


@functools.lru_cache(maxsize=16)
def _balances(year: int, basis: str, _data_dir: str, minerals: tuple[str, ...] | None) -> Balances:
    rows = correct_quantities(stage_trade_rows(year, minerals))
    counted = rows[rows["counted"]].copy()
    if basis == "content":
        counted["amount"] = counted["gross_t"] * counted["content_factor"] * counted["share"]
    elif basis == "gross":
        counted["amount"] = counted["gross_t"] * counted["share"]
    else:
        counted["amount"] = counted["value_kusd"] * counted["share"]
    counted = counted[counted["amount"].notna() & (counted["exporter"] != counted["importer"])]
    flows = counted.groupby([*KEYS, "exporter", "importer"], as_index=False)["amount"].sum()
    production = _production(year, basis, rows, minerals)
    coverage = _coverage(rows, production, basis, minerals)
    corrections = rows.loc[
        rows["quality"] != "",
        [*KEYS, "hs_revision", "hs6", "exporter", "importer", "reported_t", "gross_t"],
    ]
    return Balances(year, basis, flows, production, coverage, corrections.reset_index(drop=True))


def _production(
    year: int, basis: str, rows: pd.DataFrame, minerals: tuple[str, ...] | None
) -> pd.DataFrame:
    made = stage_production(year, minerals).rename(columns={"qty_t": "amount"})
    made = made.groupby([*KEYS, "country", "source"], as_index=False)["amount"].sum(min_count=1)
    if basis == "gross":
        return made.iloc[0:0]
    if basis == "value":
        priced = rows[rows["counted"] & (rows["gross_t"] > 0) & rows["value_kusd"].notna()]
        content = priced["gross_t"] * priced["content_factor"] * priced["share"]
        per_unit = (
            priced.assign(content=content, value=priced["value_kusd"] * priced["share"])
            .groupby(KEYS)[["value", "content"]]
            .sum()
        )
        unit_value = (per_unit["value"] / per_unit["content"]).rename("kusd_per_unit")
        made = made.merge(unit_value.reset_index(), on=KEYS, how="inner")
        made["amount"] = made["amount"] * made["kusd_per_unit"]
        made = made.drop(columns="kusd_per_unit")
    return made


def _coverage(
    rows: pd.DataFrame, production: pd.DataFrame, basis: str, minerals: tuple[str, ...] | None
) -> pd.DataFrame:
    """What the data cover per mineral × stage: codes with data, codes missing, flagged codes."""
    chain = supply_chain()
    if minerals is not None:
        chain = chain[chain["mineral"].isin(list(minerals))]
    products = chain.drop_duplicates("row")[[*KEYS, "row"]]
    with_data = (
        rows.assign(has_qty=rows["gross_t"].notna())
        .groupby("row")
        .agg(hs_revision=("hs_revision", "first"), hs6=("hs6", "first"), has_qty=("has_qty", "any"))
    )
    products = products.merge(with_data, left_on="row", right_index=True, how="left")
    # Whether a product is counted or split depends on the revision its data come in (the
    # newest revision where it has none): germanium has its own code in HS92, a shared one later.
    rank = chain["hs_revision"].map({r: i for i, r in enumerate(HS_REVISIONS)})
    newest_revision = chain.loc[rank.groupby(chain["row"]).idxmax(), ["row", "hs_revision"]]
    newest_revision = newest_revision.set_index("row")["hs_revision"].rename("newest")
    products = products.merge(newest_revision, left_on="row", right_index=True)
    products["revision_used"] = products["hs_revision"].fillna(products["newest"])
    products = products.merge(
        chain[["row", "hs_revision", "counted", "basket"]].rename(
            columns={"hs_revision": "revision_used"}
        ),
        on=["row", "revision_used"],
    )
    latest_code = chain[["row", "hs_revision", "hs6"]].rename(
        columns={"hs_revision": "newest", "hs6": "hs6_latest"}
    )
    products = products.merge(latest_code, on=["row", "newest"])
    products["label"] = products["hs6"].fillna(products["hs6_latest"])
    needs_qty = basis != "value"
    products["covered"] = (
        products["counted"]
        & products["hs_revision"].notna()
        & (products["has_qty"].fillna(False).astype(bool) | (not needs_qty))
    )

    def codes(mask: pd.Series, column: str = "label") -> pd.Series:
        picked = products[mask].groupby(KEYS)[column].agg(lambda s: sorted(set(s)))
        return picked.reindex(stages_index).map(lambda v: v if isinstance(v, list) else [])

    stages_index = pd.MultiIndex.from_frame(products[KEYS].drop_duplicates())
    covered, counted = products["covered"], products["counted"]
    split = (covered & products["basket"]).groupby([products[k] for k in KEYS]).any()
    records = pd.DataFrame(
        {
            "codes_covered": codes(covered),
            "codes_missing": codes(counted & ~covered),
            "codes_flagged": codes(~counted),
            "revisions": codes(covered, "hs_revision"),
            "basket_split": split.reindex(stages_index).fillna(False).astype(bool),
        }
    ).reset_index()
    coverage = records
    moved = rows[rows["stage_override"]] if "stage_override" in rows else rows.iloc[0:0]
    if len(moved):  # flows moved to another stage by stage_overrides.csv count there
        extra = moved.groupby(KEYS)["hs6"].agg(lambda s: sorted(set(s)))
        for (mineral, stage), codes in extra.items():
            at = (coverage["mineral"] == mineral) & (coverage["stage"] == stage)
            coverage.loc[at, "codes_covered"] = coverage.loc[at, "codes_covered"].map(
                lambda have, codes=codes: sorted(set(have) | {f"{c} (moved)" for c in codes})
            )
    stages = supply_stages()[[*KEYS, "unit", "production_source", "production_note"]]
    if minerals is not None:
        stages = stages[stages["mineral"].isin(list(minerals))]
    coverage = stages.merge(coverage, on=KEYS, how="left")
    coverage["has_trade"] = coverage["codes_covered"].map(len) > 0
    made_keys = set(zip(production["mineral"], production["stage"], strict=True))
    coverage["has_production"] = [
        (m, s) in made_keys for m, s in zip(coverage["mineral"], coverage["stage"], strict=True)
    ]
    n_counted = coverage["codes_covered"].map(len) + coverage["codes_missing"].map(len)
    coverage["code_share"] = coverage["codes_covered"].map(len) / n_counted.replace(0, np.nan)
    order = {s: i for i, s in enumerate(STAGES)}
    coverage = coverage.sort_values(
        ["mineral", "stage"], key=lambda c: c.map(order) if c.name == "stage" else c
    )
    return coverage.reset_index(drop=True)


def balance_sheet(
    bal: Balances, flows: pd.DataFrame | None = None, production: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per mineral × stage × country: production, imports, exports, apparent consumption.

    `flows`/`production` default to the balances' own (pass bloc-merged ones to treat a bloc as
    one economy). `production_status`: `reported` (a country of a stage with a production
    series, 0 when the series does not list it), `withheld` (the source withholds the figure,
    e.g. USGS's W), `missing` (the series has no figures for the year), `implied` (no series:
    max(0, exports − imports), the least the trade implies) or `none` (gross basis: no
    production figure).
    """
    flows = bal.flows if flows is None else flows
    production = bal.production if production is None else production
    imports = flows.groupby([*KEYS, "importer"])["amount"].sum().rename("imports")
    imports.index = imports.index.set_names([*KEYS, "country"])
    exports = flows.groupby([*KEYS, "exporter"])["amount"].sum().rename("exports")
    exports.index = exports.index.set_names([*KEYS, "country"])
    made = production.groupby([*KEYS, "country"])["amount"].sum(min_count=1)
    made = made.rename("production")
    listed = pd.Series(True, index=made.index, name="listed")
    withheld = made.isna().rename("withheld")
    sheet = pd.concat([made, listed, withheld, imports, exports], axis=1).reset_index()
    sheet[["imports", "exports"]] = sheet[["imports", "exports"]].fillna(0.0)
    coverage = bal.coverage[[*KEYS, "has_production", "production_source"]]
    sheet = sheet.merge(coverage, on=KEYS, how="left")
    listed = sheet.pop("listed").fillna(False).astype(bool)
    withheld = sheet.pop("withheld").fillna(False).astype(bool)
    has_series = sheet["production_source"].ne("none")
    reported = listed | (has_series & sheet["has_production"].fillna(False).astype(bool))
    if bal.basis == "gross":
        sheet["production_status"] = "none"
        sheet["production"] = np.nan
    else:
        sheet["production_status"] = np.select(
            [withheld, reported, has_series], ["withheld", "reported", "missing"], "implied"
        )
        implied = (sheet["exports"] - sheet["imports"]).clip(lower=0.0)
        sheet["production"] = np.select(
            [withheld, reported, has_series],
            [np.nan, sheet["production"].fillna(0.0), np.nan],
            implied,
        )
    sheet["apparent_consumption"] = sheet["production"] + sheet["imports"] - sheet["exports"]
    sheet["has_series"] = has_series
    sheet = sheet.drop(columns=["has_production", "production_source"])
    return sheet.sort_values([*KEYS, "country"]).reset_index(drop=True)
