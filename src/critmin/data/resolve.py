"""Turn names users type into ids: commodities, countries, groups (case-insensitive, aliases)."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from critmin.data.catalog import query_arrays, user_data_dir
from critmin.data.groups import Group, load_groups
from critmin.errors import InputError, UnknownNameError


def normalise_name(text: str) -> str:
    """Fold case, accents, punctuation and spacing: 'Rare_Earths (REO)' → 'rare earths reo'."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", ascii_text.casefold()).split())


@dataclass(frozen=True)
class Commodity:
    """One commodity of the commodity map (HS codes are HS 1992 six-digit codes)."""

    id: str
    name: str
    stage: str
    production_stage: str
    hs6: tuple[str, ...]
    hs6_complementary: tuple[str, ...]
    unit: str
    eol_rir: float | None
    peer_name: str
    wmd_sheet: str
    aliases: tuple[str, ...]
    upstream: str | None = None

    @property
    def trade_codes(self) -> tuple[str, ...]:
        """Main and complementary HS6 codes together."""
        return self.hs6 + self.hs6_complementary


@dataclass(frozen=True)
class Country:
    """One country, territory, historic entity or BACI aggregate."""

    iso3: str
    name: str
    iso_num: int | None
    iso2: str | None
    baci_codes: tuple[int, ...]
    kind: str
    aliases: tuple[str, ...]


class _Index:
    """A normalised-name → id index that knows which names are ambiguous."""

    def __init__(self, kind: str, hint: str) -> None:
        self.kind = kind
        self.hint = hint
        self.primary: dict[str, str] = {}
        self.secondary: dict[str, set[str]] = {}
        self.display: list[str] = []

    def add(self, ident: str, names: list[str], primary: list[str]) -> None:
        for name in primary:
            self.primary.setdefault(normalise_name(name), ident)
        for name in names:
            self.secondary.setdefault(normalise_name(name), set()).add(ident)
        self.display.extend(primary)

    def lookup(self, text: str) -> str:
        key = normalise_name(text)
        if key in self.primary:
            return self.primary[key]
        found = self.secondary.get(key, set())
        if len(found) == 1:
            return next(iter(found))
        if len(found) > 1:
            raise InputError(f"ambiguous {self.kind} {text!r}: could be {', '.join(sorted(found))}")
        raise UnknownNameError(self.kind, text, self.display, self.hint)


@functools.lru_cache(maxsize=4)
def _commodity_table(_data_dir: str) -> tuple[dict[str, Commodity], _Index]:
    records: dict[str, Commodity] = {}
    index = _Index("commodity", "see 'critmin data commodities'")
    # read without pandas: a one-question command must not pay its import (issue 18)
    for row in _records("SELECT * FROM {commodities} ORDER BY commodity"):
        item = Commodity(
            id=row["commodity"],
            name=row["name"],
            stage=row["stage"],
            production_stage=row["production_stage"],
            hs6=tuple(row["hs6"]),
            hs6_complementary=tuple(row["hs6_complementary"]),
            unit=row["unit"],
            eol_rir=_number(row["eol_rir"]),
            peer_name=row["peer_name"],
            wmd_sheet=row["wmd_sheet"],
            aliases=tuple(row["aliases"]),
            upstream=row["upstream"] if isinstance(row["upstream"], str) else None,
        )
        records[item.id] = item
        index.add(item.id, list(item.aliases), [item.id, item.name])
    for item in _stage_only_minerals(set(records)):
        records[item.id] = item
        index.add(item.id, list(item.aliases), [item.id, item.name])
    return records, index


# Minerals of the supply-chain map that World Mining Data has no table for (metals it counts
# only through their ore, e.g. magnesium through magnesite).
_STAGE_ONLY_ALIASES = {
    "magnesium": ("magnesium metal", "Mg"),
    "silicon": ("silicon metal", "ferrosilicon", "Si"),
}


