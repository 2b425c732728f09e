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
scenarios. Final demand has the single-stage model's choke price P̄ (beyond it demand turns
elastic, σ + 1). No quotas or stock releases here: those are single-stage policies
(`solver.py`); a production quota is a cap K < 1.

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
from critmin.market.parameters import Parameters, resolve_parameters
from critmin.market.policies import PolicyArrays, Scenario, compile_scenario

TOLERANCE = 1e-10
MAX_ITERATIONS = 100
MAX_LOG_STEP = 5.0
REUSE_RATIO = 0.1  # reuse the Jacobian after a full step that cut the residual this much
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


def _reindex(cal: Calibration, countries: Sequence[str]) -> np.ndarray:
    where = {c: i for i, c in enumerate(countries)}
    return np.array([where[c] for c in cal.countries])


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
class _Stage:
    """Scenario-independent structure of one stage: its base flows as a list of pairs sorted
    by market (trade matrices are sparse: rare earths refined 2023, 1,400 of 24,000 pairs)."""

    pr: np.ndarray  # (P,) origin of each pair, chain index
    pv: np.ndarray  # (P,) market of each pair, chain index
    lr: np.ndarray  # (P,) origin in the stage calibration's index
    lv: np.ndarray  # (P,) market in the stage calibration's index
    ps: np.ndarray  # (P,) origin's position among the stage's sellers
    pm: np.ndarray  # (P,) market's position among the stage's markets
    sellers: np.ndarray  # (S,) chain index
    markets: np.ndarray  # (M,) chain index
    starts: np.ndarray  # (M,) first pair of each market
    er: np.ndarray  # (P, S) one-hot origin
    log_q0: np.ndarray
    log_theta: np.ndarray
    x0: np.ndarray  # (S,)
    at: np.ndarray  # stage calibration index → chain index


def _structure(chain: Chain) -> list[_Stage]:
    """The chain's pair structure, computed once per chain (kept on it)."""
    cached = chain.__dict__.get("_structure")
    if cached is not None:
        return cached
    out = _build_structure(chain)
    object.__setattr__(chain, "_structure", out)  # a cache on a frozen dataclass
    return out


def _build_structure(chain: Chain) -> list[_Stage]:
    out = []
    for k, cal in enumerate(chain.calibrations):
        q0 = chain.q0[k]
        pv, pr = np.nonzero(q0.T > 0)  # sorted by market
        sellers = np.flatnonzero(q0.sum(axis=1) > 0)
        seller_pos = np.full(chain.size, -1)
        seller_pos[sellers] = np.arange(len(sellers))
        markets, starts = np.unique(pv, return_index=True)
        market_pos = np.full(chain.size, -1)
        market_pos[markets] = np.arange(len(markets))
        at = _reindex(cal, chain.countries)
        local = np.full(chain.size, -1)
        local[at] = np.arange(len(at))
        er = np.zeros((len(pr), len(sellers)))
        er[np.arange(len(pr)), seller_pos[pr]] = 1.0
        base = q0[pr, pv]
        out.append(
            _Stage(
                pr=pr,
                pv=pv,
                lr=local[pr],
                lv=local[pv],
                ps=seller_pos[pr],
                pm=market_pos[pv],
                sellers=sellers,
                markets=markets,
                starts=starts,
                er=er,
                log_q0=np.log(base),
                log_theta=np.log(base / q0.sum(axis=0)[pv]),
                x0=q0.sum(axis=1)[sellers],
                at=at,
            )
        )
    return out


@dataclass
class _Arrays:
    """One stage's policies and parameters for a batch: pairs (B, P), sellers (B, S),
    markets (B, N) over the chain's countries."""

    log_wedge: np.ndarray
    log_floor: np.ndarray
    open: np.ndarray
    guarantee: np.ndarray
    log_capacity: np.ndarray
    supply: np.ndarray
    sigma: np.ndarray
    eta: np.ndarray
    log_cutoff: np.ndarray  # (B, N) log P̄: beyond it final demand turns elastic (σ + 1)

    def take(self, rows: np.ndarray) -> _Arrays:
        return _Arrays(**{n: getattr(self, n)[rows] for n in self.__dataclass_fields__})


