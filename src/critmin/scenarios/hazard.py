"""Restriction hazard: how likely each supplier is to restrict exports in a year, and how
deep a restriction goes. Defaults are stated here and overridable per supplier.

Annual event probability of supplier s (a Poisson hazard, so p = 1 − e^(−λ)):

    λ_s = base_rate · exp(−governance_weight · PV_s) + n_s / years

PV_s is the WGI political-stability estimate (−2.5 … 2.5; Kaufmann & Kraay, Worldwide
Governance Indicators), n_s the number of export-control measures of s in critmin's
export_controls table started in the history window (any commodity), `years` the window's
length. The governance term is the prior every supplier carries (a stable democracy
≈ 0.6 %/year, an unstable state ≈ 2.7 %/year with the defaults); the history term is the
frequency the supplier has actually shown (China 2010-2025: 6 measures in 16 years). The
same two ingredients — governance as a proxy for the likelihood of disruption and the
record of export restrictions — are those of the OECD inventory of export restrictions on
industrial raw materials and of the EU criticality method's supply-risk indicator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from critmin.data.catalog import query_arrays
from critmin.data.controls import export_controls_table
from critmin.errors import InputError


@dataclass(frozen=True)
class HazardModel:
    """Parameters of the restriction hazard and depth (defaults documented above)."""

    base_rate: float = 0.01  # λ at PV = 0, per year
    governance_weight: float = 1.0  # per WGI unit
    history_start: int = 2010
    history_end: int = 2025
    ban_share: float = 0.3  # share of events that are full bans (the rest: quotas)
    quota_low: float = 0.3  # quota fractions drawn uniformly in [quota_low, quota_high]
    quota_high: float = 0.9
    elasticity_cv: float = 0.3  # lognormal spread of σ − 1, η and e around their defaults
    overrides: Mapping[str, float] = field(default_factory=dict)  # supplier → annual prob.

    def __post_init__(self) -> None:
        checks = {
            "base_rate": (self.base_rate, 0.0, 1.0),
            "ban_share": (self.ban_share, 0.0, 1.0),
            "quota_low": (self.quota_low, 0.0, 1.0),
            "quota_high": (self.quota_high, 0.0, 1.0),
            "elasticity_cv": (self.elasticity_cv, 0.0, 2.0),
        }
        for name, (value, low, high) in checks.items():
            if not (low <= value <= high):
                raise InputError(f"hazard {name} must be in [{low}, {high}], got {value}")
        if self.quota_low > self.quota_high:
            raise InputError("hazard quota_low must not exceed quota_high")
        if self.history_end < self.history_start:
            raise InputError("hazard history_end must not be before history_start")
        for supplier, p in self.overrides.items():
            if not 0.0 <= float(p) <= 1.0:
                raise InputError(f"hazard probability for {supplier} must be in [0, 1], got {p}")

    def probabilities(self, suppliers: Sequence[str], year: int) -> np.ndarray:
        """Annual restriction probability of each supplier (overrides win)."""
        found = query_arrays(
            "SELECT country, arg_max(value, year) AS value FROM {governance} "
            "WHERE indicator = 'pv_estimate' AND year <= ? GROUP BY country",
            [int(year)],
        )
        stability = dict(zip(found["country"].tolist(), found["value"].tolist(), strict=True))
        controls = export_controls_table()
        counts: dict[str, int] = {}
        for country, start in zip(controls["country"], controls["start"], strict=True):
            if self.history_start <= int(start[:4]) <= self.history_end:
                counts[country] = counts.get(country, 0) + 1
        years = self.history_end - self.history_start + 1
        out = []
        for supplier in suppliers:
            if supplier in self.overrides:
                out.append(float(self.overrides[supplier]))
                continue
            pv = float(stability.get(supplier, 0.0))
            rate = self.base_rate * np.exp(-self.governance_weight * pv)
            rate += counts.get(supplier, 0) / years
            out.append(1.0 - np.exp(-rate))
        return np.asarray(out)
