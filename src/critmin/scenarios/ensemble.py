"""Monte Carlo ensembles: restriction events and elasticities drawn, every draw solved by
the batched market model, shortfall distributions per importer and for the bloc.

Reproducible by construction: all random numbers are drawn up front from one seeded
generator (numpy PCG64), the draws are cut into fixed chunks of 64 whatever the number of
workers, and each chunk is solved on its own — so the same seed gives the same numbers
on one core, on several, or on a Dask cluster (`distributed`).

Fast by grouping: draws are ordered by their restriction pattern (which suppliers ban,
which set a quota) so that a chunk holds alike draws, and each pattern is first solved
once at the central elasticities and quota fraction; its draws start Newton from that
solution (about four iterations instead of six). Draws that restrict nothing are the
base point itself when the study's own policies leave it a solution (no solve at all);
otherwise they are solved like the others.

The world price index of a draw is the project's one definition
(`market.indices.world_price_index`): what consumers pay, base-consumption weighted, over
the markets outside the restricting exporters — those of the study and the suppliers that
restrict in that draw. (Before issue 16 the ensemble kept its own sales-weighted mean of
origins' world prices, which a ban in the largest supplier's home market pulled down.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from critmin.data.columns import Table
from critmin.errors import InputError
from critmin.market import Calibration, Parameters, Quota, Scenario
from critmin.market.indices import restricting_exporters, world_price_index
from critmin.market.policies import PolicyArrays, compile_scenario
from critmin.market.solver import Problem, solve
from critmin.market.welfare import price_for_demand
from critmin.scenarios.execution import roomy_allocator
from critmin.scenarios.hazard import HazardModel

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 64
START_CHUNK = 16  # chunks of the start-point solves: few, so cut small to use every core
MIN_PATTERN_DRAWS = 3  # a restriction pattern this frequent gets its own Newton start
LINEAR_PATTERN_DRAWS = 20  # ... and this frequent, a first-order one (see start_points)
STEP = 0.05  # finite-difference step on the logs of elasticity factors and quota fractions
# A draw is solved to max |log(demand / supply)| < 1e-8 (the solver's default is 1e-10): the
# shortfalls move by under 2e-4 t and the bloc's expected shortfall by under 1e-8 points
# (rare earths 2023, 10,000 draws), far inside the Monte Carlo error of ~1 % of the figure,
# and a tenth of the Newton steps is saved.
TOLERANCE = 1e-8
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
    solution = solve(problem, start=start, tolerance=TOLERANCE)
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


def base_solves(cal: Calibration, policy: PolicyArrays, params: Parameters, offset: int) -> bool:
    """True where the base point (every price 1, no quota rent) solves the market under
    `policy` with its candidate quotas inactive, whatever the elasticities: no tariff, tax,
    closed base flow, binding floor, guarantee or capacity, release or binding quota, and
    no market choked at the base price."""
    fractions = policy.quota_fraction[:offset]  # the study's quotas (candidates follow)
    return bool(
        np.all(policy.tariff * policy.export_tax == 1.0)
        and np.all(policy.open[cal.value_kusd > 0])
        and np.all(policy.floor <= 1.0)
        and np.all(policy.guarantee <= 1.0)
        and np.all(policy.capacity >= 1.0)
        and not np.any(policy.stock)
        and np.all(~np.isfinite(fractions) | (fractions >= 1.0))
        and np.all(params.cutoff_price >= 1.0)
    )


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

    def importer_table(self) -> Table:
        """Per importer (t of the stage's unit): expected shortfall, p5/p50/p95, CVaR 95 %,
        the expected shortfall as % of base consumption, and membership of the bloc; the
        largest expected shortfall first (ties in the calibration's country order)."""
        base = self.calibration.absorption_t()
        keep = np.flatnonzero(base > 0)
        figures = distribution_columns(self.shortfall_t[:, keep])
        countries = np.asarray(self.calibration.countries, dtype=object)[keep]
        rows = Table(
            {
                "country": countries,
                "consumption_base_t": base[keep],
                **figures,
                "expected_shortfall_pct": figures["expected_shortfall_t"] / base[keep] * 100,
                "in_bloc": np.isin(countries.astype(str), list(self.bloc)),
            }
        )
        return rows.where(np.argsort(-figures["expected_shortfall_t"], kind="stable"))

    def importers(self) -> pd.DataFrame:
        """`importer_table` as a DataFrame."""
        return self.importer_table().frame()

    def summary(self) -> dict:
        """Bloc distribution, world price distribution, event frequencies."""
        bloc = {k: v[0] for k, v in distribution_columns(self.bloc_shortfall_t[:, None]).items()}
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


def distribution_columns(values: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of (B, M) draws → mean (expected), p5, p50, p95 and CVaR 95 % (the mean of
    the worst 5 % of draws; Rockafellar & Uryasev 2000, "Optimization of conditional
    value-at-risk", Journal of Risk 2(3)), each an (M,) array."""
    count = values.shape[0]
    worst = max(1, int(np.ceil(0.05 * count)))
    ordered = np.sort(values, axis=0)
    p5, p50, p95 = np.percentile(values, [5, 50, 95], axis=0)
    return {
        "expected_shortfall_t": values.mean(axis=0),
        "p5_t": p5,
        "p50_t": p50,
        "p95_t": p95,
        "cvar95_t": ordered[-worst:].mean(axis=0),
    }


def distribution(values: np.ndarray) -> pd.DataFrame:
    """`distribution_columns` as a DataFrame, one row per column of `values`."""
    import pandas as pd

    return pd.DataFrame(distribution_columns(values))


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
    shared = (cal, policy, params, rows, target_cols, offset)
    order, start_z, start_u = start_points(shared, hazard, banned, fraction, multipliers)
    # Draws without an event are the base itself where the study sets no policy that moves
    # it: no solve (the numbers it would give are 1 to rounding).
    calm = ~event[order].any(axis=1) & base_solves(cal, policy, params, offset)
    solved = np.flatnonzero(~calm)  # positions in `order`
    at = [solved[s : s + CHUNK] for s in range(0, len(solved), CHUNK)]
    parts = [order[a] for a in at]  # the draws of each chunk
    chunks = [
        (banned[p], fraction[p], multipliers[p], None, (start_z[a], start_u[a]))
        for a, p in zip(at, parts, strict=True)
    ]
    if progress and calm.any():
        progress(int(calm.sum()))
    outputs = (executor or _in_process)(solve_chunk, shared, chunks, progress)
    study = restricting_exporters(scenario)
    base = order[calm]
    alive = (policy.open & (cal.value_kusd > 0)).any(axis=0)
    consumed = np.empty((len(order), cal.size))
    consumed[base] = np.where(alive, 1.0, 0.0)
    iterations = np.zeros(len(order), dtype=int)
    prices = np.empty(len(order))
    if len(base):
        still = np.where(alive, 1.0, np.inf)[None]
        prices[base] = world_index(cal, params, still, event[base[:1]], suppliers, study)[0]
    for part, out in zip(parts, outputs, strict=True):
        consumed[part], iterations[part] = out["consumed"], out["iterations"]
        prices[part] = world_index(cal, params, out["price"], event[part], suppliers, study)
    return EnsembleResult(
        calibration=cal,
        draws=Draws(tuple(suppliers), probabilities, event, banned, fraction, multipliers),
        bloc=bloc,
        shortfall_t=cal.absorption_t() * (1.0 - consumed),
        world_price_index=prices,
        iterations=iterations,
        seed=int(seed),
    )


def world_index(
    cal: Calibration,
    params: Parameters,
    price: np.ndarray,
    events: np.ndarray,
    suppliers: Sequence[str],
    study: Sequence[str],
) -> np.ndarray:
    """The world price index (`indices.world_price_index`, the one definition every result
    uses) of each draw: `price` (B, N) what consumers pay; the markets left out are those
    of the study's restricting exporters `study` and of the suppliers restricting in the
    draw (`events` (B, K) over `suppliers`)."""
    out = np.empty(len(price))
    sets, which = np.unique(events, axis=0, return_inverse=True)
    which = which.ravel()
    for k, hit in enumerate(sets):
        draws = which == k
        restricting = (*study, *(s for s, h in zip(suppliers, hit, strict=True) if h))
        out[draws] = world_price_index(
            cal.absorption_kusd(), price[draws], params.cutoff_price, cal.countries, restricting
        )
    return out


def start_points(
    shared: tuple,
    hazard: HazardModel,
    banned: np.ndarray,
    fraction: np.ndarray,
    multipliers: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order the draws by restriction pattern and give each a Newton start.

    A pattern is the set of suppliers that ban and the set that set a quota. A pattern with
    at least `MIN_PATTERN_DRAWS` draws is solved once (in process) at its central values:
    elasticity factors 1, quota fractions mid-range. With at least `LINEAR_PATTERN_DRAWS`
    draws it is also solved with each of those values multiplied by e^STEP (three elasticity
    factors, one fraction per quota), and its draws start from the first-order prediction
    z ≈ z_c + Σ_k (∂z/∂θ_k)(θ_k − θ_c,k) in θ = the logs of those values (finite
    differences; in logs the prediction is closer than in the values themselves, and Newton
    takes 4 % fewer steps from it); the other patterns' draws
    start from the central solution, the rarest from the base point. Returns the draw order
    (patterns together, draw order kept within a pattern) and the (B, S), (B, J) starts in
    that order.
    """
    cal, policy, _, rows, _, _ = shared
    code = np.concatenate([banned, np.isfinite(fraction)], axis=1)
    if code.shape[1] < 63:  # patterns as integers, first column the highest bit: a 1-D
        # unique in the same (lexicographic) order as a unique over rows, much faster
        bits = 1 << np.arange(code.shape[1] - 1, -1, -1, dtype=np.int64)
        _, first, which, counts = np.unique(
            code.astype(np.int64) @ bits, return_index=True, return_inverse=True, return_counts=True
        )
        patterns = code[first]
    else:
        patterns, which, counts = np.unique(code, axis=0, return_inverse=True, return_counts=True)
    which = which.ravel()
    order = np.argsort(which, kind="stable")
    size = len(rows)
    sellers = int((cal.value_kusd.sum(axis=1) > 0).sum())
    start_z = np.zeros((len(which), sellers))
    start_u = np.zeros((len(which), len(policy.quota_fraction)))
    central = np.flatnonzero((counts >= MIN_PATTERN_DRAWS) & patterns.any(axis=1))
    if not len(central):
        return order, start_z, start_u
    mid = 0.5 * (hazard.quota_low + hazard.quota_high)
    base_fraction = np.where(patterns[:, size:], mid, np.inf)

    def solved(pattern, fractions, factors, start=None):
        chunks = [
            (
                patterns[pattern[s : s + START_CHUNK], :size],
                fractions[s : s + START_CHUNK],
                factors[s : s + START_CHUNK],
                None,
                None
                if start is None
                else (start[0][s : s + START_CHUNK], start[1][s : s + START_CHUNK]),
                True,
            )
            for s in range(0, len(pattern), START_CHUNK)
        ]
        outputs = _in_process(solve_chunk, shared, chunks, None)
        return np.concatenate([o["z"] for o in outputs]), np.concatenate([o["u"] for o in outputs])

    center_z, center_u = solved(central, base_fraction[central], np.ones((len(central), 3)))
    # Finite-difference variants of the frequent patterns: (pattern, parameter) pairs,
    # parameters 0-2 the elasticity factors, 3 + k the quota fraction of supplier k.
    variants = [
        (i, k)
        for i, p in enumerate(central)
        if counts[p] >= LINEAR_PATTERN_DRAWS
        for k in [0, 1, 2, *(3 + np.flatnonzero(patterns[p, size:]))]
    ]
    slopes_z = np.zeros((len(central), 3 + size, sellers))
    slopes_u = np.zeros((len(central), 3 + size, start_u.shape[1]))
    if variants:
        at = np.array([i for i, _ in variants])
        param = np.array([k for _, k in variants])
        factors = np.ones((len(variants), 3))
        fractions = base_fraction[central[at]].copy()
        hit = param < 3
        factors[np.flatnonzero(hit), param[hit]] *= np.exp(STEP)
        fractions[np.flatnonzero(~hit), param[~hit] - 3] *= np.exp(STEP)
        moved_z, moved_u = solved(central[at], fractions, factors, (center_z[at], center_u[at]))
        slopes_z[at, param] = (moved_z - center_z[at]) / STEP
        slopes_u[at, param] = (moved_u - center_u[at]) / STEP
    position = np.full(len(patterns), -1)
    position[central] = np.arange(len(central))
    draw_at = position[which]
    has = np.flatnonzero(draw_at >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a fraction of 0 (quota_low = 0)
        moved = np.where(np.isfinite(fraction), np.log(fraction / mid), 0.0)
    # A start is only a start: the prediction is not carried further than e^±1 in a fraction.
    moved = np.clip(np.nan_to_num(moved, nan=0.0, neginf=-1.0), -1.0, 1.0)
    theta = np.concatenate([np.log(multipliers), moved], axis=1)
    c = draw_at[has]
    start_z[has] = center_z[c] + np.einsum("dk,dks->ds", theta[has], slopes_z[c])
    # Quota wedges log(1 + τ) are not negative at a solution.
    start_u[has] = np.maximum(center_u[c] + np.einsum("dk,dkj->dj", theta[has], slopes_u[c]), 0)
    return order, start_z[order], start_u[order]


def _in_process(
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
