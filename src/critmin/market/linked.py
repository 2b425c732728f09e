"""Linked stages: the Armington markets of one mineral's chain (ore → refined → product) solved
together, so that a restriction or a floor at one stage moves the others.

Each stage is a GSIM market (Francois & Hall 2003, "Global Simulation Analysis of
Industry-Level Trade Policy", version 3.0), as in `solver.py`; the stages are linked the way
vertically related markets are in partial-equilibrium trade models with intermediate inputs
(a Leontief input requirement and a producer price net of input cost; e.g. the vertical GSIM
extensions of Francois & Hall 2003, §4, and the input–output nesting of GTAP, Hertel 1997,
"Global Trade Analysis", ch. 2). Hats are ratios to the base, k a stage, r an origin, v a market:

    landed price      p^k_rv = max(P^k_r · w^k_rv, F^k_rv)           (w: tariff × export tax)
    composite price   P^k_v  = (Σ_r θ^k_rv (p^k_rv)^(1−σ))^(1/(1−σ))  (open flows only)
    demand volume     c^k_v  = φ^k_v (P^k_v)^(−η) + (1 − φ^k_v) Y^(k+1)_v
                      φ: final-demand share of the base absorption; 1 − φ: the part used by the
                      next stage's producers in v, proportional to their output (Leontief)
    bilateral demand  q^k_rv = q0 · (p^k_rv)^(−σ) (P^k_v)^σ · c^k_v
    unit input cost   C^k_r  = β^k_r P^(k−1)_r + (1 − β^k_r)          (β: input cost share;
                      1 at the first stage, where there is no input)
    supply            Y^k_r  = min((max(P^k_r, G^k_r) / C^k_r)^e, K^k_r)   (G guarantee, K cap)
    clearing          log Σ_v q^k_rv = log Y^k_r                      every stage, every seller

The unknowns are z^k_r = log P^k_r of every origin that sells at stage k. A ban on ore
exports raises the ore price where refiners relied on it (C up, refined output down, refined
prices up) and lowers it in the banning country (its refiners' margin P/C rises); a ban on a
product raises demand for the other origins' product and, through their output, for the
refined input in their markets. Solved by semismooth Newton with the analytic generalised
Jacobian (floors, guarantees and caps are kinks; Qi & Sun 1993, "A nonsmooth version of
Newton's method", Mathematical Programming 58) and an Armijo line search, batched over
scenarios (`linked_solver.py`). Final demand has the single-stage model's choke price P̄
(beyond it demand turns elastic, σ + 1). No quotas or stock releases here: those are
single-stage policies (`solver.py`); a production quota is a cap K < 1.

Input requirement (calibration, `link`): the next stage's producers in v use
a · Y0^(k+1)_v tonnes of stage-k content, a = 1 on a content basis (a tonne of oxide in, a
tonne out: recovery losses are not in the data), at most what v absorbs at stage k; their value
at v's base purchase price over the value of v's output is β (capped at BETA_MAX).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from threadpoolctl import ThreadpoolController

from critmin.errors import InputError, SolverError
from critmin.market.calibration import Calibration
from critmin.market.linked_solver import _check_stages, _reindex, _Stage, _structure, solve_rows
from critmin.market.parameters import Parameters, resolve_parameters
from critmin.market.policies import PolicyArrays, Scenario

TOLERANCE = 1e-10
MAX_ITERATIONS = 100
BETA_MAX = 0.95  # an input worth more than 95 % of the output: a data mismatch, not a margin


@dataclass(frozen=True)
class Chain:
    """The base of a linked chain: stages in order, over one index of countries."""

    mineral: str
    year: int
    stages: tuple[str, ...]
    countries: tuple[str, ...]
    q0: tuple[np.ndarray, ...]  # per stage (N, N) base flows, base-price kUSD
    tonnes: tuple[np.ndarray, ...]  # per stage (N, N)
    base_price: tuple[np.ndarray, ...]  # per stage (N,) USD/t of the origin
    final_share: tuple[np.ndarray, ...]  # per stage (N,) φ: final demand / base absorption
    beta: tuple[np.ndarray, ...]  # per stage (N,) input cost share (0 at the first stage)
    units: tuple[str, ...]
    calibrations: tuple[Calibration, ...]
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.countries)

    def position(self, stage: str) -> int:
        if stage not in self.stages:
            raise InputError(f"the chain has no {stage} stage (stages: {', '.join(self.stages)})")
        return self.stages.index(stage)


def link(calibrations: Sequence[Calibration], coefficient: float = 1.0) -> Chain:
    """Link stage calibrations (upstream first) into a chain; `coefficient` = t of a stage's
    content used per t of the next stage's content (the module docstring)."""
    if not calibrations:
        raise InputError("a chain needs at least one stage")
    if any(c.rest_of_world for c in calibrations):
        raise InputError("linked stages are solved country by country (no rest-of-world merge)")
    countries = tuple(sorted(set().union(*(c.countries for c in calibrations))))
    size = len(countries)
    q0s, tons, prices = [], [], []
    for cal in calibrations:
        at = _reindex(cal, countries)
        q0 = np.zeros((size, size))
        t = np.zeros((size, size))
        q0[np.ix_(at, at)] = cal.value_kusd
        t[np.ix_(at, at)] = cal.tonnes
        price = np.full(size, cal.reference_price_usd_t)
        price[at] = cal.base_price_usd_t
        q0s.append(q0)
        tons.append(t)
        prices.append(price)
    final = [np.ones(size) for _ in calibrations]
    beta = [np.zeros(size) for _ in calibrations]
    for k in range(1, len(calibrations)):
        made_t = tons[k].sum(axis=1)  # output of stage k per country, t
        made_v = q0s[k].sum(axis=1)
        absorbed_t = tons[k - 1].sum(axis=0)
        absorbed_v = q0s[k - 1].sum(axis=0)
        used_t = np.minimum(coefficient * made_t, absorbed_t)
        unit = np.divide(absorbed_v, absorbed_t, out=np.zeros(size), where=absorbed_t > 0)
        used_v = used_t * unit
        final[k - 1] = np.divide(
            absorbed_v - used_v, absorbed_v, out=np.ones(size), where=absorbed_v > 0
        )
        beta[k] = np.minimum(
            np.divide(used_v, made_v, out=np.zeros(size), where=made_v > 0), BETA_MAX
        )
    first = calibrations[0]
    return Chain(
        mineral=first.commodity,
        year=first.year,
        stages=tuple(c.stage or f"stage{i}" for i, c in enumerate(calibrations)),
        countries=countries,
        q0=tuple(q0s),
        tonnes=tuple(tons),
        base_price=tuple(prices),
        final_share=tuple(final),
        beta=tuple(beta),
        units=tuple(c.unit for c in calibrations),
        calibrations=tuple(calibrations),
        notes=tuple(n for c in calibrations for n in c.notes),
    )


