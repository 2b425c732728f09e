"""The GeoPolRisk grid as one DuckDB query, built without pandas.

Method: Koyamparambath et al., as implemented by geopolrisk-py 2.0.1; the equations and
every difference between the modes `correct` and `peer` are in `critmin.metrics.geopolrisk`
and docs/geopolrisk.md. This module is the one implementation: `grid_sql` returns the query
(table tokens unresolved, values as named parameters) that `geopolrisk()` reads into pandas
and `critmin risk --format csv|json` streams through DuckDB's own writer.

Each quirk is one SQL fragment below, chosen by mode (constant text; what a user typed only
ever reaches the query as a parameter):

- flows: per (year, importer, partner, commodity) over the HS codes of each commodity;
  peer counts a missing quantity as 0 t and keeps its value, correct leaves the flow out;
- governance: correct reads critmin's pv_normalized (missing or NaN → 0.5); peer reads its
  own table (first row per code and year, 'NA' or no text → 0.5, 'nan' and other text →
  NaN, a partner absent from the table in every year → 0.5, one absent in this year only →
  NaN);
- a NaN weight outside the bloc poisons the entity's numerator (Python's sum in the peer),
  so its import risk, score and CF are missing (NULL) unless the denominator is 0;
- intra-bloc imports weigh 0 but stay in the denominator and the price;
- production: peer takes HHI over the source values truncated to integers and domestic
  production as kg / 1000 (other units as stored), and Guyana reads French Guiana's rows
  for the commodities French Guiana has; correct uses tonnes throughout;
- import risk is 0 where trade plus production is 0, price 0 where trade is 0.

Importing this module imports nothing heavy, so the command line's CSV and JSON of the
grid run without pandas (`critmin.metrics` loads its other modules on first use). Sums use DuckDB's
compensated `fsum`: with a plain sum the last digit of ~4% of the cells changed from run to
run with how DuckDB's threads split the rows; with `fsum` it does not (1 to 8 threads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from critmin.errors import InputError

CF_COPPER = 0.409412948  # average copper CF of OECD countries 2017–2021, as in the peer
MODES = ("correct", "peer")
YEARS = tuple(range(2018, 2025))
COLUMNS = (
    "entity",
    "commodity",
    "year",
    "hhi",
    "import_risk",
    "score",
    "cf",
    "price",
    "total_trade_t",
    "numerator",
    "domestic_production",
)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"GeoPolRisk mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def check_years(years: Sequence[int]) -> list[int]:
    years = [int(y) for y in years]
    outside = [y for y in years if y not in YEARS]
    if outside:
        raise InputError(f"GeoPolRisk needs production data: years 2018-2024, not {outside}")
    return years


_YEAR_FILTER = "year IN (SELECT UNNEST($years::INTEGER[]))"

# name -> (correct, peer) SQL of one input table; {keep} narrows to one commodity.
_PARTS = {
    "codes": (
        "SELECT DISTINCT commodity, UNNEST(list_concat(hs6, hs6_complementary)) AS hs6 "
        "FROM {commodities} WHERE true {keep}",
    )
    * 2,
    # Trade rows of each commodity's HS codes: year, importer, partner, qty_t, value_kusd.
    "flows": tuple(
        "SELECT t.year, t.importer, t.exporter AS partner, c.commodity, "
        f"{qty} AS qty_t, t.value_kusd "
        f"FROM {{trade}} t JOIN codes c USING (hs6) WHERE t.{_YEAR_FILTER} {keep}"
        for qty, keep in (("t.qty_t", "AND t.qty_t IS NOT NULL"), ("coalesce(t.qty_t, 0)", ""))
    ),
    # Normalised political stability per (year, partner), NULL or NaN where missing.
    "governance": (
        "SELECT year, country AS partner, value AS wgi FROM {governance} "
        f"WHERE indicator = 'pv_normalized' AND {_YEAR_FILTER}",
        "SELECT year, partner, CASE WHEN raw IS NULL OR raw = 'NA' THEN 0.5 "
        "ELSE TRY_CAST(raw AS DOUBLE) END AS wgi FROM ("
        "SELECT g.year, c.iso3 AS partner, arg_min(g.value_raw, g.row) AS raw "
        "FROM {governance_geopolrisk} g "
        "JOIN (SELECT iso3, UNNEST(baci_codes) AS code FROM {countries}) c "
        f"ON g.baci_code = CAST(c.code AS VARCHAR) WHERE g.{_YEAR_FILTER} GROUP BY ALL)",
    ),
    # Production rows: basis of the HHI and domestic production, as each mode reads them.
    "made": tuple(
        f"SELECT year, country, commodity, {basis} AS basis, {domestic} AS domestic "
        f"FROM {{production}} WHERE {_YEAR_FILTER} {{keep}}"
        for basis, domestic in (
            ("qty_t", "qty_t"),
            (
                "CAST(CAST(trunc(qty_source) AS BIGINT) AS DOUBLE)",
                "CASE WHEN unit_source = 'kg' THEN qty_source / 1000 ELSE qty_source END",
            ),
        )
    ),
    "hhi": (
        "SELECT commodity, year, CASE WHEN fsum(basis) <> 0 "
        "THEN fsum(basis * basis) / (fsum(basis) * fsum(basis)) END AS hhi "
        "FROM made GROUP BY ALL",
    )
    * 2,
    # Domestic production rows per country; the peer reads Guyana (code 328) from French
    # Guiana's rows wherever French Guiana has the commodity.
    "domestic": (
        "SELECT year, country, commodity, domestic FROM made",
        "SELECT year, country, commodity, domestic FROM made WHERE country <> 'GUY' "
        "UNION ALL SELECT year, 'GUY', commodity, domestic FROM made WHERE country = 'GUF' "
        "UNION ALL SELECT year, country, commodity, domestic FROM made WHERE country = 'GUY' "
        "AND commodity NOT IN (SELECT commodity FROM made WHERE country = 'GUF')",
    ),
}

# Weight of a partner outside the bloc: correct takes missing as 0.5; peer keeps the
# table's value (NaN, or NULL for a year it lacks) for a partner it knows, else 0.5.
_WEIGHT = (
    "CASE WHEN g.wgi IS NULL OR isnan(g.wgi) THEN 0.5 ELSE g.wgi END",
    "CASE WHEN k.partner IS NULL THEN 0.5 ELSE g.wgi END",
)
_KNOWN = (
    "",
    "LEFT JOIN (SELECT DISTINCT partner FROM governance) k ON k.partner = f.partner",
)

_GRID = """
rated AS (
    SELECT m.entity, f.commodity, f.year, f.qty_t, f.value_kusd,
           f.qty_t * CASE WHEN i.member IS NOT NULL THEN 0.0 ELSE {weight} END AS weighted
    FROM flows f JOIN members m ON f.importer = m.member
    LEFT JOIN governance g ON g.year = f.year AND g.partner = f.partner
    LEFT JOIN members i ON i.entity = m.entity AND i.member = f.partner
    {known}
),
trade AS (
    SELECT entity, commodity, year, fsum(qty_t) AS total_trade_t,
           CASE WHEN NOT bool_or(weighted IS NULL OR isnan(weighted))
                THEN fsum(weighted) END AS numerator,
           fsum(value_kusd) AS value_kusd
    FROM rated GROUP BY ALL
),
production AS (
    SELECT m.entity, d.commodity, d.year, fsum(d.domestic) AS domestic_production
    FROM domestic d JOIN members m ON d.country = m.member GROUP BY ALL
),
grid AS (
    SELECT e.entity, e.entity_ord, c.commodity, y.year, y.year_ord, h.hhi,
           coalesce(t.total_trade_t, 0.0) AS total_trade_t,
           CASE WHEN t.entity IS NULL THEN 0.0 ELSE t.numerator END AS numerator,
           coalesce(t.value_kusd, 0.0) AS value_kusd,
           coalesce(p.domestic_production, 0.0) AS domestic_production
    FROM entities e
    CROSS JOIN (SELECT commodity FROM {{commodities}} WHERE len(hs6) > 0 {keep}) c
    CROSS JOIN years y
    LEFT JOIN trade t
        ON t.entity = e.entity AND t.commodity = c.commodity AND t.year = y.year
    LEFT JOIN production p
        ON p.entity = e.entity AND p.commodity = c.commodity AND p.year = y.year
    LEFT JOIN hhi h ON h.commodity = c.commodity AND h.year = y.year
),
risk AS (
    SELECT *,
           CASE WHEN total_trade_t + domestic_production <> 0
                THEN numerator / (total_trade_t + domestic_production) ELSE 0.0
           END AS import_risk,
           CASE WHEN total_trade_t <> 0 THEN value_kusd / total_trade_t ELSE 0.0 END AS price
    FROM grid
)
SELECT entity, commodity, CAST(year AS BIGINT) AS year, hhi, import_risk,
       hhi * import_risk AS score,
       hhi * import_risk * price / CAST('{cf!r}' AS DOUBLE) AS cf,
       price, total_trade_t, numerator, domestic_production