def _stage_only_minerals(known: set[str]) -> list[Commodity]:
    from critmin.data.stages import stage_minerals, supply_chain_table

    chain = supply_chain_table()
    out = []
    for mineral in stage_minerals():
        if mineral in known:
            continue
        codes = chain["hs6"][(chain["mineral"] == mineral) & (chain["hs_revision"] == "HS92")]
        out.append(
            Commodity(
                id=mineral,
                name=mineral.replace("_", " ").capitalize(),
                stage="processing",
                production_stage="processing",
                hs6=tuple(dict.fromkeys(codes)),
                hs6_complementary=(),
                unit="t",
                eol_rir=None,
                peer_name="",
                wmd_sheet="",
                aliases=_STAGE_ONLY_ALIASES.get(mineral, ()),
            )
        )
    return out


@functools.lru_cache(maxsize=4)
def _country_table(_data_dir: str) -> tuple[dict[str, Country], _Index]:
    records: dict[str, Country] = {}
    index = _Index("country", "see 'critmin data countries'")
    for row in _records("SELECT * FROM {countries} ORDER BY iso3"):
        iso_num = _number(row["iso_num"])
        item = Country(
            iso3=row["iso3"],
            name=row["name"],
            iso_num=None if iso_num is None else int(iso_num),
            iso2=row["iso2"] if isinstance(row["iso2"], str) else None,
            baci_codes=tuple(int(c) for c in row["baci_codes"]),
            kind=row["kind"],
            aliases=tuple(row["aliases"]),
        )
        records[item.iso3] = item
        index.add(item.iso3, list(item.aliases), [item.iso3, item.name])
    return records, index


def _records(sql: str) -> list[dict[str, object]]:
    """The rows of a query as dicts of Python values (list cells as lists)."""
    columns = query_arrays(sql)
    lists = {
        name: [v.tolist() if hasattr(v, "tolist") else v for v in values.tolist()]
        for name, values in columns.items()
    }
    count = len(next(iter(lists.values()), []))
    return [{name: lists[name][i] for name in lists} for i in range(count)]


def _number(value: object) -> float | None:
    """A number, or None where it is missing (NULL or NaN)."""
    if value is None or value != value:
        return None
    return float(value)


def commodity(name: str) -> Commodity:
    """The commodity named by an id, name or alias ('REE', 'rare earths' → rare_earths)."""
    records, index = _commodity_table(str(user_data_dir()))
    return records[index.lookup(name)]


def all_commodities() -> list[Commodity]:
    """Every commodity of the map, by id."""
    return list(_commodity_table(str(user_data_dir()))[0].values())


def country(name: str) -> Country:
    """The country named by ISO3, ISO2, name or alias ('USA', 'United States' → USA)."""
    records, index = _country_table(str(user_data_dir()))
    return records[index.lookup(name)]


def all_countries() -> list[Country]:
    """Every country, territory and aggregate, by ISO3."""
    return list(_country_table(str(user_data_dir()))[0].values())


def group(name: str) -> Group:
    """The group named by its id, name or alias ('EU', 'eu27' → eu27)."""
    groups = load_groups()
    index = _Index("group", "see 'critmin data groups'")
    for item in groups.values():
        index.add(item.id, list(item.aliases), [item.id, item.name])
    return groups[index.lookup(name)]


def countries_of(name: str) -> tuple[str, ...]:
    """ISO3 codes for a country or group name; a group wins only if no country matches.

    A comma-separated list ('USA,JPN,AUS') is read as an ad-hoc group.
    """
    if "," in name:
        return tuple(dict.fromkeys(c for part in name.split(",") for c in countries_of(part)))
    try:
        return (country(name).iso3,)
    except UnknownNameError as country_error:
        try:
            return group(name).members
        except UnknownNameError:
            raise UnknownNameError(
                "country or group",
                name,
                [c.iso3 for c in all_countries()]
                + [c.name for c in all_countries()]
                + list(load_groups()),
                "see 'critmin data countries' and 'critmin data groups'",
            ) from country_error
