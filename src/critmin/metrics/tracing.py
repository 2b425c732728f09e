"""Origin tracing (look-through): where a country's supply was produced, through re-exports.

Proportional mixing (the re-export adjustment of material-flow tracing, e.g. Schaffartzik
et al. 2016 on raw-material trade; Kastner, Kastner & Nonhebel 2011 for bilateral trade
re-attribution): each country's availability a_c = P_c + M_c (production plus imports) is a
homogeneous mix of its own production and of its imports, each import carrying its
exporter's mix. With A[r, c] = M_rc / a_c and the origin matrix S[o, c] (share of c's
availability produced in o):

    S = diag(P / a) + S · A   ⇔   (I − A)ᵀ Sᵀ = diag(P / a)

solved once per commodity for all countries. The traced origin of c's *imports* is
Σ_r M_rc S[:, r] / M_c. Assumptions and limits: one homogeneous pool per country (an
exporter's sales carry its average mix, not the mix of what it imported for re-export);
stock changes and unrecorded flows are ignored; origin is the producing country as recorded
by production data of the commodity's own stage (World Mining Data counts mine output for
most commodities, so processing in a third country is not an origin); where a set of
countries trades only among themselves with no production, their origin stays untraced
(the shares of their imports then sum to less than one and the rest is reported as
`untraced`).

Stage chains: where a commodity has an upstream stage in the data (aluminium ← bauxite),
the refiner's production carries the refiner's ore-origin mix instead of counting as an
origin itself: traced = Ore · traced_refined, with Ore[o, r] the origin shares of refiner
r's ore availability (r itself where it has none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from critmin.data.columns import Table

UNTRACED = "untraced"


def numbered(codes: object, index: dict[str, int]) -> np.ndarray:
    """The numbers `index` gives to `codes` (an array or Series of country codes, each in
    `index`), looked up once per distinct code rather than per flow."""
    values = np.asarray(codes).astype(str)
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    distinct, position = np.unique(values, return_inverse=True)
    return np.array([index[c] for c in distinct.tolist()], dtype=np.int64)[position]


def import_matrix(flows: pd.DataFrame | Table, index: dict[str, int]) -> np.ndarray:
    """M[r, c] = flows from exporter r to importer c (summed), countries numbered by `index`."""
    imports = np.zeros((len(index), len(index)))
    np.add.at(
        imports,
        (numbered(flows["exporter"], index), numbered(flows["importer"], index)),
        np.asarray(flows["amount"], dtype=float),
    )
    return imports


def origin_matrix(flows: pd.DataFrame, production: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Countries and S[o, c] for one commodity (flows: exporter, importer, amount;
    production: country, amount; both in tonnes). Columns of S sum to ≤ 1."""
    countries, own, system, _ = origin_system(flows, production)  # system = I − A
    try:
        transposed = np.linalg.solve(system.T, np.diag(own))
    except np.linalg.LinAlgError:
        # A closed loop without production: least squares keeps what can be traced.
        transposed = np.linalg.lstsq(system.T, np.diag(own), rcond=None)[0]
    origin = np.clip(transposed.T, 0.0, None)
    # A nearly closed loop (1e-10 t of production behind 13 t of circular trade) makes the
    # system ill-conditioned and the columns can overshoot 1 by ~1e-6; exactly they cannot.
    origin /= np.maximum(origin.sum(axis=0), 1.0)
    return countries, origin


