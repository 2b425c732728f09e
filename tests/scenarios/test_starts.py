"""Newton starts of ensemble draws: the fitted polynomial starts closer than the first-order
prediction, pilot draws start at their own solution, and the starts change the number of
Newton steps, not the answer beyond the solver's tolerance."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from critmin.data import countries_of
from critmin.market import Scenario
from critmin.scenarios import starts as start_module
from critmin.scenarios.chunks import TOLERANCE, solve_chunk
from critmin.scenarios.ensemble import base_policy, candidate_suppliers, draw, run_ensemble
from critmin.scenarios.hazard import HazardModel


@given(st.integers(1, 6), st.integers(0, 3))
def test_term_count_is_the_number_of_monomials(parameters, degree):
    theta = np.random.default_rng(parameters).random((4, parameters))
    terms = start_module.polynomial_terms(theta, degree)
    assert terms.shape == (4, start_module.term_count(parameters, degree))
    assert np.array_equal(terms[:, 0], np.ones(4))  # the constant first
    if degree:  # then the parameters themselves, in order
        assert np.array_equal(terms[:, 1 : 1 + parameters], theta)


def test_a_pattern_gets_a_fit_only_with_room_for_its_pilot():
    # 3 elasticity factors + 1 quota: 35 cubic terms (a pilot of 53), 15 quadratic ones (23).
    assert start_module.fit_degree(2046, 4) == 3
    assert start_module.fit_degree(94, 4) == 2
    assert start_module.fit_degree(60, 4) == 0


def _shared(ree, draws=2000, seed=1):
    cal, params = ree
    hazard = HazardModel()
    suppliers = candidate_suppliers(cal)
    _, banned, fraction, multipliers = draw(
        np.random.default_rng(seed), hazard.probabilities(suppliers, cal.year), hazard, draws
    )
    policy, offset = base_policy(cal, Scenario("starts"), suppliers, None)
    rows = np.array([cal.index(s) for s in suppliers])
    shared = (cal, policy, params, rows, np.arange(cal.size), offset)
    return shared, hazard, banned, fraction, multipliers


def _solutions(shared, banned, fraction, multipliers, draws, starts):
    out = solve_chunk(
        *shared, banned[draws], fraction[draws], multipliers[draws], None, starts, True
    )
    return out["z"], out["iterations"]


def test_fitted_starts_are_closer_than_first_order_ones_and_pilots_start_solved(ree, monkeypatch):
    shared, hazard, banned, fraction, multipliers = _shared(ree)
    fitted = start_module.start_points(shared, hazard, banned, fraction, multipliers)
    monkeypatch.setattr(start_module, "FIT_DEGREES", ())
    linear = start_module.start_points(shared, hazard, banned, fraction, multipliers)
    assert np.array_equal(fitted.order, linear.order)
    assert not linear.spent.any()
    # The largest quota pattern (China's quota) is fitted: its pilot spent Newton steps.
    code = np.concatenate([banned, np.isfinite(fraction)], axis=1)
    patterns, which, counts = np.unique(code, axis=0, return_inverse=True, return_counts=True)
    quota_only = ~patterns[:, : banned.shape[1]].any(axis=1) & patterns.any(axis=1)
    biggest = np.flatnonzero(quota_only)[np.argmax(counts[quota_only])]
    members = np.flatnonzero(np.isin(fitted.order, np.flatnonzero(which.ravel() == biggest)))
    draws = fitted.order[members]
    pilot = fitted.spent[members] > 0
    assert 0 < pilot.sum() < len(draws) / 2
    # A pilot draw starts at its solution: no further Newton step.
    z, steps = _solutions(
        shared, banned, fraction, multipliers, draws[pilot],
        (fitted.z[members[pilot]], fitted.u[members[pilot]]),
    )  # fmt: skip
    assert not steps.any()
    # The others: closer to their solution than the first-order prediction, in median.
    rest = members[~pilot]
    z, _ = _solutions(
        shared, banned, fraction, multipliers, draws[~pilot], (linear.z[rest], linear.u[rest])
    )
    fitted_error = np.abs(fitted.z[rest] - z).max(axis=1)
    linear_error = np.abs(linear.z[rest] - z).max(axis=1)
    assert np.median(fitted_error) < 0.5 * np.median(linear_error)


def test_fitted_starts_change_the_steps_not_the_answer(ree, monkeypatch):
    cal, params = ree
    bloc = countries_of("eu27")
    fitted = run_ensemble(cal, params, bloc, 1500, seed=5)
    monkeypatch.setattr(start_module, "FIT_DEGREES", ())
    linear = run_ensemble(cal, params, bloc, 1500, seed=5)
    # Fewer Newton steps in all, pilot solves counted.
    assert fitted.iterations.sum() < linear.iterations.sum()
    # The same solutions to the draw tolerance (TOLERANCE in log clearing): shortfalls and
    # price indices within ten times that, relative to each importer's base consumption.
    base, within = cal.absorption_t(), 10 * TOLERANCE
    assert (np.abs(fitted.shortfall_t - linear.shortfall_t) <= within * base + 1e-9).all()
    assert np.allclose(fitted.world_price_index, linear.world_price_index, rtol=within)


def test_the_multi_process_dask_test_covers_a_fitted_pattern(ree):
    """tests/scenarios/test_ensemble.py compares 400 draws (seed 5) on separate Dask
    processes with the in-process run; those draws include a fitted pattern, so the
    equality covers the pilot solves and the fitted starts."""
    shared, hazard, banned, fraction, multipliers = _shared(ree, draws=400, seed=5)
    starts = start_module.start_points(shared, hazard, banned, fraction, multipliers)
    assert starts.spent.any()
