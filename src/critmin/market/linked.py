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
scenarios. No choke price, quotas or stock releases here: those are single-stage policies
(`solver.py`); a production quota is a cap K < 1.

Input requirement (calibration, `link`): the next stage's producers in v use
a · Y0^(k+1)_v tonnes of stage-k content, a = 1 on a content basis (a tonne of oxide in, a
tonne out: recovery losses are not in the data), at most what v absorbs at stage k; their value
at v's base purchase price over the value of v's output is β (capped at BETA_MAX).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from critmin.errors import InputError, SolverError
from critmin.market.calibration import Calibration
from critmin.market.parameters import Parameters, resolve_parameters
from critmin.market.policies import PolicyArrays, Scenario, compile_scenario

TOLERANCE = 1e-10
MAX_ITERATIONS = 100
MAX_LOG_STEP = 5.0
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
        chain = Chain(**{**chain.__dict__, "notes": (*chain.notes, *skipped)})
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
class _Arrays:
    wedge: np.ndarray  # (B, N, N)
    open: np.ndarray  # (B, N, N)
    floor: np.ndarray  # (B, N, N) hat, 0 none
    guarantee: np.ndarray  # (B, N) hat, 0 none
    capacity: np.ndarray  # (B, N)
    sigma: np.ndarray  # (B, N)
    eta: np.ndarray  # (B, N)
    supply: np.ndarray  # (B, N)


def _compile(
    chain: Chain, scenarios: Sequence[LinkedScenario], parameters: Sequence[Sequence[Parameters]]
) -> tuple[list[_Arrays], list[list[PolicyArrays]]]:
    size = chain.size
    out, compiled = [], []
    for k, cal in enumerate(chain.calibrations):
        at = _reindex(cal, chain.countries)
        stage = chain.stages[k]
        fields = {n: [] for n in _Arrays.__dataclass_fields__}
        per_stage = []
        for scenario, params in zip(scenarios, parameters, strict=True):
            unknown = set(scenario.stages) - set(chain.stages)
            unknown |= set(scenario.production_quotas) - set(chain.stages)
            if unknown:
                raise InputError(
                    f"policy at {', '.join(sorted(unknown))}: the chain has stages "
                    f"{', '.join(chain.stages)}"
                )
            policy = compile_scenario(cal, scenario.stages.get(stage, Scenario()))
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

            def grid(a: np.ndarray, fill: float, at: np.ndarray = at) -> np.ndarray:
                full = np.full((size, size), fill, dtype=a.dtype)
                full[np.ix_(at, at)] = a
                return full

            def vec(a: np.ndarray, fill: float, at: np.ndarray = at) -> np.ndarray:
                full = np.full(size, fill, dtype=float)
                full[at] = a
                return full

            fields["wedge"].append(grid(policy.tariff * policy.export_tax, 1.0))
            fields["open"].append(grid(policy.open, False))
            fields["floor"].append(grid(policy.floor, 0.0))
            fields["guarantee"].append(vec(policy.guarantee, 0.0))
            fields["capacity"].append(vec(capacity, np.inf))
            p = params[k]
            fields["sigma"].append(vec(p.armington_sigma, 2.0))
            fields["eta"].append(vec(p.demand_elasticity, 0.0))
            fields["supply"].append(vec(p.supply_elasticity, 0.0))
        out.append(_Arrays(**{n: np.stack(v) for n, v in fields.items()}))
        compiled.append(per_stage)
    return out, compiled


@dataclass
class LinkedState:
    """Per stage (lists over stages) at the solution; (B, N) or (B, N, N)."""

    world_price: list[np.ndarray]
    producer_price: list[np.ndarray]
    landed: list[np.ndarray]
    composite: list[np.ndarray]
    flows: list[np.ndarray]
    supply: list[np.ndarray]  # Y hat
    unit_cost: list[np.ndarray]  # C hat
    demand_volume: list[np.ndarray]  # c hat
    residual: np.ndarray  # (B, Σ sellers)


