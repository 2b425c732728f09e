"""Welfare and market outcomes of a solved scenario, in kUSD and tonnes.

Surplus changes follow GSIM (Francois & Hall 2003, section 3): consumer surplus is the
area left of the composite demand curve D = D0 · P^(−η) between the base and the new
composite price, producer surplus the area left of the supply curve X = X0 · p^e between
the base and the new producer price; tariff revenue, export-tax revenue, quota rents and the
floor fund are the price wedges times the flows they apply to. Base prices are 1 and base
policies zero (no base tariff data for these HS lines), so all base transfers are zero.
"""

from __future__ import annotations

import numpy as np


def consumer_surplus_change(
    base_demand: np.ndarray,
    composite: np.ndarray,
    eta: np.ndarray,
    sigma: np.ndarray,
    cutoff: np.ndarray,
) -> np.ndarray:
    """ΔCS_v = −D0_v ∫_1^P D(x) dx for the composite demand of the solver (kUSD):
    D = x^(−η) up to the cut-off P̄, then P̄^(−η) (x/P̄)^(−(σ+1)), so

        ∫_1^P D = (min(P, P̄)^(1−η) − 1)/(1 − η) + [P > P̄] P̄^(1−η) (1 − (P/P̄)^(−σ))/σ,

    (ln min(P, P̄) for η = 1); finite even for a market cut off from every supplier (P = ∞).
    """
    below = np.minimum(composite, cutoff)
    one_minus = 1.0 - eta
    near_one = np.abs(one_minus) < 1e-9
    safe = np.where(near_one, 1.0, one_minus)
    area = np.where(near_one, np.log(below), (below**one_minus - 1.0) / safe)
    with np.errstate(divide="ignore", over="ignore"):
        tail = cutoff**one_minus * (1.0 - (composite / cutoff) ** (-sigma)) / sigma
    area = area + np.where(composite > cutoff, tail, 0.0)
    return -base_demand * area


def price_for_demand(index: np.ndarray, eta: np.ndarray, sigma: np.ndarray, cutoff: np.ndarray):
    """Inverse of the composite demand: the price index at which D(P) = `index` (> 0)."""
    at_cut = cutoff ** (-eta)
    with np.errstate(divide="ignore", over="ignore"):
        inside = index ** (-1.0 / eta)
        beyond = cutoff * (index / at_cut) ** (-1.0 / (sigma + 1.0))
    return np.where(index >= at_cut, inside, beyond)


def producer_surplus_change(
    base_supply: np.ndarray,
    producer_price: np.ndarray,
    elasticity: np.ndarray,
    capacity: np.ndarray,
    selling: np.ndarray,
) -> np.ndarray:
    """ΔPS_r = X0_r ∫_1^p x^e dx for X = X0 · min(x^e, K) (kUSD). Above the capacity price
    p_K = K^(1/e) output is flat, so the area adds K (p − p_K). An origin that can no longer
    sell (`selling` False) loses its whole base surplus X0 / (1 + e)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        cap_price = np.where(
            np.isfinite(capacity) & (elasticity > 0), capacity ** (1.0 / elasticity), np.inf
        )
    kink = np.minimum(producer_price, cap_price)
    area = (kink ** (1.0 + elasticity) - 1.0) / (1.0 + elasticity)
    flat = np.where(producer_price > cap_price, capacity * (producer_price - cap_price), 0.0)
    change = base_supply * (area + flat)
    return np.where(selling, change, -base_supply / (1.0 + elasticity))


def wedges(
    world_price: np.ndarray,
    export_tax: np.ndarray,
    tariff: np.ndarray,
    pair_rent: np.ndarray,
    landed: np.ndarray,
    unfloored: np.ndarray,
    flows: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-flow transfers (kUSD) from the price chain P* → (1+x) → (1+τ) → (1+t) → floor:
    export tax x·P*·q to the exporter's government, quota rent τ·P*(1+x)·q to licence holders,
    tariff t·P*(1+x)(1+τ)·q and floor tariff (p − that)·q to the importer's government."""
    fob = world_price[:, None] * flows
    taxed = fob * export_tax
    rented = taxed * (1.0 + pair_rent)
    return {
        "export_tax": taxed - fob,
        "quota_rent": rented - taxed,
        "tariff": rented * tariff - rented,
        "floor_tariff": (landed - unfloored) * flows,
    }
