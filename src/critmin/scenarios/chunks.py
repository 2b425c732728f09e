"""Solving chunks of ensemble draws: one chunk of draws as a batch of the market model
(`solve_chunk`, a pure function of its arguments, so it runs on any worker) and a map of it
over chunks on this machine's cores (`in_process`).

`solve_chunk` is the one place a draw becomes a market problem: its bans close the
supplier's export flows, its quota fractions set the supplier's aggregate quota, its three
factors scale σ − 1, η and e (GSIM, Francois & Hall 2003; see `critmin.market.solver`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
from threadpoolctl import threadpool_limits

from critmin.market import Calibration, Parameters
from critmin.market.policies import PolicyArrays
from critmin.market.problem import Problem
from critmin.market.solver import solve
from critmin.market.welfare import price_for_demand
from critmin.scenarios.execution import roomy_allocator

# A draw is solved to max |log(demand / supply)| < 1e-7 (a single study: 1e-10). An
# ensemble's figures are Monte Carlo estimates: on the rare-earth ensemble of `critmin
# ensemble` (refined stage 2024, 10,000 draws, EU bloc) the bloc's expected shortfall has a
# standard error of 13 t, and going from 1e-8 to 1e-7 moves it by 4e-6 t, no draw's
# shortfall in any country by more than 1.5e-3 t (1.6e-7 of that country's base
# consumption), the world price index by under 5e-7, and saves 11 % of the Newton steps.
TOLERANCE = 1e-7


def solve_chunk(
    cal: Calibration,
    policy: PolicyArrays,
    params: Parameters,
    rows: np.ndarray,
    targets: np.ndarray,
    offset: int,
    banned: np.ndarray,
    fraction: np.ndarray,
    multipliers: np.ndarray,
    stock: np.ndarray | None = None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    unknowns: bool = False,
) -> dict[str, np.ndarray]:
    """Solve one chunk of draws (a pure function of its arguments: runs on any worker).
    `stock` (rows × N, base-price kUSD) replaces the policy's stockpile releases; `start`
    (z, u) is where Newton starts (see `solver.solve`); `unknowns` adds the solution's z
    and u to the output.

    Outputs per draw and market: `consumed` (composite consumption / base), `composite`
    (the import composite price P_v, inf where cut off) and `price` (what consumers pay:
    P_v, or where a release exceeds what they buy at P_v the lower price that clears it,
    as in `MarketResult`)."""
    count, size = len(banned), cal.size
    is_open = np.repeat(policy.open[None], count, axis=0)
    for k, row in enumerate(rows):
        hit = np.flatnonzero(banned[:, k])
        if len(hit):  # a ban stops exports; the supplier's home market keeps its own output
            is_open[np.ix_(hit, [row], targets[targets != row])] = False
    fractions = np.repeat(policy.quota_fraction[None], count, axis=0)
    fractions[:, offset : offset + len(rows)] = fraction
    # Quotas that no draw of the chunk sets are left out of the system: their wedge is 0
    # and they would only add identity rows to every Jacobian and factorisation.
    quota_id, on = policy.quota_id, np.isfinite(fractions).any(axis=0)
    if not on.all():
        keep = np.flatnonzero(on)
        remap = np.full(len(on) + 1, -1)  # remap[-1] = -1: pairs without a quota
        remap[keep] = np.arange(len(keep))
        quota_id, fractions = remap[quota_id], fractions[:, keep]
        if start is not None:
            start = (start[0], start[1][:, keep])

    def spread(vector: np.ndarray) -> np.ndarray:
        return np.broadcast_to(vector, (count, size))

    problem = Problem(
        q0=cal.value_kusd,
        tariff=np.broadcast_to(policy.tariff * policy.export_tax, (count, size, size)),
        open=is_open,
        floor=np.broadcast_to(policy.floor, (count, size, size)),
        guarantee=spread(policy.guarantee),
        stock=spread(policy.stock) if stock is None else stock,
        capacity=spread(policy.capacity),
        sigma=1.0 + (params.armington_sigma - 1.0) * multipliers[:, :1],
        eta=params.demand_elasticity * multipliers[:, 1:2],
        supply_elasticity=params.supply_elasticity * multipliers[:, 2:3],
        cutoff=spread(params.cutoff_price),
        quota_id=quota_id,
        quota_fraction=fractions,
    )
    solution = solve(
        problem, start=start, tolerance=TOLERANCE, fields=("demand_index", "composite")
    )
    state = solution.state
    extra = {}
    if unknowns:
        u = np.zeros((count, len(on)))
        u[:, on] = solution.u
        extra = {"z": solution.z, "u": u}
    # Consumption: demand at the composite price, or the release where that is larger
    # (the surplus is sold at the lower price that clears it; see market/result.py).
    demand = np.where(problem.alive, state.demand_index, 0.0)
    consumed = np.maximum(demand, problem.stock_ratio)
    composite = np.where(problem.alive, state.composite, np.inf)
    price = composite
    flooded = problem.stock_ratio > demand
    if flooded.any():
        with np.errstate(divide="ignore", over="ignore"):
            clearing = price_for_demand(
                np.maximum(problem.stock_ratio, 1e-300), problem.eta, problem.sigma, problem.cutoff
            )
        price = np.where(flooded, clearing, composite)
    return {
        **extra,
        "consumed": consumed,
        "composite": state.composite,
        "price": price,
        "iterations": solution.iterations,
    }


def in_process(
    function: Callable, shared: tuple, chunks: list[tuple], progress: Callable | None
) -> list:
    """`function(*shared, *chunk)` for every chunk on this machine's cores (threads: numpy
    releases the GIL; BLAS held to one thread per chunk), results in chunk order;
    `progress(n)` after each chunk, n = its number of draws."""
    roomy_allocator()
    workers = max(1, min(len(chunks), os.cpu_count() or 1))
    outputs: list = [None] * len(chunks)
    # BLAS held to one thread for the whole pool (limits set per thread would be undone by
    # whichever thread leaves first, and a multi-threaded BLAS sums in another order).
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = {pool.submit(function, *shared, *chunk): i for i, chunk in enumerate(chunks)}
        for future in as_completed(futures):
            index = futures[future]
            outputs[index] = future.result()
            if progress:
                progress(len(chunks[index][0]))
    return outputs
