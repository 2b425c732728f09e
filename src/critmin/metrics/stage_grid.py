"""The dependence grid computed on NumPy columns: every importer (or the ones asked for) at
every mineral × stage of a year's material balances, in one pass and without pandas.

The definitions (USGS net import reliance within a stage, direct supplier shares, traced
shares through the origin systems, exposure at any stage, the statuses) are those of
`critmin.metrics.stage_dependence`, whose functions turn this module's `Table`s into
DataFrames; the command line reads the `Table`s directly, so `critmin dependence` answers
without importing pandas (issue 18).

Layout: the wanted mineral × stage pairs are numbered p (chain order), the countries c
(sorted codes), and the per-country balance figures are dense (P × C) arrays — a year has
≤ 60 pairs and ≤ 260 countries, so every group sum is one `np.add.at`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from critmin.data.columns import Table, group_sum
from critmin.data.stages import STAGES
from critmin.metrics.stage_exposure import TRACED_COLUMNS, traced

COVERAGE_EXTRA = (
    "unit",
    "production_source",
    "production_note",
    "codes_covered",
    "codes_missing",
    "codes_flagged",
    "revisions",
    "basket_split",
    "has_trade",
    "has_production",
    "code_share",
)
SHARE_COLUMNS = ("supplier_share", "risky_share", "hhi", "top3_share")


def bloc_members(blocs: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """member → bloc, refusing an empty bloc or a country in two blocs of one call."""
    from critmin.errors import InputError

    member_of: dict[str, str] = {}
    for bloc, members in blocs.items():
        if not members:
            raise InputError(f"group {bloc!r} has no members")
        for member in members:
            if member in member_of and member_of[member] != bloc:
                raise InputError(f"{member} is in both {member_of[member]} and {bloc}")
            member_of[member] = bloc
    return member_of


def renamed(codes: np.ndarray, names: Mapping[str, str]) -> np.ndarray:
    """`codes` with each code in `names` replaced (one lookup per distinct code)."""
    if len(codes) == 0 or not names:
        return codes
    distinct, position = np.unique(codes.astype(str), return_inverse=True)
    return np.array([names.get(c, c) for c in distinct], dtype=object)[position]


def merge_blocs_tables(
    flows: Table, production: Table, blocs: Mapping[str, Sequence[str]], keys: Sequence[str]
) -> tuple[Table, Table]:
    """Each bloc as one economy: members renamed to the bloc, intra-bloc trade removed,
    members' production summed (a withheld member counts 0, as pandas' sum does). `keys`
    name the columns that identify a commodity (("commodity",) or ("mineral", "stage"))."""
    member_of = bloc_members(blocs)
    if not member_of:
        return flows, production
    exporter = renamed(flows["exporter"], member_of)
    importer = renamed(flows["importer"], member_of)
    moved = flows.select([*keys, "amount"]).assign(exporter=exporter, importer=importer)
    moved = moved.where(exporter != importer)
    merged_flows = group_sum(moved, [*keys, "exporter", "importer"], "amount")
    # pandas' sum (min_count 0): a withheld member's NaN counts 0 in its bloc's production.
    made = production.select([*keys, "amount"]).assign(
        country=renamed(production["country"], member_of)
    )
    return merged_flows, group_sum(made, [*keys, "country"], "amount")


@dataclass(frozen=True)
class Sheet:
    """Per pair × country (dense P × C): the balance figures of `critmin.metrics.balances.
    balance_sheet` for the wanted pairs (`present` marks the rows that sheet has)."""

    pairs: Table  # the wanted coverage rows, chain order
    countries: np.ndarray  # sorted codes
    present: np.ndarray
    production: np.ndarray
    imports: np.ndarray
    exports: np.ndarray
    status: np.ndarray  # production_status, None where not present
    has_series: np.ndarray  # per pair

    @property
    def net_imports(self) -> np.ndarray:
        """Imports − exports, 0 where the two differ only by rounding (a transit country
        re-exporting all it imports must not turn net exporter on summation order)."""
        return _net(self.imports, self.exports)

    @property
    def consumption(self) -> np.ndarray:
        """Apparent consumption = production + imports − exports (USGS)."""
        return self.production + self.net_imports


def _net(imports: np.ndarray, exports: np.ndarray) -> np.ndarray:
    net = imports - exports
    net[np.abs(net) <= 1e-12 * np.maximum(imports, exports)] = 0.0
    return net


def _codes(values: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Positions of `values` in the sorted `vocabulary` (every value must be in it)."""
    return np.searchsorted(vocabulary, values.astype(str))


