"""World supply concentration: producers' shares of production, HHI and top-k shares."""

from __future__ import annotations

import pandas as pd

from critmin.data import commodity as resolve_commodity
from critmin.data import countries_of, production, query
from critmin.data.tables import NameSpec, YearSpec
from critmin.errors import InputError
from critmin.metrics.dependence import commodity_flows


def shares(quantities: pd.Series) -> pd.Series:
    """s_i = q_i / Σ_j q_j; all zero when the total is zero (no division by zero)."""
    total = quantities.sum()
    if total <= 0:
        return quantities * 0.0
    return quantities / total


def herfindahl_hirschman(share_values: pd.Series) -> float:
    """HHI = Σ s_i² on a 0–1 scale (Herfindahl 1950; Hirschman 1964; US DOJ/FTC 2023 Merger
    Guidelines use the same index ×10,000). 1 = a single supplier."""
    return float((share_values**2).sum())


def production_shares(
    commodity: NameSpec = None, year: YearSpec | str = "latest", country: NameSpec = None
) -> pd.DataFrame:
    """Each producer's share of world production per commodity and year.

    Columns: commodity, year, country, qty_t, share (0–1), rank (1 = largest),
    world_qty_t. `year="latest"` takes each commodity's latest year with data. The world
    total is the sum over every producer in the source (World Mining Data), so `country`
    filters rows after the shares are computed.
    """
    data = production(year=None if year == "latest" else year, commodity=commodity)
    data = data[data["qty_t"].notna()]
    if data.empty:
        raise InputError("no production data for that commodity and year")
    if year == "latest":
        latest = data.groupby("commodity")["year"].transform("max")
        data = data[data["year"] == latest]
    keys = ["commodity", "year"]
    world = data.groupby(keys)["qty_t"].transform("sum")
    out = data[[*keys, "country", "qty_t"]].copy()
    out["share"] = (out["qty_t"] / world).where(world > 0, 0.0)
    out["world_qty_t"] = world
    out = out.sort_values([*keys, "share", "country"], ascending=[True, True, False, True])
    out["rank"] = out.groupby(keys).cumcount() + 1
    if country is not None:
        names = [country] if isinstance(country, str) else list(country)
        wanted = {code for name in names for code in countries_of(name)}
        out = out[out["country"].isin(wanted)]
    return out.reset_index(drop=True)


def supply_concentration(
    commodity: NameSpec = None, year: YearSpec | str = "latest", focus: str = "CHN", top: int = 3
) -> pd.DataFrame:
    """One row per commodity and year: HHI, top-`top` producers and shares, `focus`'s share.

    Columns: commodity, year, world_qty_t, hhi, top_share (sum of the top `top`),
    top_countries (list), top_shares (list), focus_share.
    """
    if top < 1:
        raise InputError(f"top must be at least 1, got {top}")
    table = production_shares(commodity=commodity, year=year)
    keys = ["commodity", "year"]
    grouped = table.groupby(keys, sort=True)
    summary = grouped.agg(world_qty_t=("world_qty_t", "first"))
    summary["hhi"] = grouped["share"].apply(herfindahl_hirschman)
    head = table[table["rank"] <= top]
    summary["top_share"] = head.groupby(keys)["share"].sum()
    summary["top_countries"] = head.groupby(keys)["country"].agg(list)
    summary["top_shares"] = head.groupby(keys)["share"].agg(list)
    focus_rows = table[table["country"] == focus].set_index(keys)["share"]
    summary["focus_share"] = focus_rows.reindex(summary.index).fillna(0.0)
    return summary.reset_index()


