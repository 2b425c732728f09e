"""Coalition search: which k candidate partners best secure a core importer's supply of a
basket of commodities, solved as a MILP (HiGHS), checked with the market model, and each
member's Shapley contribution.

Objective (a linear proxy of supply security): for each commodity c of the basket the core
imports need_c tonnes from the supplier at risk (China) in the base year; candidate i could
redirect a_ic = its exports to third countries (tonnes; neither the supplier nor the core),
counted only if it already sells to the core — the market model is Armington, with no new
trade links, so a partner with no route to the core cannot cover it there either (issue 16:
the proxy gave Mozambique, Madagascar and Tanzania full marks for graphite that the market
check could not see arrive). Flows are those of the market each commodity is solved on (its
stage's balances, `market.chain.calibrate_market`), so the proxy and the check read the same
data. The coalition S covers

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

EXACT_SHAPLEY_LIMIT = 12


@dataclass
class CoalitionProblem:
    """Redirectable supply a[i, c] / need[c] for candidates × commodities, and weights."""

    candidates: tuple[str, ...]
    commodities: tuple[str, ...]
    relative_supply: np.ndarray  # (n, C) a_ic / need_c
    weights: np.ndarray  # (C,) sum 1
    need_t: np.ndarray  # (C,)
    linked: np.ndarray | None = None  # (n, C) bool: the candidate sells to the core in the base
    year: int | None = None

    def value(self, members: np.ndarray) -> np.ndarray:
        """v(S) for one (n,) or many (M, n) 0/1 membership vectors."""
        return np.minimum(1.0, np.asarray(members, float) @ self.relative_supply) @ self.weights


def coalition_problem(
    core: Sequence[str],
    candidates: Sequence[str],
    commodities: Sequence[str],
    year: int,
    supplier: str = "CHN",
    stage: str | None = None,
) -> CoalitionProblem:
    """Build the proxy from the year's flows (tonnes and values) of each commodity's market
    at `stage` (default: the stage of its HS codes)."""
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
    from critmin.market.chain import calibrate_market

    need, weight, supply, links = [], [], [], []
    for name in commodities:
        cal = calibrate_market(name, year, 0.0, (), stage)
        names = np.asarray(cal.countries)
        in_core = np.isin(names, list(core_set))
        foreign = ~np.eye(cal.size, dtype=bool)
        if supplier not in cal.countries:
            raise InputError(f"{supplier} does not trade {name} in {year}; drop it")
        row = cal.countries.index(supplier)
        need_t = float(cal.tonnes[row, in_core].sum())
        if need_t <= 0:
            raise InputError(f"the core imports no {name} from {supplier} in {year}; drop it")
        need.append(need_t)
        weight.append(float((cal.value_kusd[:, in_core] * foreign[:, in_core]).sum()))
        third = ~in_core & (names != supplier)
        sells, linked = [], []
        for code in candidates:
            if code not in cal.countries:
                sells.append(0.0)
                linked.append(False)
                continue
            i = cal.countries.index(code)
            to_core = bool((cal.tonnes[i, in_core] > 0).any())
            others = cal.tonnes[i, third & foreign[i]].sum()
            sells.append(float(others) if to_core else 0.0)
            linked.append(to_core)
        supply.append(sells)
        links.append(linked)
    weights = np.asarray(weight) / sum(weight)
    relative = np.asarray(supply).T / np.asarray(need)
    return CoalitionProblem(
        candidates,
        tuple(commodities),
        relative,
        weights,
        np.asarray(need),
        np.asarray(links).T,
        int(year),
    )


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


MARKET_SUBSETS = 256  # coalitions the market check enumerates before it turns greedy


@dataclass
class MarketChoice:
    """The coalition chosen with the market model: China bans exports to every destination and
    the partners commit their supply to the coalition (their exports to countries outside core
    + partners stop — the proxy's premise that a partner redirects its third-country sales to
    the core), solved for each candidate coalition; security = the share of the core's
    shortfall under the ban that the partners remove, basket-weighted as the proxy."""

    members: tuple[str, ...]
    market_security: float
    proxy_security: float  # of the same members
    proxy_members: tuple[str, ...]  # the MILP's choice on the proxy
    table: pd.DataFrame  # coalition, market_security, proxy_security (every one solved)

    @property
    def agree_in_sign(self) -> bool:
        """Both measures see a gain, or both none (within 1e-6)."""
        return (self.market_security > 1e-6) == (self.proxy_security > 1e-6)


def coalition_by_market(
    core: Sequence[str],
    candidates: Sequence[str],
    commodities: Sequence[str],
    year: int,
    size: int,
    problem: CoalitionProblem | None = None,
    supplier: str = "CHN",
    stage: str | None = None,
) -> MarketChoice:
    """Choose the `size` partners with the market model itself (every coalition when there are
    at most MARKET_SUBSETS, else greedily one partner at a time), beside the proxy's choice."""
    from itertools import combinations

    from critmin.market.chain import calibrate_market
    from critmin.market.model import simulate_batch
    from critmin.market.parameters import resolve_parameters
    from critmin.market.policies import Ban, Scenario

    problem = problem or coalition_problem(core, candidates, commodities, year, supplier, stage)
    n = len(problem.candidates)
    if not 1 <= size <= n:
        raise InputError(f"coalition size must be between 1 and {n} candidates, got {size}")
    core = tuple(core)
    markets = []
    for name in problem.commodities:
        cal = calibrate_market(name, year, 0.0, [*core, *problem.candidates, supplier], stage)
        markets.append((cal, resolve_parameters(cal.countries, "short")))

    def shortfalls(coalitions: list[tuple[str, ...]]) -> np.ndarray:
        """(len(coalitions), C) the core's shortfall (% of base) with each coalition."""
        out = np.zeros((len(coalitions), len(markets)))
        for c, (cal, params) in enumerate(markets):
            made = []
            for members in coalitions:
                inside = set(core) | set(members)
                outside = tuple(c for c in cal.countries if c not in inside)
                bans = [Ban(supplier)]
                for member in members:
                    if member in cal.countries and outside:
                        i = cal.countries.index(member)
                        sells = [cal.countries[v] for v in np.flatnonzero(cal.value_kusd[i])]
                        if set(sells) & set(outside) - {member}:
                            bans.append(Ban(member, outside, strict=False))
                made.append(Scenario(",".join(members) or "core alone", bans=tuple(bans)))
            batch = simulate_batch(cal, made, params)
            inside = np.isin(cal.countries, list(core))
            base = cal.absorption_t()[inside].sum()
            for i in range(len(made)):
                result = batch[i].markets.set_index("country")
                got = result.loc[result.index.intersection(core)]
                out[i, c] = float(got["shortfall_t"].sum() / base * 100) if base else 0.0
        return out

    alone = shortfalls([()])[0]

    def security(rows: np.ndarray) -> np.ndarray:
        gain = np.divide(alone - rows, alone, out=np.zeros_like(rows), where=alone > 0)
        return np.clip(gain, 0.0, 1.0) @ problem.weights

    if math.comb(n, size) <= MARKET_SUBSETS:
        coalitions = [tuple(c) for c in combinations(problem.candidates, size)]
        scores = security(shortfalls(coalitions))
    else:  # greedy: add the partner that removes most of the shortfall, size times
        chosen: tuple[str, ...] = ()
        coalitions, scores_list = [], []
        for _ in range(size):
            trial = [(*chosen, c) for c in problem.candidates if c not in chosen]
            values = security(shortfalls(trial))
            chosen = trial[int(np.argmax(values))]
            coalitions.extend(trial)
            scores_list.extend(values)
        coalitions = [c for c in coalitions if len(c) == size]
        scores = np.asarray(scores_list[-len(coalitions) :])
    proxy = np.array(
        [
            problem.value(np.isin(problem.candidates, list(members)).astype(float))
            for members in coalitions
        ]
    )
    best = int(np.argmax(scores))
    proxy_members, _ = best_coalition(problem, size)
    table = pd.DataFrame(
        {
            "coalition": [",".join(c) for c in coalitions],
            "market_security": scores,
            "proxy_security": proxy,
        }
    ).sort_values("market_security", ascending=False, ignore_index=True)
    return MarketChoice(
        tuple(coalitions[best]), float(scores[best]), float(proxy[best]), proxy_members, table
    )
