"""Newton start points for the draws of an ensemble, by restriction pattern.

A draw's market solution depends on which suppliers ban and which set a quota (its
pattern) and, smoothly almost everywhere, on its parameters θ: the logs of its three
elasticity factors (on σ − 1, η and e) and the logs of its quota fractions relative to the
mid-range. Draws of one pattern are alike, so what is learnt solving some of them starts
the others close to their own solution, and Newton, quadratic from there, needs fewer
steps. Three levels, by the pattern's number of draws:

- central (at least `MIN_PATTERN_DRAWS`): the pattern solved once at θ = 0; its draws start
  from that solution;
- first-order (at least `LINEAR_PATTERN_DRAWS`): also solved once per parameter at
  θ_k = STEP, and its draws start from z ≈ z_c + Σ_k (∂z/∂θ_k) θ_k (finite differences);
- fitted (enough draws for a pilot of `PILOT_PER_TERM` draws per polynomial term, at most a
  `PILOT_SHARE` of the pattern): a pilot of its first draws is solved from first-order
  starts, a polynomial of degree 3 (or 2) in θ is fitted by least squares to the pilot's
  solutions and the central and finite-difference ones (a response surface; Box & Wilson
  1951, "On the experimental attainment of optimum conditions", JRSS B 13), and its other
  draws start from the fitted polynomial, θ held inside the fitted range. The pilot draws
  start from their own solution.

A start is only a start: every draw is then solved to the ensemble's tolerance by the same
Newton method, so the starts move the number of steps, not the answer beyond that
tolerance. Everything here runs in process before any chunk is solved, so the starts are
the same on every executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement

import numpy as np

from critmin.scenarios.chunks import in_process, solve_chunk
from critmin.scenarios.hazard import HazardModel

START_CHUNK = 16  # chunks of the start-point solves: few, so cut small to use every core
MIN_PATTERN_DRAWS = 3  # a restriction pattern this frequent gets its own Newton start
LINEAR_PATTERN_DRAWS = 20  # ... and this frequent, a first-order one
STEP = 0.05  # finite-difference step on θ
PILOT_PER_TERM = 1.5  # pilot draws per term of the fitted polynomial
PILOT_SHARE = 1 / 3  # the pilot is at most this share of its pattern's draws
FIT_DEGREES = (3, 2)  # the highest degree whose pilot fits in the pattern is used


@dataclass
class Starts:
    """Draw order (patterns together, draw order kept within a pattern) and, in that order,
    the (B, S) z and (B, J) u starts and the Newton iterations already spent on each draw
    (its pilot solve; 0 for the others)."""

    order: np.ndarray
    z: np.ndarray
    u: np.ndarray
    spent: np.ndarray


def polynomial_terms(theta: np.ndarray, degree: int) -> np.ndarray:
    """(D, k) θ → (D, T) monomials of degree 0 to `degree` (T = C(k + degree, degree))."""
    columns = [np.ones(len(theta))]
    for order in range(1, degree + 1):
        for combination in combinations_with_replacement(range(theta.shape[1]), order):
            columns.append(np.prod(theta[:, list(combination)], axis=1))
    return np.stack(columns, axis=1)


def term_count(parameters: int, degree: int) -> int:
    """Number of monomials of degree at most `degree` in `parameters` variables."""
    count = 1
    for i in range(1, degree + 1):
        count = count * (parameters + i) // i
    return count


def pilot_size(parameters: int, degree: int) -> int:
    """Draws of the pilot that fits a polynomial of `degree` in `parameters` variables."""
    return int(np.ceil(PILOT_PER_TERM * term_count(parameters, degree)))


def fit_degree(draws: int, parameters: int) -> int:
    """Degree of the polynomial fitted to a pattern of `draws` draws and `parameters`
    parameters: the highest of `FIT_DEGREES` whose pilot is at most `PILOT_SHARE` of the
    draws; 0 for none."""
    for degree in FIT_DEGREES:
        if pilot_size(parameters, degree) <= PILOT_SHARE * draws:
            return degree
    return 0


def start_points(
    shared: tuple,
    hazard: HazardModel,
    banned: np.ndarray,
    fraction: np.ndarray,
    multipliers: np.ndarray,
) -> Starts:
    """Order the draws by restriction pattern and give each a Newton start (module
    docstring). `shared` is the ensemble's (cal, policy, params, rows, targets, offset);
    `banned`, `fraction` (inf where no quota) are (B, K) over the candidate suppliers,
    `multipliers` (B, 3)."""
    cal, policy, _, rows, _, _ = shared
    size = len(rows)
    patterns, which, counts = _patterns(banned, fraction)
    order = np.argsort(which, kind="stable")
    sellers = int((cal.value_kusd.sum(axis=1) > 0).sum())
    start_z = np.zeros((len(which), sellers))
    start_u = np.zeros((len(which), len(policy.quota_fraction)))
    spent = np.zeros(len(which), dtype=int)
    central = np.flatnonzero((counts >= MIN_PATTERN_DRAWS) & patterns.any(axis=1))
    if not len(central):
        return Starts(order, start_z, start_u, spent)
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
        outputs = in_process(solve_chunk, shared, chunks, None)
        return [np.concatenate([o[key] for o in outputs]) for key in ("z", "u", "iterations")]

    center_z, center_u, _ = solved(central, base_fraction[central], np.ones((len(central), 3)))
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
    at = np.array([i for i, _ in variants], dtype=int)
    param = np.array([k for _, k in variants], dtype=int)
    if variants:
        factors = np.ones((len(variants), 3))
        fractions = base_fraction[central[at]].copy()
        hit = param < 3
        factors[np.flatnonzero(hit), param[hit]] *= np.exp(STEP)
        fractions[np.flatnonzero(~hit), param[~hit] - 3] *= np.exp(STEP)
        moved_z, moved_u, _ = solved(central[at], fractions, factors, (center_z[at], center_u[at]))
        slopes_z[at, param] = (moved_z - center_z[at]) / STEP
        slopes_u[at, param] = (moved_u - center_u[at]) / STEP
    position = np.full(len(patterns), -1)
    position[central] = np.arange(len(central))
    draw_at = position[which]
    has = np.flatnonzero(draw_at >= 0)
    theta = _parameters(fraction, multipliers, mid)
    c = draw_at[has]
    start_z[has] = center_z[c] + np.einsum("dk,dks->ds", theta[has], slopes_z[c])
    # Quota wedges log(1 + τ) are not negative at a solution.
    start_u[has] = np.maximum(center_u[c] + np.einsum("dk,dkj->dj", theta[has], slopes_u[c]), 0)

    # Fitted patterns: their pilots solved together, then one least-squares fit each.
    fitted = []
    first = np.concatenate([[0], np.cumsum(counts)])  # each pattern's draws in `order`
    for i, p in enumerate(central):
        active = np.concatenate([[0, 1, 2], 3 + np.flatnonzero(patterns[p, size:])])
        degree = fit_degree(int(counts[p]), len(active))
        if degree and counts[p] >= LINEAR_PATTERN_DRAWS:  # its slopes are known
            draws = order[first[p] : first[p + 1]]  # in draw order (a stable sort)
            pilot = pilot_size(len(active), degree)
            fitted.append((i, active, degree, draws[:pilot], draws[pilot:]))
    if fitted:
        pilots = np.concatenate([f[3] for f in fitted])
        pilot_z, pilot_u, pilot_iterations = solved(
            which[pilots], fraction[pilots], multipliers[pilots], (start_z[pilots], start_u[pilots])
        )
        start_z[pilots], start_u[pilots], spent[pilots] = pilot_z, pilot_u, pilot_iterations
        for i, active, degree, pilot, rest in fitted:
            known_theta = [theta[pilot][:, active], np.zeros((1, len(active)))]
            known_z = [start_z[pilot], center_z[i : i + 1]]
            known_u = [start_u[pilot], center_u[i : i + 1]]
            for k, parameter in enumerate(active):
                step = np.zeros((1, len(active)))
                step[0, k] = STEP
                known_theta.append(step)
                known_z.append(center_z[i : i + 1] + STEP * slopes_z[i, parameter])
                known_u.append(center_u[i : i + 1] + STEP * slopes_u[i, parameter])
            data_theta = np.concatenate(known_theta)
            values = np.concatenate([np.concatenate(known_z), np.concatenate(known_u)], axis=1)
            terms = polynomial_terms(data_theta, degree)
            coefficients = np.linalg.lstsq(terms, values, rcond=None)[0]
            # Inside the fitted range only: a polynomial is not carried beyond its data.
            inside = np.clip(theta[rest][:, active], data_theta.min(axis=0), data_theta.max(axis=0))
            predicted = polynomial_terms(inside, degree) @ coefficients
            start_z[rest] = predicted[:, :sellers]
            start_u[rest] = np.maximum(predicted[:, sellers:], 0.0)
    return Starts(order, start_z[order], start_u[order], spent[order])


def _patterns(banned: np.ndarray, fraction: np.ndarray) -> tuple:
    """Distinct restriction patterns (P, 2K) (bans, then quotas), each draw's pattern and
    each pattern's number of draws."""
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
    return patterns, which.ravel(), counts


def _parameters(fraction: np.ndarray, multipliers: np.ndarray, mid: float) -> np.ndarray:
    """(B, 3 + K) θ: logs of the elasticity factors, then of each quota fraction over the
    mid-range (0 where no quota), held within ±1 (a fraction e times the mid-range or
    less than 1/e of it is far enough for a start)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a fraction of 0 (quota_low = 0)
        moved = np.where(np.isfinite(fraction), np.log(fraction / mid), 0.0)
    moved = np.clip(np.nan_to_num(moved, nan=0.0, neginf=-1.0), -1.0, 1.0)
    return np.concatenate([np.log(multipliers), moved], axis=1)
