"""Policies of a market scenario and their translation into the solver's arrays.

Policies name countries by ISO3 code (the API resolves names first). A scenario composes
any of: import tariffs, export taxes, export bans, export licence quotas, a preferential
zone with a reference-price floor (kept by an adjustable tariff or guaranteed to member
producers), stockpile releases and capacity caps. `compile_scenario` checks every policy
against the calibration and returns plain arrays; all errors are one-line `InputError`s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from critmin.data.baci import MAX_QTY_T
from critmin.errors import InputError
from critmin.market.calibration import Calibration

MAX_FLOOR_MULTIPLE = 100.0  # a floor 100x the market price is no policy anyone proposes
MECHANISMS = ("tariff", "guarantee")
FLOOR_UNITS = ("multiple", "usd_per_t")


@dataclass(frozen=True)
class Tariff:
    """Ad-valorem import tariff `rate` levied by `importers` on goods from `exporters`
    (None = every foreign origin)."""

    importers: tuple[str, ...]
    rate: float
    exporters: tuple[str, ...] | None = None
    strict: bool = True  # every named pair must trade in the base year


@dataclass(frozen=True)
class ExportTax:
    """Ad-valorem export tax `rate` on `exporter`'s shipments to `targets` (None = all)."""

    exporter: str
    rate: float
    targets: tuple[str, ...] | None = None
    strict: bool = True


@dataclass(frozen=True)
class Ban:
    """Export ban: `exporter`'s flows to `targets` (None = every destination) stop."""

    exporter: str
    targets: tuple[str, ...] | None = None
    strict: bool = True


@dataclass(frozen=True)
class Quota:
    """Export licence quota: flows from `exporter` to `targets` capped at `fraction` of base.

    One cap per flow, or with `aggregate=True` one cap on their total (as China's 2010-2014
    rare-earth export quota). The quota rent is endogenous (complementarity).
    """

    exporter: str
    fraction: float
    targets: tuple[str, ...] | None = None
    aggregate: bool = False
    strict: bool = True


@dataclass(frozen=True)
class Zone:
    """Preferential zone: `members` and a reference-price floor for the commodity.

    `floor` is a multiple of the base world reference price (`floor_unit="multiple"`) or
    USD/t. `tariff`: goods from non-members land in members at no less than the floor, the
    gap closed by an adjustable tariff. `guarantee`: member producers receive at least the
    floor, the gap paid by a fund.
    """

    members: tuple[str, ...]
    floor: float
    floor_unit: str = "multiple"
    mechanism: str = "tariff"


@dataclass(frozen=True)
class Release:
    """Stockpile release: `tonnes` supplied to `member`'s market."""

    member: str
    tonnes: float


@dataclass(frozen=True)
class Scenario:
    """A set of policies solved together on one calibrated market."""

    name: str = "scenario"
    tariffs: tuple[Tariff, ...] = ()
    export_taxes: tuple[ExportTax, ...] = ()
    bans: tuple[Ban, ...] = ()
    quotas: tuple[Quota, ...] = ()
    zone: Zone | None = None
    releases: tuple[Release, ...] = ()
    capacity: Mapping[str, float] = field(default_factory=dict)  # max output / base output
    # Production quota: output at most this fraction of base (0, 1] — China's rare-earth mining
    # quota of 2010-2011 beside its export quota (a cap below base, binding at base prices).
    production_quotas: Mapping[str, float] = field(default_factory=dict)
    bloc: tuple[str, ...] = ()  # whose self-sufficiency to report (default: zone or targets)


@dataclass
class PolicyArrays:
    """A scenario as arrays over the calibration's countries (r = origin, v = market)."""

    tariff: np.ndarray  # (N, N) 1 + import tariff
    export_tax: np.ndarray  # (N, N) 1 + export tax
    open: np.ndarray  # (N, N) bool: base flow exists and is not banned
    floor: np.ndarray  # (N, N) floor on the landed price, ratio to origin base price; 0 none
    quota_id: np.ndarray  # (N, N) int: quota constraint of the pair, −1 none
    quota_fraction: np.ndarray  # (J,) cap as a fraction of the constrained base flows
    guarantee: np.ndarray  # (N,) producer floor, ratio to base price; 0 none
    stock: np.ndarray  # (N,) release into each market in base-price kUSD
    capacity: np.ndarray  # (N,) max output / base output; inf none
    bloc: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


