"""Solve scenarios on a calibrated market: one at a time or many at once (batched Newton)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from critmin.market.calibration import Calibration
from critmin.market.parameters import Parameters
from critmin.market.policies import PolicyArrays, Scenario, compile_scenario
from critmin.market.problem import Problem
from critmin.market.result import MarketResult
from critmin.market.solver import Solution, solve

CHUNK = 64  # scenarios per batched solve: bounds memory at CHUNK · N² floats per array


def build_problem(
    cal: Calibration, policies: Sequence[PolicyArrays], parameters: Sequence[Parameters]
) -> Problem:
    """Stack compiled scenarios (all with the same quota structure) into one Problem."""
    quota_id = policies[0].quota_id
    width = len(policies[0].quota_fraction)
    return Problem(
        q0=cal.value_kusd,
        tariff=np.stack([p.tariff * p.export_tax for p in policies]),
        open=np.stack([p.open for p in policies]),
        floor=np.stack([p.floor for p in policies]),
        guarantee=np.stack([p.guarantee for p in policies]),
        stock=np.stack([p.stock for p in policies]),
        capacity=np.stack([p.capacity for p in policies]),
        sigma=np.stack([p.armington_sigma for p in parameters]),
        eta=np.stack([p.demand_elasticity for p in parameters]),
        supply_elasticity=np.stack([p.supply_elasticity for p in parameters]),
        cutoff=np.stack([p.cutoff_price for p in parameters]),
        quota_id=quota_id,
        quota_fraction=np.stack([p.quota_fraction for p in policies]).reshape(len(policies), width),
    )


@dataclass
class BatchResult:
    """Many scenarios of one market: headline arrays for all, full results on demand."""

    calibration: Calibration
    scenarios: list[Scenario]
    policies: list[PolicyArrays]
    parameters: list[Parameters]
    solutions: list[tuple[Solution, int]]  # (batch solution, row) per scenario

    def __len__(self) -> int:
        return len(self.scenarios)

    def __getitem__(self, index: int) -> MarketResult:
        solution, row = self.solutions[index]
        return MarketResult.from_solution(
            self.calibration,
            self.scenarios[index],
            self.policies[index],
            self.parameters[index],
            solution,
            row,
        )

    def _gather(self, field: str) -> np.ndarray:
        return np.stack([getattr(sol.state, field)[row] for sol, row in self.solutions])

    @property
    def world_price_index(self) -> np.ndarray:
        """(B, N) P* of every origin in every scenario."""
        return self._gather("world_price")

    @property
    def flows_t(self) -> np.ndarray:
        """(B, N, N) flows in tonnes."""
        cal = self.calibration
        q0 = cal.value_kusd
        dense = np.stack([sol.problem.dense(sol.state.flows[row]) for sol, row in self.solutions])
        return np.divide(dense, q0, out=np.zeros_like(dense), where=q0 > 0) * cal.tonnes

    @property
    def iterations(self) -> np.ndarray:
        return np.array([sol.iterations[row] for sol, row in self.solutions])


def simulate_batch(
    cal: Calibration,
    scenarios: Sequence[Scenario],
    parameters: Parameters | Sequence[Parameters],
    chunk: int = CHUNK,
    threads: int | None = None,
) -> BatchResult:
    """Solve `scenarios` on `cal`; scenarios sharing a quota structure are solved together
    in batches of `chunk`, chunks in parallel on `threads` (default: all cores). Raises
    InputError for a bad policy before any solve starts."""
    params = (
        [parameters] * len(scenarios) if isinstance(parameters, Parameters) else list(parameters)
    )
    policies = [compile_scenario(cal, s) for s in scenarios]
    solutions: list[tuple[Solution, int] | None] = [None] * len(scenarios)
    groups: dict[bytes, list[int]] = {}
    for index, policy in enumerate(policies):
        groups.setdefault(policy.quota_id.tobytes(), []).append(index)
    chunks = [
        members[start : start + chunk]
        for members in groups.values()
        for start in range(0, len(members), chunk)
    ]

    def run(rows: list[int]) -> tuple[list[int], Solution]:
        problem = build_problem(cal, [policies[i] for i in rows], [params[i] for i in rows])
        return rows, solve(problem, names=[scenarios[i].name for i in rows])

    # numpy releases the GIL in its array kernels, so chunks run side by side on the cores;
    # BLAS is held to one thread per chunk so the two levels do not fight over the cores.
    workers = max(1, min(len(chunks), threads or os.cpu_count() or 1))
    with (
        threadpool_limits(limits=1, user_api="blas") if workers > 1 else nullcontext(),
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        for rows, solution in pool.map(run, chunks):
            for position, index in enumerate(rows):
                solutions[index] = (solution, position)
    return BatchResult(cal, list(scenarios), policies, params, solutions)  # type: ignore[arg-type]


def simulate(cal: Calibration, scenario: Scenario, parameters: Parameters) -> MarketResult:
    """Solve one scenario on a calibrated market."""
    return simulate_batch(cal, [scenario], parameters)[0]
