"""Ensembles: reproducible (same seed, same numbers, in process or on a Dask LocalCluster),
sensible distributions, limits enforced before any work."""

from __future__ import annotations

import numpy as np
import pytest

from critmin.data import countries_of
from critmin.errors import InputError
from critmin.scenarios.ensemble import distribution, run_ensemble
from critmin.scenarios.execution import executor
from critmin.scenarios.hazard import HazardModel


def test_same_seed_same_numbers_locally_and_on_a_local_cluster(ree):
    cal, params = ree
    bloc = countries_of("eu27")
    local = run_ensemble(cal, params, bloc, 200, seed=11)
    again = run_ensemble(cal, params, bloc, 200, seed=11)
    with executor(workers=2) as on_cluster:
        distributed = run_ensemble(cal, params, bloc, 200, seed=11, executor=on_cluster)
    for other in (again, distributed):
        assert np.array_equal(other.shortfall_t, local.shortfall_t)
        assert np.array_equal(other.world_price_index, local.world_price_index)
    different = run_ensemble(cal, params, bloc, 200, seed=12)
    assert not np.array_equal(different.shortfall_t, local.shortfall_t)


def test_distributions_are_ordered_and_china_dominates_the_hazard(ree):
    cal, params = ree
    result = run_ensemble(cal, params, countries_of("eu27"), 300, seed=3)
    summary = result.summary()
    assert 0 <= summary["bloc_p50_t"] <= summary["bloc_p95_t"] <= summary["bloc_cvar95_t"]
    assert summary["bloc_expected_shortfall_t"] <= summary["bloc_cvar95_t"]
    hazard = summary["suppliers"]
    assert max(hazard, key=lambda s: hazard[s]["annual_probability"]) == "CHN"
    table = result.importers()
    assert (table["cvar95_t"] >= table["p95_t"] - 1e-9).all()


def test_cvar_by_hand():
    values = np.arange(1, 101, dtype=float)[:, None]  # 1..100
    row = distribution(values).iloc[0]
    assert row["expected_shortfall_t"] == pytest.approx(50.5)
    assert row["cvar95_t"] == pytest.approx(np.mean([96, 97, 98, 99, 100]))


def test_limits_and_bad_hazards_are_refused_before_work(ree):
    cal, params = ree
    with pytest.raises(InputError, match="draws must be between 1 and 100,000"):
        run_ensemble(cal, params, ["DEU"], 10**9, seed=0)
    with pytest.raises(InputError, match="hazard probability for CHN must be in"):
        HazardModel(overrides={"CHN": 1.5})
    with pytest.raises(InputError, match="no member of the bloc trades"):
        run_ensemble(cal, params, ["ATA"], 10, seed=0)
    with pytest.raises(InputError, match="workers must be at least 1"), executor(workers=0):
        pass


def test_a_cluster_of_separate_processes_gives_the_in_process_numbers(ree):
    """A `dask scheduler` and two `dask worker` processes on loopback (not threads of this
    process): same seed, bitwise the same ensemble as in process."""
    from tests.scenarios.dask_processes import dask_processes

    cal, params = ree
    bloc = countries_of("eu27")
    local = run_ensemble(cal, params, bloc, 400, seed=5)
    with dask_processes(workers=2) as address, executor(address=address) as remote:
        seen: list[int] = []
        distributed = run_ensemble(
            cal, params, bloc, 400, seed=5, executor=remote, progress=seen.append
        )
    assert sum(seen) == 400
    assert np.array_equal(distributed.shortfall_t, local.shortfall_t)
    assert np.array_equal(distributed.world_price_index, local.world_price_index)
    assert np.array_equal(distributed.iterations, local.iterations)
