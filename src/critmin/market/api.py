"""The market questions by name: an export restriction (`shock`) and a preferential zone
with reference-price floors (`zone`), on the bundled or user data."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from critmin.data import commodity as resolve_commodity
from critmin.data import countries_of, country
from critmin.data.catalog import dataset_stamp
from critmin.errors import InputError, UnknownNameError
from critmin.market.calibration import Calibration
from critmin.market.model import simulate
from critmin.market.parameters import Override, check_horizon, resolve_parameters
from critmin.market.policies import Ban, Quota, Release, Scenario, Zone
from critmin.market.result import MarketResult
from critmin.metrics.dependence import resolve_year


def resolve_countries(names: str | Sequence[str] | None) -> tuple[tuple[str, ...] | None, bool]:
    """ISO3 codes of a group, a country or a comma list, and whether every part named a
    single country (then every pair must trade; a group may include non-traders)."""
    if names is None:
        return None, False
    parts = names.split(",") if isinstance(names, str) else list(names)
    strict = True
    codes: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        try:
            codes.append(country(part).iso3)
        except UnknownNameError:
            strict = False
            codes.extend(countries_of(part))
    if not codes:
        raise InputError(f"no countries in {names!r}")
    return tuple(dict.fromkeys(codes)), strict


def parse_floor(text: str | float) -> tuple[float, str]:
    """'1.3' or '1.3x' → (1.3, multiple of the base reference price); '45000usd' or
    '45000 USD/t' → (45000, USD/t)."""
    if isinstance(text, int | float):
        return float(text), "multiple"
    match = re.fullmatch(r"\s*(-?[0-9.eE+]+)\s*(x|usd|usd/t)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise InputError(
            f"price floor {text!r}: write a multiple of the base price (1.3) or USD/t (45000usd)"
        )
    try:
        value = float(match.group(1))
    except ValueError:
        raise InputError(f"price floor {text!r} is not a number") from None
    unit = "usd_per_t" if (match.group(2) or "").lower().startswith("usd") else "multiple"
    return value, unit


def _calibrate(
    commodity_id: str,
    year: int | None,
    row_share: float,
    keep: Sequence[str],
    stage: str | None = None,
) -> Calibration:
    """The market's calibration, memoised in the process: the same question on the same
    dataset (`dataset_stamp`) returns the same Calibration, whose arrays are read-only (a
    policy never writes them; scenarios copy what they change). `keep` only matters when
    small countries are merged into ROW (`row_share` > 0), so it is left out of the key
    otherwise: the brief's bans and zones on one mineral share one calibration."""
    kept = frozenset(keep) if row_share > 0 else frozenset()
    return _calibrated(
        commodity_id, resolve_year(year), float(row_share), kept, stage, dataset_stamp()
    )


@lru_cache(maxsize=32)
def _calibrated(
    commodity_id: str,
    year: int,
    row_share: float,
    keep: frozenset[str],
    stage: str | None,
    stamp: str,
) -> Calibration:
    from critmin.market.chain import calibrate_market

    cal = calibrate_market(commodity_id, year, row_share, sorted(keep), stage)
    for array in (cal.value_kusd, cal.tonnes, cal.base_price_usd_t):
        array.flags.writeable = False
    return cal


def in_market(
    cal: Calibration, codes: Sequence[str] | None, strict: bool
) -> tuple[str, ...] | None:
    """Codes of a group that have a market in the calibration (all of them when strict)."""
    if codes is None:
        return None
    if strict:
        for code in codes:
            cal.index(code)  # one clear line for a country with no base flow
        return tuple(codes)
    present = tuple(c for c in codes if c in cal.countries or c in cal.rest_of_world)
    if not present:
        raise InputError(f"none of {', '.join(codes)} trades {cal.commodity} in {cal.year}")
    return present


def shock(
    exporter: str,
    commodity: str,
    *,
    ban: bool = False,
    quota: float | None = None,
    targets: str | Sequence[str] | None = None,
    aggregate: bool = False,
    year: int | None = None,
    horizon: str = "short",
    parameters: Mapping[str, Override] | None = None,
    releases: Mapping[str, float] | None = None,
    rest_of_world_share: float = 0.0,
    stage: str | None = None,
    production_quota: float | None = None,
) -> MarketResult:
    """An export restriction by `exporter` on `commodity`: a ban, or a licence quota at
    `quota` × base flows, on every destination or only `targets`, at `stage` (mine, refined,
    product; default: the stage of the commodity's HS bundle). `production_quota` caps the
    exporter's output at that fraction of base as well (China's 2010-2011 rare-earth regime:
    export and mining quotas). The summary states the price effect in the exporter's own market
    (`exporter_domestic_price_index`, its composite price / base) and its producer price.

    >>> cm.shock("CHN", "rare_earths", ban=True, targets="USA,JPN")  # doctest: +SKIP
    """
    if ban == (quota is not None):
        raise InputError("give exactly one of a ban or a quota fraction")
    if ban and aggregate:  # a ban stops every flow: one cap on the total means nothing more
        raise InputError("--aggregate applies to a quota (one cap on total exports), not a ban")
    check_horizon(horizon)
    item = resolve_commodity(commodity)
    source = country(exporter).iso3
    target_codes, strict = resolve_countries(targets)
    keep = [source, *(target_codes or ()), *(releases or {})]
    cal = _calibrate(item.id, year, rest_of_world_share, keep, stage)
    cal.index(source)
    target_codes = in_market(cal, target_codes, strict)
    if ban:
        policy = {"bans": (Ban(source, target_codes, strict),)}
        label = f"{source} bans {_what(item.id, cal)} exports"
    else:
        policy = {"quotas": (Quota(source, quota, target_codes, aggregate, strict),)}
        label = f"{source} caps {_what(item.id, cal)} exports at {quota:g} of base"
    if target_codes:
        label += " to " + (
            ",".join(target_codes) if len(target_codes) <= 5 else f"{len(target_codes)} countries"
        )
    quotas_made = {}
    if production_quota is not None:
        quotas_made = {source: production_quota}
        label += f", production at most {production_quota:g} of base"
    scenario = Scenario(
        name=label,
        releases=_releases(releases),
        bloc=target_codes or (),
        production_quotas=quotas_made,
        **policy,
    )
    result = simulate(cal, scenario, resolve_parameters(cal.countries, horizon, parameters))
    return _domestic_effect(result, source)


