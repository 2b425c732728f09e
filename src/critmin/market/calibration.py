"""Calibration of the Armington market model to one commodity and base year of the data.

The base is the GSIM calibration of Francois & Hall (2003, "Global Simulation Analysis of
Industry-Level Trade Policy", version 3.0): the bilateral matrix of trade values with
domestic shipments on the diagonal, all base prices normalised to one, so that flows are
measured in "base-price value units" (thousand USD at base prices) and every price in the
model is a ratio to its base (a hat). Tonnes and USD/t come back through each origin's
base unit value.

The calibration runs on `critmin.data.columns.Table`s (NumPy columns), without pandas: a model
command must not pay pandas' import (issue 18). `calibrate_from_tables` also takes DataFrames,
as the Python API and the tests pass them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.catalog import query_arrays
from critmin.data.columns import Table, group_sums
from critmin.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

REST_OF_WORLD = "ROW"


@dataclass(frozen=True)
class Calibration:
    """Base flows of one commodity in one year, over one index of countries.

    `countries[i]` is both origin i and market i. `value_kusd[r, v]` is the base flow from
    r to v in thousand USD (the diagonal is domestic absorption = production − exports
    where positive, valued at the origin's unit value); `tonnes[r, v]` the same flow in
    tonnes; `base_price_usd_t[r]` origin r's base unit value (USD/t) and
    `reference_price_usd_t` the world average unit value of trade that year.
    """

    commodity: str
    year: int
    countries: tuple[str, ...]
    value_kusd: np.ndarray
    tonnes: np.ndarray
    base_price_usd_t: np.ndarray
    reference_price_usd_t: float
    rest_of_world: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    stage: str | None = None  # mine | refined | product when calibrated on a stage's balances
    unit: str = "t"  # what `tonnes` count (a stage's content unit: t REO, t Ga ...)
    production_year: int | None = None  # year of the production figures (None: no series)

    @property
    def size(self) -> int:
        return len(self.countries)

    @cached_property
    def positions(self) -> dict[str, int]:
        """Each country's position in `countries` (a dict: compiling a thousand scenarios
        looks countries up tens of thousands of times)."""
        return {code: position for position, code in enumerate(self.countries)}

    def index(self, code: str) -> int:
        """Position of a country; members of the rest of the world map to ROW."""
        position = self.positions.get(code)
        if position is not None:
            return position
        if code in self.rest_of_world:
            return self.positions[REST_OF_WORLD]
        raise InputError(
            f"{code} neither trades nor produces {self.commodity} in {self.year}; "
            "the market model has no base flow for it"
        )

    def sales_kusd(self) -> np.ndarray:
        """Base sales of each origin, domestic included (kUSD): the supply X0."""
        return self._sums["sales_kusd"]

    def absorption_kusd(self) -> np.ndarray:
        """Base purchases of each market, domestic included (kUSD): the demand D0."""
        return self._sums["absorption_kusd"]

    def absorption_t(self) -> np.ndarray:
        """Base consumption of each market in tonnes."""
        return self._sums["absorption_t"]

    @cached_property
    def _sums(self) -> dict[str, np.ndarray]:
        # Computed once: policies of a thousand-scenario batch all ask for them.
        out = {
            "sales_kusd": self.value_kusd.sum(axis=1),
            "absorption_kusd": self.value_kusd.sum(axis=0),
            "absorption_t": self.tonnes.sum(axis=0),
        }
        for array in out.values():
            array.flags.writeable = False
        return out

    @cached_property
    def constants(self) -> dict[str, np.ndarray]:
        """Read-only (N, N) arrays of ones, zeros and −1: the 'no policy' defaults that
        scenarios share until one of them sets a policy (fresh large arrays cost page
        faults, which dominate compiling a thousand scenarios)."""
        size = self.size
        out = {
            "ones": np.ones((size, size)),
            "zeros": np.zeros((size, size)),
            "minus_one": np.full((size, size), -1),
        }
        for array in out.values():
            array.flags.writeable = False
        return out

    @cached_property
    def traded(self) -> np.ndarray:
        """(N, N) bool: the base flow exists (read-only)."""
        mask = self.value_kusd > 0
        mask.flags.writeable = False
        return mask


def calibrate_from_tables(
    commodity: str,
    year: int,
    flows: pd.DataFrame | Table,
    production: pd.DataFrame | Table,
    rest_of_world_share: float = 0.0,
    keep: Iterable[str] = (),
) -> Calibration:
    """Calibrate from tidy tables (pure function; DataFrames or `Table`s).

    `flows`: exporter, importer, value_kusd, qty_t (NaN where not reported); `production`:
    country, qty_t. The origin's base price is its export unit value Σ value / Σ tonnes over
    flows that report both (the world average where it reports none); unreported tonnes are
    value / that price. Countries whose share of world activity (sales + purchases) is below
    `rest_of_world_share` are merged into one region `ROW`, except those in `keep`.
    """
    if not 0.0 <= rest_of_world_share < 1.0:
        raise InputError(f"rest_of_world_share must be in [0, 1), got {rest_of_world_share}")
    flows = _columns(flows, ("exporter", "importer"), ("value_kusd", "qty_t"))
    flows = flows.where((flows["value_kusd"] > 0) & (flows["exporter"] != flows["importer"]))
    if not len(flows):
        raise InputError(f"no trade of {commodity} in {year}: the market cannot be calibrated")
    with_qty = flows.where(flows["qty_t"] > 0)
    if not len(with_qty):
        raise InputError(f"no trade of {commodity} in {year} reports tonnes; no base prices")
    # Sums add as pandas adds them (ndarray.sum is pandas' Series.sum), so the prices are those
    # of the former DataFrame code to the last bit.
    world_price = float(with_qty["value_kusd"].sum() / with_qty["qty_t"].sum()) * 1000.0
    paid = np.column_stack([with_qty["value_kusd"], with_qty["qty_t"]])
    origins, sums = group_sums(with_qty["exporter"], paid)
    unit_value = (sums[:, 0] / sums[:, 1] * 1000.0).tolist()
    origin_price = dict(zip(origins.tolist(), unit_value, strict=True))

    exporter, importer = flows["exporter"].astype(str), flows["importer"].astype(str)
    codes, at = np.unique(np.concatenate([exporter, importer]), return_inverse=True)
    countries = codes.tolist()  # sorted
    price = np.array([origin_price.get(c, world_price) for c in countries])
    rows, cols = at[: len(exporter)], at[len(exporter) :]
    size = len(countries)
    value = np.zeros((size, size))
    tonnes = np.zeros((size, size))
    qty = flows["qty_t"]
    flow_t = np.where(qty > 0, qty, flows["value_kusd"] * 1000.0 / price[rows])
    np.add.at(value, (rows, cols), flows["value_kusd"])
    np.add.at(tonnes, (rows, cols), flow_t)

    production = _columns(production, ("country",), ("qty_t",))
    producers, amounts = group_sums(production["country"], production["qty_t"])
    made = dict(zip(producers.tolist(), amounts.tolist(), strict=True))
    made_t = np.array([float(made.get(c, 0.0)) for c in countries])
    domestic_t = np.maximum(made_t - tonnes.sum(axis=1), 0.0)
    # Producers that never trade still have a market of their own.
    home_only = sorted({c for c, t in made.items() if t > 0} - set(countries))
    notes = []
    if home_only:
        notes.append(
            f"{len(home_only)} producers without trade are left out: " + ", ".join(home_only)
        )
    np.fill_diagonal(tonnes, domestic_t)
    np.fill_diagonal(value, domestic_t * price / 1000.0)

    rest: tuple[str, ...] = ()
    if rest_of_world_share > 0:
        activity = value.sum(axis=0) + value.sum(axis=1)
        small = (activity / activity.sum() < rest_of_world_share) & ~np.isin(countries, list(keep))
        if small.sum() > 1:
            rest = tuple(np.asarray(countries)[small])
            value, tonnes, price, countries = _merge_rest(value, tonnes, price, countries, small)
            notes.append(f"{len(rest)} small countries merged into {REST_OF_WORLD}")
    return Calibration(
        commodity=commodity,
        year=int(year),
        countries=tuple(countries),
        value_kusd=value,
        tonnes=tonnes,
        base_price_usd_t=price,
        reference_price_usd_t=world_price,
        rest_of_world=rest,
        notes=tuple(notes),
    )


def _columns(table: pd.DataFrame | Table, text: tuple[str, ...], numbers: tuple[str, ...]) -> Table:
    """The named columns of a DataFrame or Table, numbers as float64 (NaN where missing)."""
    if not isinstance(table, Table):
        table = Table.from_frame(table[[*text, *numbers]])
    floats = {name: np.asarray(table[name], dtype=float) for name in numbers}
    return table.select([*text, *numbers]).assign(**floats)


def _merge_rest(value, tonnes, price, countries, small):
    """Sum the small countries' rows and columns into one ROW region (its own trade becomes
    its domestic flow); ROW's price is the unit value of its sales."""
    kept = np.flatnonzero(~small)
    order = np.concatenate([kept, np.flatnonzero(small)])
    group = np.concatenate([np.arange(len(kept)), np.full(small.sum(), len(kept))])
    size = len(kept) + 1
    merge = np.zeros((size, len(countries)))
    merge[group, order] = 1.0
    merged_value = merge @ value @ merge.T
    merged_tonnes = merge @ tonnes @ merge.T
    sold_t = merged_tonnes.sum(axis=1)
    row_price = merged_value[-1].sum() * 1000.0 / sold_t[-1] if sold_t[-1] > 0 else price[0]
    merged_price = np.append(price[kept], row_price)
    names = [countries[i] for i in kept] + [REST_OF_WORLD]
    return merged_value, merged_tonnes, merged_price, names


def calibrate(
    commodity: str,
    year: int,
    rest_of_world_share: float = 0.0,
    keep: Iterable[str] = (),
) -> Calibration:
    """Calibrate the market of `commodity` (a commodity id) in `year` from the dataset."""
    flows = query_arrays(
        "WITH codes AS (SELECT commodity, UNNEST(list_concat(hs6, hs6_complementary)) AS hs6 "
        "FROM {commodities} WHERE commodity = ?) "
        "SELECT t.exporter, t.importer, sum(t.value_kusd) AS value_kusd, "
        "CASE WHEN count(t.qty_t) = count(*) THEN sum(t.qty_t) END AS qty_t "
        "FROM {trade} t JOIN codes USING (hs6) "
        "WHERE t.year = ? AND t.value_kusd > 0 GROUP BY ALL",
        [commodity, int(year)],
    )  # a flow whose tonnes are partly unreported gets them from its unit value instead
    production = query_arrays(
        "SELECT country, qty_t FROM {production} WHERE commodity = ? AND year = ? "
        "AND qty_t IS NOT NULL",
        [commodity, int(year)],
    )
    return calibrate_from_tables(
        commodity, year, Table(flows), Table(production), rest_of_world_share, keep
    )
