"""Coalition search: which k candidate partners best secure a core importer's supply of a
basket of commodities, solved as a MILP (HiGHS), checked with the market model, and each
member's Shapley contribution.

Objective (a linear proxy of supply security): for each commodity c of the basket the core
imports need_c tonnes from the supplier at risk (China) in the base year; candidate i could
redirect a_ic = its exports to third countries (tonnes; neither the supplier nor the core).
The coalition S covers

    coverage_c(S) = min(1, Σ_(i∈S) a_ic / need_c)

and its security is the basket average Σ_c w_c coverage_c(S), w_c = the core's import value
share of the basket. Choosing k members is the MILP

    max Σ_c w_c y_c   s.t.  y_c ≤ 1,  y_c ≤ Σ_i x_i a_ic / need_c,  Σ_i x_i = k,  x ∈ {0,1}

(HiGHS through scipy.optimize.milp; Huangfu & Hall 2018, "Parallelizing the dual revised
simplex method", Math. Prog. Computation 10). Shapley values of the same characteristic
function (Shapley 1953) are exact up to 12 members, else sampled over random orderings with
the standard error reported; they always sum to v(members) − v(∅).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from critmin.errors import InputError, SolverError
from critmin.metrics.dependence import commodity_flows

EXACT_SHAPLEY_LIMIT = 12


@dataclass
class CoalitionProblem:
    """Redirectable supply a[i, c] / need[c] for candidates × commodities, and weights."""

    candidates: tuple[str, ...]
    commodities: tuple[str, ...]
    relative_supply: np.ndarray  # (n, C) a_ic / need_c
    weights: np.ndarray  # (C,) sum 1
    need_t: np.ndarray  # (C,)

    def value(self, members: np.ndarray) -> np.ndarray:
        """v(S) for one (n,) or many (M, n) 0/1 membership vectors."""
        return np.minimum(1.0, np.asarray(members, float) @ self.relative_supply) @ self.weights


def coalition_problem(
    core: Sequence[str],
    candidates: Sequence[str],
    commodities: Sequence[str],
    year: int,
    supplier: str = "CHN",
) -> CoalitionProblem:
    """Build the proxy from the year's flows (tonnes and values)."""
    core_set, candidates = set(core), tuple(dict.fromkeys(candidates))
    overlap = core_set & set(candidates)
    if overlap:
        raise InputError(f"{', '.join(sorted(overlap))} is in the core and among the candidates")
    if not candidates:
        raise InputError("no candidates to choose from")
    if supplier in candidates:  # the supplier at risk cannot secure supply against itself
        raise InputError(
            f"{supplier} is the supplier at risk; it cannot be a candidate partner against "
            "itself (drop it from the candidates)"
        )
    if supplier in core_set:
        raise InputError(f"{supplier} is the supplier at risk; it cannot be in the core")
    commodities = tuple(commodities)
    if not commodities:
        raise InputError("the basket names no commodity (e.g. --commodities rare_earths)")
    if len(set(commodities)) != len(commodities):
        raise InputError(f"a commodity is named twice in the basket {', '.join(commodities)}")
    tonnes, values = commodity_flows(year, "qty"), commodity_flows(year, "value")
    need, weight, supply = [], [], []
    for name in commodities:
        t = tonnes[tonnes["commodity"] == name]
        v = values[values["commodity"] == name]
        from_supplier = t[(t["exporter"] == supplier) & t["importer"].isin(core_set)]
        need_t = float(from_supplier["amount"].sum())
        if need_t <= 0:
            raise InputError(f"the core imports no {name} from {supplier} in {year}; drop it")
        need.append(need_t)
        weight.append(float(v[v["importer"].isin(core_set)]["amount"].sum()))
        third = t[~t["importer"].isin(core_set | {supplier}) & (t["exporter"] != t["importer"])]
        by_exporter = third.groupby("exporter")["amount"].sum()
        supply.append([float(by_exporter.get(c, 0.0)) for c in candidates])
    weights = np.asarray(weight) / sum(weight)
    relative = np.asarray(supply).T / np.asarray(need)
    return CoalitionProblem(candidates, tuple(commodities), relative, weights, np.asarray(need))


def best_coalition(problem: CoalitionProblem, size: int) -> tuple[tuple[str, ...], float]:
    """The `size` candidates maximising the security proxy (MILP, HiGHS)."""
    n, commodities = problem.relative_supply.shape
    if not 1 <= size <= n:
        raise InputError(f"coalition size must be between 1 and {n} candidates, got {size}")
    # Variables: x (n binaries), y (C continuous in [0, 1]); milp minimises, so negate.
    cost = np.concatenate([np.zeros(n), -problem.weights])
    coverage = np.hstack([-problem.relative_supply.T, np.eye(commodities)])  # y − Σ x a ≤ 0
    count = np.concatenate([np.ones(n), np.zeros(commodities)])[None, :]
    answer = milp(
        cost,
        constraints=[
            LinearConstraint(coverage, -np.inf, 0.0),
            LinearConstraint(count, size, size),
        ],
        integrality=np.concatenate([np.ones(n), np.zeros(commodities)]),
        bounds=Bounds(0.0, 1.0),
        options={"presolve": True},
    )
    if not answer.success:
        raise SolverError(f"coalition MILP failed: {answer.message}")
    chosen = np.round(answer.x[:n]).astype(bool)
    return tuple(np.asarray(problem.candidates)[chosen]), float(-answer.fun)


def shapley(
    problem: CoalitionProblem, members: Sequence[str], samples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Shapley value of each member in the game v restricted to `members`: exact by
    enumeration up to 12 members, else the mean marginal contribution over `samples` random
    orderings (standard error in `stderr`)."""
    index = [problem.candidates.index(m) for m in members]
    sub = CoalitionProblem(
        tuple(members),
        problem.commodities,
        problem.relative_supply[index],
        problem.weights,
        problem.need_t,
    )
    n = len(index)
    if n <= EXACT_SHAPLEY_LIMIT:
        masks = (np.arange(2**n)[:, None] >> np.arange(n)) & 1  # every subset
        values = sub.value(masks)
        sizes = masks.sum(axis=1)
        phi = np.zeros(n)
        for i in range(n):
            without = masks[:, i] == 0
            s = sizes[without]
            weight = np.array(
                [math.factorial(k) * math.factorial(n - k - 1) for k in s]
            ) / math.factorial(n)
            phi[i] = (weight * (values[np.flatnonzero(without) + 2**i] - values[without])).sum()
        stderr = np.zeros(n)
    else:
        rng = np.random.default_rng(seed)
        marginal = np.zeros((samples, n))
        for sample in range(samples):
            order = rng.permutation(n)
            state = np.zeros(n)
            before = 0.0
            for i in order:
                state[i] = 1.0
                after = float(sub.value(state))
                marginal[sample, i] = after - before
                before = after
        phi = marginal.mean(axis=0)
        stderr = marginal.std(axis=0, ddof=1) / np.sqrt(samples)
    return pd.DataFrame({"member": list(members), "shapley": phi, "stderr": stderr})
