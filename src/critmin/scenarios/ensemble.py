"""Monte Carlo ensembles: restriction events and elasticities drawn, every draw solved by
the batched market model, shortfall distributions per importer and for the bloc.

Reproducible by construction: all random numbers are drawn up front from one seeded
generator (numpy PCG64), the draws are cut into fixed chunks of 64 whatever the number of
workers, and each chunk is solved on its own — so the same seed gives the same numbers
on one core, on several, or on a Dask cluster (`distributed`).

Fast by grouping: draws are ordered by their restriction pattern (which suppliers ban,
which set a quota) so that a chunk holds alike draws, and each draw starts Newton from a
prediction of its own solution made from other solves of its pattern (`starts.py`). Draws
that restrict nothing are the base point itself when the study's own policies leave it a
solution (no solve at all); otherwise they are solved like the others. One chunk of draws
is solved by `chunks.solve_chunk`.

The world price index of a draw is the project's one definition
(`market.indices.world_price_index`): what consumers pay, base-consumption weighted, over
the markets outside the restricting exporters — those of the study and the suppliers that
restrict in that draw. (Before issue 16 the ensemble kept its own sales-weighted mean of
origins' world prices, which a ban in the largest supplier's home market pulled down.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.columns import Table
from critmin.errors import InputError
from critmin.market import Calibration, Parameters, Quota, Scenario
from critmin.market.indices import restricting_exporters, world_price_index
from critmin.market.policies import PolicyArrays, compile_scenario
from critmin.scenarios.chunks import in_process, solve_chunk
from critmin.scenarios.hazard import HazardModel
from critmin.scenarios.starts import start_points

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 64
MAX_DRAWS = 100_000  # default resource limit; raise it explicitly for bigger runs
# No configuration goes beyond this: a draw holds about 250 bytes of results (10 M draws
# reached 2.5 GB), so 1 M draws stay near 250 MB on an analyst's laptop.
HARD_MAX_DRAWS = 1_000_000


@dataclass
class Draws:
    """The random part of an ensemble, drawn up front."""

    suppliers: tuple[str, ...]  # candidate restricting suppliers
    probabilities: np.ndarray  # (K,) annual event probability
    event: np.ndarray  # (B, K) bool: the supplier restricts in this draw
    banned: np.ndarray  # (B, K) bool: ... by a ban (else a quota)
    fraction: np.ndarray  # (B, K) quota fraction (inf where no quota)
    multipliers: np.ndarray  # (B, 3) on σ − 1, η, e


def candidate_suppliers(cal: Calibration, min_share: float = 0.01, limit: int = 12) -> list[str]:
    """Exporters with at least `min_share` of world exports (base value), largest first."""
    exports = cal.value_kusd.sum(axis=1) - np.diag(cal.value_kusd)
    shares = exports / exports.sum()
    order = np.argsort(-shares)
    return [
        cal.countries[i]
        for i in order[:limit]
        if shares[i] >= min_share and cal.countries[i] != "ROW"
    ]


def draw(
    rng: np.random.Generator, probabilities: np.ndarray, hazard: HazardModel, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events (Bernoulli per supplier), ban or quota, quota fractions, elasticity factors."""
    size = len(probabilities)
    event = rng.random((count, size)) < probabilities
    banned = event & (rng.random((count, size)) < hazard.ban_share)
    fraction = rng.uniform(hazard.quota_low, hazard.quota_high, (count, size))
    fraction = np.where(event & ~banned, fraction, np.inf)
    spread = np.sqrt(np.log1p(hazard.elasticity_cv**2))  # lognormal with that CV, mean 1
    multipliers = rng.lognormal(-0.5 * spread**2, spread, (count, 3))
    return event, banned, fraction, multipliers


def base_policy(
    cal: Calibration, scenario: Scenario, suppliers: Sequence[str], targets: tuple[str, ...] | None
) -> tuple[PolicyArrays, int]:
    """The study's policies plus one aggregate quota per candidate supplier (its fraction
    set per draw; inf = not restricting), and the index of the first candidate quota."""
    offset = len(compile_scenario(cal, scenario).quota_fraction)
    candidates = tuple(Quota(s, 0.5, targets, aggregate=True, strict=False) for s in suppliers)
    with_candidates = Scenario(**{**scenario.__dict__, "quotas": scenario.quotas + candidates})
    try:
        return compile_scenario(cal, with_candidates), offset
    except InputError as error:
        raise InputError(f"ensemble restrictions clash with the study's quotas: {error}") from None


