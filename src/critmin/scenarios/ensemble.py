"""Monte Carlo ensembles: restriction events and elasticities drawn, every draw solved by
the batched market model, shortfall distributions per importer and for the bloc.

Reproducible by construction: all random numbers are drawn up front from one seeded
generator (numpy PCG64), the draws are cut into fixed chunks of 64 whatever the number of
workers, and each chunk is solved on its own — so the same seed gives the same numbers
on one core, on several, or on a Dask cluster (`distributed`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from critmin.errors import InputError
from critmin.market import Calibration, Parameters, Quota, Scenario
from critmin.market.policies import PolicyArrays, compile_scenario
from critmin.market.solver import Problem, solve
from critmin.scenarios.hazard import HazardModel

CHUNK = 64
MAX_DRAWS = 100_000  # default resource limit; raise it explicitly for bigger runs
# No configuration goes beyond this: a draw holds about 250 bytes of results (10 M draws
# reached 2.5 GB), so 1 M draws stay near 250 MB on an analyst's laptop.
HARD_MAX_DRAWS = 1_000_000


@dataclass
class Draws:
    """The random part of an ensemble, drawn up front."""

    suppliers: tuple[str, ...]  # candidate restricting suppliers
    probabilities: np.ndarray  # (K,) annual event probability
    event: np.ndarray  # (B, K) bool: the supplier restricts in this draw
    banned: np.ndarray  # (B, K) bool: ... by a ban (else a quota)
    fraction: np.ndarray  # (B, K) quota fraction (inf where no quota)
    multipliers: np.ndarray  # (B, 3) on σ − 1, η, e


def candidate_suppliers(cal: Calibration, min_share: float = 0.01, limit: int = 12) -> list[str]:
    """Exporters with at least `min_share` of world exports (base value), largest first."""
    exports = cal.value_kusd.sum(axis=1) - np.diag(cal.value_kusd)
    shares = exports / exports.sum()
    order = np.argsort(-shares)
    return [
        cal.countries[i]
        for i in order[:limit]
        if shares[i] >= min_share and cal.countries[i] != "ROW"
    ]


def draw(
    rng: np.random.Generator, probabilities: np.ndarray, hazard: HazardModel, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events (Bernoulli per supplier), ban or quota, quota fractions, elasticity factors."""
    size = len(probabilities)
    event = rng.random((count, size)) < probabilities
    banned = event & (rng.random((count, size)) < hazard.ban_share)
    fraction = rng.uniform(hazard.quota_low, hazard.quota_high, (count, size))
    fraction = np.where(event & ~banned, fraction, np.inf)
    spread = np.sqrt(np.log1p(hazard.elasticity_cv**2))  # lognormal with that CV, mean 1
    multipliers = rng.lognormal(-0.5 * spread**2, spread, (count, 3))
    return event, banned, fraction, multipliers


def base_policy(
    cal: Calibration, scenario: Scenario, suppliers: Sequence[str], targets: tuple[str, ...] | None
) -> tuple[PolicyArrays, int]:
    """The study's policies plus one aggregate quota per candidate supplier (its fraction
    set per draw; inf = not restricting), and the index of the first candidate quota."""
    offset = len(compile_scenario(cal, scenario).quota_fraction)
    candidates = tuple(Quota(s, 0.5, targets, aggregate=True, strict=False) for s in suppliers)
    with_candidates = Scenario(**{**scenario.__dict__, "quotas": scenario.quotas + candidates})
    try:
        return compile_scenario(cal, with_candidates), offset
    except InputError as error:
        raise InputError(f"ensemble restrictions clash with the study's quotas: {error}") from None


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
) -> dict[str, np.ndarray]:
    """Solve one chunk of draws (a pure function of its arguments: runs on any worker).
    `stock` (rows × N, base-price kUSD) replaces the policy's stockpile releases."""
    count, size = len(banned), cal.size
    is_open = np.repeat(policy.open[None], count, axis=0)
    for k, row in enumerate(rows):
        hit = np.flatnonzero(banned[:, k])
        if len(hit):  # a ban stops exports; the supplier's home market keeps its own output
            is_open[np.ix_(hit, [row], targets[targets != row])] = False
    fractions = np.repeat(policy.quota_fraction[None], count, axis=0)
    fractions[:, offset : offset + len(rows)] = fraction

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
        quota_id=policy.quota_id,
        quota_fraction=fractions,
    )
    solution = solve(problem)
    state = solution.state
    return {
        # Consumption: demand at the composite price, or the release where that is larger
        # (the surplus is sold at the lower price that clears it; see market/result.py).
        "consumed": np.maximum(
            np.where(problem.alive, state.demand_index, 0.0), problem.stock_ratio
        ),
        "world_price": state.world_price,
        "composite": state.composite,
        "iterations": solution.iterations,
    }


