"""Filtered reads of the fact tables (trade, production, governance) as pandas DataFrames."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from critmin.data.catalog import query
from critmin.data.resolve import commodity as resolve_commodity
from critmin.data.resolve import countries_of
from critmin.errors import InputError, UnknownNameError

YearSpec = int | Iterable[int] | None
NameSpec = str | Iterable[str] | None


def _years(year: YearSpec) -> list[int] | None:
    if year is None:
        return None
    values = [year] if isinstance(year, int | str) else list(year)
    try:
        years = [int(y) for y in values]
    except (TypeError, ValueError) as exc:
        raise InputError(f"year must be a whole number, got {year!r}") from exc
    for y in years:
        if not 1900 <= y <= 2100:
            raise InputError(f"year {y} is out of range (1900-2100)")
    return years


def _names(spec: NameSpec) -> list[str] | None:
    if spec is None:
        return None
    return [spec] if isinstance(spec, str) else list(spec)


def _countries(spec: NameSpec) -> list[str] | None:
    names = _names(spec)
    if names is None:
        return None
    return list(dict.fromkeys(code for name in names for code in countries_of(name)))


class _Where:
    """Collects parameterised SQL conditions (no user text is ever spliced into SQL)."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[object] = []

    def any_of(self, column: str, values: list | None) -> None:
        if values is None:
            return
        self.clauses.append(f"{column} IN (SELECT UNNEST(?))")
        self.params.append(values)

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def trade(
    year: YearSpec = None,
    commodity: NameSpec = None,
    exporter: NameSpec = None,
    importer: NameSpec = None,
    hs6: NameSpec = None,
    complementary: bool = True,
) -> pd.DataFrame:
    """Bilateral flows: year, exporter, importer, hs6, value_kusd (thousand USD), qty_t (t).

    `commodity` selects its HS6 codes (main plus complementary unless `complementary=False`);
    exporter/importer accept ISO3 codes, names or group names.
    """
    where = _Where()
    where.any_of("year", _years(year))
    codes = _names(hs6)
    names = _names(commodity)
    if names is not None:
        items = [resolve_commodity(n) for n in names]
        from_commodities = [
            c for item in items for c in (item.trade_codes if complementary else item.hs6)
        ]
        codes = from_commodities if codes is None else [c for c in codes if c in from_commodities]
    where.any_of("hs6", codes)
    where.any_of("exporter", _countries(exporter))
    where.any_of("importer", _countries(importer))
    return query(
        "SELECT year, exporter, importer, hs6, value_kusd, qty_t FROM {trade} "
        f"{where.sql()} ORDER BY year, hs6, exporter, importer",
        where.params,
    )


def production(
    year: YearSpec = None, commodity: NameSpec = None, country: NameSpec = None
) -> pd.DataFrame:
    """Production: year, country, commodity, stage, qty_t (t), flag, unit_source."""
    where = _Where()
    where.any_of("year", _years(year))
    names = _names(commodity)
    where.any_of("commodity", None if names is None else [resolve_commodity(n).id for n in names])
    where.any_of("country", _countries(country))
    return query(
        "SELECT year, country, commodity, stage, qty_t, flag, unit_source FROM {production} "
        f"{where.sql()} ORDER BY commodity, year, qty_t DESC, country",
        where.params,
    )


GOVERNANCE_INDICATORS = (
    "pv_estimate",
    "pv_normalized",
    "pv_rank",
    "pv_stderr",
    "pv_numsrc",
    "pv_lower",
    "pv_upper",
)


def governance(
    year: YearSpec = None, country: NameSpec = None, indicator: NameSpec = None
) -> pd.DataFrame:
    """WGI political stability: year, country, indicator, value (see the indicator list)."""
    indicators = _names(indicator)
    for name in indicators or ():
        if name not in GOVERNANCE_INDICATORS:
            raise UnknownNameError("indicator", name, GOVERNANCE_INDICATORS)
    where = _Where()
    where.any_of("year", _years(year))
    where.any_of("country", _countries(country))
    where.any_of("indicator", indicators)
    return query(
        "SELECT year, country, indicator, value FROM {governance} "
        f"{where.sql()} ORDER BY indicator, country, year",
        where.params,
    )