def _evaluate(chain: Chain, arrays: list[_Arrays], z: list[np.ndarray], jacobian: bool):
    """Residuals (B, U) and the Jacobian (B, U, U) over the sellers of every stage."""
    stages = len(chain.stages)
    out = {n: [] for n in LinkedState.__dataclass_fields__ if n != "residual"}
    parts = []  # per stage: what the Jacobian needs
    # Supply side first (the unit cost of stage k needs the composite price of stage k − 1),
    # then demand (stage k's demand needs stage k + 1's output): two passes.
    composite, share, passes = [], [], []
    for k in range(stages):
        a, q0 = arrays[k], chain.q0[k]
        log_p0 = z[k][:, :, None] + np.log(a.wedge)
        with np.errstate(divide="ignore"):
            log_floor = np.where(a.floor > 0, np.log(np.where(a.floor > 0, a.floor, 1.0)), -np.inf)
        floored = log_floor > log_p0
        log_p = np.maximum(log_p0, log_floor)
        live = a.open & (q0 > 0)
        sig = a.sigma[:, None, :]
        # composite P_v = (Σ θ p^(1−σ))^(1/(1−σ)) over open flows, in logs
        d0 = q0.sum(axis=0)
        theta = np.divide(q0, d0, out=np.zeros_like(q0), where=d0 > 0)
        term = np.where(live, theta * np.exp((1.0 - sig) * log_p), 0.0)
        total = term.sum(axis=1)  # (B, N)
        alive = total > 0
        log_comp = np.where(alive, np.log(np.where(alive, total, 1.0)) / (1.0 - a.sigma), 0.0)
        s = np.divide(term, total[:, None, :], out=np.zeros_like(term), where=alive[:, None, :])
        composite.append(log_comp)
        share.append(s)
        passes.append(live & ~floored)
        out["landed"].append(np.exp(log_p))
        out["composite"].append(np.where(alive, np.exp(log_comp), np.inf))
        parts.append({"log_p": log_p, "live": live, "alive": alive})
    # supply
    for k in range(stages):
        a = arrays[k]
        price = np.exp(z[k])
        guaranteed = a.guarantee > price
        producer = np.maximum(price, a.guarantee)
        beta = chain.beta[k]
        if k > 0:
            upstream = np.exp(composite[k - 1])
            cost = beta * upstream + (1.0 - beta)
            b = beta * upstream / cost  # ∂ log C / ∂ log P^(k−1)
        else:
            cost = np.ones_like(price)
            b = np.zeros_like(price)
        log_y = a.supply * (np.log(producer) - np.log(cost))
        log_cap = np.log(a.capacity)
        capped = log_y > log_cap
        log_y = np.minimum(log_y, log_cap)
        out["world_price"].append(price)
        out["producer_price"].append(producer)
        out["supply"].append(np.exp(log_y))
        out["unit_cost"].append(cost)
        parts[k].update(log_y=log_y, elastic=~capped, guaranteed=guaranteed, b=b)
    # demand and residuals
    residuals = []
    for k in range(stages):
        a, q0, part = arrays[k], chain.q0[k], parts[k]
        phi = chain.final_share[k]
        final = phi * np.exp(-a.eta * composite[k])
        inter = (1.0 - phi) * out["supply"][k + 1] if k + 1 < stages else np.zeros_like(final)
        volume = final + inter
        out["demand_volume"].append(volume)
        log_q = (
            np.log(np.where(part["live"], q0, 1.0))
            - a.sigma[:, None, :] * part["log_p"]
            + (a.sigma * composite[k])[:, None, :]
            + np.log(np.maximum(volume, 1e-300))[:, None, :]
        )
        q = np.where(part["live"] & part["alive"][:, None, :], np.exp(log_q), 0.0)
        out["flows"].append(q)
        demand = q.sum(axis=2)
        x0 = q0.sum(axis=1)
        sellers = chain_sellers(chain)[k]
        made = x0[sellers] * np.exp(part["log_y"][:, sellers])
        sold = demand[:, sellers]
        # An origin cut off from every market: its price falls until... it cannot sell; pin it.
        active = sold > 0
        res = np.where(active, np.log(np.maximum(sold, 1e-300)) - np.log(made), z[k][:, sellers])
        residuals.append(res)
        part.update(q=q, demand=demand, volume=volume, final=final, inter=inter, active=active)
    residual = np.concatenate(residuals, axis=1)
    state = LinkedState(**out, residual=residual)
    if not jacobian:
        return state, None
    return state, _jacobian(chain, arrays, parts, share, passes)