@dataclass
class EnsembleResult:
    """Distributions of an ensemble; arrays are per draw."""

    calibration: Calibration
    draws: Draws
    bloc: tuple[str, ...]
    shortfall_t: np.ndarray  # (B, N)
    world_price_index: np.ndarray  # (B,)
    iterations: np.ndarray  # (B,)
    seed: int
    notes: list[str] = field(default_factory=list)

    @property
    def bloc_shortfall_t(self) -> np.ndarray:
        inside = np.isin(self.calibration.countries, self.bloc)
        return self.shortfall_t[:, inside].sum(axis=1)

    @property
    def bloc_consumption_t(self) -> float:
        inside = np.isin(self.calibration.countries, self.bloc)
        return float(self.calibration.absorption_t()[inside].sum())

    def importers(self) -> pd.DataFrame:
        """Per importer: expected shortage, percentiles and CVaR 95 % of the shortfall."""
        base = self.calibration.absorption_t()
        keep = base > 0
        rows = distribution(self.shortfall_t[:, keep])
        rows.insert(0, "country", np.asarray(self.calibration.countries)[keep])
        rows.insert(1, "consumption_base_t", base[keep])
        rows["expected_shortfall_pct"] = rows["expected_shortfall_t"] / base[keep] * 100
        rows["in_bloc"] = rows["country"].isin(self.bloc)
        return rows.sort_values("expected_shortfall_t", ascending=False).reset_index(drop=True)

    def summary(self) -> dict:
        """Bloc distribution, world price distribution, event frequencies."""
        bloc = distribution(self.bloc_shortfall_t[:, None]).iloc[0].to_dict()
        consumption = self.bloc_consumption_t
        price = np.percentile(self.world_price_index, [5, 50, 95])
        return {
            "commodity": self.calibration.commodity,
            "year": self.calibration.year,
            "draws": len(self.world_price_index),
            "seed": self.seed,
            "bloc": list(self.bloc),
            "bloc_consumption_base_t": consumption,
            **{f"bloc_{k}": float(v) for k, v in bloc.items()},
            "bloc_expected_shortfall_pct": float(bloc["expected_shortfall_t"] / consumption * 100)
            if consumption > 0
            else None,
            "world_price_index_p5": float(price[0]),
            "world_price_index_p50": float(price[1]),
            "world_price_index_p95": float(price[2]),
            "suppliers": {
                s: {
                    "annual_probability": float(p),
                    "event_share": float(e),
                    "ban_share": float(b),
                }
                for s, p, e, b in zip(
                    self.draws.suppliers,
                    self.draws.probabilities,
                    self.draws.event.mean(axis=0),
                    self.draws.banned.mean(axis=0),
                    strict=True,
                )
            },
            "newton_iterations_max": int(self.iterations.max(initial=0)),
            "notes": self.notes,
        }


def distribution(values: np.ndarray) -> pd.DataFrame:
    """Columns of (B, M) draws → mean (expected), p5, p50, p95 and CVaR 95 % (the mean of
    the worst 5 % of draws; Rockafellar & Uryasev 2000, "Optimization of conditional
    value-at-risk", Journal of Risk 2(3))."""
    count = values.shape[0]
    worst = max(1, int(np.ceil(0.05 * count)))
    ordered = np.sort(values, axis=0)
    p5, p50, p95 = np.percentile(values, [5, 50, 95], axis=0)
    return pd.DataFrame(
        {
            "expected_shortfall_t": values.mean(axis=0),
            "p5_t": p5,
            "p50_t": p50,
            "p95_t": p95,
            "cvar95_t": ordered[-worst:].mean(axis=0),
        }
    )