def world_concentration(commodity: str, year: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Mine-production and export-market shares of one commodity and year, side by side.

    Returns (table, summary). table: country, qty_t (production), production_share,
    exports_t, export_share; summary: production_hhi, export_hhi (0–1; NaN for a side
    without data, e.g. production before 2018). Export shares are of world exports by
    quantity (BACI, main and complementary HS6 codes).
    """
    item = resolve_commodity(commodity).id
    try:
        mined = production_shares(item, year)
    except InputError:  # World Mining Data starts in 2018; trade goes back to 1995
        mined = pd.DataFrame({"country": [], "qty_t": [], "share": []})
    flows = commodity_flows(year, "qty")
    exported = flows[flows["commodity"] == item].groupby("exporter", as_index=False)["amount"].sum()
    if mined.empty and exported.empty:
        raise InputError(f"no production or trade data for {item} in {year}")
    exported["share"] = shares(exported["amount"])
    table = (
        mined[["country", "qty_t", "share"]]
        .rename(columns={"share": "production_share"})
        .merge(
            exported.rename(
                columns={"exporter": "country", "amount": "exports_t", "share": "export_share"}
            ),
            on="country",
            how="outer",
        )
        .sort_values(["production_share", "export_share"], ascending=False)
        .reset_index(drop=True)
    )
    summary = {
        "production_hhi": herfindahl_hirschman(mined["share"]) if len(mined) else float("nan"),
        "export_hhi": herfindahl_hirschman(exported["share"]) if len(exported) else float("nan"),
    }
    return table, summary


def concentration_history(commodity: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mine-production and export-market shares of one commodity for every year with data.

    Same definitions as `world_concentration` (shares of world production, World Mining
    Data; shares of world exports by quantity, BACI main and complementary HS6 codes, one
    DuckDB query over all years). Returns (shares, summary). shares: year, country,
    production_t, production_share, exports_t, export_share; summary: year,
    production_hhi, export_hhi (NaN where the year has no data of that kind).
    """
    item = resolve_commodity(commodity).id
    exported = query(
        "WITH codes AS (SELECT UNNEST(list_concat(hs6, hs6_complementary)) AS hs6 "
        "FROM {commodities} WHERE commodity = ?) "
        "SELECT t.year, t.exporter AS country, sum(t.qty_t) AS exports_t "
        "FROM {trade} t JOIN codes USING (hs6) WHERE t.qty_t IS NOT NULL GROUP BY ALL",
        [item],
    )
    mined = production(commodity=item)
    mined = mined[mined["qty_t"].notna()][["year", "country", "qty_t"]]
    mined = mined.rename(columns={"qty_t": "production_t"})
    if exported.empty and mined.empty:
        raise InputError(f"no production or trade data for {item}")
    for frame, column, share in (
        (exported, "exports_t", "export_share"),
        (mined, "production_t", "production_share"),
    ):
        frame["year"] = frame["year"].astype(int)
        total = frame.groupby("year")[column].transform("sum")
        frame[share] = (frame[column] / total).where(total > 0, 0.0)
    table = mined.merge(exported, on=["year", "country"], how="outer")
    table = table.sort_values(["year", "country"]).reset_index(drop=True)
    squares = table.assign(
        production_hhi=table["production_share"] ** 2, export_hhi=table["export_share"] ** 2
    )
    summary = squares.groupby("year")[["production_hhi", "export_hhi"]].sum(min_count=1)
    columns = ["year", "country", "production_t", "production_share", "exports_t"]
    return table[[*columns, "export_share"]], summary.reset_index()


def stage_concentration(commodity: str, year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Production and export shares of one mineral at each stage of its chain, side by side.

    From the material balances (`critmin.metrics.balances`, content basis): for each stage,
    each country's share of world production (where the stage has a production series) and of
    world exports. Where a stage has no production series, the published country shares of
    `sources/stage_shares.csv` (IEA, USGS, European Commission) are shown instead, as shares
    with their source — never turned into tonnes. Returns (table, summary): table has country
    and, per stage s, `{s}_production_share`, `{s}_export_share` (and `{s}_published_share`);
    summary has one row per stage: stage, unit, production_hhi, export_hhi, published_source.
    """
    from critmin.data.stages import stage_shares, stages_of
    from critmin.metrics.balances import balance_sheet, balances

    item = resolve_commodity(commodity).id
    stages = stages_of(item)
    if not stages:
        raise InputError(f"{item} has no supply-chain map (stages)")
    bal = balances(year)
    sheet = balance_sheet(bal)
    sheet = sheet[sheet["mineral"] == item]
    published = stage_shares()
    published = published[published["mineral"] == item]
    columns: list[pd.DataFrame] = []
    summary = []
    for stage in stages:  # ≤ 3 stages
        rows = sheet[sheet["stage"] == stage]
        info = bal.coverage.set_index(["mineral", "stage"]).loc[(item, stage)]
        # World shares need a world series: a national figure alone (USGS's U.S. production
        # where the stage has no series) is not the world.
        series = info["production_source"] != "none"
        reported = rows[(rows["production_status"] == "reported") & series]
        made = reported.set_index("country")["production"]
        made = made[made > 0]
        exported = rows.set_index("country")["exports"]
        exported = exported[(exported > 0) & bool(info["has_trade"])]
        frame = pd.DataFrame(
            {
                f"{stage}_production_share": shares(made) if made.sum() > 0 else made,
                f"{stage}_export_share": shares(exported) if exported.sum() > 0 else exported,
            }
        )
        source = ""
        if made.sum() <= 0:
            own = published[published["stage"] == stage]
            if len(own):
                latest = own[own["year"] == own["year"].max()]
                source = str(latest["source"].iloc[0])
                latest = latest[latest["source"] == source]
                frame = frame.join(
                    latest.set_index("country")["share"].rename(f"{stage}_published_share"),
                    how="outer",
                )
                source = f"{source}, {int(latest['year'].iloc[0])} ({latest['measure'].iloc[0]})"
        columns.append(frame)
        summary.append(
            {
                "stage": stage,
                "unit": info["unit"],
                "production_hhi": herfindahl_hirschman(frame[f"{stage}_production_share"].dropna())
                if made.sum() > 0
                else float("nan"),
                "export_hhi": herfindahl_hirschman(exported / exported.sum())
                if exported.sum() > 0
                else float("nan"),
                "published_source": source,
            }
        )
    table = pd.concat(columns, axis=1).rename_axis("country").reset_index()
    order = table[[c for c in table.columns if c.endswith("_share")]].max(axis=1)
    table = table.loc[order.sort_values(ascending=False).index].reset_index(drop=True)
    return table, pd.DataFrame(summary)