def chain_sellers(chain: Chain) -> list[np.ndarray]:
    """Per stage, the countries that sell in the base (the unknowns)."""
    return [np.flatnonzero(q0.sum(axis=1) > 0) for q0 in chain.q0]


def _jacobian(chain, arrays, parts, share, passes) -> np.ndarray:
    stages = len(chain.stages)
    sellers = chain_sellers(chain)
    offsets = np.cumsum([0] + [len(s) for s in sellers])
    batch = parts[0]["q"].shape[0]
    jac = np.zeros((batch, offsets[-1], offsets[-1]))
    for k in range(stages):
        a, part = arrays[k], parts[k]
        q, demand = part["q"], part["demand"]
        w = np.divide(q, demand[:, :, None], out=np.zeros_like(q), where=demand[:, :, None] > 0)
        sg = share[k] * passes[k]  # ∂ log P_v / ∂ z_r' = s_r'v g_r'v
        volume = part["volume"]
        fin = np.divide(part["final"], volume, out=np.zeros_like(volume), where=volume > 0)
        inter = 1.0 - fin
        kappa = -a.eta * fin  # ∂ log c_v / ∂ log P_v through final demand
        if k + 1 < stages:
            nxt = parts[k + 1]
            dy_dz = arrays[k + 1].supply * nxt["elastic"] * ~nxt["guaranteed"]  # own price
            dy_dc = arrays[k + 1].supply * nxt["elastic"] * nxt["b"]  # via the input cost
            kappa = kappa - inter * dy_dc
        sigma = a.sigma
        # ∂ log q_rv / ∂ z_r' = −σ g δ + (σ + κ_v) s_r'v g_r'v  (own stage)
        s_k = sellers[k]
        coupling = (sigma + kappa)[:, None, :] * sg[:, s_k]  # (B, r', v)
        w_k = w[:, s_k]  # (B, r, v)
        jkk = w_k @ coupling.transpose(0, 2, 1)  # (B, r, r')
        own = (w_k * sigma[:, None, :] * passes[k][:, s_k]).sum(axis=2)
        own += (a.supply * part["elastic"] * ~part["guaranteed"])[:, s_k]
        idx = np.arange(len(s_k))
        jkk[:, idx, idx] -= own
        rows = slice(offsets[k], offsets[k + 1])
        jac[:, rows, rows] = jkk
        if k + 1 < stages:
            # demand for stage k in v moves with stage k+1's output in v, own-price part
            s_n = sellers[k + 1]
            jnext = w_k[:, :, s_n] * (inter * dy_dz)[:, None, s_n]  # (B, r, v = origin at k+1)
            jac[:, rows, offsets[k + 1] : offsets[k + 2]] = jnext
        if k > 0:
            # supply of stage k falls with the input cost: ∂ log Y_r / ∂ z^(k−1)_r'
            #   = −e b_r s^(k−1)_r'r g;  residual = log D − log Y, so + e b s g
            s_p = sellers[k - 1]
            up = (share[k - 1] * passes[k - 1])[:, s_p][:, :, s_k]  # (B, r', v = r)
            coef = (a.supply * part["elastic"] * part["b"])[:, s_k]  # (B, r)
            jac[:, rows, offsets[k - 1] : offsets[k]] = up.transpose(0, 2, 1) * coef[:, :, None]
        inactive = ~part["active"]  # (B, sellers of k)
        if inactive.any():
            b_idx, r_idx = np.nonzero(inactive)
            jac[b_idx, offsets[k] + r_idx, :] = 0.0
            jac[b_idx, offsets[k] + r_idx, offsets[k] + r_idx] = 1.0
    return jac