def balance_grid(
    pairs: Table, flows: Table, made: Table, basis: str, extra: Sequence[str] = ()
) -> tuple[Sheet, np.ndarray, np.ndarray, np.ndarray]:
    """The sheet of the wanted `pairs` and, per flow and production row, its pair number and
    exporter/importer or country numbers (−1 pair: not wanted)."""
    pair_keys = np.char.add(
        np.char.add(pairs["mineral"].astype(str), "|"), pairs["stage"].astype(str)
    )
    order = np.argsort(pair_keys)

    def pair_of(table: Table) -> np.ndarray:
        if len(table) == 0:
            return np.empty(0, dtype=np.int64)
        keys = np.char.add(
            np.char.add(table["mineral"].astype(str), "|"), table["stage"].astype(str)
        )
        at = np.searchsorted(pair_keys[order], keys).clip(0, len(pair_keys) - 1)
        found = pair_keys[order][at] == keys
        return np.where(found, order[at], -1)

    flow_pair, made_pair = pair_of(flows), pair_of(made)
    fw, mw = flow_pair >= 0, made_pair >= 0
    countries = np.unique(
        np.concatenate(
            [
                flows["exporter"][fw].astype(str),
                flows["importer"][fw].astype(str),
                made["country"][mw].astype(str),
                np.asarray(list(extra), dtype=str),
            ]
        )
    )
    shape = (len(pairs), len(countries))
    exporter = _codes(flows["exporter"][fw], countries)
    importer = _codes(flows["importer"][fw], countries)
    amount = flows["amount"][fw].astype(float)
    imports, exports = np.zeros(shape), np.zeros(shape)
    np.add.at(imports, (flow_pair[fw], importer), amount)
    np.add.at(exports, (flow_pair[fw], exporter), amount)
    made_country = _codes(made["country"][mw], countries)
    made_amount = made["amount"][mw].astype(float)
    listed = np.zeros(shape, dtype=bool)
    listed[made_pair[mw], made_country] = True
    known = ~np.isnan(made_amount)
    produced, counted = np.zeros(shape), np.zeros(shape)
    np.add.at(produced, (made_pair[mw], made_country), np.where(known, made_amount, 0.0))
    np.add.at(counted, (made_pair[mw], made_country), known.astype(float))
    present = listed.copy()
    np.logical_or.at(present, (flow_pair[fw], importer), True)
    np.logical_or.at(present, (flow_pair[fw], exporter), True)
    withheld = listed & (counted == 0)
    has_series = pairs["production_source"].astype(str) != "none"
    reported = listed | (has_series & pairs["has_production"].astype(bool))[:, None]
    series = np.broadcast_to(has_series[:, None], shape)
    if basis == "gross":
        status = np.full(shape, "none", dtype=object)
        production = np.full(shape, np.nan)
    else:
        status = np.select(
            [withheld, reported, series], ["withheld", "reported", "missing"], "implied"
        ).astype(object)
        implied = np.clip(_net(imports, exports) * -1.0, 0.0, None)
        production = np.select(
            [withheld, reported, series], [np.nan, np.where(listed, produced, 0.0), np.nan], implied
        )
    status[~present] = None
    production[~present] = np.nan
    sheet = Sheet(pairs, countries, present, production, imports, exports, status, has_series)
    return sheet, flow_pair, exporter, importer


def sheet_rows(sheet: Sheet) -> Table:
    """The sheet's rows (the pair × country combinations it has), sorted by mineral, stage
    and country: mineral, stage, country, production, imports, exports, production_status,
    apparent_consumption, has_series."""
    p, c = np.nonzero(sheet.present)
    minerals, stages = sheet.pairs["mineral"][p], sheet.pairs["stage"][p]
    order = np.lexsort((sheet.countries[c], stages.astype(str), minerals.astype(str)))
    p, c = p[order], c[order]
    return Table(
        {
            "mineral": minerals[order],
            "stage": stages[order],
            "country": sheet.countries[c].astype(object),
            "production": sheet.production[p, c],
            "imports": sheet.imports[p, c],
            "exports": sheet.exports[p, c],
            "production_status": sheet.status[p, c],
            "apparent_consumption": sheet.consumption[p, c],
            "has_series": sheet.has_series[p],
        },
        len(p),
    )


