"""The numerical core of the linked-chain solver (`linked.solve_chain`): the pair structure of a
chain, a batch's policy arrays, the residual, its analytic generalised Jacobian and the batched
semismooth Newton iteration. The equations are in `linked.py`'s docstring; this module is about
evaluating them fast, on batches of B scenarios at a time.

Where the time goes, and why the code is shaped this way (rare earths 2023, mine → refined:
9 + 102 sellers, 123 + 1,413 pairs, 97 + 145 markets, B = 64):

- Pairs. Every bilateral figure is a (B, P) array over the base flows, sorted by market (trade
  matrices are sparse: 1,413 of 24,000 refined pairs), so market sums are `np.add.reduceat`
  and seller sums a sparse (S, P) product.
- At most one exp per pair and evaluation. float64 exp costs ~10 ns an element in this numpy
  build (no SIMD exp in its baseline), more than all the other pair arithmetic together. The
  CES term t = θ p^(1−σ) needs one in general; when σ is the same in all of a scenario's
  markets and no floor binds anywhere in the batch (the usual case), p^(1−σ) = P^(1−σ)
  w^(1−σ) needs none, θ w^(1−σ) being fixed for the batch. Everything else is had without:
  p = P*·w (max the floor), s = t / Σ_v t, q = q0 p^(−σ) P^σ c = t · Q0_v P_v^σ c_v / p.
- What depends on the scenario only — which flows are open, σ on the pairs, whether a market
  or a seller has any open flow, the wedges — is worked out once per batch (`_compile`,
  `_prepare`), not in every evaluation; each batch compiles its own scenarios, so that
  compiling one batch overlaps solving another.
- The own-stage Jacobian block Σ_v w_rv (σ + κ)_v s_r'v g_r'v is a dense batched matrix
  product (BLAS) over the markets with many sellers, between the S' sellers in them (ordered
  first), and a sum pair by pair over the markets with few (`_own_block`; the split
  minimises a cost model, `PAIR_COST`).
- The Newton iteration keeps, for each scenario, the evaluated trial point its line search
  accepts (rows copied), so a Jacobian never needs a re-evaluation, and keeps each
  Jacobian's LU factors, so a step that reuses one (Shamanskii) is two triangular solves;
  the reported (B, N) figures are computed once, at the solution (`report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from scipy.linalg.lapack import dgetrf as _getrf
from scipy.linalg.lapack import dgetrs as _getrs

from critmin.errors import InputError
from critmin.market.parameters import Parameters
from critmin.market.policies import PolicyArrays, Scenario, compile_scenario

if TYPE_CHECKING:
    from critmin.market.linked import Chain, LinkedScenario

MAX_LOG_STEP = 5.0  # a Newton step moves no log price by more than this
REUSE_RATIO = 0.1  # reuse the Jacobian after a full step that cut the residual this much
ARMIJO = 1e-4  # sufficient decrease of the merit ½‖F‖² per unit step length
MAX_HALVINGS = 30
# A product of pairs summed pair by pair (two gathers, a multiply, a segment sum: ~10 ns an
# element) against a multiply-add of the dense BLAS product (~0.1 ns): measured on the 2-core
# machine, B = 64. Markets with n sellers cost n² × PAIR_COST pair by pair, S'² dense.
PAIR_COST = 100.0
TINY = 1e-300  # stands in for 0 under a log or a division


def _reindex(cal, countries: Sequence[str]) -> np.ndarray:
    where = {c: i for i, c in enumerate(countries)}
    return np.array([where[c] for c in cal.countries])


@dataclass
class _Stage:
    """Scenario-independent structure of one stage: its base flows as a list of pairs sorted
    by market, and the index arrays that the residual and the Jacobian gather and scatter by."""

    pr: np.ndarray  # (P,) origin of each pair, chain index
    pv: np.ndarray  # (P,) market of each pair, chain index
    lr: np.ndarray  # (P,) origin in the stage calibration's index
    lv: np.ndarray  # (P,) market in the stage calibration's index
    ps: np.ndarray  # (P,) origin's position among the stage's sellers
    pm: np.ndarray  # (P,) market's position among the stage's markets
    sellers: np.ndarray  # (S,) chain index, those in the dense markets first (`_own_block`)
    markets: np.ndarray  # (M,) chain index
    starts: np.ndarray  # (M,) first pair of each market
    log_q0: np.ndarray  # (P,)
    log_theta: np.ndarray  # (P,) log θ = log q0_rv / Q0_v
    x0: np.ndarray  # (S,) base output, base-price kUSD
    at: np.ndarray  # stage calibration index → chain index
    local_sellers: np.ndarray  # (S,) sellers in the stage calibration's index
    offset: int  # first unknown of the stage
    absorption: np.ndarray  # (M,) Q0_v, base purchases of each market
    final_share: np.ndarray  # (M,) φ_v
    beta: np.ndarray  # (S,) β_r
    by_seller: sparse.csr_matrix  # (S, P) sums pairs by origin
    # Links to the neighbouring stages, as positions into an array padded by one column:
    upstream: np.ndarray  # (S,) each seller among the previous stage's markets (M' = none)
    downstream: np.ndarray  # (M,) each market among the next stage's sellers (S' = none)
    # Own-stage Jacobian block (`_own_block`): dense over `dense_width` markets ...
    dense_pairs: np.ndarray  # pairs in those markets
    dense_flat: np.ndarray  # their place in a (S, dense_width) matrix
    dense_width: int
    dense_rows: int  # S': the sellers in those markets, the stage's first
    # ... and pair by pair over the others: pairs (i, j) of one market, sorted by (ps_i, ps_j)
    pp_i: np.ndarray
    pp_j: np.ndarray
    pp_seg: np.ndarray  # first (i, j) of each (ps_i, ps_j)
    pp_target: np.ndarray  # (ps_i, ps_j) of each segment, as ps_i · S + ps_j
    pp_flat: np.ndarray  # ... and its flat position in the (U, U) Jacobian
    diagonal: np.ndarray  # flat positions of the stage's diagonal in the (U, U) Jacobian
    # Cross-stage Jacobian blocks, flat positions in the (U, U) Jacobian:
    down_pairs: np.ndarray  # pairs whose market sells at the next stage
    down_flat: np.ndarray  # → (row of the pair's origin, column of the market at k + 1)
    up_pairs: np.ndarray  # pairs of the previous stage whose market sells at this stage
    up_rows: np.ndarray  # that market's position among this stage's sellers
    up_flat: np.ndarray  # → (row of the market at k, column of the pair's origin at k − 1)


def _structure(chain: Chain) -> list[_Stage]:
    """The chain's pair structure, computed once per chain (kept on it)."""
    cached = chain.__dict__.get("_structure")
    if cached is not None:
        return cached
    out = _build_structure(chain)
    object.__setattr__(chain, "_structure", out)  # a cache on a frozen dataclass
    return out