def _compile(
    chain: Chain,
    structure: list[_Stage],
    scenarios: Sequence[LinkedScenario],
    parameters: Sequence[Sequence[Parameters]],
) -> tuple[list[_Arrays], list[list[PolicyArrays]]]:
    out, compiled = [], []
    for scenario in scenarios:
        unknown = set(scenario.stages) | set(scenario.production_quotas)
        unknown -= set(chain.stages)
        if unknown:
            raise InputError(
                f"policy at {', '.join(sorted(unknown))}: the chain has stages "
                f"{', '.join(chain.stages)}"
            )
    for k, cal in enumerate(chain.calibrations):
        st, stage = structure[k], chain.stages[k]
        fields: dict[str, list] = {n: [] for n in _Arrays.__dataclass_fields__}
        per_stage = []
        seller_local = {c: i for i, c in enumerate(st.at)}
        sl = np.array([seller_local[c] for c in st.sellers], dtype=int)
        empty = None  # a stage without policy compiles once for the whole batch
        for scenario, params in zip(scenarios, parameters, strict=True):
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
            capacity = policy.capacity.copy()
            for code, fraction in scenario.production_quotas.get(stage, {}).items():
                value = float(fraction)
                if not 0.0 < value <= 1.0:
                    raise InputError(f"production quota of {code} must be in (0, 1], got {value}")
                capacity[cal.index(code)] = min(capacity[cal.index(code)], value)
            wedge = (policy.tariff * policy.export_tax)[st.lr, st.lv]
            floor = policy.floor[st.lr, st.lv]
            with np.errstate(divide="ignore"):
                fields["log_wedge"].append(np.log(wedge))
                fields["log_floor"].append(
                    np.where(floor > 0, np.log(np.where(floor > 0, floor, 1.0)), -np.inf)
                )
                fields["log_capacity"].append(np.log(capacity[sl]))
            fields["open"].append(policy.open[st.lr, st.lv])
            fields["guarantee"].append(policy.guarantee[sl])
            p = params[k]
            fields["supply"].append(p.supply_elasticity[sl])

            def vec(a: np.ndarray, fill: float, at: np.ndarray = st.at) -> np.ndarray:
                full = np.full(chain.size, fill, dtype=float)
                full[at] = a
                return full

            fields["sigma"].append(vec(p.armington_sigma, 2.0))
            fields["eta"].append(vec(p.demand_elasticity, 0.0))
            fields["log_cutoff"].append(np.log(vec(p.cutoff_price, 10.0)))
        out.append(_Arrays(**{n: np.stack(v) for n, v in fields.items()}))
        compiled.append(per_stage)
    return out, compiled


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