@dataclass
class LinkedSolution:
    chain: Chain
    scenarios: list[LinkedScenario]
    state: LinkedState
    iterations: np.ndarray
    residual: np.ndarray
    policies: list[list[PolicyArrays]]


def _split(chain: Chain, x: np.ndarray) -> list[np.ndarray]:
    sellers = chain_sellers(chain)
    out, at = [], 0
    for s in sellers:
        full = np.zeros((x.shape[0], chain.size))
        full[:, s] = x[:, at : at + len(s)]
        out.append(full)
        at += len(s)
    return out


def solve_chain(
    chain: Chain,
    scenarios: Sequence[LinkedScenario],
    parameters: Sequence[Sequence[Parameters]] | str = "short",
    tolerance: float = TOLERANCE,
) -> LinkedSolution:
    """Solve every scenario of the batch on the linked chain; SolverError names a failure.

    `parameters`: per scenario one Parameters per stage (over that stage's calibration), or a
    horizon name for the documented defaults."""
    scenarios = list(scenarios)
    if isinstance(parameters, str):
        per_stage = [resolve_parameters(c.countries, parameters) for c in chain.calibrations]
        parameters = [per_stage] * len(scenarios)
    arrays, compiled = _compile(chain, scenarios, parameters)
    batch = len(scenarios)
    width = sum(len(s) for s in chain_sellers(chain))
    x = np.zeros((batch, width))
    state, jac = _evaluate(chain, arrays, _split(chain, x), True)
    norm = np.abs(state.residual).max(axis=1, initial=0.0)
    iterations = np.zeros(batch, dtype=int)
    for _ in range(MAX_ITERATIONS):
        todo = norm >= tolerance
        if not todo.any():
            break
        try:
            step = -np.linalg.solve(jac, state.residual[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack(
                [
                    -np.linalg.lstsq(j, r, rcond=None)[0]
                    for j, r in zip(jac, state.residual, strict=True)
                ]
            )
        step[~todo] = 0.0
        biggest = np.abs(step).max(axis=1, initial=0.0)
        step *= np.minimum(1.0, MAX_LOG_STEP / np.maximum(biggest, 1e-300))[:, None]
        merit = 0.5 * (state.residual**2).sum(axis=1)
        length = np.ones(batch)
        accepted = ~todo
        best = x.copy()
        for _attempt in range(30):
            trial_x = np.where(accepted[:, None], best, x + length[:, None] * step)
            trial, _ = _evaluate(chain, arrays, _split(chain, trial_x), False)
            trial_merit = 0.5 * (trial.residual**2).sum(axis=1)
            good = ~accepted & (trial_merit <= (1.0 - 1e-4 * length) * merit)
            best[good] = trial_x[good]
            accepted |= good
            if accepted.all():
                break
            length[~accepted] *= 0.5
        # where no length lowers the merit, take the shortest tried (a kink can stall it)
        best[~accepted] = (x + length[:, None] * step)[~accepted]
        iterations[todo] += 1
        x = best
        state, jac = _evaluate(chain, arrays, _split(chain, x), True)
        norm = np.abs(state.residual).max(axis=1, initial=0.0)
    failed = np.flatnonzero(~(norm < tolerance))
    if len(failed):
        first = failed[0]
        raise SolverError(
            f"linked market solve did not converge for scenario {scenarios[first].name!r} "
            f"(max residual {norm[first]:.3g} after {iterations[first]} iterations)"
        )
    return LinkedSolution(chain, scenarios, state, iterations, norm, compiled)