def shares(
    sheet: Sheet,
    rows: np.ndarray,
    pair: np.ndarray,
    exporter: np.ndarray,
    importer: np.ndarray,
    amount: np.ndarray,
    supplier: str,
    risky: Sequence[str],
    with_lists: bool,
) -> dict[str, np.ndarray]:
    """Direct supplier shares s_e = M_e / Σ M per pair × importer (dense P × C, NaN where the
    importer has no imports): supplier_share, risky_share, hhi = Σ s², top3_share,
    n_suppliers, and `suppliers` ([{country, share}] by rank) when `with_lists`."""
    shape = sheet.present.shape
    keep = rows & (amount > 0)
    p, e, i, a = pair[keep], exporter[keep], importer[keep], amount[keep].astype(float)
    total = np.zeros(shape)
    np.add.at(total, (p, i), a)
    share = a / total[p, i]
    order = np.lexsort((sheet.countries[e], -share, i, p))  # by group, share desc, code
    p, e, i, share = p[order], e[order], i[order], share[order]
    start = np.ones(len(p), dtype=bool)
    start[1:] = (p[1:] != p[:-1]) | (i[1:] != i[:-1])
    first = np.flatnonzero(start)
    rank = np.arange(len(p)) - np.repeat(first, np.diff(np.append(first, len(p)))) + 1
    is_supplier = sheet.countries[e] == supplier
    is_risky = np.isin(sheet.countries[e], np.asarray(list(risky), dtype=str))
    out = {name: np.zeros(shape) for name in SHARE_COLUMNS}
    np.add.at(out["supplier_share"], (p, i), np.where(is_supplier, share, 0.0))
    np.add.at(out["risky_share"], (p, i), np.where(is_risky, share, 0.0))
    np.add.at(out["hhi"], (p, i), share**2)
    np.add.at(out["top3_share"], (p, i), np.where(rank <= 3, share, 0.0))
    counts = np.zeros(shape, dtype=np.int64)
    np.add.at(counts, (p, i), 1)
    for name in SHARE_COLUMNS:
        out[name][total <= 0] = np.nan
    out["n_suppliers"] = counts
    if with_lists:
        lists = np.empty(shape, dtype=object)
        for at in np.ndindex(*shape):
            lists[at] = []
        codes, values = sheet.countries[e].tolist(), share.tolist()
        bounds = [*first.tolist(), len(p)]
        for g in range(len(first)):  # one list per importer × pair
            lo, hi = bounds[g], bounds[g + 1]
            lists[p[lo], i[lo]] = [{"country": codes[k], "share": values[k]} for k in range(lo, hi)]
        out["suppliers"] = lists
    return out


FLAG_NAMES = (
    "basket_split",
    "partial_codes",
    "quantity_corrected",
    "production_implied",
    "traced_as_direct",
)


