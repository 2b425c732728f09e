"""Small invented markets for closed-form checks of the market model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from critmin.market import Calibration, calibrate_from_tables, resolve_parameters


def market(
    flows: dict[tuple[str, str], float],
    production: dict[str, float] | None = None,
    prices: dict[str, float] | None = None,
) -> Calibration:
    """A calibration from {(exporter, importer): tonnes}, production {country: tonnes} and
    unit values {exporter: USD/t} (default 1,000 USD/t)."""
    prices = prices or {}
    rows = [
        {
            "exporter": e,
            "importer": i,
            "qty_t": t,
            "value_kusd": t * prices.get(e, 1000.0) / 1000.0,
        }
        for (e, i), t in flows.items()
    ]
    made = pd.DataFrame(
        [{"country": c, "qty_t": t} for c, t in (production or {}).items()],
        columns=["country", "qty_t"],
    )
    return calibrate_from_tables("testium", 2020, pd.DataFrame(rows), made)


def params(
    cal: Calibration,
    sigma: float = 3.0,
    eta: float = 0.5,
    supply: float = 0.8,
    cutoff: float = 10.0,
):
    return resolve_parameters(
        cal.countries,
        "short",
        {
            "armington_sigma": sigma,
            "demand_elasticity": eta,
            "supply_elasticity": supply,
            "cutoff_price": cutoff,
        },
    )


@pytest.fixture
def one_route() -> Calibration:
    """A sells 100 t to B; neither has a domestic market."""
    return market({("AAA", "BBB"): 100.0})


@pytest.fixture
def two_sources() -> Calibration:
    """V buys 70 t from A and 30 t from B; nobody else trades or produces."""
    return market({("AAA", "VVV"): 70.0, ("BBB", "VVV"): 30.0})


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)