def run_ensemble(
    cal: Calibration,
    params: Parameters,
    bloc: Sequence[str],
    draws: int,
    seed: int,
    hazard: HazardModel | None = None,
    scenario: Scenario | None = None,
    targets: str = "all",
    executor: Callable | None = None,
    progress: Callable[[int], None] | None = None,
    max_draws: int = MAX_DRAWS,
) -> EnsembleResult:
    """Draw `draws` restriction scenarios around `scenario` on `cal` and solve them all.

    `targets`: restrictions hit every destination (`all`) or only the bloc (`bloc`).
    `executor(function, argument_lists)` maps `solve_chunk` over chunks (default: in
    process); `progress(n)` is called with the number of draws finished.
    """
    if int(max_draws) > HARD_MAX_DRAWS:
        raise InputError(
            f"max_draws {max_draws:,} exceeds the hard maximum of {HARD_MAX_DRAWS:,} draws "
            "(about 250 MB of results); split the study into several seeds"
        )
    if not 1 <= int(draws) <= max_draws:
        raise InputError(
            f"draws must be between 1 and {max_draws:,} (the configured limit; raise it "
            f"with max_draws), got {draws:,}"
        )
    if targets not in ("all", "bloc"):
        raise InputError(f"targets must be 'all' or 'bloc', got {targets!r}")
    hazard = hazard or HazardModel()
    scenario = scenario or Scenario("ensemble")
    bloc = tuple(c for c in bloc if c in cal.countries)
    if not bloc:
        raise InputError(f"no member of the bloc trades {cal.commodity} in {cal.year}")
    suppliers = candidate_suppliers(cal)
    probabilities = hazard.probabilities(suppliers, cal.year)
    rng = np.random.default_rng(seed)
    event, banned, fraction, multipliers = draw(rng, probabilities, hazard, int(draws))
    target_codes = bloc if targets == "bloc" else None
    policy, offset = base_policy(cal, scenario, suppliers, target_codes)
    rows = np.array([cal.index(s) for s in suppliers], dtype=int)
    target_mask = np.isin(cal.countries, bloc) if targets == "bloc" else np.ones(cal.size, bool)
    target_cols = np.flatnonzero(target_mask)
    starts = range(0, int(draws), CHUNK)
    arguments = [
        (
            cal,
            policy,
            params,
            rows,
            target_cols,
            offset,
            banned[s : s + CHUNK],
            fraction[s : s + CHUNK],
            multipliers[s : s + CHUNK],
        )
        for s in starts
    ]
    outputs = (executor or _in_process)(solve_chunk, arguments, progress)
    consumed = np.concatenate([o["consumed"] for o in outputs])
    world = np.concatenate([o["world_price"] for o in outputs])
    sales = cal.sales_kusd()
    return EnsembleResult(
        calibration=cal,
        draws=Draws(tuple(suppliers), probabilities, event, banned, fraction, multipliers),
        bloc=bloc,
        shortfall_t=cal.absorption_t() * (1.0 - consumed),
        world_price_index=(world * sales).sum(axis=1) / sales.sum(),
        iterations=np.concatenate([o["iterations"] for o in outputs]),
        seed=int(seed),
    )


def _in_process(function: Callable, arguments: list[tuple], progress: Callable | None) -> list:
    """Chunks on this machine's cores (threads: numpy releases the GIL; BLAS held to one
    thread per chunk), results in chunk order."""
    workers = max(1, min(len(arguments), os.cpu_count() or 1))
    outputs: list = [None] * len(arguments)
    # BLAS held to one thread for the whole pool (limits set per thread would be undone by
    # whichever thread leaves first, and a multi-threaded BLAS sums in another order).
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = {pool.submit(function, *args): i for i, args in enumerate(arguments)}
        for future in as_completed(futures):
            index = futures[future]
            outputs[index] = future.result()
            if progress:
                progress(len(arguments[index][6]))
    return outputs