FROM risk ORDER BY entity_ord, commodity, year_ord
"""


def _with(names: Sequence[str], mode: str, keep: str) -> str:
    index = MODES.index(mode)
    parts = (f"{name} AS ({_PARTS[name][index].replace('{keep}', keep)})" for name in names)
    return "WITH " + ",\n".join(parts)


def part_sql(name: str, years: Sequence[int], mode: str) -> tuple[str, dict]:
    """One input of the grid on its own (`flows`, `governance`, `hhi` or `domestic`), for
    inspection: the query and its parameters."""
    needed = {
        "flows": ("codes", "flows"),
        "governance": ("governance",),
        "hhi": ("made", "hhi"),
        "domestic": ("made", "domestic"),
    }[name]
    select = f"SELECT * FROM {name}"
    if name == "flows":  # one row per (year, importer, partner, commodity)
        select = (
            "SELECT year, importer, partner, commodity, fsum(qty_t) AS qty_t, "
            "fsum(value_kusd) AS value_kusd FROM flows GROUP BY ALL"
        )
    sql = _with(needed, check_mode(mode), "") + "\n" + select
    return sql, {"years": check_years(years)}


def grid_sql(
    entities: Mapping[str, Sequence[str]] | None = None,
    years: Sequence[int] = YEARS,
    mode: str = "correct",
    commodity: str | None = None,
) -> tuple[str, dict]:
    """The GeoPolRisk grid query and its named parameters: every entity × commodity with HS
    codes (or the one `commodity` id) × year, in the order of `entities` (None = every
    country with BACI codes as itself, by ISO3 code), commodity id and `years`.

    Columns `COLUMNS`; table tokens (`{trade}` ...) are left for `resolved_sql` or `query`.
    """
    check_mode(mode)
    params: dict = {"years": check_years(years)}
    if entities is None:
        members = (
            "members AS (SELECT iso3 AS entity, iso3 AS member FROM {countries} "
            "WHERE len(baci_codes) > 0),\n"
            "entities AS (SELECT DISTINCT entity, entity AS entity_ord FROM members)"
        )
    else:
        params["names"] = list(entities)
        pairs = [(name, code) for name, codes in entities.items() for code in codes]
        params["member_entity"] = [name for name, _ in pairs]
        params["member_code"] = [code for _, code in pairs]
        members = (
            "entities AS (SELECT UNNEST($names::VARCHAR[]) AS entity, "
            "UNNEST(range(len($names::VARCHAR[]))) AS entity_ord),\n"
            "members AS (SELECT DISTINCT UNNEST($member_entity::VARCHAR[]) AS entity, "
            "UNNEST($member_code::VARCHAR[]) AS member)"
        )
    keep = ""
    if commodity is not None:
        params["commodity"] = commodity
        keep = "AND commodity = $commodity"
    years_cte = (
        "years AS (SELECT UNNEST($years::INTEGER[]) AS year, "
        "UNNEST(range(len($years::INTEGER[]))) AS year_ord)"
    )
    index = MODES.index(mode)
    sql = (
        _with(("codes", "flows", "governance", "made", "hhi", "domestic"), mode, keep)
        + f",\n{members},\n{years_cte},"
        + _GRID.format(weight=_WEIGHT[index], known=_KNOWN[index], keep=keep, cf=CF_COPPER)
    )
    return sql, params


def risk_sql(
    importer: str | None = None,
    commodity: str | None = None,
    year: int | None = None,
    peer_compatible: bool = False,
) -> tuple[str, dict]:
    """`critmin.metrics.api.risk(method="geopolrisk")` as a query and its parameters: an
    importer by name (country, group or comma list; None = every country), a commodity id
    or alias (None = every commodity with HS codes), a year (None = 2018–2024).

    Resolving a name reads the country and commodity tables through `critmin.data`, which
    imports pandas; the whole grid (`None, None`) is built without it.
    """
    entities = None
    if importer is not None:
        from critmin.metrics.stage_api import importer_code

        code, blocs = importer_code(importer)
        entities = blocs or {code: (code,)}
    years = check_years(YEARS if year is None else [year])
    wanted = None
    if commodity is not None:
        from critmin.data import commodity as resolve_commodity
        from critmin.data.catalog import query_arrays

        wanted = resolve_commodity(commodity).id
        found = query_arrays(
            "SELECT count(*) AS n FROM {commodities} WHERE commodity = ? AND len(hs6) > 0",
            [wanted],
        )
        if not found["n"][0]:
            raise InputError(f"no geopolrisk result for {wanted} (no HS code or no data)")
    return grid_sql(entities, years, "peer" if peer_compatible else "correct", wanted)