def statuses(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Why a row's reliance is not a plain share (see `stage_dependence.STATUSES`)."""
    production_status = columns["production_status"]
    consumption = columns["apparent_consumption"]
    has_any = (
        (columns["imports"] > 0)
        | (columns["exports"] > 0)
        | (np.nan_to_num(columns["production"]) > 0)
    )
    missing = np.isin(production_status.astype(str), ["missing", "none", "withheld"])
    with np.errstate(invalid="ignore"):
        conditions = [
            ~columns["has_trade"].astype(bool),
            ~has_any,
            columns["net_imports"] < 0,
            missing | np.isnan(consumption),
            consumption <= 0,
            production_status.astype(str) == "implied",
            columns["basket_split"].astype(bool),
        ]
    choices = [
        "no_trade_data",
        "not_traded",
        "net_exporter",
        "no_production_data",
        "transit",
        "production_implied",
        "basket_split",
    ]
    return np.select(conditions, choices, "ok").astype(object)


def grid_table(
    flows: Table,
    production: Table,
    coverage: Table,
    corrections: Table,
    year: int,
    basis: str,
    supplier: str = "CHN",
    risky_suppliers: Sequence[str] = (),
    minerals: Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
    importers: Sequence[str] | None = None,
) -> Table:
    """Dependence of every country (or of `importers`) at every wanted mineral × stage, one
    row per importer × mineral × stage, sorted so; `flows`/`production` are the balances'
    own or bloc-merged ones. Columns as `stage_dependence.dependence_grid`."""
    from threadpoolctl import threadpool_limits

    wanted = np.ones(len(coverage), dtype=bool)
    if minerals is not None:
        wanted &= np.isin(coverage["mineral"].astype(str), list(minerals))
    if stages is not None:
        wanted &= np.isin(coverage["stage"].astype(str), list(stages))
    pairs = coverage.where(wanted)
    rank = {s: i for i, s in enumerate(STAGES)}
    pairs = pairs.where(
        np.lexsort(([rank[s] for s in pairs["stage"]], pairs["mineral"].astype(str)))
    )
    extra = () if importers is None else importers
    sheet, flow_pair, exporter, importer = balance_grid(pairs, flows, production, basis, extra)
    wanted_flows = flow_pair >= 0
    pair, amount = flow_pair[wanted_flows], flows["amount"][wanted_flows].astype(float)
    if importers is None:
        chosen = np.flatnonzero(sheet.present.any(axis=0))
    else:
        chosen = np.unique(_codes(np.asarray(list(importers), dtype=str), sheet.countries))
    is_chosen = np.zeros(len(sheet.countries), dtype=bool)
    is_chosen[chosen] = True
    direct = shares(
        sheet,
        is_chosen[importer],
        pair,
        exporter,
        importer,
        amount,
        supplier,
        risky_suppliers,
        with_lists=importers is not None,
    )
    # BLAS held to one thread: the ~45 small solves (n ≈ 220) run 10× slower when OpenBLAS
    # splits each across cores.
    with threadpool_limits(limits=1, user_api="blas"):
        chain = traced(sheet, pair, exporter, importer, amount, supplier)
    n_pairs = len(pairs)
    ci, pi = np.repeat(chosen, n_pairs), np.tile(np.arange(n_pairs), len(chosen))
    at = (pi, ci)
    code = sheet.countries[ci].astype(object)
    columns: dict[str, np.ndarray] = {
        "importer": code,
        "mineral": pairs["mineral"][pi],
        "stage": pairs["stage"][pi],
        "year": np.full(len(ci), int(year), dtype=np.int64),
        "basis": np.full(len(ci), basis, dtype=object),
        "country": code,
        "production": sheet.production[at],
        "imports": sheet.imports[at],
        "exports": sheet.exports[at],
        "production_status": sheet.status[at],
        "apparent_consumption": sheet.consumption[at],
        **{name: coverage_column(pairs, name)[pi] for name in COVERAGE_EXTRA},
    }
    columns["net_imports"] = sheet.net_imports[at]
    columns.update({name: direct[name][at] for name in (*SHARE_COLUMNS, "n_suppliers")})
    if "suppliers" in direct:
        columns["suppliers"] = direct["suppliers"][at]
    columns.update({name: chain[name][at] for name in (*TRACED_COLUMNS, "traced_as_direct")})
    status = statuses(columns)
    columns["status"] = status
    consumption = columns["apparent_consumption"]
    shown = np.isin(status.astype(str), ["ok", "basket_split", "production_implied"])
    with np.errstate(divide="ignore", invalid="ignore"):
        shown &= consumption > 0
        reliance = columns["net_imports"] / consumption
    columns["import_reliance"] = np.where(shown, np.clip(reliance, 0.0, 1.0), np.nan)
    no_shares = (columns["imports"] <= 0) | (status == "no_trade_data")
    for name in (*SHARE_COLUMNS, "traced_supplier_share", "upstream_supplier_share"):
        columns[name] = np.where(no_shares, np.nan, columns[name])
    untraded = np.isin(status.astype(str), ["no_trade_data", "not_traded"])
    columns["any_stage_share"] = np.where(untraded, np.nan, columns["any_stage_share"])
    columns["flags"] = _flags(columns, corrections)
    columns["supplier"] = np.full(len(ci), supplier, dtype=object)
    return Table(columns, len(ci))


def coverage_column(pairs: Table, name: str) -> np.ndarray:
    """A coverage column with the defaults of a left join (False, no codes) filled in."""
    values = pairs[name]
    if name in ("basket_split", "has_trade", "has_production"):
        return np.array([bool(v) if v is not None else False for v in values], dtype=bool)
    return values


def _flags(columns: dict[str, np.ndarray], corrections: Table) -> np.ndarray:
    """The flags of each row, a list of FLAG_NAMES."""
    keys = np.char.add(
        np.char.add(columns["mineral"].astype(str), "|"),
        np.char.add(np.char.add(columns["stage"].astype(str), "|"), columns["country"].astype(str)),
    )
    touched = (
        np.char.add(
            np.char.add(corrections["mineral"].astype(str), "|"),
            np.char.add(
                np.char.add(corrections["stage"].astype(str), "|"),
                corrections["importer"].astype(str),
            ),
        )
        if len(corrections)
        else np.empty(0, dtype=str)
    )
    on = np.column_stack(
        [
            columns["basket_split"].astype(bool),
            np.array([len(c) > 0 for c in columns["codes_missing"]], dtype=bool),
            np.isin(keys, touched),
            columns["production_status"].astype(str) == "implied",
            columns["traced_as_direct"].astype(bool),
        ]
    )
    bits = on @ (1 << np.arange(len(FLAG_NAMES)))
    names = [[n for j, n in enumerate(FLAG_NAMES) if b >> j & 1] for b in range(32)]
    flags = np.empty(len(bits), dtype=object)
    flags[:] = [list(names[b]) for b in bits.tolist()]
    return flags
