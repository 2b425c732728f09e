"""Market-model parameters: defaults per horizon from parameters.csv, user overrides, checks."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from critmin.errors import InputError

HORIZONS = ("short", "long")

# An override is one number for every country, or {ISO3: number} for named countries.
Override = float | Mapping[str, float]


@dataclass(frozen=True)
class ParameterSpec:
    """One row of parameters.csv."""

    name: str
    symbol: str
    unit: str
    applies_to: str  # importer | exporter
    defaults: dict[str, float]
    minimum: float
    description: str
    source: str


@cache
def parameter_specs() -> dict[str, ParameterSpec]:
    """The parameter table shipped with critmin, by parameter name."""
    text = resources.files("critmin.market").joinpath("parameters.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    specs = {}
    for row in rows:
        specs[row["parameter"]] = ParameterSpec(
            name=row["parameter"],
            symbol=row["symbol"],
            unit=row["unit"],
            applies_to=row["applies_to"],
            defaults={h: float(row[h]) for h in HORIZONS},
            minimum=float(row["minimum"]),
            description=row["description"],
            source=row["source"],
        )
    return specs


def check_horizon(horizon: str) -> str:
    """`short` (about a year) or `long` (five years or more)."""
    if horizon not in HORIZONS:
        raise InputError(f"horizon {horizon!r} is not one of {', '.join(HORIZONS)}")
    return horizon


def _check_value(name: str, value: float, where: str = "") -> float:
    spec = parameter_specs()[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}{where} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name}{where} must be finite, got {value!r}")
    if number < 0:
        raise InputError(
            f"{name}{where} is {number:g}; elasticities are magnitudes and cannot be negative"
        )
    if number < spec.minimum:
        raise InputError(f"{name}{where} is {number:g}; it must be at least {spec.minimum:g}")
    return number


def check_overrides(overrides: Mapping[str, Override] | None) -> dict[str, Override]:
    """Validate parameter overrides: known names, finite numbers within each minimum."""
    checked: dict[str, Override] = {}
    for name, value in (overrides or {}).items():
        if name not in parameter_specs():
            known = ", ".join(parameter_specs())
            raise InputError(f"unknown market parameter {name!r}; known: {known}")
        if isinstance(value, Mapping):
            checked[name] = {
                str(code): _check_value(name, v, f" for {code}") for code, v in value.items()
            }
        else:
            checked[name] = _check_value(name, value)
    return checked


@dataclass(frozen=True)
class Parameters:
    """Parameter vectors over a calibration's countries (index = calibration.countries)."""

    horizon: str
    armington_sigma: np.ndarray  # per importing market
    demand_elasticity: np.ndarray  # per importing market
    supply_elasticity: np.ndarray  # per exporter
    cutoff_price: np.ndarray  # per importing market

    def as_dict(self, countries: Sequence[str]) -> dict[str, dict[str, float] | float]:
        """Each parameter as one number when uniform, else {country: value}."""
        out: dict[str, dict[str, float] | float] = {}
        for name in parameter_specs():
            values = getattr(self, name)
            if np.all(values == values[0]):
                out[name] = float(values[0])
            else:
                out[name] = {c: float(v) for c, v in zip(countries, values, strict=True)}
        return out


def resolve_parameters(
    countries: Sequence[str],
    horizon: str = "short",
    overrides: Mapping[str, Override] | None = None,
) -> Parameters:
    """Defaults of `horizon` with `overrides` applied; per-country overrides must name
    countries of the calibration (ROW members count under `ROW`)."""
    check_horizon(horizon)
    checked = check_overrides(overrides)
    index = {c: i for i, c in enumerate(countries)}
    arrays = {}
    for name, spec in parameter_specs().items():
        values = np.full(len(countries), spec.defaults[horizon])
        value = checked.get(name)
        if isinstance(value, Mapping):
            for code, number in value.items():
                if code not in index:
                    raise InputError(
                        f"{name} override for {code}: {code} is not a market of this "
                        "calibration (no trade or production of the commodity that year)"
                    )
                values[index[code]] = number
        elif value is not None:
            values[:] = value
        arrays[name] = values
    return Parameters(horizon=horizon, **arrays)


def parse_overrides(items: Sequence[str]) -> dict[str, Override]:
    """'armington_sigma=2.5' (all countries) or 'supply_elasticity:AUS=0.3' (one country)
    → overrides for `resolve_parameters`; checked there and by `check_overrides`."""
    overrides: dict[str, Override] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.strip():
            raise InputError(f"parameter {item!r}: write NAME=VALUE or NAME:ISO3=VALUE")
        name, _, code = name.strip().partition(":")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"parameter {item!r}: {value.strip()!r} is not a number") from None
        if code:
            existing = overrides.get(name)
            per_country = dict(existing) if isinstance(existing, Mapping) else {}
            per_country[code.strip().upper()] = number
            overrides[name] = per_country
        else:
            overrides[name] = number
    return check_overrides(overrides)