def _position(of: np.ndarray, among: np.ndarray, size: int) -> np.ndarray:
    """Position of each of `of` (chain indices < `size`) in `among`, len(among) where absent."""
    where = np.full(size, len(among))
    where[among] = np.arange(len(among))
    return where[of]


def _dense_markets(pm: np.ndarray, ps: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Markets whose part of the own-stage Jacobian block is cheaper as a dense product than
    pair by pair: with n_v sellers in market v and S' sellers in the dense markets, the dense
    product costs S'² a market, pair by pair n_v² × PAIR_COST."""
    best, cut = np.inf, 0
    for tau in (*np.unique(counts), counts.max() + 1):
        dense = counts >= tau
        width = len(np.unique(ps[dense[pm]]))
        cost = width**2 * dense.sum() + PAIR_COST * (counts[~dense] ** 2).sum()
        if cost < best:
            best, cut = cost, tau
    return counts >= cut


def _build_structure(chain: Chain) -> list[_Stage]:
    out = []
    offset = 0
    for k, cal in enumerate(chain.calibrations):
        q0 = chain.q0[k]
        pv, pr = np.nonzero(q0.T > 0)  # sorted by market
        markets, starts = np.unique(pv, return_index=True)
        pm = _position(pv, markets, chain.size)
        size = len(pr)
        counts = np.diff(np.append(starts, size))
        sellers = np.flatnonzero(q0.sum(axis=1) > 0)
        dense = _dense_markets(pm, _position(pr, sellers, chain.size), counts)
        # The sellers in the dense markets first: their block of the Jacobian is then one
        # contiguous (S', S') product, and the other sellers' rows and columns stay out of it.
        first = np.isin(sellers, pr[dense[pm]])
        sellers = np.concatenate([sellers[first], sellers[~first]])
        ps = _position(pr, sellers, chain.size)
        dense_rows = int(first.sum())
        at = _reindex(cal, chain.countries)
        local = np.full(chain.size, -1)
        local[at] = np.arange(len(at))
        base = q0[pr, pv]
        width = len(sellers)
        dense_pos = np.cumsum(dense) - 1
        in_dense = dense[pm]
        pp_i, pp_j = [], []
        for m in np.flatnonzero(~dense):
            pairs = np.arange(starts[m], starts[m] + counts[m])
            pp_i.append(np.repeat(pairs, len(pairs)))
            pp_j.append(np.tile(pairs, len(pairs)))
        pp_i = np.concatenate(pp_i) if pp_i else np.zeros(0, int)
        pp_j = np.concatenate(pp_j) if pp_j else np.zeros(0, int)
        target = ps[pp_i] * width + ps[pp_j]
        order = np.argsort(target, kind="stable")
        pp_target, pp_seg = np.unique(target[order], return_index=True)
        out.append(
            _Stage(
                pr=pr,
                pv=pv,
                lr=local[pr],
                lv=local[pv],
                ps=ps,
                pm=pm,
                sellers=sellers,
                markets=markets,
                starts=starts,
                log_q0=np.log(base),
                log_theta=np.log(base / q0.sum(axis=0)[pv]),
                x0=q0.sum(axis=1)[sellers],
                at=at,
                local_sellers=local[sellers],
                offset=offset,
                absorption=q0.sum(axis=0)[markets],
                final_share=chain.final_share[k][markets],
                beta=chain.beta[k][sellers],
                by_seller=sparse.csr_matrix(
                    (np.ones(size), (ps, np.arange(size))), shape=(width, size)
                ),
                upstream=np.zeros(width, int),
                downstream=np.zeros(len(markets), int),
                dense_pairs=np.flatnonzero(in_dense),
                dense_flat=ps[in_dense] * int(dense.sum()) + dense_pos[pm[in_dense]],
                dense_width=int(dense.sum()),
                dense_rows=dense_rows,
                pp_i=pp_i[order],
                pp_j=pp_j[order],
                pp_seg=pp_seg,
                pp_target=pp_target,
                pp_flat=np.zeros(0, int),
                diagonal=np.zeros(0, int),
                down_pairs=np.zeros(0, int),
                down_flat=np.zeros(0, int),
                up_pairs=np.zeros(0, int),
                up_rows=np.zeros(0, int),
                up_flat=np.zeros(0, int),
            )
        )
        offset += width
    unknowns = offset
    for st in out:
        width = len(st.sellers)
        rows, cols = st.offset + st.pp_target // width, st.offset + st.pp_target % width
        st.pp_flat = rows * unknowns + cols
        st.diagonal = (st.offset + np.arange(width)) * (unknowns + 1)
    for k in range(1, len(out)):
        prev, st = out[k - 1], out[k]
        st.upstream = _position(st.sellers, prev.markets, chain.size)
        prev.downstream = _position(prev.markets, st.sellers, chain.size)
        # pairs of stage k − 1 into a market that sells at stage k: Y^k moves their demand
        # (block k − 1, k) and their shares move C^k (block k, k − 1)
        linked = np.flatnonzero(prev.downstream[prev.pm] < len(st.sellers))
        seller = prev.downstream[prev.pm[linked]]
        prev.down_pairs = linked
        prev.down_flat = (prev.offset + prev.ps[linked]) * unknowns + st.offset + seller
        st.up_pairs = linked
        st.up_rows = seller
        st.up_flat = (st.offset + seller) * unknowns + prev.offset + prev.ps[linked]
    return out


@dataclass
class _Arrays:
    """One stage's policies and parameters for a batch, in the form the evaluation uses them:
    pairs (B, P), sellers (B, S), markets (B, M), countries (B, N). Worked out once per batch
    (`_prepare`): none of it depends on prices."""

    log_wedge: np.ndarray  # log w = log (tariff × export tax)
    # The CES terms t = θ p^(1−σ) (0 on closed flows). Common case — σ the same in all of a
    # scenario's markets and no floor in the batch: p^(1−σ) = P^(1−σ) w^(1−σ), so t and
    # q = t · Q0_v P_v^σ c_v / p need no exp over pairs (`_evaluate`). The fields of the
    # other case are None then, and these None otherwise.
    one_minus_sigma: np.ndarray | None  # (B, 1) 1 − σ
    theta_w: np.ndarray | None  # θ w^(1−σ)
    inverse_wedge: np.ndarray | None  # 1 / w, None if there is no wedge in the batch
    # ... the general case:
    wedge: np.ndarray | None
    log_theta_open: np.ndarray | None  # log θ, −inf on closed flows
    one_minus_sigma_p: np.ndarray | None  # 1 − σ of the pair's market
    log_floor: np.ndarray | None  # None when no pair of the batch has a floor, else −inf none
    floor: np.ndarray | None  # 0 where none
    guarantee: np.ndarray
    log_capacity: np.ndarray
    supply: np.ndarray  # e
    # An origin with no open flow sells nothing: its output is zero (and so is its demand for
    # the stage above), its price is pinned at base.
    can_sell: np.ndarray
    sigma_m: np.ndarray
    eta_m: np.ndarray
    log_cutoff_m: np.ndarray  # log P̄: beyond it final demand turns elastic (σ + 1)
    inverse_m: np.ndarray  # 1 / (1 − σ)
    dead_m: np.ndarray  # 1.0 where a market has no open flow (its composite price is 1)
    sigma: np.ndarray | None  # (B, N): the report's, over every country (`_REPORT_ONLY`)
    eta: np.ndarray | None
    log_cutoff: np.ndarray | None

    def take(self, rows: np.ndarray) -> _Arrays:
        """Scenarios `rows`, for the Newton iteration (the report's (B, N) fields left out)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return _Arrays(
            **{n: None if v is None or n in _REPORT_ONLY else v[rows] for n, v in values.items()}
        )


_REPORT_ONLY = ("sigma", "eta", "log_cutoff")


def _prepare(st: _Stage, open_: np.ndarray, log_floor: np.ndarray, **compiled) -> _Arrays:
    """A stage's batch arrays from the compiled policies and parameters."""
    sigma = compiled["sigma"]
    sigma_m = sigma[:, st.markets]
    opened = open_.astype(float)
    floors = bool(np.isfinite(log_floor).any())
    log_wedge = compiled["log_wedge"]
    wedges = bool(log_wedge.any())
    if not floors and (sigma_m == sigma_m[:, :1]).all():
        one_minus = 1.0 - sigma_m[:, :1]
        theta = np.where(open_, np.exp(st.log_theta), 0.0)
        pairs = {
            "one_minus_sigma": one_minus,
            "theta_w": theta * np.exp(one_minus * log_wedge) if wedges else theta,
            "inverse_wedge": np.exp(-log_wedge) if wedges else None,
        }
    else:
        pairs = {
            "wedge": np.exp(log_wedge),
            "log_theta_open": np.where(open_, st.log_theta, -np.inf),
            "one_minus_sigma_p": 1.0 - sigma[:, st.pv],
            "log_floor": log_floor if floors else None,
            "floor": np.exp(log_floor) if floors else None,
        }
    values = dict.fromkeys((f.name for f in fields(_Arrays)), None)
    values.update(
        **pairs,
        **compiled,
        can_sell=_by_seller(st, opened) > 0,
        sigma_m=sigma_m,
        eta_m=compiled["eta"][:, st.markets],
        log_cutoff_m=compiled["log_cutoff"][:, st.markets],
        inverse_m=1.0 / (1.0 - sigma_m),
        dead_m=(np.add.reduceat(opened, st.starts, axis=1) == 0).astype(float),
    )
    return _Arrays(**values)


def _by_seller(st: _Stage, pairs: np.ndarray) -> np.ndarray:
    """(B, P) → (B, S): the sum over each origin's pairs (one scenario: bincount, which saves
    scipy.sparse's ~20 µs of dispatch a call, a sixth of a single solve)."""
    if pairs.shape[0] == 1:
        return np.bincount(st.ps, pairs[0], len(st.sellers))[None, :]
    return np.ascontiguousarray((st.by_seller @ pairs.T).T)


def _check_stages(chain: Chain, scenarios: Sequence[LinkedScenario]) -> None:
    for scenario in scenarios:
        unknown = set(scenario.stages) | set(scenario.production_quotas)
        unknown -= set(chain.stages)
        if unknown:
            raise InputError(
                f"policy at {', '.join(sorted(unknown))}: the chain has stages "
                f"{', '.join(chain.stages)}"
            )


def _on_pairs(st: _Stage, gathered: dict, *arrays: np.ndarray, how=None) -> np.ndarray:
    """(N, N) policy arrays on the stage's pairs, combined by `how`. Untouched policy arrays
    are shared defaults (`compile_scenario`), so each is gathered (and its log taken) once,
    memoised in `gathered` by identity (the policies are alive for the whole compile)."""
    key = (how, *map(id, arrays))
    if key not in gathered:
        values = [a[st.lr, st.lv] for a in arrays]
        gathered[key] = how(*values) if how else values[0]
    return gathered[key]


def _log_wedge(tariff: np.ndarray, tax: np.ndarray) -> np.ndarray:
    return np.log(tariff * tax)


def _log_floor(floor: np.ndarray) -> np.ndarray:
    """log of the floor, −inf where none (0)."""
    return np.where(floor > 0, np.log(np.where(floor > 0, floor, 1.0)), -np.inf)


def _on_countries(chain: Chain, st: _Stage, params, name: str, fill: float) -> np.ndarray:
    """(B, N) parameter `name` over the chain's countries, `fill` outside the stage's."""
    values = np.full((len(params), chain.size), fill)
    values[:, st.at] = np.stack([getattr(p, name) for p in params])
    return values


def _compile(
    chain: Chain,
    structure: list[_Stage],
    scenarios: Sequence[LinkedScenario],
    parameters: Sequence[Sequence[Parameters]],
) -> tuple[list[_Arrays], list[list[PolicyArrays]]]:
    """The batch arrays of `scenarios` per stage, and their compiled policies."""
    _check_stages(chain, scenarios)
    out, compiled = [], []
    for k, cal in enumerate(chain.calibrations):
        st, stage = structure[k], chain.stages[k]
        empty = None  # a stage without policy compiles once for the whole batch
        gathered: dict[int, np.ndarray] = {}
        per_stage, wedge, floor, opened, capacities = [], [], [], [], []
        for scenario in scenarios:
            if stage in scenario.stages:
                policy = compile_scenario(cal, scenario.stages[stage])
            else:
                empty = empty or compile_scenario(cal, Scenario())
                policy = empty
            if len(policy.quota_fraction):
                raise InputError(
                    "export quotas are solved stage by stage (critmin shock --quota); the "
                    "linked chain takes bans, tariffs, export taxes, floors and production quotas"
                )
            if policy.stock.any():
                raise InputError("stockpile releases are solved stage by stage, not linked")
            per_stage.append(policy)
            capacity = policy.capacity
            quotas = scenario.production_quotas.get(stage, {})
            if quotas:
                capacity = capacity.copy()
            for code, fraction in quotas.items():
                value = float(fraction)
                if not 0.0 < value <= 1.0:
                    raise InputError(f"production quota of {code} must be in (0, 1], got {value}")
                capacity[cal.index(code)] = min(capacity[cal.index(code)], value)
            capacities.append(capacity)
            wedge.append(_on_pairs(st, gathered, policy.tariff, policy.export_tax, how=_log_wedge))
            floor.append(_on_pairs(st, gathered, policy.floor, how=_log_floor))
            opened.append(_on_pairs(st, gathered, policy.open))
        params = [p[k] for p in parameters]
        if len(params) != len(scenarios):
            raise InputError(f"{len(scenarios)} scenarios but {len(params)} parameter sets")
        with np.errstate(divide="ignore"):
            arrays = _prepare(
                st,
                log_wedge=np.stack(wedge),
                log_floor=np.stack(floor),
                open_=np.stack(opened),
                guarantee=np.stack([p.guarantee for p in per_stage])[:, st.local_sellers],
                log_capacity=np.log(np.stack(capacities)[:, st.local_sellers]),
                supply=np.stack([p.supply_elasticity for p in params])[:, st.local_sellers],
                sigma=_on_countries(chain, st, params, "armington_sigma", 2.0),
                eta=_on_countries(chain, st, params, "demand_elasticity", 0.0),
                log_cutoff=np.log(_on_countries(chain, st, params, "cutoff_price", 10.0)),
            )  # fmt: skip
        out.append(arrays)
        compiled.append(per_stage)
    return out, compiled


@dataclass
class _Point:
    """An evaluated point of a batch: the residual (B, U) and, per stage, what the Jacobian
    needs there (what a line search copies row by row: kept short)."""

    residual: np.ndarray
    stages: list[dict[str, np.ndarray]]
    extra: list[dict[str, np.ndarray]] | None = None  # `_evaluate(full=True)`

    def take(self, rows: np.ndarray) -> _Point:
        return _Point(
            self.residual[rows], [{n: v[rows] for n, v in s.items()} for s in self.stages]
        )

    def put(self, rows: np.ndarray, other: _Point, which: np.ndarray | slice) -> None:
        """Rows `rows` become `other`'s rows `which` (a line search's accepted trials)."""
        self.residual[rows] = other.residual[which]
        for mine, theirs in zip(self.stages, other.stages, strict=True):
            for name, values in mine.items():
                values[rows] = theirs[name][which]


def _padded(values: np.ndarray, fill: float) -> np.ndarray:
    """(B, n) → (B, n + 1) with `fill` in the last column (the target of absent links)."""
    return np.concatenate([values, np.full((values.shape[0], 1), fill)], axis=1)


def _evaluate(
    structure: list[_Stage], arrays: list[_Arrays], x: np.ndarray, full: bool = False
) -> _Point:
    """Residuals (B, U) over the sellers of every stage at `x`, log P* of every stage's
    sellers stage after stage, and what the Jacobian needs there (module docstring); with
    `full`, also what the report needs (`_Point.extra`)."""
    stages = len(structure)
    parts: list[dict[str, np.ndarray]] = []  # kept for the Jacobian
    extra: list[dict[str, np.ndarray]] = []  # needed here (and by the report)
    for k in range(stages):
        st, a = structure[k], arrays[k]
        z = x[:, st.offset : st.offset + len(st.sellers)]
        part, here = {}, {}
        if a.theta_w is not None:  # p^(1−σ) = P^(1−σ) w^(1−σ): no exp over pairs
            term = np.exp(a.one_minus_sigma * z)[:, st.ps]
            term *= a.theta_w
            log_p = z[:, st.ps] + a.log_wedge if full else None
        else:
            log_p = z[:, st.ps]
            log_p += a.log_wedge  # landed price before the floor
            if a.log_floor is not None:
                part["floored"] = a.log_floor > log_p
                np.maximum(log_p, a.log_floor, out=log_p)
            term = a.one_minus_sigma_p * log_p
            term += a.log_theta_open
            np.exp(term, out=term)  # θ p^(1−σ), 0 on closed flows
        total = np.maximum(np.add.reduceat(term, st.starts, axis=1), TINY) + a.dead_m
        log_comp = np.log(total) * a.inverse_m  # log P_v, 0 where no open flow
        price = np.exp(z)
        producer = np.maximum(price, a.guarantee)
        if k > 0:
            upstream = np.exp(_padded(extra[k - 1]["log_comp"], 0.0)[:, st.upstream])
            cost = st.beta * upstream + (1.0 - st.beta)
            part["b"] = st.beta * upstream / cost  # ∂ log C / ∂ log P^(k−1)
            log_y = a.supply * (np.log(producer) - np.log(cost))
        else:
            cost = np.ones_like(price)
            log_y = a.supply * np.log(producer)
        capped = (log_y > a.log_capacity) | ~a.can_sell
        log_y = np.minimum(log_y, a.log_capacity)
        part.update(term=term, total=total, elastic=~capped, guaranteed=a.guarantee > price)
        parts.append(part)
        here.update(
            log_comp=log_comp, price=price, log_y=log_y,
            output=np.where(a.can_sell, np.exp(log_y), 0.0),
        )  # fmt: skip
        if full:
            here.update(log_p=log_p, producer=producer, cost=cost)
        extra.append(here)
    residuals = []
    for k in range(stages):
        st, a, part, here = structure[k], arrays[k], parts[k], extra[k]
        # Final demand D = P^(−η) up to the choke price P̄, then P̄^(−η) (P/P̄)^(−(σ+1)) as in
        # solver.py: a market that loses nearly all of its suppliers cuts its purchases instead
        # of bidding the last one up without bound.
        log_comp = here["log_comp"]
        beyond = log_comp > a.log_cutoff_m
        log_d = np.where(
            beyond,
            -a.eta_m * a.log_cutoff_m - (a.sigma_m + 1.0) * (log_comp - a.log_cutoff_m),
            -a.eta_m * log_comp,
        )
        final = st.final_share * np.exp(log_d)
        volume = final
        if k + 1 < stages:  # the next stage's producers in v: (1 − φ_v) Y^(k+1)_v
            supply = _padded(extra[k + 1]["output"], 1.0)
            volume = final + (1.0 - st.final_share) * supply[:, st.downstream]
        # q = q0 p^(−σ) P^σ c = t · Q0_v P_v^σ c_v / p, with t the CES term: no exp over pairs
        scale = st.absorption * np.exp(a.sigma_m * log_comp) * np.maximum(volume, TINY)
        if a.theta_w is not None:  # q = t / (P w) · Q0_v P_v^σ c_v: t is still in cache
            q = (1.0 / here["price"])[:, st.ps]
            if a.inverse_wedge is not None:
                q *= a.inverse_wedge
            q *= part["term"]
            q *= scale[:, st.pm]
        else:
            landed = here["price"][:, st.ps]
            landed *= a.wedge
            if a.floor is not None:
                np.maximum(landed, a.floor, out=landed)
            q = scale[:, st.pm]
            q *= part["term"]
            q /= landed
        demand = _by_seller(st, q)
        active = demand > 0
        made = np.log(st.x0) + here["log_y"]
        z = x[:, st.offset : st.offset + len(st.sellers)]
        residuals.append(np.where(active, np.log(np.maximum(demand, TINY)) - made, z))
        part.update(
            q=q, demand=demand, active=active, final=final, volume=volume,
            demand_slope=np.where(beyond, a.sigma_m + 1.0, a.eta_m),
        )  # fmt: skip
    return _Point(np.concatenate(residuals, axis=1), parts, extra if full else None)


def _own_block(st: _Stage, wc: np.ndarray, sg: np.ndarray, jac: np.ndarray) -> None:
    """Add Σ_v wc_rv sg_r'v over the stage's markets to the stage's block of `jac` (zero
    there): a dense batched product over the markets with many sellers, pair by pair over the
    others (`_dense_markets`)."""
    batch, width = wc.shape[0], st.dense_rows
    rows = slice(st.offset, st.offset + width)
    if st.dense_width:
        left = np.zeros((batch, width * st.dense_width))
        right = np.zeros((batch, width * st.dense_width))
        left[:, st.dense_flat] = wc[:, st.dense_pairs]
        right[:, st.dense_flat] = sg[:, st.dense_pairs]
        shape = (batch, width, st.dense_width)
        np.matmul(left.reshape(shape), right.reshape(shape).transpose(0, 2, 1),
                  out=jac[:, rows, rows])  # fmt: skip
    if len(st.pp_i):
        products = wc[:, st.pp_i] * sg[:, st.pp_j]
        jac.reshape(batch, -1)[:, st.pp_flat] += np.add.reduceat(products, st.pp_seg, axis=1)


def _jacobian(
    structure: list[_Stage], arrays: list[_Arrays], point: _Point, rows: np.ndarray | None = None
) -> np.ndarray:
    """The analytic generalised Jacobian (B, U, U) at an evaluated point, that of scenarios
    `rows` of `arrays` (default all; the Jacobian reads only a few small arrays, so they are
    indexed here rather than copied with `_Arrays.take`). Module docstring of `linked.py`;
    s = value share, g = 1 unless the floor binds, w = q_rv / Σ_v q_rv:

        ∂ log q^k_rv / ∂ z^k_r' = −σ g δ_rr' + (σ + κ_v) s_r'v g_r'v,
        κ_v = −η φ_v c_v⁻¹ P^(−η) − (1 − φ_v) Y_v / c_v · e b_v   (b = ∂ log C / ∂ log P^k)
        ∂ log q^k_rv / ∂ z^(k+1)_v = (1 − φ_v) Y_v / c_v · e,   ∂ log Y^k_r / ∂ z^(k−1)_r' =
        −e b_r s^(k−1)_r'r g.
    """
    stages = len(structure)
    batch, width = point.residual.shape
    every = slice(None) if rows is None else rows
    supply = [a.supply[every] for a in arrays]
    jac = np.zeros((batch, width, width))
    flat = jac.reshape(batch, -1)
    sg = []
    for st, part in zip(structure, point.stages, strict=True):
        share = part["term"] / part["total"][:, st.pm]
        sg.append(np.where(part["floored"], 0.0, share) if "floored" in part else share)
    for k in range(stages):
        st, a, part = structure[k], arrays[k], point.stages[k]
        w = part["q"] / np.maximum(part["demand"], TINY)[:, st.ps]
        fin = part["final"] / np.maximum(part["volume"], TINY)
        inter = 1.0 - fin
        kappa = -part["demand_slope"] * fin
        if k + 1 < stages:
            nxt = point.stages[k + 1]
            elastic = supply[k + 1] * nxt["elastic"]
            dy_dz = _padded(elastic * ~nxt["guaranteed"], 0.0)[:, st.downstream]
            kappa = kappa - inter * _padded(elastic * nxt["b"], 0.0)[:, st.downstream]
        sigma = a.sigma_m[every]
        _own_block(st, w * (sigma + kappa)[:, st.pm], sg[k], jac)
        w_sigma = w * sigma[:, st.pm]
        if "floored" in part:
            w_sigma = np.where(part["floored"], 0.0, w_sigma)
        flat[:, st.diagonal] -= (
            _by_seller(st, w_sigma) + supply[k] * part["elastic"] * ~part["guaranteed"]
        )
        if k + 1 < stages:  # the next stage's output moves this stage's demand
            factor = inter * dy_dz
            flat[:, st.down_flat] = w[:, st.down_pairs] * factor[:, st.pm[st.down_pairs]]
        if k > 0:  # the previous stage's prices move this stage's input cost
            coef = supply[k] * part["elastic"] * part["b"]
            flat[:, st.up_flat] = sg[k - 1][:, st.up_pairs] * coef[:, st.up_rows]
        inactive = ~part["active"]
        if inactive.any():  # a seller without demand: its price stays at base (residual z)
            b_idx, r_idx = np.nonzero(inactive)
            jac[b_idx, st.offset + r_idx, :] = 0.0
            jac[b_idx, st.offset + r_idx, st.offset + r_idx] = 1.0
    return jac


class _Factors:
    """LU factors (LAPACK getrf) of each scenario's Jacobian: a Newton step that reuses a
    Jacobian (Shamanskii, `_newton`) then costs two triangular solves, not a factorisation —
    a third of the steps here. A singular Jacobian is kept whole for a least-squares step."""

    def __init__(self, batch: int):
        self.lu: list = [None] * batch
        self.singular: dict[int, np.ndarray] = {}

    def factor(self, rows: np.ndarray, jac: np.ndarray) -> None:
        """Factor the Jacobians `jac` (len(rows), U, U) of scenarios `rows`."""
        for b, matrix in zip(rows, jac, strict=True):
            # The C-ordered J is Jᵀ in LAPACK's column order: factor that without a copy of
            # the layout and solve with the transpose (getrs trans=1).
            lu, piv, info = _getrf(matrix.T)
            self.lu[b] = (lu, piv)
            if info > 0:
                self.singular[b] = matrix.copy()
            else:
                self.singular.pop(b, None)

    def solve(self, rows: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """J⁻¹ rhs for scenarios `rows` (rhs (len(rows), U))."""
        out = np.empty_like(rhs)
        for i, b in enumerate(rows):
            if b in self.singular:
                out[i] = np.linalg.lstsq(self.singular[b], rhs[i], rcond=None)[0]
            else:
                out[i] = _getrs(*self.lu[b], rhs[i], trans=1)[0]
        return out


def _rows(arrays: list[_Arrays], rows: np.ndarray, batch: int) -> list[_Arrays]:
    """The batch arrays of scenarios `rows` (of `batch`): no copies when that is all of them."""
    return arrays if len(rows) == batch else [a.take(rows) for a in arrays]


def _line_search(
    structure: list[_Stage],
    sub: list[_Arrays],
    state: _Point,
    x: np.ndarray,
    todo: np.ndarray,
    step: np.ndarray,
    merit: np.ndarray,
) -> tuple[_Point, np.ndarray]:
    """Armijo backtracking from x[todo] along `step` (`sub`: the arrays of scenarios `todo`).
    Each scenario's row of `x` and `state` becomes its accepted trial (rows copied: no
    re-evaluation); returns the state — the first trial itself when the whole batch took its
    full step — and the step lengths."""
    batch = x.shape[0]
    start = x[todo]
    length = np.ones(len(todo))
    accepted = np.zeros(len(todo), bool)
    for attempt in range(MAX_HALVINGS + 1):
        idx = np.flatnonzero(~accepted)
        trial_x = start[idx] + length[idx, None] * step[idx]
        trial = _evaluate(structure, _rows(sub, idx, len(todo)), trial_x)
        if attempt < MAX_HALVINGS:
            trial_merit = 0.5 * (trial.residual**2).sum(axis=1)
            good = trial_merit <= (1.0 - ARMIJO * length[idx]) * merit[idx]
        else:  # a kink can stall the search: take the shortest step
            good = np.ones(len(idx), bool)
        rows = todo[idx[good]]
        if len(rows) == batch:
            state = trial
        elif len(rows):
            state.put(rows, trial, good)
        x[rows] = trial_x[good]
        accepted[idx[good]] = True
        if accepted.all():
            break
        length[~accepted] *= 0.5
    return state, length


def _newton(
    structure: list[_Stage],
    arrays: list[_Arrays],
    x: np.ndarray,
    tolerance: float,
    max_iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Semismooth Newton with an Armijo line search on a batch, from `x` (updated in place to
    the solution); the iterations and the final max-norm residual per scenario."""
    batch = x.shape[0]
    state = _evaluate(structure, arrays, x)
    factors = _Factors(batch)
    factors.factor(np.arange(batch), _jacobian(structure, arrays, state))
    norm = np.abs(state.residual).max(axis=1, initial=0.0)
    iterations = np.zeros(batch, dtype=int)
    current = np.ones(batch, bool)  # the scenario's Jacobian is the one at its current point
    for _ in range(max_iterations):
        todo = np.flatnonzero(norm >= tolerance)
        if not len(todo):
            break
        sub = _rows(arrays, todo, batch)
        res = state.residual[todo]
        step = -factors.solve(todo, res)
        biggest = np.abs(step).max(axis=1, initial=0.0)
        step *= np.minimum(1.0, MAX_LOG_STEP / np.maximum(biggest, TINY))[:, None]
        merit = 0.5 * (res**2).sum(axis=1)
        state, length = _line_search(structure, sub, state, x, todo, step, merit)
        iterations[todo] += 1
        before = norm[todo]
        norm[todo] = np.abs(state.residual[todo]).max(axis=1, initial=0.0)
        # Shamanskii's variant of Newton (as in solver.py): after a full step with a current
        # Jacobian that cut the residual tenfold, the next step reuses that Jacobian.
        full = length == 1.0
        reuse = full & current[todo] & (norm[todo] <= REUSE_RATIO * before)
        current[todo] = False
        again = ~reuse & (norm[todo] >= tolerance)
        renew = todo[again]
        if len(renew):
            whole = len(renew) == batch
            jac = _jacobian(
                structure, arrays, state if whole else state.take(renew), None if whole else renew
            )
            factors.factor(renew, jac)
            current[renew] = True
    return iterations, norm


def report(chain: Chain, structure: list[_Stage], arrays: list[_Arrays], x: np.ndarray):
    """The reported figures at solved `x` (`linked.LinkedState`'s fields), with the residual:
    sellers' and markets' (B, N) over the chain's countries (1 where a country does not sell
    or buy at the stage), pairs (B, P)."""
    point = _evaluate(structure, arrays, x, full=True)
    stages, size, batch = len(structure), chain.size, x.shape[0]
    out: dict[str, list[np.ndarray]] = {
        n: []
        for n in ("world_price", "producer_price", "supply", "unit_cost", "composite",
                  "demand_volume", "landed", "flows")
    }  # fmt: skip
    for k in range(stages):
        st, here = structure[k], point.extra[k]
        for name, key in (("world_price", "price"), ("producer_price", "producer"),
                          ("supply", "output"), ("unit_cost", "cost")):  # fmt: skip
            values = np.ones((batch, size))
            values[:, st.sellers] = here[key]
            out[name].append(values)
    for k in range(stages):
        st, a, here = structure[k], arrays[k], point.extra[k]
        log_comp = np.zeros((batch, size))
        log_comp[:, st.markets] = here["log_comp"]
        # Demand volume over every country, markets or not (at markets: `_evaluate`'s volume).
        beyond = log_comp > a.log_cutoff
        log_d = np.where(
            beyond,
            -a.eta * a.log_cutoff - (a.sigma + 1.0) * (log_comp - a.log_cutoff),
            -a.eta * log_comp,
        )
        phi = chain.final_share[k]
        volume = phi * np.exp(log_d)
        if k + 1 < stages:
            volume = volume + (1.0 - phi) * out["supply"][k + 1]
        out["composite"].append(np.exp(log_comp))
        out["demand_volume"].append(volume)
        out["landed"].append(np.exp(here["log_p"]))
        out["flows"].append(point.stages[k]["q"])
    return out, point.residual


def solve_rows(
    chain: Chain,
    scenarios: Sequence[LinkedScenario],
    parameters: Sequence[Sequence[Parameters]],
    tolerance: float,
    max_iterations: int,
):
    """Compile, solve and report one batch of scenarios (`linked.solve_chain` runs batches side
    by side): the reported figures, the residual, iterations and max-norm residual per
    scenario, and the compiled policies per stage."""
    structure = _structure(chain)
    arrays, compiled = _compile(chain, structure, scenarios, parameters)
    x = np.zeros((len(scenarios), sum(len(st.sellers) for st in structure)))
    iterations, norm = _newton(structure, arrays, x, tolerance, max_iterations)
    return *report(chain, structure, arrays, x), iterations, norm, compiled