def base_solves(cal: Calibration, policy: PolicyArrays, params: Parameters, offset: int) -> bool:
    """True where the base point (every price 1, no quota rent) solves the market under
    `policy` with its candidate quotas inactive, whatever the elasticities: no tariff, tax,
    closed base flow, binding floor, guarantee or capacity, release or binding quota, and
    no market choked at the base price."""
    fractions = policy.quota_fraction[:offset]  # the study's quotas (candidates follow)
    return bool(
        np.all(policy.tariff * policy.export_tax == 1.0)
        and np.all(policy.open[cal.value_kusd > 0])
        and np.all(policy.floor <= 1.0)
        and np.all(policy.guarantee <= 1.0)
        and np.all(policy.capacity >= 1.0)
        and not np.any(policy.stock)
        and np.all(~np.isfinite(fractions) | (fractions >= 1.0))
        and np.all(params.cutoff_price >= 1.0)
    )


@dataclass
class EnsembleResult:
    """Distributions of an ensemble; arrays are per draw."""

    calibration: Calibration
    draws: Draws
    bloc: tuple[str, ...]
    shortfall_t: np.ndarray  # (B, N)
    world_price_index: np.ndarray  # (B,)
    iterations: np.ndarray  # (B,)
    seed: int
    notes: list[str] = field(default_factory=list)

    @property
    def bloc_shortfall_t(self) -> np.ndarray:
        inside = np.isin(self.calibration.countries, self.bloc)
        return self.shortfall_t[:, inside].sum(axis=1)

    @property
    def bloc_consumption_t(self) -> float:
        inside = np.isin(self.calibration.countries, self.bloc)
        return float(self.calibration.absorption_t()[inside].sum())

    def importer_table(self) -> Table:
        """Per importer (t of the stage's unit): expected shortfall, p5/p50/p95, CVaR 95 %,
        the expected shortfall as % of base consumption, and membership of the bloc; the
        largest expected shortfall first (ties in the calibration's country order)."""
        base = self.calibration.absorption_t()
        keep = np.flatnonzero(base > 0)
        figures = distribution_columns(self.shortfall_t[:, keep])
        countries = np.asarray(self.calibration.countries, dtype=object)[keep]
        rows = Table(
            {
                "country": countries,
                "consumption_base_t": base[keep],
                **figures,
                "expected_shortfall_pct": figures["expected_shortfall_t"] / base[keep] * 100,
                "in_bloc": np.isin(countries.astype(str), list(self.bloc)),
            }
        )
        return rows.where(np.argsort(-figures["expected_shortfall_t"], kind="stable"))

    def importers(self) -> pd.DataFrame:
        """`importer_table` as a DataFrame."""
        return self.importer_table().frame()

    def summary(self) -> dict:
        """Bloc distribution, world price distribution, event frequencies."""
        bloc = {k: v[0] for k, v in distribution_columns(self.bloc_shortfall_t[:, None]).items()}
        consumption = self.bloc_consumption_t
        price = np.percentile(self.world_price_index, [5, 50, 95])
        return {
            "commodity": self.calibration.commodity,
            "year": self.calibration.year,
            "draws": len(self.world_price_index),
            "seed": self.seed,
            "bloc": list(self.bloc),
            "bloc_consumption_base_t": consumption,
            **{f"bloc_{k}": float(v) for k, v in bloc.items()},
            "bloc_expected_shortfall_pct": float(bloc["expected_shortfall_t"] / consumption * 100)
            if consumption > 0
            else None,
            "world_price_index_p5": float(price[0]),
            "world_price_index_p50": float(price[1]),
            "world_price_index_p95": float(price[2]),
            "suppliers": {
                s: {
                    "annual_probability": float(p),
                    "event_share": float(e),
                    "ban_share": float(b),
                }
                for s, p, e, b in zip(
                    self.draws.suppliers,
                    self.draws.probabilities,
                    self.draws.event.mean(axis=0),
                    self.draws.banned.mean(axis=0),
                    strict=True,
                )
            },
            "newton_iterations_max": int(self.iterations.max(initial=0)),
            "notes": self.notes,
        }


