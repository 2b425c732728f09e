"""Newton solver of the Armington partial equilibrium, batched over scenarios.

Model (GSIM, Francois & Hall 2003; hats are ratios to the calibrated base, r = origin,
v = market, base prices = 1):

    landed price     p_rv = max(P*_r · w_rv · (1 + τ_j(rv)), F_rv)          (w: tariff, export tax)
    composite price  P_v  = (Σ_r θ_rv p_rv^(1−σ_v))^(1/(1−σ_v))              (open flows only)
    demand index     D_v  = P_v^(−η_v) up to the cut-off price P̄_v, beyond it
                     D_v  = P̄^(−η) (P_v/P̄)^(−(σ_v+1))   (a choke: spending on the market falls)
    purchases        c_v  = max(D_v − S_v / D0_v, 0)                         (S: stockpile release)
    demand           q_rv = q0_rv · p_rv^(−σ_v) · P_v^(σ_v) · c_v
    supply           X_r  = X0_r · min(max(P*_r, G_r)^(e_r), K_r)           (G: guaranteed floor)
    clearing         log Σ_v q_rv = log X_r
    quota j          τ_j ≥ 0,  φ_j − Σ_(rv∈j) q_rv / Σ_(rv∈j) q0_rv ≥ 0,  complementary

The unknowns are z_r = log P*_r and u_j = log(1 + τ_j). Quota complementarity is written
with the Fischer–Burmeister function φ(a, b) = a + b − √(a² + b²), which is zero exactly when
a ≥ 0, b ≥ 0, ab = 0 (Fischer 1992, "A special Newton-type optimization method",
Optimization 24), and the system is solved by semismooth Newton with the analytic
(generalised) Jacobian and an Armijo backtracking line search on ½‖R‖² (Qi & Sun 1993,
"A nonsmooth version of Newton's method", Mathematical Programming 58). Floors, capacity
caps and stock releases are kinks (max/min) handled the same way.

Derivatives used below, for an open flow in a live market (g = 1 unless the floor binds,
κ_v = (∂ log D_v / ∂ log P_v) · D_v / c_v, s = current value share):

    ∂ log q_rv / ∂ log p_r'v = −σ_v δ_rr' + (σ_v + κ_v) s_r'v,   ∂ log p_rv / ∂ z_r = g_rv.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critmin.errors import SolverError

TOLERANCE = 1e-10  # max |log(demand / supply)| (≈ relative excess demand) at the solution
# Where no step can lower the residual any more, roundoff has been reached: accept the point
# if it is this close (extreme price ratios, e.g. 1e-38, cost a few digits).
STALL_TOLERANCE = 1e-8
MAX_ITERATIONS = 200
MAX_LOG_STEP = 10.0  # at most a factor e¹⁰ on any price per Newton step (line search below)
LOG_PRICE_BOUND = 600.0  # exp(±600) stays inside float range; the sums run in log space


@dataclass
class Problem:
    """A batch of B scenarios on one market of N countries with J quota constraints."""

    q0: np.ndarray  # (N, N) base flows, base-price kUSD
    tariff: np.ndarray  # (B, N, N) combined price wedge (1 + tariff)(1 + export tax)
    open: np.ndarray  # (B, N, N) bool
    floor: np.ndarray  # (B, N, N) landed-price floor (hat), 0 none
    guarantee: np.ndarray  # (B, N) producer floor (hat), 0 none
    stock: np.ndarray  # (B, N) release, base-price kUSD
    capacity: np.ndarray  # (B, N) max output / base, inf none
    sigma: np.ndarray  # (B, N) per market
    eta: np.ndarray  # (B, N) per market
    supply_elasticity: np.ndarray  # (B, N) per origin
    cutoff: np.ndarray  # (B, N) per market: price index where demand chokes
    quota_id: np.ndarray  # (N, N) constraint of each pair, −1 none (shared by the batch)
    quota_fraction: np.ndarray  # (B, J), inf = constraint inactive in that scenario

    def __post_init__(self) -> None:
        self.x0 = self.q0.sum(axis=1)
        self.d0 = self.q0.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.theta = np.where(self.d0 > 0, self.q0 / self.d0, 0.0)
            self.log_q0 = np.log(self.q0)
            self.log_theta = np.log(self.theta)
            self.log_wedge = np.log(self.tariff)
            self.log_floor = np.where(self.floor > 0, np.log(self.floor), -np.inf)
        self.open = self.open & (self.q0 > 0)
        self.stock_ratio = np.divide(
            self.stock, self.d0, out=np.zeros_like(self.stock), where=self.d0 > 0
        )
        self.alive = self.open.any(axis=1)  # (B, N): market has an open supplier
        self.flow_live = self.open & self.alive[:, None, :]
        self.active = (self.x0 > 0) & self.flow_live.any(axis=2)  # (B, N): origin can sell
        self.pr, self.pv = np.nonzero(self.quota_id >= 0)
        self.pj = self.quota_id[self.pr, self.pv]
        count = self.quota_fraction.shape[1]
        self.ej = np.zeros((len(self.pr), count))
        self.ej[np.arange(len(self.pr)), self.pj] = 1.0
        size = self.q0.shape[0]
        self.er = np.eye(size)[self.pr]  # (P, N) one-hot origin of each quota pair
        self.ev = np.eye(size)[self.pv]  # (P, N) one-hot market
        self.quota_base = self.q0[self.pr, self.pv] @ self.ej  # (J,)

    @property
    def batch(self) -> int:
        return self.tariff.shape[0]

    def take(self, rows: np.ndarray) -> Problem:
        """The sub-batch `rows`."""
        return Problem(
            q0=self.q0,
            tariff=self.tariff[rows],
            open=self.open[rows],
            floor=self.floor[rows],
            guarantee=self.guarantee[rows],
            stock=self.stock[rows],
            capacity=self.capacity[rows],
            sigma=self.sigma[rows],
            eta=self.eta[rows],
            supply_elasticity=self.supply_elasticity[rows],
            cutoff=self.cutoff[rows],
            quota_id=self.quota_id,
            quota_fraction=self.quota_fraction[rows],
        )


def composite_demand(
    log_price: np.ndarray, eta: np.ndarray, sigma: np.ndarray, cutoff: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Composite demand index D(P) and its elasticity ∂ log D / ∂ log P.

    D = P^(−η) up to the cut-off P̄; beyond it D = P̄^(−η) (P/P̄)^(−(σ+1)), so that spending
    on a market that has lost nearly all its suppliers falls instead of bidding a residual
    supplier's price up without bound (a choke price; P = ∞ gives D = 0).
    """
    log_cut = np.log(cutoff)
    beyond = log_price > log_cut
    slope = np.where(beyond, -(sigma + 1.0), -eta)
    with np.errstate(invalid="ignore", over="ignore"):
        log_d = np.where(beyond, -eta * log_cut + slope * (log_price - log_cut), -eta * log_price)
    return np.exp(log_d), slope


