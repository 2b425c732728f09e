"""EU supply risk (SR) of the European Commission's criticality methodology, for any importer.

Source: European Commission, "Methodology for establishing the EU list of critical raw
materials — Guidelines" (2017), applied in the 2023 assessment (Grohol & Veeh, "Study on
the critical raw materials for the EU 2023 — Final report", JRC/DG GROW):

    SR = [ HHI_WGI,GS · IR/2 + HHI_WGI,sourcing · (1 − IR/2) ] · (1 − EoL_RIR) · SI

    HHI_WGI = Σ_c s_c² · WGI_c     (s_c: share of country c; WGI_c on a 0–10 scale,
                                     10 = worst governance; the trade-restriction factor t_c
                                     of the guidelines is taken as 1)
    GS        = global supply: world production shares
    sourcing  = the importer's actual sourcing: its (members') own production plus imports
                by partner from outside the bloc
    IR        = import reliance (imports − exports) / (production + imports − exports),
                bounded to 0–1
    EoL_RIR   = end-of-life recycling input rate (commodity map, EC 2023 / SCRREEN2)
    SI        = substitution index for supply risk (default 1 = no substitute; overridable)

Deviation, stated: the guidelines scale the average of the six WGI dimensions; the bundled
data carries political stability only, so WGI_c = 10 × clip((2.5 − PV_c)/5, 0, 1); a
country without a value gets 5. Quantities are the stage balances' content tonnes (BACI
trade × content factors; World Mining Data, USGS production), computed per stage as the JRC
does (extraction and processing), the higher SR kept as the bottleneck.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from critmin.data import query
from critmin.data.stages import US_NATIONAL_SOURCE, stage_shares
from critmin.errors import InputError
from critmin.metrics.balances import KEYS, Balances, balances
from critmin.metrics.stage_dependence import dependence_grid, merged_tables

MISSING_WGI = 5.0
EU_SR_COLUMNS = (
    "entity",
    "commodity",
    "stage",
    "year",
    "hhi_wgi_global",
    "global_source",
    "hhi_wgi_sourcing",
    "import_reliance",
    "eol_rir",
    "substitution_index",
    "supply_risk",
    "status",
    "bottleneck",
)


def governance_0_10(year: int) -> pd.Series:
    """WGI on the 0–10 scale (10 = worst) per country, latest value up to `year`."""
    frame = query(
        "SELECT country, arg_max(value, year) AS value FROM {governance} "
        "WHERE indicator = 'pv_normalized' AND year <= ? GROUP BY country",
        [int(year)],
    )
    return frame.set_index("country")["value"] * 10.0


def _weighted_hhi(table: pd.DataFrame, keys: list[str], who: str, wgi: pd.Series) -> pd.Series:
    """Σ s² · WGI per `keys`, shares of `amount` across `who`."""
    table = table[table["amount"] > 0]
    if table.empty:  # nobody produces or imports: no term to weigh
        empty = pd.MultiIndex.from_arrays([[] for _ in keys], names=keys)
        return pd.Series(dtype=float, index=empty)
    share = table["amount"] / table.groupby(keys)["amount"].transform("sum")
    weight = table[who].map(wgi).astype(float).fillna(MISSING_WGI)
    return (share**2 * weight).groupby([table[k] for k in keys]).sum()


def global_supply_hhi(bal: Balances, wgi: pd.Series) -> pd.DataFrame:
    """HHI_WGI of global supply per mineral × stage: from the stage's production series, else
    from the published country shares of sources/stage_shares.csv (shares suffice for an HHI;
    the JRC assesses processing from such shares too). Columns: mineral, stage,
    hhi_wgi_global, global_source."""
    series = bal.coverage.loc[bal.coverage["production_source"] != "none", KEYS]
    made = bal.production[bal.production["amount"].notna()].merge(series, on=KEYS)
    made = made[made["source"] != US_NATIONAL_SOURCE]  # one country's figure is not the world
    found = _weighted_hhi(made, KEYS, "country", wgi).rename("hhi_wgi_global").reset_index()
    found["global_source"] = "production series"
    published = stage_shares()
    published = published[published["year"] <= bal.year]
    if published.empty:
        return found
    # The latest year of each stage, and of it the first source listed.
    latest = published[published["year"] == published.groupby(KEYS)["year"].transform("max")]
    latest = latest[latest["source"] == latest.groupby(KEYS)["source"].transform("first")]
    # A source listing only the top producer cannot give an HHI: at least half the stage.
    latest = latest[latest.groupby(KEYS)["share"].transform("sum") >= 0.5]
    latest = latest.rename(columns={"share": "amount"})
    shares = _weighted_hhi(latest, KEYS, "country", wgi).rename("hhi_wgi_global").reset_index()
    listed = latest.groupby(KEYS).agg(source=("source", "first"), listed=("amount", "sum"))
    shares = shares.merge(listed.reset_index(), on=KEYS)
    shares["global_source"] = [  # a partial list gives a lower bound of the HHI
        f"published shares ({total:.0%} of the stage listed): {source}"
        for source, total in zip(shares.pop("source"), shares.pop("listed"), strict=True)
    ]
    have = set(zip(found["mineral"], found["stage"], strict=True))
    keep = [(m, s) not in have for m, s in zip(shares["mineral"], shares["stage"], strict=True)]
    return pd.concat([found, shares[keep]], ignore_index=True)


def _entity_terms(
    bal: Balances,
    names: list[str],
    blocs: dict[str, Sequence[str]],
    members: dict[str, tuple],
    wgi: pd.Series,
) -> pd.DataFrame:
    """Import reliance, status and HHI_WGI of sourcing per entity × mineral × stage, for the
    entities `names` of one pass (singles together, or one merged bloc)."""
    flows, made = merged_tables(bal, blocs)
    grid = dependence_grid(bal, flows, made, importers=names)
    member_of = {code: name for name in names for code in members[name]}
    own = bal.production[bal.production["country"].isin(member_of)]
    bought = flows[flows["importer"].isin(names)]
    sourcing = pd.concat(
        [
            own.assign(entity=own["country"].map(member_of), who=own["country"]),
            bought.assign(entity=bought["importer"], who=bought["exporter"]),
        ]
    )[["entity", *KEYS, "who", "amount"]]
    hhi = _weighted_hhi(sourcing, ["entity", *KEYS], "who", wgi).rename("hhi_wgi_sourcing")
    rows = grid[["importer", *KEYS, "import_reliance", "status"]].rename(
        columns={"importer": "entity"}
    )
    rows = rows.merge(hhi.reset_index(), on=["entity", *KEYS], how="left")
    # The guidelines bound IR to 0–1: a net exporter (or pure transit) has IR 0, a defined
    # value; a reliance that cannot be computed stays NaN and so does SR.
    exporter = rows["status"].isin(["net_exporter", "transit"])
    rows["import_reliance"] = rows["import_reliance"].mask(exporter, 0.0)
    return rows


def eu_supply_risk(
    entities: Mapping[str, Sequence[str]],
    year: int,
    substitution: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Supply risk per entity (name → member ISO3 codes), mineral and stage, for one year.

    Read from the stage balances (`critmin.metrics.balances`, content basis): global supply,
    the entity's sourcing (its members' production plus imports from outside it) and its
    import reliance are taken within one stage. The JRC assesses SR at the extraction and the
    processing stage and keeps the higher (Grohol & Veeh 2023, section 3.2): `bottleneck` marks
    that stage. Where a term cannot be computed (no trade and no production at the stage, or a
    reliance that is not a share) SR is NaN and `status` says why — never a zero.

    Columns: entity, commodity, stage, year, hhi_wgi_global, global_source,
    hhi_wgi_sourcing, import_reliance, eol_rir, substitution_index, supply_risk, status,
    bottleneck. `substitution` overrides SI per commodity id.
    """
    substitution = dict(substitution or {})
    for commodity, value in substitution.items():
        if not 0 <= value <= 1 or np.isnan(value):
            raise InputError(f"substitution index for {commodity} must be in 0-1, got {value}")
    members = {name: tuple(codes) for name, codes in entities.items()}
    for name, codes in members.items():
        if not codes:
            raise InputError(f"group {name!r} has no members")
    bal = balances(year)
    wgi = governance_0_10(year)
    global_hhi = global_supply_hhi(bal, wgi)
    singles = [n for n, codes in members.items() if codes == (n,)]
    passes = [(singles, {})] if singles else []  # single countries in one pass
    passes += [([n], {n: c}) for n, c in members.items() if n not in singles]  # a bloc each
    parts = [_entity_terms(bal, names, blocs, members, wgi) for names, blocs in passes]
    table = pd.concat(parts, ignore_index=True).merge(global_hhi, on=KEYS, how="left")
    recycling = query("SELECT commodity, eol_rir FROM {commodities}").set_index("commodity")
    table["eol_rir"] = table["mineral"].map(recycling["eol_rir"]).fillna(0.0)
    table["substitution_index"] = table["mineral"].map(substitution).fillna(1.0)
    half = table["import_reliance"] / 2
    table["supply_risk"] = (
        (table["hhi_wgi_global"] * half + table["hhi_wgi_sourcing"] * (1 - half))
        * (1 - table["eol_rir"])
        * table["substitution_index"]
    )
    table.loc[table["hhi_wgi_global"].isna(), "status"] = table["status"].where(
        table["status"] != "ok", "no_global_supply_data"
    )
    best = table["supply_risk"].fillna(-1.0)
    table["bottleneck"] = best.eq(
        best.groupby([table["entity"], table["mineral"]]).transform("max")
    )
    table["bottleneck"] &= table["supply_risk"].notna()
    table.insert(3, "year", int(year))
    table = table.rename(columns={"mineral": "commodity"})
    columns = list(EU_SR_COLUMNS)
    return table[columns].sort_values(["entity", "supply_risk"], ascending=[True, False])
