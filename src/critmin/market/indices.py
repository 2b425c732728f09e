"""The world indices of a market result, defined once (issue 16) and used by every output.

**World price index** — what consumers pay: the mean of the markets' composite (CES) price
indices P_v (GSIM, Francois & Hall 2003: the Armington composite price of each importing
market), weighted by each market's base consumption volume D0_v (base-price value units, i.e.
tonnes at base prices), over every market **except the restricting exporters' own** (their
home price falls when their exports are stopped; it is reported on its own as
`exporter_domestic_price_index`). A market priced beyond its choke price P̄_v (cut off, or
nearly) counts at P̄_v: demand there is valued at the choke (docs/market.md), so one market
without suppliers cannot carry the index to infinity:

    W = Σ_(v ∉ R) D0_v · min(P_v, P̄_v) / Σ_(v ∉ R) D0_v        (base = 1)

**Producer price index** — what sellers get: the base-sales-weighted mean of the origins'
producer prices (world price, or the guaranteed floor where higher), Σ_r X0_r p_r / Σ_r X0_r.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WORLD_PRICE_INDEX = (
    "base-consumption-weighted mean of market composite prices outside the restricting "
    "exporters, each at most its choke price (base = 1)"
)
PRODUCER_PRICE_INDEX = "base-sales-weighted mean of producer prices (base = 1)"


# Every percentage a result reports, and what it is a percentage of (a test keeps this list
# complete: a new `_pct` column or summary key must say what it is a share of).
PERCENT_OF = {
    "supply_change_pct": "the origin's base supply (t)",
    "shortfall_pct": "the market's base consumption (composite t)",
    "change_pct": "the flow's base tonnes",
    "floor_tariff_pct": "the flow's landed price before the floor",
    "quota_rent_pct": "the flow's landed price before the quota rent",
    "bloc_shortfall_pct": "the bloc's base consumption (composite t)",
    "zone_non_supplier_supply_added_pct_of_their_base": (
        "the base supply of origins other than China (t)"
    ),
}


def world_price_index(
    consumption_base: np.ndarray,
    composite: np.ndarray,
    cutoff: np.ndarray,
    countries: Sequence[str],
    restricting: Sequence[str] = (),
) -> np.ndarray:
    """W over the last axis: `consumption_base` (N,), `composite` (..., N) (inf where cut off),
    `cutoff` (..., N) choke prices; markets of `restricting` countries left out."""
    weight = np.where(np.isin(np.asarray(countries), list(restricting)), 0.0, consumption_base)
    weight = np.where(consumption_base > 0, weight, 0.0)
    if weight.sum() <= 0:  # every market restricts: fall back on all of them
        weight = np.maximum(consumption_base, 0.0)
    price = np.minimum(np.nan_to_num(composite, nan=np.inf, posinf=np.inf), cutoff)
    price = np.where(weight > 0, price, 0.0)
    return (price * weight).sum(axis=-1) / weight.sum()


def producer_price_index(sales_base: np.ndarray, producer_price: np.ndarray) -> np.ndarray:
    """Σ X0 p / Σ X0 over the last axis."""
    return (producer_price * sales_base).sum(axis=-1) / sales_base.sum()


def restricting_exporters(scenario) -> tuple[str, ...]:
    """Countries whose exports a scenario bans or caps (their home market is not 'the world'
    whose price the index reports)."""
    names = [p.exporter for p in (*scenario.bans, *scenario.quotas)]
    return tuple(dict.fromkeys(names))
