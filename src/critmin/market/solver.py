"""Newton solver of the Armington partial equilibrium, batched over scenarios.

Model (GSIM, Francois & Hall 2003; hats are ratios to the calibrated base, r = origin,
v = market, base prices = 1):

    landed price     p_rv = max(P*_r · w_rv · (1 + τ_j(rv)), F_rv)          (w: tariff, export tax)
    composite price  P_v  = (Σ_r θ_rv p_rv^(1−σ_v))^(1/(1−σ_v))              (open flows only)
    demand index     D_v  = P_v^(−η_v) up to the cut-off price P̄_v, beyond it
                     D_v  = P̄^(−η) (P_v/P̄)^(−(σ_v+1))   (a choke: spending on the market falls)
    purchases        c_v  = D_v − smooth min(S_v / D0_v, 0.99 D_v)           (S: stockpile release)
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

The arrays of a batch (`Problem`) and of its state at a point (`State`) are built in
`critmin.market.problem`; this module evaluates the model on them and solves it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critmin.errors import SolverError
from critmin.market.problem import (
    Problem,
    State,
    cell_sums,
    reduce_by_market,
    reduce_by_origin,
)

TOLERANCE = 1e-10  # max |log(demand / supply)| (≈ relative excess demand) at the solution
# Where no step can lower the residual any more, roundoff has been reached: accept the point
# if it is this close (extreme price ratios, e.g. 1e-38, cost a few digits).
STALL_TOLERANCE = 1e-8
MAX_ITERATIONS = 200
MAX_LOG_STEP = 10.0  # at most a factor e¹⁰ on any price per Newton step (line search below)
STOCK_COVER = 0.99  # a release covers at most this share of a market's demand
STOCK_SHARPNESS = 8.0
LOG_PRICE_BOUND = 600.0  # exp(±600) stays inside float range; the sums run in log space


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


def stock_purchases(demand: np.ndarray, stock: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Imports c = D − u after a release, and ∂c/∂D.

    u = (S^(−k) + (ρD)^(−k))^(−1/k) is a smooth minimum of the release S and ρ = 99 % of
    demand (k = 8): a release covers at most 99 % of a market's demand, so imports never
    stop entirely and origins selling there keep a defined price, and the derivative has
    no jump for Newton to cycle on (a hard max(D − S, 0) does both). Without a release
    c = D exactly."""
    if not stock.any():
        return demand, np.ones_like(demand)
    has_stock = (stock > 0) & (demand > 0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio_s = np.where(has_stock, stock / (STOCK_COVER * demand), 1.0)
        # u / (ρD) = (1 + (S/ρD)^(−k))^(−1/k), computed without overflow for tiny S
        scaled = np.where(
            has_stock, (1.0 + ratio_s ** (-STOCK_SHARPNESS)) ** (-1.0 / STOCK_SHARPNESS), 0.0
        )
    used = STOCK_COVER * demand * scaled
    purchases = demand - used
    slope = 1.0 - STOCK_COVER * scaled ** (STOCK_SHARPNESS + 1.0)
    return purchases, np.where(has_stock, slope, 1.0)


def evaluate(problem: Problem, z: np.ndarray, u: np.ndarray, jacobian: bool = True) -> State:
    """Residuals (and the analytic Jacobian) of every scenario of the batch at (z, u)."""
    pb = problem
    pr, pv = pb.pr, pb.pv
    # The (B, P) arrays are ~0.7 MB each, so the passes over them below work in place where
    # they can: each temporary less is one fewer trip through memory (the values, and the
    # order of every operation, are those of the plain expressions in the comments).
    log_base = z[:, pr].astype(float, copy=False)  # new (a gather), float for the +=
    log_base += pb.log_wedge
    if len(pb.quota_pairs):
        log_base[:, pb.quota_pairs] += u[:, pb.pj]
    floored = pb.log_floor > log_base
    log_p = np.where(floored, pb.log_floor, log_base)
    live = pb.live
    dead = ~live
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # terms = where(live, log θ + (1 − σ) log p, −inf)
        terms = (1.0 - pb.sigma)[:, pv]
        terms *= log_p
        terms += pb.log_theta
        np.copyto(terms, -np.inf, where=dead)
        # Σ_r θ p^(1−σ) per market, in log space only where the plain sum leaves the float
        # range (extreme prices): there each market's terms are shifted by their maximum.
        scaled = np.exp(terms)
        total = reduce_by_market(pb, scaled, np.add, 0.0)
        log_a = np.log(total)
        wide = np.flatnonzero((pb.alive & ~((total > 1e-280) & (total < 1e280))).any(axis=1))
        if len(wide):
            top = reduce_by_market(pb, terms[wide], np.maximum, -np.inf)
            top = np.where(np.isfinite(top), top, 0.0)
            scaled[wide] = np.exp(terms[wide] - top[:, pv])
            total[wide] = reduce_by_market(pb, scaled[wide], np.add, 0.0)
            log_a[wide] = np.log(total[wide]) + top
        passes = live & ~floored  # ∂ log p / ∂ z = 1 on these flows
        # share_g = where(live, scaled / total, 0) · passes, in the buffer of `scaled`
        share_g = np.divide(scaled, total[:, pv], out=scaled)
        share_g *= passes
        np.copyto(share_g, 0.0, where=dead)
        log_composite = np.where(pb.alive, log_a / (1.0 - pb.sigma), np.inf)
        demand_index, demand_slope = composite_demand(log_composite, pb.eta, pb.sigma, pb.cutoff)
        purchases, purchase_slope = stock_purchases(demand_index, pb.stock_ratio)
        # flows = where(live & (c > 0), exp(log q0 − σ log p + (σ log P + log c)_v), 0)
        flows = pb.sigma[:, pv] * log_p
        np.subtract(pb.log_q0, flows, out=flows)
        flows += (pb.sigma * log_composite + np.log(purchases))[:, pv]
        np.exp(flows, out=flows)
        bought = purchases > 0
        np.copyto(flows, 0.0, where=dead if bought.all() else dead | ~bought[:, pv])
        kappa = np.where(bought, purchase_slope * demand_slope * demand_index / purchases, 0.0)

    world_price = np.exp(z)
    producer_price = np.maximum(world_price, pb.guarantee)
    elastic_supply = producer_price**pb.supply_elasticity
    capped = elastic_supply >= pb.capacity
    supply = pb.x0 * np.minimum(elastic_supply, pb.capacity)
    # Clearing in logs, log D_r − log X_r: where one side is exponential in z (an origin
    # priced out, a flooded market) the log form stays linear and Newton stays quadratic.
    demand = np.maximum(reduce_by_origin(pb, flows), 1e-300)
    with np.errstate(divide="ignore"):
        clearing = np.where(pb.active, np.log(demand) - np.log(np.maximum(supply, 1e-300)), z)

    quota_base = np.where(pb.quota_base > 0, pb.quota_base, 1.0)
    use = flows[:, pb.quota_pairs] @ pb.ej / quota_base
    quota_on = np.isfinite(pb.quota_fraction)
    slack = np.where(quota_on, pb.quota_fraction, 0.0) - use
    radius = np.sqrt(u**2 + slack**2) + 1e-300
    quota_rows = np.where(quota_on, u + slack - radius, u)
    residual = np.concatenate([clearing, quota_rows], axis=1)

    state = State(
        world_price=pb.full(world_price, 1.0),
        log_landed=log_p,
        log_unfloored=log_base,
        composite=np.exp(log_composite),
        flows=flows,
        demand_index=np.where(pb.alive, demand_index, 0.0),
        purchases=purchases,
        producer_price=pb.full(producer_price, 1.0),
        supply=pb.full(supply, 0.0),
        quota_use=use,
        residual=residual,
        jacobian=None,
        share_g=share_g,
        passes=passes,
        kappa=kappa,
        demand=demand,
        elastic=(world_price >= pb.guarantee) & ~capped,
        u=u,
        slack=slack,
        radius=radius,
    )
    if jacobian:
        state.jacobian = jacobian_at(problem, state)
    return state


# `jacobian_at` forms its product over markets on slices of scenarios whose two dense factors
# take at most this many bytes (an L2 cache of 1 MB per core).
FACTOR_BYTES = 1 << 20


def jacobian_at(problem: Problem, state: State) -> np.ndarray:
    """The analytic (generalised) Jacobian of the residuals at `state`, (B, S + J, S + J).

    Every product over markets is one batched matrix product L @ R: the rows of L are the
    origins' clearing rows, (σ_v + κ_v) q_rv / D_r, and the quota rows, the same summed over
    each constraint's pairs and scaled by −∂φ/∂slack / Σ q0; the columns of R are the
    shares s g of each origin and of each constraint on every market. The own-price and
    supply terms are then added on the diagonal blocks.
    """
    pb = problem
    pr = pb.pr
    batch, size = state.demand.shape
    markets = pb.shared_markets
    count = state.u.shape[1]
    width = size + count
    flows, share_g, demand = state.flows, state.share_g, state.demand
    sk = pb.sigma + state.kappa  # (B, N)
    weight = flows * sk[:, pb.pv]  # (B, P) (σ_v + κ_v) q_rv
    own = pb.sigma[:, pb.pv]  # (B, P) σ_v q_rv g_rv, in place
    own *= flows
    own *= state.passes
    inverse = 1.0 / demand
    mp, sp = pb.multi_pairs, pb.single_pairs
    left_values = weight[:, mp] * inverse[:, pr[mp]]
    right_values = share_g[:, mp]
    if count:
        u, slack, radius = state.u, state.slack, state.radius
        quota_on = np.isfinite(pb.quota_fraction)
        quota_base = np.where(pb.quota_base > 0, pb.quota_base, 1.0)
        qp = pb.quota_pairs
        # φ(u, slack): ∂φ/∂u = 1 − u/ρ, ∂φ/∂slack = 1 − slack/ρ, and ∂slack = −∂use.
        scale = -np.where(quota_on, 1.0 - slack / radius, 0.0) / quota_base  # (B, J)
        shape = (batch, count, markets)
        on = qp[pb.jv_pairs]
        left_quota = cell_sums(weight[:, on], pb.jv_cells, shape) * scale[:, :, None]
        right_quota = cell_sums(share_g[:, on], pb.jv_cells, shape).transpose(0, 2, 1)
    # The product runs over a few scenarios at a time: a whole batch's dense factors (2 × 6.5
    # MB for 64 rare-earth scenarios) would be written by the scatter and read back by the
    # product from L3 or memory, shared with the other worker; a slice of them stays in L2.
    # Their nonzero cells are the same in every scenario, so one pair of slice buffers,
    # zeroed once, serves every slice (each overwrites exactly the cells the last one wrote).
    cells = width * markets
    rows = max(1, min(batch, FACTOR_BYTES // max(16 * cells, 1)))
    left, right = np.zeros((rows, width, markets)), np.zeros((rows, markets, width))
    left_cells, right_cells = left.reshape(rows, cells), right.reshape(rows, cells)
    jac = np.empty((batch, width, width))
    for start in range(0, batch, rows):
        n = min(rows, batch - start)
        part = slice(start, start + n)
        left_cells[:n, pb.left_at] = left_values[part]
        right_cells[:n, pb.right_at] = right_values[part]
        if count:
            left[:n, size:] = left_quota[part]
            right[:n, :, size:] = right_quota[part]
        np.matmul(left[:n], right[:n], out=jac[part])
    # A market with one supplier r: w s / D_r on the diagonal (and on r's quota cells).
    alone = weight[:, sp] * share_g[:, sp]
    diag = np.arange(size)
    jac[:, diag, diag] += (
        cell_sums(alone, pb.single_cells, (batch, size)) - reduce_by_origin(pb, own)
    ) * inverse - pb.supply_elasticity * state.elastic
    if count:
        # Σ_(rv∈j) σ q g of origin r: the own-price part of the quota rows and columns.
        own_sj = cell_sums(own[:, qp], pb.sj_cells, (batch, size, count))
        sq = qp[pb.single_quota]
        own_sj -= cell_sums(weight[:, sq] * share_g[:, sq], pb.single_sj_cells, own_sj.shape)
        jac[:, :size, size:] -= own_sj * inverse[:, :, None]
        jac[:, size:, :size] -= scale[:, :, None] * own_sj.transpose(0, 2, 1)
        quotas = size + np.arange(count)
        d_u = np.where(quota_on, 1.0 - u / radius, 1.0)
        jac[:, quotas, quotas] += d_u - scale * own_sj.sum(axis=1)
    inactive = ~pb.active
    if inactive.any():
        rows_b, rows_n = np.nonzero(inactive)
        jac[rows_b, rows_n, :] = 0.0
        jac[rows_b, rows_n, rows_n] = 1.0
    return jac


@dataclass
class Solution:
    """Converged batch: unknowns, final state and convergence report per scenario."""

    problem: Problem
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
    start: tuple[np.ndarray, np.ndarray] | None = None,
    fields: tuple[str, ...] | None = None,
) -> Solution:
    """Solve every scenario of the batch; raise SolverError naming any that fails.

    `start` = (z, u), (B, S) log world prices of the selling origins and (B, J) log quota
    wedges to start Newton from (default: the base point, all zeros). `fields`: the State
    fields the caller reads (default: all); the others are None in the solution's state,
    and are not copied scenario by scenario as Newton finishes them.

    Newton works on the scenarios still unsolved only: a scenario that converges (or stalls)
    leaves the working batch with its final state, so each step evaluates, differentiates
    and factorises only what is left, and nothing is copied back and forth per step."""
    batch, size = problem.guarantee.shape  # origins that sell
    count = problem.quota_fraction.shape[1]
    z = np.zeros((batch, size)) if start is None else np.array(start[0], dtype=float)
    u = np.zeros((batch, count)) if start is None else np.array(start[1], dtype=float)
    iterations = np.zeros(batch, dtype=int)
    stalled = np.zeros(batch, bool)
    # Residuals first; the Jacobian only where a step is still to be taken (in an ensemble
    # most draws restrict nothing and are solved at the start).
    state = evaluate(problem, z, u, jacobian=False)
    norm = np.abs(state.residual).max(axis=1, initial=0.0)
    rows = np.flatnonzero(~(norm < tolerance))  # the working batch, as rows of the problem
    kept = None if fields is None else tuple(dict.fromkeys((*fields, "residual")))
    if len(rows):
        _newton(
            problem, state, z, u, norm, iterations, stalled, rows, tolerance, max_iterations, kept
        )
    if kept is not None:  # the other fields are those of the start point: none at all
        for name in State.__dataclass_fields__.keys() - set(kept):
            setattr(state, name, None)
    norm = np.minimum(norm, _corner_norm(z, state.residual))
    failed = np.flatnonzero(~(norm < tolerance) & ~(stalled & (norm < STALL_TOLERANCE)))
    if len(failed):
        first = failed[0]
        label = names[first] if names else f"#{first}"
        raise SolverError(
            f"market solve did not converge for scenario {label!r} "
            f"(max residual {norm[first]:.3g} after {iterations[first]} iterations"
            + (f"; {len(failed)} scenarios failed)" if len(failed) > 1 else ")")
        )
    return Solution(problem=problem, z=z, u=u, state=state, iterations=iterations, residual=norm)


def _at_bound(z: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """(B, S) sellers at a corner: the price driven to the lower bound e^−600 (zero, as far
    as a price can be) with supply still above demand there (residual < 0). Market clearing
    is then the complementarity z ≥ −B, r ≤ 0, (z + B)·r = 0 of a mixed complementarity
    problem (Rutherford 1995, "Extension of GAMS for complementarity problems arising in
    applied economic analysis", J. Econ. Dyn. Control 19): a seller priced out by a floor
    many times its own price (σ = 8, a floor 230× its unit value) sells ~e^−33 of its base."""
    return (z <= -LOG_PRICE_BOUND) & (residual < 0.0)


def _corner_norm(z: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """(B,) max |residual| with the sellers at the corner of `_at_bound` counted as cleared;
    inf for a scenario without such a seller (its norm is the plain one)."""
    sellers = z.shape[1]
    corner = _at_bound(z, residual[:, :sellers])
    if not corner.any():  # the usual case: no copy of the residuals on every Newton step
        return np.full(z.shape[0], np.inf)
    rest = residual.copy()
    rest[:, :sellers][corner] = 0.0
    return np.where(corner.any(axis=1), np.abs(rest).max(axis=1, initial=0.0), np.inf)


def _newton(
    problem: Problem,
    state: State,
    z: np.ndarray,
    u: np.ndarray,
    norm: np.ndarray,
    iterations: np.ndarray,
    stalled: np.ndarray,
    rows: np.ndarray,
    tolerance: float,
    max_iterations: int,
    kept: tuple[str, ...] | None = None,
) -> None:
    """Semismooth Newton on the scenarios `rows`; writes their final z, u, state (its
    fields `kept`, default all), norm, iteration count and stall flag into the batch's
    arrays."""
    size = z.shape[1]
    whole = len(rows) == problem.batch
    sub = problem if whole else problem.take(rows)
    # What a trial point must carry into the next step: the Jacobian's parts, the residual
    # and the fields kept for the caller.
    carried = None if kept is None else tuple(dict.fromkeys((*State.JACOBIAN_PARTS, *kept)))
    work = state if whole else state.rows(rows, carried)
    wz, wu, wnorm = z[rows], u[rows], norm[rows]
    done_iterations = np.zeros(len(rows), dtype=int)
    jac = jacobian_at(sub, work)
    current = np.ones(len(rows), bool)  # the Jacobian is the one at the current point
    for _ in range(max_iterations):
        step = _newton_step(jac, work.residual)
        biggest = np.abs(step).max(axis=1, initial=0.0)
        clip = np.minimum(1.0, MAX_LOG_STEP / np.maximum(biggest, 1e-300))
        step *= clip[:, None]
        merit = 0.5 * (work.residual**2).sum(axis=1)
        length = np.ones(len(rows))
        z_new = np.clip(wz + step[:, :size], -LOG_PRICE_BOUND, LOG_PRICE_BOUND)
        u_new = np.clip(wu + step[:, size:], -5.0, LOG_PRICE_BOUND)
        # The full step for all, then shorter ones only for the scenarios still refused; the
        # state at each accepted point is kept (no evaluation after the line search).
        fresh = evaluate(sub, z_new, u_new, False)
        trial_merit = 0.5 * (fresh.residual**2).sum(axis=1)
        # Armijo: the merit must fall by a fraction of the decrease the (clipped) Newton
        # step predicts, 2 · clip · length · merit.
        accepted = trial_merit <= (1.0 - 2e-4 * clip) * merit
        refused = np.flatnonzero(~accepted)
        for _attempt in range(39):
            if not len(refused):
                break
            length[refused] *= 0.5
            z_try = np.clip(
                wz[refused] + length[refused, None] * step[refused, :size],
                -LOG_PRICE_BOUND,
                LOG_PRICE_BOUND,
            )
            u_try = np.clip(
                wu[refused] + length[refused, None] * step[refused, size:], -5.0, LOG_PRICE_BOUND
            )
            trial = evaluate(sub.take(refused), z_try, u_try, False)
            trial_merit = 0.5 * (trial.residual**2).sum(axis=1)
            good = trial_merit <= (1.0 - 2e-4 * clip[refused] * length[refused]) * merit[refused]
            # Where no step length decreases the merit take the smallest tried: a semismooth
            # kink can stall the line search while the full step is still the right direction.
            keep = np.flatnonzero(good) if _attempt < 38 else np.arange(len(refused))
            z_new[refused[keep]], u_new[refused[keep]] = z_try[keep], u_try[keep]
            _store(fresh, trial, refused[keep], keep, carried)
            accepted[refused[good]] = True
            refused = refused[~good]
        stall = ~accepted & (wnorm < STALL_TOLERANCE) & current
        full_step = accepted & (length == 1.0)
        wz, wu, work = z_new, u_new, fresh
        done_iterations += 1
        before, wnorm = wnorm, np.abs(work.residual).max(axis=1, initial=0.0)
        # Shamanskii's variant of Newton: where a full step with a current Jacobian cut the
        # residual tenfold (the quadratic region), the next step reuses that Jacobian; the one
        # after takes a new one. A step with a reused Jacobian that falls short is followed
        # by a new Jacobian, and only a current one can declare a stall.
        reuse = full_step & current & (wnorm <= 0.1 * before)
        finished = (wnorm < tolerance) | stall | (_corner_norm(wz, work.residual) < tolerance)
        last = _ == max_iterations - 1
        if finished.any() or last:
            out = np.arange(len(rows)) if last else np.flatnonzero(finished)
            at = rows[out]
            z[at], u[at], norm[at] = wz[out], wu[out], wnorm[out]
            iterations[at] += done_iterations[out]
            stalled[at] = stall[out]
            _store(state, work, at, out, kept)
            if last or finished.all():
                return
            # What is left: the next step needs only the residuals and what a Jacobian is
            # made of (a finished scenario's full state went to `state` above).
            keep = np.flatnonzero(~finished)
            residual = work.residual[keep]
            rows, sub, work = rows[keep], sub.take(keep), work.take(keep)
            work.residual = residual
            wz, wu, wnorm, jac = wz[keep], wu[keep], wnorm[keep], jac[keep]
            done_iterations, reuse = done_iterations[keep], reuse[keep]
        current = ~reuse
        renew = np.flatnonzero(current)
        if len(renew) == len(rows):
            jac = jacobian_at(sub, work)
        elif len(renew):
            jac[renew] = jacobian_at(sub.take(renew), work.take(renew))


def _store(
    state: State,
    fresh: State,
    rows: np.ndarray,
    source: np.ndarray,
    fields: tuple[str, ...] | None = None,
) -> None:
    """Copy scenarios `source` of `fresh` into rows `rows` of `state` (its `fields`,
    default every field `fresh` has)."""
    if not len(rows):
        return
    for name in fields or State.__dataclass_fields__:
        if getattr(fresh, name) is not None:
            getattr(state, name)[rows] = getattr(fresh, name)[source]