def calibrate_chain(
    mineral: str, year: int, stages: Sequence[str] | None = None, keep: Sequence[str] = ()
) -> Chain:
    """The linked chain of `mineral` in `year` on the stage balances (`chain.calibrate_stage`):
    every stage of the map with trade that year, or `stages`."""
    from critmin.data.stages import stages_of
    from critmin.market.chain import calibrate_stage

    names = list(stages or stages_of(mineral))
    cals = []
    skipped = []
    for name in names:
        try:
            cals.append(calibrate_stage(mineral, name, year, 0.0, keep))
        except InputError as error:
            if stages:
                raise
            skipped.append(f"{name}: {error}")
    if not cals:
        raise InputError(f"no stage of {mineral} can be calibrated in {year}: {'; '.join(skipped)}")
    chain = link(cals)
    if skipped:
        chain = replace(chain, notes=(*chain.notes, *skipped))
    return chain


@dataclass
class LinkedScenario:
    """Policies per stage: {stage: Scenario} (bans, tariffs, export taxes, zone floors,
    capacity caps; see `policies.py`), and production quotas {stage: {ISO3: fraction}}, a cap
    on output at `fraction` of base (China's 2010-2011 mining quota)."""

    name: str = "scenario"
    stages: Mapping[str, Scenario] = field(default_factory=dict)
    production_quotas: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass
class LinkedState:
    """Per stage (lists over stages): sellers' figures (B, N) over the chain's countries (1 for
    countries that do not sell at the stage), pairs (B, P) in `_Stage` order."""

    world_price: list[np.ndarray]  # P*
    producer_price: list[np.ndarray]  # max(P*, G)
    supply: list[np.ndarray]  # Y, output / base
    unit_cost: list[np.ndarray]  # C
    composite: list[np.ndarray]  # (B, N) P_v (1 where no market)
    demand_volume: list[np.ndarray]  # (B, N) c_v
    landed: list[np.ndarray]  # (B, P)
    flows: list[np.ndarray]  # (B, P) base-price kUSD
    residual: np.ndarray  # (B, Σ sellers)