@dataclass
class State:
    """Prices, flows and residuals of a batch at given (z, u)."""

    world_price: np.ndarray  # (B, N) P*
    landed: np.ndarray  # (B, N, N) p (1 on closed flows)
    unfloored: np.ndarray  # (B, N, N) P* · wedge · (1 + τ)
    composite: np.ndarray  # (B, N) P_v (inf where cut off)
    flows: np.ndarray  # (B, N, N) q
    demand_index: np.ndarray  # (B, N) D_v, composite consumption / base (stock included)
    purchases: np.ndarray  # (B, N) c_v
    producer_price: np.ndarray  # (B, N)
    supply: np.ndarray  # (B, N) X
    quota_use: np.ndarray  # (B, J) Σ q / Σ q0 over each constraint
    residual: np.ndarray  # (B, N + J)
    jacobian: np.ndarray | None


def evaluate(problem: Problem, z: np.ndarray, u: np.ndarray, jacobian: bool = True) -> State:
    """Residuals (and the analytic Jacobian) of every scenario of the batch at (z, u)."""
    pb = problem
    batch, size = z.shape
    pair_u = np.zeros((batch, size, size))
    if len(pb.pr):
        pair_u[:, pb.pr, pb.pv] = u[:, pb.pj]
    log_base = z[:, :, None] + pb.log_wedge + pair_u
    floored = pb.log_floor > log_base
    log_p = np.where(floored, pb.log_floor, log_base)
    live = pb.flow_live
    one_minus_sigma = (1.0 - pb.sigma)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        terms = np.where(live, pb.log_theta + one_minus_sigma * log_p, -np.inf)
        top = np.max(terms, axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        log_a = np.log(np.exp(terms - top).sum(axis=1)) + top[:, 0, :]  # (B, N)
        share = np.where(live, np.exp(terms - log_a[:, None, :]), 0.0)
        log_composite = np.where(pb.alive, log_a / (1.0 - pb.sigma), np.inf)
        demand_index, demand_slope = composite_demand(log_composite, pb.eta, pb.sigma, pb.cutoff)
        purchases = np.maximum(demand_index - pb.stock_ratio, 0.0)
        log_c = np.log(purchases)
        log_q = (
            pb.log_q0
            - pb.sigma[:, None, :] * log_p
            + (pb.sigma * log_composite + log_c)[:, None, :]
        )
        flows = np.where(live & (purchases > 0)[:, None, :], np.exp(log_q), 0.0)
        kappa = np.where(purchases > 0, demand_slope * demand_index / purchases, 0.0)

    world_price = np.exp(z)
    producer_price = np.maximum(world_price, pb.guarantee)
    elastic_supply = producer_price**pb.supply_elasticity
    capped = elastic_supply >= pb.capacity
    supply = pb.x0 * np.minimum(elastic_supply, pb.capacity)
    # Clearing in logs, log D_r − log X_r: where one side is exponential in z (an origin
    # priced out, a flooded market) the log form stays linear and Newton stays quadratic.
    demand = np.maximum(flows.sum(axis=2), 1e-300)
    with np.errstate(divide="ignore"):
        clearing = np.where(pb.active, np.log(demand) - np.log(np.maximum(supply, 1e-300)), z)

    quota_base = np.where(pb.quota_base > 0, pb.quota_base, 1.0)
    use = flows[:, pb.pr, pb.pv] @ pb.ej / quota_base if len(pb.pr) else np.zeros_like(u)
    quota_on = np.isfinite(pb.quota_fraction)
    slack = np.where(quota_on, pb.quota_fraction, 0.0) - use
    radius = np.sqrt(u**2 + slack**2) + 1e-300
    quota_rows = np.where(quota_on, u + slack - radius, u)
    residual = np.concatenate([clearing, quota_rows], axis=1)

    state = State(
        world_price=world_price,
        landed=np.exp(log_p),
        unfloored=np.exp(log_base),
        composite=np.exp(log_composite),
        flows=flows,
        demand_index=np.where(pb.alive, demand_index, 0.0),
        purchases=purchases,
        producer_price=producer_price,
        supply=supply,
        quota_use=use,
        residual=residual,
        jacobian=None,
    )
    if not jacobian:
        return state

    passes = live & ~floored  # ∂ log p / ∂ z = 1 on these flows
    share_g = share * passes
    weight = flows * (pb.sigma + kappa)[:, None, :]
    own = pb.sigma[:, None, :] * flows * passes
    jzz = weight @ share_g.transpose(0, 2, 1)
    diag = np.arange(size)
    jzz[:, diag, diag] -= own.sum(axis=2)
    jzz /= demand[:, :, None]
    jzz[:, diag, diag] -= pb.supply_elasticity * (world_price >= pb.guarantee) * ~capped
    count = u.shape[1]
    jac = np.zeros((batch, size + count, size + count))
    jac[:, :size, :size] = jzz
    if count:
        ej_t = pb.ej.T
        sg_p = share_g[:, pb.pr, pb.pv]
        own_p = own[:, pb.pr, pb.pv]
        q_p = flows[:, pb.pr, pb.pv]
        spread = ej_t @ (sg_p[:, :, None] * pb.ev)  # (B, J, N): Σ_(rv∈j) s g on market v
        jzu = -(pb.er.T @ (own_p[:, :, None] * pb.ej)) + weight @ spread.transpose(0, 2, 1)
        jac[:, :size, size:] = jzu / demand[:, :, None]
        mq = (ej_t @ (q_p[:, :, None] * pb.ev)) * (pb.sigma + kappa)[:, None, :]
        duse_dz = -(ej_t @ (own_p[:, :, None] * pb.er)) + mq @ share_g.transpose(0, 2, 1)
        duse_du = mq @ spread.transpose(0, 2, 1)
        duse_du[:, np.arange(count), np.arange(count)] -= own_p @ pb.ej
        duse_dz /= quota_base[:, None]
        duse_du /= quota_base[:, None]
        # φ(u, slack): ∂φ/∂u = 1 − u/ρ, ∂φ/∂slack = 1 − slack/ρ, and ∂slack = −∂use.
        d_slack = np.where(quota_on, 1.0 - slack / radius, 0.0)
        d_u = np.where(quota_on, 1.0 - u / radius, 1.0)
        jac[:, size:, :size] = -d_slack[:, :, None] * duse_dz
        jac[:, size:, size:] = -d_slack[:, :, None] * duse_du
        jac[:, size + np.arange(count), size + np.arange(count)] += d_u
    inactive = ~pb.active
    if inactive.any():
        rows_b, rows_n = np.nonzero(inactive)
        jac[rows_b, rows_n, :] = 0.0
        jac[rows_b, rows_n, rows_n] = 1.0
    state.jacobian = jac
    return state


@dataclass
class Solution:
    """Converged batch: unknowns, final state and convergence report per scenario."""

    z: np.ndarray
    u: np.ndarray
    state: State
    iterations: np.ndarray
    residual: np.ndarray


def _newton_step(jac: np.ndarray, residual: np.ndarray) -> np.ndarray:
    try:
        return -np.linalg.solve(jac, residual[..., None])[..., 0]
    except np.linalg.LinAlgError:
        # A singular Jacobian (e.g. an origin whose every flow sits at the floor and whose
        # supply is inelastic): take the least-squares step scenario by scenario.
        return np.stack(
            [-np.linalg.lstsq(j, r, rcond=None)[0] for j, r in zip(jac, residual, strict=True)]
        )


def solve(
    problem: Problem,
    names: list[str] | None = None,
    tolerance: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> Solution:
    """Solve every scenario of the batch; raise SolverError naming any that fails."""
    batch, size = problem.tariff.shape[:2]
    count = problem.quota_fraction.shape[1]
    z = np.zeros((batch, size))
    u = np.zeros((batch, count))
    iterations = np.zeros(batch, dtype=int)
    state = evaluate(problem, z, u)
    norm = np.abs(state.residual).max(axis=1, initial=0.0)
    stalled = np.zeros(batch, bool)
    for _ in range(max_iterations):
        todo = np.flatnonzero(~(norm < tolerance) & ~stalled)
        if not len(todo):
            break
        sub = problem.take(todo) if len(todo) < batch else problem
        jac = state.jacobian[todo]
        res = state.residual[todo]
        step = _newton_step(jac, res)
        biggest = np.abs(step).max(axis=1, initial=0.0)
        clip = np.minimum(1.0, MAX_LOG_STEP / np.maximum(biggest, 1e-300))
        step *= clip[:, None]
        merit = 0.5 * (res**2).sum(axis=1)
        length = np.ones(len(todo))
        accepted = np.zeros(len(todo), bool)
        z_new, u_new = z[todo].copy(), u[todo].copy()
        for _ in range(40):
            z_try = np.clip(
                z[todo] + length[:, None] * step[:, :size], -LOG_PRICE_BOUND, LOG_PRICE_BOUND
            )
            u_try = np.clip(u[todo] + length[:, None] * step[:, size:], -5.0, LOG_PRICE_BOUND)
            trial = evaluate(sub, z_try, u_try, jacobian=False)
            trial_merit = 0.5 * (trial.residual**2).sum(axis=1)
            # Armijo: the merit must fall by a fraction of the decrease the (clipped) Newton
            # step predicts, 2 · clip · length · merit.
            good = ~accepted & (trial_merit <= (1.0 - 2e-4 * clip * length) * merit)
            z_new[good], u_new[good] = z_try[good], u_try[good]
            accepted |= good
            if accepted.all():
                break
            length = np.where(accepted, length, 0.5 * length)
        # Where no step length decreases the merit take the smallest tried: a semismooth
        # kink can stall the line search while the full step is still the right direction.
        z_new[~accepted], u_new[~accepted] = z_try[~accepted], u_try[~accepted]
        stalled[todo] = ~accepted & (norm[todo] < STALL_TOLERANCE)
        z[todo], u[todo] = z_new, u_new
        iterations[todo] += 1
        fresh = evaluate(sub, z[todo], u[todo])
        _store(state, fresh, todo)
        norm[todo] = np.abs(fresh.residual).max(axis=1, initial=0.0)
    failed = np.flatnonzero(~(norm < tolerance) & ~(stalled & (norm < STALL_TOLERANCE)))
    if len(failed):
        first = failed[0]
        label = names[first] if names else f"#{first}"
        raise SolverError(
            f"market solve did not converge for scenario {label!r} "
            f"(max residual {norm[first]:.3g} after {iterations[first]} iterations"
            + (f"; {len(failed)} scenarios failed)" if len(failed) > 1 else ")")
        )
    return Solution(z=z, u=u, state=state, iterations=iterations, residual=norm)


def _store(state: State, fresh: State, rows: np.ndarray) -> None:
    for name in State.__dataclass_fields__:
        target, value = getattr(state, name), getattr(fresh, name)
        if target is None or value is None:
            setattr(state, name, value if len(rows) == target.shape[0] else target)
            continue
        target[rows] = value