MAX_CAPACITY_RATIO = 1000.0  # a thousandfold capacity: beyond any expansion studied


def _fraction(name: str, value: float, low: float, high: float | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        span = f"in [{low:g}, {high:g}]" if high is not None else f"a finite number ≥ {low:g}"
        raise InputError(f"{name} must be {span}, got {value!r}")
    return number


def _pairs(
    cal: Calibration,
    label: str,
    exporters: Sequence[str] | None,
    importers: Sequence[str] | None,
    strict: bool,
    notes: list[str],
) -> np.ndarray:
    """(N, N) mask of foreign base flows from `exporters` to `importers` (None = all)."""
    size = cal.size
    rows = np.ones(size, bool) if exporters is None else np.zeros(size, bool)
    cols = np.ones(size, bool) if importers is None else np.zeros(size, bool)
    for code in exporters or ():
        rows[cal.index(code)] = True
    for code in importers or ():
        cols[cal.index(code)] = True
    mask = rows[:, None] & cols[None, :]
    np.fill_diagonal(mask, False)
    traded = mask & cal.traded
    if not traded.any():
        raise InputError(
            f"{label}: no trade of {cal.commodity} in {cal.year} between "
            f"{_names(exporters)} and {_names(importers)}, so the policy has nothing to act on"
        )
    untraded = mask & ~traded
    if strict and exporters is not None and importers is not None and untraded.any():
        r, v = np.argwhere(untraded)[0]
        raise InputError(
            f"{label}: {cal.countries[r]} → {cal.countries[v]} has no trade of "
            f"{cal.commodity} in {cal.year}; drop that pair or pick another base year"
        )
    if untraded.any() and exporters is not None and importers is not None:
        notes.append(f"{label}: {int(untraded.sum())} named pairs without base trade skipped")
    return traded


def _names(codes: Sequence[str] | None) -> str:
    if codes is None:
        return "all countries"
    return ",".join(codes) if len(codes) <= 4 else f"{len(codes)} countries"


def _own(array: np.ndarray) -> np.ndarray:
    """A writable copy of a shared read-only default, or the array itself if already ours."""
    return array if array.flags.writeable else array.copy()


def compile_scenario(cal: Calibration, scenario: Scenario) -> PolicyArrays:
    """Translate `scenario` into arrays over `cal`, refusing impossible policies."""
    size = cal.size
    notes: list[str] = []
    constants = cal.constants
    tariff = constants["ones"]  # shared until a policy writes: see _own
    export_tax = constants["ones"]
    open_ = cal.traded
    floor = constants["zeros"]
    quota_id = constants["minus_one"]
    fractions: list[float] = []
    guarantee = np.zeros(size)
    stock = np.zeros(size)
    capacity = np.full(size, np.inf)

    for item in scenario.tariffs:
        rate = _fraction("tariff rate", item.rate, 0.0)
        mask = _pairs(cal, "tariff", item.exporters, item.importers, item.strict, notes)
        tariff = _own(tariff)
        tariff[mask] *= 1.0 + rate
    for item in scenario.export_taxes:
        rate = _fraction("export tax rate", item.rate, 0.0)
        mask = _pairs(cal, "export tax", [item.exporter], item.targets, item.strict, notes)
        export_tax = _own(export_tax)
        export_tax[mask] *= 1.0 + rate
    for item in scenario.bans:
        mask = _pairs(
            cal, f"ban by {item.exporter}", [item.exporter], item.targets, item.strict, notes
        )
        open_ = open_ & ~mask
    for item in scenario.quotas:
        fraction = _fraction("quota fraction", item.fraction, 0.0, 1.0)
        label = f"quota by {item.exporter}"
        mask = _pairs(cal, label, [item.exporter], item.targets, item.strict, notes)
        mask &= open_
        if fraction == 0.0:  # a zero quota is a ban; its rent would be unbounded
            open_ = open_ & ~mask
            continue
        quota_id = _own(quota_id)
        if (quota_id[mask] >= 0).any():
            raise InputError(f"{label}: a flow is under two quotas; give each flow one quota")
        if item.aggregate:
            quota_id[mask] = len(fractions)
            fractions.append(fraction)
        else:
            count = int(mask.sum())
            quota_id[mask] = np.arange(len(fractions), len(fractions) + count)
            fractions.extend([fraction] * count)

    members: tuple[str, ...] = ()
    if scenario.zone is not None:
        zone = scenario.zone
        if zone.mechanism not in MECHANISMS:
            raise InputError(f"zone mechanism {zone.mechanism!r} is not one of tariff, guarantee")
        if zone.floor_unit not in FLOOR_UNITS:
            raise InputError(f"floor unit {zone.floor_unit!r} is not one of multiple, usd_per_t")
        level = _fraction("price floor", zone.floor, 0.0)
        if level == 0.0:
            raise InputError("price floor must be above zero (a multiple such as 1.3, or USD/t)")
        floor_usd = level * cal.reference_price_usd_t if zone.floor_unit == "multiple" else level
        if floor_usd > MAX_FLOOR_MULTIPLE * cal.reference_price_usd_t:  # 1e308 stalls a solve
            raise InputError(
                f"price floor {zone.floor:g} ({zone.floor_unit}) is over {MAX_FLOOR_MULTIPLE:g} "
                f"times the base reference price ({cal.reference_price_usd_t:,.0f} USD/t)"
            )
        if not zone.members:
            raise InputError("the zone has no members")
        is_member = np.zeros(size, bool)
        for code in zone.members:
            is_member[cal.index(code)] = True
        members = tuple(c for c, m in zip(cal.countries, is_member, strict=True) if m)
        floor_hat = floor_usd / cal.base_price_usd_t
        if zone.mechanism == "tariff":
            pairs = ~is_member[:, None] & is_member[None, :] & open_
            floor = _own(floor)
            floor[pairs] = np.broadcast_to(floor_hat[:, None], (size, size))[pairs]
        else:
            guarantee[is_member & (cal.sales_kusd() > 0)] = floor_hat[
                is_member & (cal.sales_kusd() > 0)
            ]

    absorption_t = cal.absorption_t()
    for item in scenario.releases:
        # Bounded like a BACI flow (1e10 t): more is a unit error, and overflows the solve.
        tonnes = _fraction(f"stockpile release to {item.member} (t)", item.tonnes, 0.0, MAX_QTY_T)
        v = cal.index(item.member)
        if absorption_t[v] <= 0:
            raise InputError(f"{item.member} consumes no {cal.commodity}; nothing to release into")
        stock[v] += tonnes * cal.absorption_kusd()[v] / absorption_t[v]
    for code, cap in (scenario.capacity or {}).items():
        ratio = _fraction(f"capacity of {code}", cap, 1.0, MAX_CAPACITY_RATIO)
        capacity[cal.index(code)] = ratio
    for code, share in (scenario.production_quotas or {}).items():
        fraction = _fraction(f"production quota of {code}", share, 0.0, 1.0)
        if fraction == 0.0:
            raise InputError(f"production quota of {code} is 0: that is a ban on all its sales")
        capacity[cal.index(code)] = min(capacity[cal.index(code)], fraction)

    bloc = tuple(scenario.bloc) or members
    if not bloc:
        targeted = {t for p in (*scenario.bans, *scenario.quotas) for t in (p.targets or ())}
        bloc = tuple(sorted(targeted))
    return PolicyArrays(
        tariff=tariff,
        export_tax=export_tax,
        open=open_,
        floor=floor,
        quota_id=quota_id,
        quota_fraction=np.asarray(fractions, dtype=float),
        guarantee=guarantee,
        stock=stock,
        capacity=capacity,
        bloc=tuple(c for c in bloc if c in cal.positions or c in cal.rest_of_world),
        members=members,
        notes=notes,
    )