def chain_sellers(chain: Chain) -> list[np.ndarray]:
    """Per stage, the countries that sell in the base (the unknowns)."""
    return [np.flatnonzero(q0.sum(axis=1) > 0) for q0 in chain.q0]


@dataclass
class LinkedSolution:
    chain: Chain
    scenarios: list[LinkedScenario]
    state: LinkedState
    iterations: np.ndarray
    residual: np.ndarray
    policies: list[list[PolicyArrays]]
    structure: list[_Stage]

    def dense(self, k: int, pairs: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(B, N, N) matrix of stage k's pair values (`state.flows[k]`, `state.landed[k]`)."""
        st = self.structure[k]
        out = np.full((pairs.shape[0], self.chain.size, self.chain.size), fill)
        out[:, st.pr, st.pv] = pairs
        return out

    def flows_t(self, k: int) -> np.ndarray:
        """(B, N, N) stage k's flows in tonnes of the stage's unit."""
        st = self.structure[k]
        ratio = self.state.flows[k] / np.exp(st.log_q0)
        return self.dense(k, ratio * self.chain.tonnes[k][st.pr, st.pv])


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """One inspection of the loaded BLAS libraries per process (threadpoolctl reads the
    process's memory maps each time otherwise: 3 ms of a 12 ms single solve)."""
    return ThreadpoolController()


def solve_chain(
    chain: Chain,
    scenarios: Sequence[LinkedScenario],
    parameters: Sequence[Sequence[Parameters]] | str = "short",
    tolerance: float = TOLERANCE,
    chunk: int = 64,
    threads: int | None = None,
) -> LinkedSolution:
    """Solve every scenario on the linked chain, `chunk` at a time; SolverError names a
    scenario that does not converge.

    `parameters`: per scenario one Parameters per stage (over that stage's calibration), or a
    horizon name for the documented defaults."""
    scenarios = list(scenarios)
    if not scenarios:
        raise InputError("no scenarios to solve")
    if isinstance(parameters, str):
        per_stage = [resolve_parameters(c.countries, parameters) for c in chain.calibrations]
        parameters = [per_stage] * len(scenarios)
    parameters = list(parameters)
    if len(parameters) != len(scenarios):
        raise InputError(f"{len(scenarios)} scenarios but {len(parameters)} sets of parameters")
    _check_stages(chain, scenarios)  # before any batch starts: a misnamed stage fails at once
    structure = _structure(chain)
    chunks = [range(start, min(start + chunk, len(scenarios)))
              for start in range(0, len(scenarios), chunk)]  # fmt: skip

    def run(rows: range):
        # Each batch compiles its own scenarios, so that compiling one overlaps solving another.
        part = slice(rows.start, rows.stop)
        return solve_rows(chain, scenarios[part], parameters[part], tolerance, MAX_ITERATIONS)

    # As in model.py: chunks side by side on the cores (numpy releases the GIL), BLAS held to
    # one thread — a multithreaded BLAS on these small batched products is 20× slower.
    workers = max(1, min(len(chunks), threads or os.cpu_count() or 1))
    with _blas_controller().limit(limits=1, user_api="blas"):
        if workers == 1:
            pieces = [run(rows) for rows in chunks]
        else:
            with ThreadPoolExecutor(workers) as pool:
                pieces = list(pool.map(run, chunks))
    stages = range(len(chain.stages))

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    names = pieces[0][0]
    state = LinkedState(
        **{name: [joined([p[0][name][k] for p in pieces]) for k in stages] for name in names},
        residual=joined([p[1] for p in pieces]),
    )
    iterations = joined([p[2] for p in pieces])
    norm = joined([p[3] for p in pieces])
    policies = [[policy for p in pieces for policy in p[4][k]] for k in stages]
    failed = np.flatnonzero(~(norm < tolerance))
    if len(failed):
        first = failed[0]
        raise SolverError(
            f"linked market solve did not converge for scenario {scenarios[first].name!r} "
            f"(max residual {norm[first]:.3g} after {iterations[first]} iterations)"
        )
    return LinkedSolution(chain, scenarios, state, iterations, norm, policies, structure)
