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

The balances are built with NumPy on `critmin.data.columns.Table`s, without pandas (a one-question
command must not pay pandas' import, issue 18); the DataFrame attributes are made from the
tables on first use. Group sums add in row order with the compensated (Kahan) summation pandas'
groupby uses, so the figures are those of the DataFrame computation to the last bit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.catalog import dataset_stamp
from critmin.data.columns import Table, frozen, group_rows, group_sum, join_index, kahan_sums
from critmin.data.quality import corrected_quantities
from critmin.data.stages import stage_production_table, stage_trade_table
from critmin.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

STAGE_BASES = ("content", "gross", "value")
KEYS = ["mineral", "stage"]


def check_stage_basis(basis: str) -> str:
    """`content` (t of the stage's unit), `gross` (t) or `value` (thousand USD)."""
    if basis not in STAGE_BASES:
        raise InputError(f"basis {basis!r} is not one of {', '.join(STAGE_BASES)}")
    return basis


@dataclass(frozen=True)
class Balances:
    """The balances of one year and basis (see the module docstring for units).

    Tables: `flow_table` (mineral, stage, exporter, importer, amount), `production_table`
    (mineral, stage, country, amount, source), `coverage_table` (one row per mineral × stage),
    `correction_table` (flows changed by data-quality rules). `flows`, `production`, `coverage`
    and `corrections` are the same as DataFrames, made once on first use (`from_frames` builds
    balances from DataFrames).
    """

    year: int
    basis: str
    flow_table: Table
    production_table: Table
    coverage_table: Table
    correction_table: Table

    @classmethod
    def from_frames(
        cls,
        year: int,
        basis: str,
        flows: pd.DataFrame,
        production: pd.DataFrame,
        coverage: pd.DataFrame,
        corrections: pd.DataFrame,
    ) -> Balances:
        """Balances from DataFrames (kept as the DataFrame attributes, turned into the tables)."""
        frames = {"flows": flows, "production": production, "coverage": coverage}
        frames["corrections"] = corrections
        made = cls(year, basis, *(Table.from_frame(f) for f in frames.values()))
        made.__dict__.update(frames)  # the cached DataFrame properties, as given
        return made

    @functools.cached_property
    def flows(self) -> pd.DataFrame:
        return _frame(self.flow_table)

    @functools.cached_property
    def production(self) -> pd.DataFrame:
        return _frame(self.production_table)

    @functools.cached_property
    def coverage(self) -> pd.DataFrame:
        return _frame(self.coverage_table)

    @functools.cached_property
    def corrections(self) -> pd.DataFrame:
        return _frame(self.correction_table)

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
    _corrected_rows.cache_clear()


def _frame(table: Table) -> pd.DataFrame:
    frame = table.frame()
    if not len(frame):  # no values to tell text by: text columns as pandas reads text
        text = [name for name in frame.columns if frame[name].dtype == object]
        frame = frame.astype(dict.fromkeys(text, "str"))
    return frame


@functools.lru_cache(maxsize=64)
def _balances(year: int, basis: str, _data_dir: str, minerals: tuple[str, ...] | None) -> Balances:
    from critmin.metrics.coverage_table import coverage_table

    rows = _corrected_rows(year, _data_dir, minerals)
    counted = rows.where(np.asarray(rows["counted"], dtype=bool))
    if basis == "content":
        amount = counted["gross_t"] * counted["content_factor"] * counted["share"]
    elif basis == "gross":
        amount = counted["gross_t"] * counted["share"]
    else:
        amount = counted["value_kusd"] * counted["share"]
    keep = ~np.isnan(amount) & (counted["exporter"] != counted["importer"])
    moving = counted.assign(amount=amount).where(keep)
    flows = group_sum(moving, [*KEYS, "exporter", "importer"], "amount")
    production = _production(year, basis, rows, minerals)
    coverage = coverage_table(rows, production, basis, minerals)
    corrections = rows.where(rows["quality"] != "").select(
        [*KEYS, "hs_revision", "hs6", "exporter", "importer", "reported_t", "gross_t"]
    )
    return Balances(year, basis, flows, production, coverage, corrections)


@functools.lru_cache(maxsize=16)
def _corrected_rows(year: int, _data_dir: str, minerals: tuple[str, ...] | None) -> Table:
    """The year's stage trade rows after rule Q1, read and corrected once for every basis
    (content, gross and value balances are built from the same rows); read-only."""
    return frozen(corrected_quantities(stage_trade_table(year, minerals)))


def _production(year: int, basis: str, rows: Table, minerals: tuple[str, ...] | None) -> Table:
    made = stage_production_table(year, minerals).rename({"qty_t": "amount"})
    made = group_sum(made, [*KEYS, "country", "source"], "amount", min_count=1)
    if basis == "gross":
        return made.where(np.zeros(len(made), dtype=bool))
    if basis == "value":  # at the stage's world unit value: Σ value / Σ content of its flows
        priced = rows.where(
            np.asarray(rows["counted"], dtype=bool)
            & (rows["gross_t"] > 0)
            & ~np.isnan(rows["value_kusd"])
        )
        content = priced["gross_t"] * priced["content_factor"] * priced["share"]
        value = priced["value_kusd"] * priced["share"]
        code, first = group_rows([priced[k] for k in KEYS])
        sums = kahan_sums(code, np.column_stack([value, content]), len(first))
        with np.errstate(divide="ignore", invalid="ignore"):
            unit_value = sums[:, 0] / sums[:, 1]
        at = join_index([made[k] for k in KEYS], [priced[k][first] for k in KEYS])
        made = made.where(at >= 0)
        made = made.assign(amount=made["amount"] * unit_value[at[at >= 0]])
    return made


def balance_sheet(
    bal: Balances, flows: pd.DataFrame | None = None, production: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per mineral × stage × country: production, imports, exports, apparent consumption
    (computed once, on the dense grid of `critmin.metrics.stage_grid.balance_grid`).

    `flows`/`production` default to the balances' own (pass bloc-merged ones to treat a bloc as
    one economy). `production_status`: `reported` (a country of a stage with a production
    series, 0 when the series does not list it), `withheld` (the source withholds the figure,
    e.g. USGS's W), `missing` (the series has no figures for the year), `implied` (no series:
    max(0, exports − imports), the least the trade implies) or `none` (gross basis: no
    production figure).
    """
    from critmin.metrics.stage_grid import balance_grid, sheet_rows

    flow_table = bal.flow_table if flows is None else Table.from_frame(flows)
    made = bal.production_table if production is None else Table.from_frame(production)
    return sheet_rows(balance_grid(bal.coverage_table, flow_table, made, bal.basis)[0]).frame()