def distribution_columns(values: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of (B, M) draws → mean (expected), p5, p50, p95 and CVaR 95 % (the mean of
    the worst 5 % of draws; Rockafellar & Uryasev 2000, "Optimization of conditional
    value-at-risk", Journal of Risk 2(3)), each an (M,) array."""
    count = values.shape[0]
    worst = max(1, int(np.ceil(0.05 * count)))
    ordered = np.sort(values, axis=0)
    p5, p50, p95 = np.percentile(values, [5, 50, 95], axis=0)
    return {
        "expected_shortfall_t": values.mean(axis=0),
        "p5_t": p5,
        "p50_t": p50,
        "p95_t": p95,
        "cvar95_t": ordered[-worst:].mean(axis=0),
    }


def distribution(values: np.ndarray) -> pd.DataFrame:
    """`distribution_columns` as a DataFrame, one row per column of `values`."""
    import pandas as pd

    return pd.DataFrame(distribution_columns(values))


def run_ensemble(
    cal: Calibration,
    params: Parameters,
    bloc: Sequence[str],
    draws: int,
    seed: int,
    hazard: HazardModel | None = None,
    scenario: Scenario | None = None,
    targets: str = "all",
    executor: Callable | None = None,
    progress: Callable[[int], None] | None = None,
    max_draws: int = MAX_DRAWS,
) -> EnsembleResult:
    """Draw `draws` restriction scenarios around `scenario` on `cal` and solve them all.

    `targets`: restrictions hit every destination (`all`) or only the bloc (`bloc`).
    `executor(function, argument_lists)` maps `solve_chunk` over chunks (default: in
    process); `progress(n)` is called with the number of draws finished.
    """
    if int(max_draws) > HARD_MAX_DRAWS:
        raise InputError(
            f"max_draws {max_draws:,} exceeds the hard maximum of {HARD_MAX_DRAWS:,} draws "
            "(about 250 MB of results); split the study into several seeds"
        )
    if not 1 <= int(draws) <= max_draws:
        raise InputError(
            f"draws must be between 1 and {max_draws:,} (the configured limit; raise it "
            f"with max_draws), got {draws:,}"
        )
    if targets not in ("all", "bloc"):
        raise InputError(f"targets must be 'all' or 'bloc', got {targets!r}")
    hazard = hazard or HazardModel()
    scenario = scenario or Scenario("ensemble")
    bloc = tuple(c for c in bloc if c in cal.countries)
    if not bloc:
        raise InputError(f"no member of the bloc trades {cal.commodity} in {cal.year}")
    suppliers = candidate_suppliers(cal)
    probabilities = hazard.probabilities(suppliers, cal.year)
    rng = np.random.default_rng(seed)
    event, banned, fraction, multipliers = draw(rng, probabilities, hazard, int(draws))
    target_codes = bloc if targets == "bloc" else None
    policy, offset = base_policy(cal, scenario, suppliers, target_codes)
    rows = np.array([cal.index(s) for s in suppliers], dtype=int)
    target_mask = np.isin(cal.countries, bloc) if targets == "bloc" else np.ones(cal.size, bool)
    target_cols = np.flatnonzero(target_mask)
    shared = (cal, policy, params, rows, target_cols, offset)
    starts = start_points(shared, hazard, banned, fraction, multipliers)
    order = starts.order
    # Draws without an event are the base itself where the study sets no policy that moves
    # it: no solve (the numbers it would give are 1 to rounding).
    calm = ~event[order].any(axis=1) & base_solves(cal, policy, params, offset)
    solved = np.flatnonzero(~calm)  # positions in `order`
    at = [solved[s : s + CHUNK] for s in range(0, len(solved), CHUNK)]
    parts = [order[a] for a in at]  # the draws of each chunk
    chunks = [
        (banned[p], fraction[p], multipliers[p], None, (starts.z[a], starts.u[a]))
        for a, p in zip(at, parts, strict=True)
    ]
    if progress and calm.any():
        progress(int(calm.sum()))
    outputs = (executor or in_process)(solve_chunk, shared, chunks, progress)
    study = restricting_exporters(scenario)
    base = order[calm]
    alive = (policy.open & (cal.value_kusd > 0)).any(axis=0)
    consumed = np.empty((len(order), cal.size))
    consumed[base] = np.where(alive, 1.0, 0.0)
    iterations = np.zeros(len(order), dtype=int)
    iterations[order] = starts.spent  # Newton steps of the pilot solves (starts.py)
    prices = np.empty(len(order))
    if len(base):
        still = np.where(alive, 1.0, np.inf)[None]
        prices[base] = world_index(cal, params, still, event[base[:1]], suppliers, study)[0]
    for part, out in zip(parts, outputs, strict=True):
        consumed[part] = out["consumed"]
        iterations[part] += out["iterations"]
        prices[part] = world_index(cal, params, out["price"], event[part], suppliers, study)
    return EnsembleResult(
        calibration=cal,
        draws=Draws(tuple(suppliers), probabilities, event, banned, fraction, multipliers),
        bloc=bloc,
        shortfall_t=cal.absorption_t() * (1.0 - consumed),
        world_price_index=prices,
        iterations=iterations,
        seed=int(seed),
    )


def world_index(
    cal: Calibration,
    params: Parameters,
    price: np.ndarray,
    events: np.ndarray,
    suppliers: Sequence[str],
    study: Sequence[str],
) -> np.ndarray:
    """The world price index (`indices.world_price_index`, the one definition every result
    uses) of each draw: `price` (B, N) what consumers pay; the markets left out are those
    of the study's restricting exporters `study` and of the suppliers restricting in the
    draw (`events` (B, K) over `suppliers`)."""
    out = np.empty(len(price))
    sets, which = np.unique(events, axis=0, return_inverse=True)
    which = which.ravel()
    for k, hit in enumerate(sets):
        draws = which == k
        restricting = (*study, *(s for s, h in zip(suppliers, hit, strict=True) if h))
        out[draws] = world_price_index(
            cal.absorption_kusd(), price[draws], params.cutoff_price, cal.countries, restricting
        )
    return out