def _evaluate(
    chain: Chain,
    structure: list[_Stage],
    arrays: list[_Arrays],
    x: np.ndarray,
    jacobian: bool,
):
    """Residuals (B, U) and the Jacobian (B, U, U) over the sellers of every stage; `x` holds
    log P* of every stage's sellers, stage after stage."""
    stages = len(chain.stages)
    batch, size = x.shape[0], chain.size
    out: dict[str, list] = {n: [] for n in LinkedState.__dataclass_fields__ if n != "residual"}
    parts: list[dict] = []
    at = 0
    for k in range(stages):
        st, a = structure[k], arrays[k]
        z = x[:, at : at + len(st.sellers)]
        at += len(st.sellers)
        log_p0 = z[:, st.ps] + a.log_wedge
        floored = a.log_floor > log_p0
        log_p = np.maximum(log_p0, a.log_floor)
        sig = a.sigma[:, st.pv]
        term = np.where(a.open, np.exp(st.log_theta + (1.0 - sig) * log_p), 0.0)
        total = np.add.reduceat(term, st.starts, axis=1)  # (B, M)
        alive = total > 0
        sig_m = a.sigma[:, st.markets]
        log_comp_m = np.where(alive, np.log(np.where(alive, total, 1.0)) / (1.0 - sig_m), 0.0)
        comp = np.zeros((batch, size))
        comp[:, st.markets] = log_comp_m
        share = term / np.where(alive, total, 1.0)[:, st.pm]
        # An origin with no open flow into a live market sells nothing: its output is zero (and
        # so is its demand for the stage above), its price is pinned at base.
        can_sell = ((a.open & alive[:, st.pm]).astype(float) @ st.er) > 0
        parts.append(
            {"z": z, "log_p": log_p, "passes": a.open & ~floored, "share": share,
             "alive": alive, "log_comp": comp, "sig": sig, "can_sell": can_sell}
        )  # fmt: skip
        out["landed"].append(np.exp(log_p))
        out["composite"].append(np.exp(comp))
    for k in range(stages):
        st, a, part = structure[k], arrays[k], parts[k]
        price = np.exp(part["z"])
        guaranteed = a.guarantee > price
        producer = np.maximum(price, a.guarantee)
        beta = chain.beta[k][st.sellers]
        if k > 0:
            upstream = np.exp(parts[k - 1]["log_comp"][:, st.sellers])
            cost = beta * upstream + (1.0 - beta)
            b = beta * upstream / cost  # ∂ log C / ∂ log P^(k−1)
        else:
            cost = np.ones_like(price)
            b = np.zeros_like(price)
        log_y = a.supply * (np.log(producer) - np.log(cost))
        capped = (log_y > a.log_capacity) | ~part["can_sell"]
        log_y = np.minimum(log_y, a.log_capacity)
        output = np.where(part["can_sell"], np.exp(log_y), 0.0)
        for name, values, fill in (
            ("world_price", price, 1.0),
            ("producer_price", producer, 1.0),
            ("supply", output, 1.0),
            ("unit_cost", cost, 1.0),
        ):
            full = np.full((batch, size), fill)
            full[:, st.sellers] = values
            out[name].append(full)
        part.update(log_y=log_y, elastic=~capped, guaranteed=guaranteed, b=b)
    residuals = []
    for k in range(stages):
        st, a, part = structure[k], arrays[k], parts[k]
        phi = chain.final_share[k]
        # Final demand D = P^(−η) up to the choke price P̄, then P̄^(−η) (P/P̄)^(−(σ+1)) as in
        # solver.py: a market that loses nearly all of its suppliers cuts its purchases instead
        # of bidding the last one up without bound.
        log_p_v = part["log_comp"]
        beyond = log_p_v > a.log_cutoff
        log_d = np.where(
            beyond,
            -a.eta * a.log_cutoff - (a.sigma + 1.0) * (log_p_v - a.log_cutoff),
            -a.eta * log_p_v,
        )
        final = phi * np.exp(log_d)
        part["demand_slope"] = np.where(beyond, a.sigma + 1.0, a.eta)
        inter = (1.0 - phi) * out["supply"][k + 1] if k + 1 < stages else np.zeros_like(final)
        volume = final + inter
        out["demand_volume"].append(volume)
        log_q = (
            st.log_q0
            - part["sig"] * part["log_p"]
            + (a.sigma * part["log_comp"])[:, st.pv]
            + np.log(np.maximum(volume, 1e-300))[:, st.pv]
        )
        q = np.where(a.open & part["alive"][:, st.pm], np.exp(log_q), 0.0)
        out["flows"].append(q)
        demand = q @ st.er  # (B, S)
        active = demand > 0
        made = np.log(st.x0) + part["log_y"]
        residuals.append(np.where(active, np.log(np.maximum(demand, 1e-300)) - made, part["z"]))
        part.update(q=q, demand=demand, volume=volume, final=final, inter=inter, active=active)
    state = LinkedState(**out, residual=np.concatenate(residuals, axis=1))
    state.parts = parts  # what a later Jacobian at this point needs (`_jacobian_rows`)
    if not jacobian:
        return state, None
    return state, _jacobian(chain, structure, arrays, parts)


def _jacobian_rows(chain, structure, arrays, state: LinkedState, rows: np.ndarray) -> np.ndarray:
    """The Jacobian at an evaluated `state`, for its scenarios `rows` only (no re-evaluation)."""
    if len(rows) == state.residual.shape[0]:  # every scenario: no copies
        return _jacobian(chain, structure, arrays, state.parts)
    parts = [{name: value[rows] for name, value in part.items()} for part in state.parts]
    return _jacobian(chain, structure, [a.take(rows) for a in arrays], parts)