def _domestic_effect(result: MarketResult, source: str) -> MarketResult:
    """State the restricting country's own price effect: its consumers' composite price and
    its producers' price, both as ratios to base (an export restriction lowers them unless
    output is cut too)."""
    home = result.markets[result.markets["country"] == source]
    made = result.prices[result.prices["country"] == source]
    domestic = float(home["price_index"].iloc[0]) if len(home) else None
    producer = (
        float(made["producer_price_usd_t"].iloc[0] / made["base_price_usd_t"].iloc[0])
        if len(made)
        else None
    )
    result.summary["exporter"] = source
    result.summary["exporter_domestic_price_index"] = domestic
    result.summary["exporter_producer_price_index"] = producer
    if producer is not None and producer < 1.0 and not result.scenario.production_quotas:
        result.summary["notes"].append(
            f"{source}'s producer price falls to {producer:.2f} x base: its exports are held "
            "back and its output stays; a restriction that also cuts output (China's 2010-2011 "
            "mining quota: --production-quota) raises it"
        )
    return result


def _what(commodity_id: str, cal: Calibration) -> str:
    """`rare_earths (refined)`: the commodity and the stage its market is."""
    return f"{commodity_id} ({cal.stage})" if cal.stage else commodity_id


def _releases(releases: Mapping[str, float] | None) -> tuple[Release, ...]:
    return tuple(Release(country(name).iso3, tonnes) for name, tonnes in (releases or {}).items())


def zone(
    members: str | Sequence[str],
    floors: Mapping[str, float | str],
    *,
    mechanism: str = "tariff",
    with_ban: str | None = None,
    year: int | None = None,
    horizon: str = "short",
    parameters: Mapping[str, Override] | None = None,
    releases: Mapping[str, float] | None = None,
    rest_of_world_share: float = 0.0,
    stage: str | None = None,
) -> dict[str, MarketResult]:
    """A preferential zone of `members` with a reference-price floor per commodity
    (`floors`: commodity → multiple of the base reference price, or 'NNNNusd' for USD/t),
    kept by an adjustable tariff on non-members (`tariff`) or guaranteed to member producers
    (`guarantee`); optionally under an export ban by `with_ban` on every destination.
    One result per commodity, each at `stage` (default: the stage of its HS bundle)."""
    if not floors:
        raise InputError("give at least one floor, e.g. rare_earths=1.3")
    check_horizon(horizon)
    codes, strict = resolve_countries(members)
    if with_ban is not None and (not isinstance(with_ban, str) or not with_ban.strip()):
        raise InputError("--with-ban is empty; name the exporter whose exports are banned")
    banner = country(with_ban.strip()).iso3 if with_ban is not None else None
    resolved: dict[str, tuple[str, float | str]] = {}
    for name, floor in floors.items():
        item = resolve_commodity(name)
        if item.id in resolved:  # "REE" and "rare_earths" are one commodity: refuse, not pick
            raise InputError(
                f"two floors for {item.id} ({resolved[item.id][0]!r} and {name!r}); give one"
            )
        resolved[item.id] = (name, floor)
    results = {}
    for commodity_id, (_name, floor) in resolved.items():
        item = resolve_commodity(commodity_id)
        level, unit = parse_floor(floor)
        keep = [*codes, *(releases or {}), *([banner] if banner else [])]
        cal = _calibrate(item.id, year, rest_of_world_share, keep, stage)
        present = in_market(cal, codes, strict)
        bans = (Ban(banner),) if banner else ()
        label = f"zone of {len(present)} members, {_what(item.id, cal)} floor {floor} ({mechanism})"
        if banner:
            label += f", {banner} export ban"
        scenario = Scenario(
            name=label,
            bans=bans,
            zone=Zone(present, level, unit, mechanism),
            releases=_releases(releases),
        )
        results[item.id] = simulate(
            cal, scenario, resolve_parameters(cal.countries, horizon, parameters)
        )
    return results