def origin_system(
    flows: pd.DataFrame | Table, production: pd.DataFrame | Table
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The pieces of `origin_matrix` without solving it: countries, own = P/a, I − A, M.

    S = diag(own) (I − A)⁻¹, so any weighted sum of its rows, wᵀS, is one solve
    (I − A)ᵀ x = w ∘ own (see `weighted_origins`) instead of the n-column solve of S.
    """
    countries = np.unique(
        np.concatenate(
            [np.asarray(flows[c]).astype(str) for c in ("exporter", "importer")]
            + [np.asarray(production["country"]).astype(str)]
        )
    ).tolist()
    index = {code: i for i, code in enumerate(countries)}
    made = np.zeros(len(countries))
    np.add.at(
        made,
        numbered(production["country"], index),
        np.asarray(production["amount"], dtype=float),
    )
    imports = import_matrix(flows, index)
    availability = made + imports.sum(axis=0)
    safe = np.where(availability > 0, availability, 1.0)
    own = np.where(availability > 0, made / safe, 0.0)
    return countries, own, np.eye(len(countries)) - imports / safe, imports


def weighted_origins(own: np.ndarray, system: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """W S for a (k × n) weight matrix W: each row is Σ_o w_o S[o, c] over countries c, in [0, 1]
    for weights in [0, 1] (S of `origin_matrix`)."""
    right = (weights * own).T
    try:
        solved = np.linalg.solve(system.T, right)
    except np.linalg.LinAlgError:
        solved = np.linalg.lstsq(system.T, right, rcond=None)[0]
    return np.clip(solved.T, 0.0, 1.0)


def chained_origin_matrix(
    commodity: str,
    flows: pd.DataFrame,
    production: pd.DataFrame,
    upstream: dict[str, str] | None = None,
) -> tuple[list[str], list[str], np.ndarray]:
    """(origins, countries, S) for one commodity, refiners replaced by their ore origins.

    flows/production hold every commodity (the ore's rows are needed for the chain).
    S[o, c] is the share of country c's availability that originates in `origins[o]`.
    """
    own_flows = flows[flows["commodity"] == commodity]
    own_made = production[production["commodity"] == commodity]
    countries, origin = origin_matrix(own_flows, own_made)
    ore = (upstream or {}).get(commodity)
    if ore is None:
        return countries, countries, origin
    ore_flows = flows[flows["commodity"] == ore]
    ore_made = production[production["commodity"] == ore]
    if ore_flows.empty and ore_made.empty:
        return countries, countries, origin
    labels, chained = _chain(countries, origin, *origin_matrix(ore_flows, ore_made))
    return labels, countries, chained


def traced_import_origins(
    flows: pd.DataFrame,
    production: pd.DataFrame,
    upstream: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Traced origin shares of each importer's imports, for every commodity.

    Input: flows (commodity, exporter, importer, amount), production (commodity, country,
    amount), tonnes; `upstream` maps a refined commodity to its ore (e.g. {"aluminium":
    "bauxite"}) so refined imports carry the refiners' ore origins. Output: commodity,
    importer, origin, share — an importer's shares sum to 1 (with an `untraced` row when
    some origin cannot be traced).
    """
    import pandas as pd

    frames = []
    for commodity in sorted(set(flows["commodity"])):  # one solve per commodity
        labels, countries, origin = chained_origin_matrix(commodity, flows, production, upstream)
        group = flows[flows["commodity"] == commodity]
        imports = import_matrix(group, {code: i for i, code in enumerate(countries)})
        total = imports.sum(axis=0)
        importers = np.flatnonzero(total > 0)
        # traced[o, c] = Σ_r S[o, r] M_rc / M_c
        traced = origin @ imports[:, importers] / total[importers]
        frames.extend(_long(commodity, labels, np.array(countries)[importers], traced))
    if not frames:
        return pd.DataFrame(columns=["commodity", "importer", "origin", "share"])
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(
        ["commodity", "importer", "share"], ascending=[True, True, False]
    ).reset_index(drop=True)


def _chain(
    refiners: list[str], origin: np.ndarray, ore_countries: list[str], ore_origin: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Replace each refining origin by the refiner's ore-origin mix (renormalised to 1)."""
    labels = sorted(set(refiners) | set(ore_countries))
    where = {code: i for i, code in enumerate(labels)}
    ore_index = {code: i for i, code in enumerate(ore_countries)}
    mix = np.zeros((len(labels), len(refiners)))
    for column, refiner in enumerate(refiners):  # one column per country, not per flow
        source = ore_origin[:, ore_index[refiner]] if refiner in ore_index else None
        if source is not None and source.sum() > 0:
            rows = [where[c] for c in ore_countries]
            mix[rows, column] = source / source.sum()
        else:
            mix[where[refiner], column] = 1.0
    return labels, mix @ origin


def _long(
    commodity: str, labels: list[str], importers: np.ndarray, traced: np.ndarray
) -> list[pd.DataFrame]:
    import pandas as pd

    untraced = np.clip(1.0 - traced.sum(axis=0), 0.0, None)
    rows, cols = np.nonzero(traced > 1e-12)
    part = pd.DataFrame(
        {
            "commodity": commodity,
            "importer": importers[cols],
            "origin": np.array(labels)[rows],
            "share": traced[rows, cols],
        }
    )
    leftover = untraced > 1e-9
    rest = pd.DataFrame(
        {
            "commodity": commodity,
            "importer": importers[leftover],
            "origin": UNTRACED,
            "share": untraced[leftover],
        }
    )
    return [part, rest]