def _jacobian(chain: Chain, structure: list[_Stage], arrays: list[_Arrays], parts) -> np.ndarray:
    """The analytic generalised Jacobian (module docstring; s = value share, g = 1 unless the
    floor binds, w = q_rv / Σ_v q_rv):

        ∂ log q^k_rv / ∂ z^k_r' = −σ g δ_rr' + (σ + κ_v) s_r'v g_r'v,
        κ_v = −η φ_v c_v⁻¹ P^(−η) − (1 − φ_v) Y_v / c_v · e b_v   (b = ∂ log C / ∂ log P^k)
        ∂ log q^k_rv / ∂ z^(k+1)_v = (1 − φ_v) Y_v / c_v · e,   ∂ log Y^k_r / ∂ z^(k−1)_r' =
        −e b_r s^(k−1)_r'r g.
    """
    stages = len(chain.stages)
    widths = [len(st.sellers) for st in structure]
    offsets = np.cumsum([0, *widths])
    batch = parts[0]["q"].shape[0]
    jac = np.zeros((batch, offsets[-1], offsets[-1]))
    mats = []
    for k in range(stages):
        st, part = structure[k], parts[k]
        sg = part["share"] * part["passes"]
        sg_mat = np.zeros((batch, len(st.sellers) * len(st.markets)))
        sg_mat[:, st.ps * len(st.markets) + st.pm] = sg
        mats.append(sg_mat.reshape(batch, len(st.sellers), len(st.markets)))
    for k in range(stages):
        st, a, part = structure[k], arrays[k], parts[k]
        rows = slice(offsets[k], offsets[k + 1])
        q, demand = part["q"], part["demand"]
        w = q / np.maximum(demand, 1e-300)[:, st.ps]
        w_mat = np.zeros((batch, len(st.sellers) * len(st.markets)))
        w_mat[:, st.ps * len(st.markets) + st.pm] = w
        w_mat = w_mat.reshape(batch, len(st.sellers), len(st.markets))
        volume = part["volume"][:, st.markets]
        fin = part["final"][:, st.markets] / np.maximum(volume, 1e-300)
        inter = 1.0 - fin
        kappa = -part["demand_slope"][:, st.markets] * fin
        if k + 1 < stages:
            nxt, a_n, st_n = parts[k + 1], arrays[k + 1], structure[k + 1]
            dy_dz = np.zeros((batch, chain.size))
            dy_dc = np.zeros((batch, chain.size))
            dy_dz[:, st_n.sellers] = a_n.supply * nxt["elastic"] * ~nxt["guaranteed"]
            dy_dc[:, st_n.sellers] = a_n.supply * nxt["elastic"] * nxt["b"]
            kappa = kappa - inter * dy_dc[:, st.markets]
        sigma_m = a.sigma[:, st.markets]
        jkk = w_mat @ ((sigma_m + kappa)[:, None, :] * mats[k]).transpose(0, 2, 1)
        own = (w * part["sig"] * part["passes"]) @ st.er
        own += a.supply * part["elastic"] * ~part["guaranteed"]
        idx = np.arange(len(st.sellers))
        jkk[:, idx, idx] -= own
        jac[:, rows, rows] = jkk
        if k + 1 < stages:
            # markets of stage k that are sellers of stage k + 1: their output moves demand
            cols = np.searchsorted(st.markets, st_n.sellers)
            hit = (cols < len(st.markets)) & (st.markets[np.minimum(cols, len(st.markets) - 1)]
                                               == st_n.sellers)  # fmt: skip
            factor = inter * dy_dz[:, st.markets]
            block = np.zeros((batch, len(st.sellers), len(st_n.sellers)))
            block[:, :, hit] = (w_mat * factor[:, None, :])[:, :, cols[hit]]
            jac[:, rows, offsets[k + 1] : offsets[k + 2]] = block
        if k > 0:
            st_p = structure[k - 1]
            cols = np.searchsorted(st_p.markets, st.sellers)
            hit = (cols < len(st_p.markets)) & (
                st_p.markets[np.minimum(cols, len(st_p.markets) - 1)] == st.sellers
            )
            up = np.zeros((batch, len(st_p.sellers), len(st.sellers)))
            up[:, :, hit] = mats[k - 1][:, :, cols[hit]]  # (B, r', r)
            coef = a.supply * part["elastic"] * part["b"]  # (B, r)
            jac[:, rows, offsets[k - 1] : offsets[k]] = up.transpose(0, 2, 1) * coef[:, :, None]
        inactive = ~part["active"]
        if inactive.any():
            b_idx, r_idx = np.nonzero(inactive)
            jac[b_idx, offsets[k] + r_idx, :] = 0.0
            jac[b_idx, offsets[k] + r_idx, offsets[k] + r_idx] = 1.0
    return jac


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


def _newton(chain, structure, arrays, x, tolerance, max_iterations):
    batch = x.shape[0]
    state, jac = _evaluate(chain, structure, arrays, x, True)
    norm = np.abs(state.residual).max(axis=1, initial=0.0)
    iterations = np.zeros(batch, dtype=int)
    current = np.ones(batch, bool)  # the scenario's Jacobian is the one at its current point
    for _ in range(max_iterations):
        todo = np.flatnonzero(norm >= tolerance)
        if not len(todo):
            break
        sub = [a.take(todo) for a in arrays] if len(todo) < batch else arrays
        res = state.residual[todo]
        try:
            step = -np.linalg.solve(jac[todo] if len(todo) < batch else jac, res[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack(
                [-np.linalg.lstsq(j, r, rcond=None)[0] for j, r in zip(jac[todo], res, strict=True)]
            )
        biggest = np.abs(step).max(axis=1, initial=0.0)
        step *= np.minimum(1.0, MAX_LOG_STEP / np.maximum(biggest, 1e-300))[:, None]
        merit = 0.5 * (res**2).sum(axis=1)
        length = np.ones(len(todo))
        accepted = np.zeros(len(todo), bool)
        new_x = x[todo].copy()
        first = None
        for attempt in range(30):
            idx = np.flatnonzero(~accepted)
            trial_x = x[todo[idx]] + length[idx, None] * step[idx]
            sub_idx = [a.take(idx) for a in sub] if len(idx) < len(todo) else sub
            trial, _ = _evaluate(chain, structure, sub_idx, trial_x, False)
            if attempt == 0:
                first = trial
            trial_merit = 0.5 * (trial.residual**2).sum(axis=1)
            good = trial_merit <= (1.0 - 1e-4 * length[idx]) * merit[idx]
            new_x[idx[good]] = trial_x[good]
            accepted[idx[good]] = True
            if accepted.all():
                break
            length[~accepted] *= 0.5
        if not accepted.all():  # a kink can stall the search: take the shortest step tried
            idx = np.flatnonzero(~accepted)
            new_x[idx] = x[todo[idx]] + length[idx, None] * step[idx]
        x[todo] = new_x
        iterations[todo] += 1
        if accepted.all() and (length == 1.0).all():
            fresh = first  # every full step accepted: the first trial is the new state
        else:
            fresh, _ = _evaluate(chain, structure, sub, x[todo], False)
        for name in LinkedState.__dataclass_fields__:
            if name == "residual":
                state.residual[todo] = fresh.residual
            else:
                for k, values in enumerate(getattr(fresh, name)):
                    getattr(state, name)[k][todo] = values
        before = norm[todo]
        norm[todo] = np.abs(fresh.residual).max(axis=1, initial=0.0)
        # Shamanskii's variant of Newton (as in solver.py): after a full step with a current
        # Jacobian that cut the residual tenfold, the next step reuses that Jacobian.
        full = accepted & (length == 1.0)
        reuse = full & current[todo] & (norm[todo] <= REUSE_RATIO * before)
        current[todo] = False
        again = ~reuse & (norm[todo] >= tolerance)
        renew = todo[again]
        if len(renew):
            jac[renew] = _jacobian_rows(chain, structure, sub, fresh, np.flatnonzero(again))
            current[renew] = True
    return state, iterations, norm


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
    if isinstance(parameters, str):
        per_stage = [resolve_parameters(c.countries, parameters) for c in chain.calibrations]
        parameters = [per_stage] * len(scenarios)
    structure = _structure(chain)
    arrays, compiled = _compile(chain, structure, scenarios, parameters)
    width = sum(len(st.sellers) for st in structure)
    chunks = [
        np.arange(start, min(start + chunk, len(scenarios)))
        for start in range(0, len(scenarios), chunk)
    ]

    def run(rows: np.ndarray):
        part = [a.take(rows) for a in arrays]
        return _newton(chain, structure, part, np.zeros((len(rows), width)), tolerance,
                       MAX_ITERATIONS)  # fmt: skip

    # As in model.py: chunks side by side on the cores (numpy releases the GIL), BLAS held to
    # one thread — a multithreaded BLAS on these small batched products is 20× slower.
    workers = max(1, min(len(chunks), threads or os.cpu_count() or 1))
    with _blas_controller().limit(limits=1, user_api="blas"):
        if workers == 1:
            pieces = [run(rows) for rows in chunks]
        else:
            with ThreadPoolExecutor(workers) as pool:
                pieces = list(pool.map(run, chunks))
    state = LinkedState(
        **{
            name: [np.concatenate([p[0].__dict__[name][k] for p in pieces]) for k in
                   range(len(chain.stages))]
            for name in LinkedState.__dataclass_fields__ if name != "residual"
        },
        residual=np.concatenate([p[0].residual for p in pieces]),
    )  # fmt: skip
    iterations = np.concatenate([p[1] for p in pieces])
    norm = np.concatenate([p[2] for p in pieces])
    failed = np.flatnonzero(~(norm < tolerance))
    if len(failed):
        first = failed[0]
        raise SolverError(
            f"linked market solve did not converge for scenario {scenarios[first].name!r} "
            f"(max residual {norm[first]:.3g} after {iterations[first]} iterations)"
        )
    return LinkedSolution(chain, scenarios, state, iterations, norm, compiled, structure)
