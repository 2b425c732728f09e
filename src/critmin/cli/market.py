"""`critmin shock`, `critmin zone`, `critmin backtest`: export restrictions and the
preferential zone, solved by the Armington market model, and checked against history."""

from __future__ import annotations

import enum

import pandas as pd
import typer

from critmin.cli.output import OutputFormat, console, emit, emit_json, stages
from critmin.errors import InputError
from critmin.market.api import shock as shock_market
from critmin.market.api import zone as zone_market
from critmin.market.parameters import check_horizon, parse_overrides
from critmin.market.result import MarketResult
from critmin.scenarios import backtest as run_backtest
from critmin.scenarios import episodes

FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or json.")
YEAR = typer.Option(None, help="Base year (default: the latest with trade and production).")
STAGE = typer.Option(
    None,
    "--stage",
    help="Stage whose market is solved: mine, refined or product (default: the stage of the "
    "commodity's HS codes, e.g. rare_earths → refined).",
)
HORIZON = typer.Option("short", help="Elasticity set: short (about 1 year) or long (5+ years).")
PARAMS = typer.Option(
    None,
    "--param",
    help="Override a parameter: NAME=VALUE or NAME:ISO3=VALUE (see docs/market.md). Repeatable.",
)
RELEASE = typer.Option(
    None, "--release", help="Stockpile release into a member: ISO3=TONNES. Repeatable."
)
ROW_SHARE = typer.Option(
    0.0,
    "--row-share",
    help="Merge countries below this share of world activity into ROW (0 = none).",
)


class TableChoice(enum.StrEnum):
    """Which table CSV output writes."""

    markets = "markets"
    prices = "prices"
    flows = "flows"
    summary = "summary"


TABLE = typer.Option(
    TableChoice.markets, "--table", help="Table for csv: markets, prices, flows, summary."
)

SUMMARY_KEYS = [
    ("stage", "stage of the market (mine, refined, product)"),
    ("unit", "tonnes counted as"),
    ("production_year", "year of the production figures"),
    ("world_price_index", "world price index (consumers outside the restricting exporter)"),
    ("producer_price_index", "producer price index (sales-weighted, base = 1)"),
    ("world_consumption_base_t", "world consumption, base (t)"),
    ("world_consumption_t", "world consumption (t)"),
    ("bloc_shortfall_pct", "bloc shortfall (% of base)"),
    ("bloc_self_sufficiency_base", "bloc self-sufficiency, base"),
    ("bloc_self_sufficiency", "bloc self-sufficiency"),
    ("bloc_supplier_share_base", "China's share of bloc purchases, base"),
    ("bloc_supplier_share", "China's share of bloc purchases"),
    ("consumer_surplus_kusd", "Δ consumer surplus (kUSD)"),
    ("producer_surplus_kusd", "Δ producer surplus (kUSD)"),
    ("tariff_revenue_kusd", "tariff revenue incl. floor tariffs (kUSD)"),
    ("quota_rent_kusd", "quota rents (kUSD)"),
    ("fund_cost_kusd", "floor fund cost (kUSD)"),
    ("stock_revenue_kusd", "stockpile sales (kUSD)"),
    ("net_welfare_kusd", "Δ net welfare, world (kUSD)"),
    ("exporter_domestic_price_index", "restricting exporter: its own market's price index"),
    ("exporter_producer_price_index", "restricting exporter: producer price index"),
    ("iterations", "Newton iterations"),
    ("max_residual", "max residual (excess demand / base sales)"),
]


def _pairs(items: list[str] | None, label: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{label} {item!r}: write KEY=VALUE")
        if key.strip() in out:  # refused, as a key given twice in a scenario file is
            raise InputError(f"{label} {key.strip()} is given twice; give it once")
        out[key.strip()] = value.strip()
    return out


def _releases(items: list[str] | None) -> dict[str, float]:
    out = {}
    for key, value in _pairs(items, "--release").items():
        try:
            out[key] = float(value)
        except ValueError:
            raise InputError(f"--release {key}={value}: tonnes must be a number") from None
    return out


def _model_options(
    year: int | None,
    horizon: str,
    param: list[str] | None,
    release: list[str] | None,
    row_share: float,
    stage: str | None = None,
) -> dict:
    """The options `shock` and `zone` share, parsed for the market API."""
    check_horizon(horizon)
    return {
        "stage": stage,
        "year": year,
        "horizon": horizon,
        "parameters": parse_overrides(param or []),
        "releases": _releases(release),
        "rest_of_world_share": row_share,
    }


def summary_frame(result: MarketResult) -> pd.DataFrame:
    """Headline figures of a result as (figure, value) rows."""
    rows = [
        (label, result.summary[key])
        for key, label in SUMMARY_KEYS
        if result.summary.get(key) is not None
    ]
    return pd.DataFrame(rows, columns=["figure", "value"])


def _show(result: MarketResult, fmt: OutputFormat, table: TableChoice) -> None:
    if fmt is OutputFormat.json:
        emit_json(result.to_dict())
        return
    if fmt is OutputFormat.csv:
        frames = {
            "markets": result.markets,
            "prices": result.prices,
            "flows": result.flows,
            "summary": summary_frame(result),
        }
        emit(frames[table.value], fmt)
        return
    s = result.summary
    stage = f", {s['stage']} stage ({s['unit']})" if s.get("stage") else ""
    emit(
        summary_frame(result),
        fmt,
        title=f"{s['scenario']} — {s['year']}{stage}, {s['horizon']} horizon",
    )
    markets = result.markets.sort_values("shortfall_t", ascending=False).head(12)
    emit(
        markets,
        fmt,
        title="Largest shortfalls",
        table_columns=[
            "country",
            "consumption_base_t",
            "shortfall_t",
            "shortfall_pct",
            "price_index",
            "consumer_surplus_kusd",
        ],
    )
    prices = result.prices.sort_values("supply_base_t", ascending=False).head(10)
    emit(
        prices,
        fmt,
        title="Main suppliers",
        table_columns=[
            "country",
            "price_usd_t",
            "price_index",
            "supply_base_t",
            "supply_change_pct",
            "producer_surplus_kusd",
        ],
    )
    for note in s.get("notes", []):
        console.print(f"note: {note}")


def shock(
    exporter: str = typer.Option(..., "--exporter", help="Restricting exporter (ISO3 or name)."),
    commodity: str = typer.Option(..., "--commodity", help="Commodity id or alias."),
    ban: bool = typer.Option(False, "--ban", help="Ban the exports."),
    quota: float | None = typer.Option(
        None, "--quota", help="Licence quota: flows capped at this fraction of base (0-1)."
    ),
    aggregate: bool = typer.Option(
        False, "--aggregate", help="One quota on total exports instead of one per flow."
    ),
    targets: str | None = typer.Option(
        None, "--targets", help="Only these destinations: ISO3 list or group (default: all)."
    ),
    production_quota: float | None = typer.Option(
        None,
        "--production-quota",
        help="Also cap the exporter's output at this fraction of base (0-1], as China's "
        "2010-2011 mining quota beside its export quota.",
    ),
    stage: str | None = STAGE,
    linked: bool = typer.Option(
        False,
        "--linked",
        help="Solve the mineral's stages together (ore → refined → product): a ban at --stage "
        "and what it does at every stage.",
    ),
    year: int | None = YEAR,
    horizon: str = HORIZON,
    param: list[str] | None = PARAMS,
    release: list[str] | None = RELEASE,
    row_share: float = ROW_SHARE,
    table: TableChoice = TABLE,
    fmt: OutputFormat = FORMAT,
) -> None:
    """What an export ban or licence quota does to prices, flows, shortfalls and welfare."""
    if linked:
        _linked(
            exporter, commodity, ban, quota, targets, stage, year, horizon, production_quota, fmt
        )
        return
    with stages(1, "solving the market") as advance:
        result = shock_market(
            exporter,
            commodity,
            ban=ban,
            quota=quota,
            targets=targets,
            aggregate=aggregate,
            production_quota=production_quota,
            **_model_options(year, horizon, param, release, row_share, stage),
        )
        advance("done")
    _show(result, fmt, table)


def _linked_zone(members, floors, mechanism, with_ban, stage, year, horizon, fmt) -> None:
    """`zone --linked`: one commodity's floor at --stage, solved on its linked chain."""
    from critmin.market.api import parse_floor
    from critmin.market.linked_report import linked_zone

    if stage is None or len(floors) != 1:
        raise InputError("--linked takes one --floor COMMODITY=MULTIPLE and the --stage it is at")
    ((commodity, text),) = floors.items()
    level, unit = parse_floor(text)
    if unit != "multiple":
        raise InputError("--linked floors are multiples of the stage's base reference price")
    with stages(1, "solving the linked chain") as advance:
        frame, _ = linked_zone(
            members, commodity, {stage: level}, mechanism=mechanism, with_ban=with_ban,
            year=year, horizon=horizon,
        )  # fmt: skip
        advance("done")
    if fmt is OutputFormat.json:
        emit_json({"scenario": frame.attrs["scenario"], "stages": frame.to_dict(orient="records"),
                   "notes": frame.attrs["notes"]})  # fmt: skip
        return
    emit(frame, fmt, title=f"{frame.attrs['scenario']}, every stage (linked)")


def _linked(exporter, commodity, ban, quota, targets, stage, year, horizon, made, fmt) -> None:
    """`shock --linked`: a ban at one stage on the mineral's linked chain, one row per stage."""
    from critmin.market.linked_report import linked_shock

    if not ban or quota is not None:
        raise InputError("--linked solves a ban (--ban); export quotas are solved stage by stage")
    if stage is None:
        raise InputError("--linked needs --stage: the stage the ban is at (mine, refined, product)")
    with stages(1, "solving the linked chain") as advance:
        frame, _ = linked_shock(
            exporter, commodity, stage, targets=targets, year=year, horizon=horizon,
            production_quota=made,
        )  # fmt: skip
        advance("done")
    if fmt is OutputFormat.json:
        emit_json({"scenario": frame.attrs["scenario"], "stages": frame.to_dict(orient="records"),
                   "world_price_index": frame.attrs["world_price_index"],
                   "notes": frame.attrs["notes"]})  # fmt: skip
        return
    emit(frame, fmt, title=f"{frame.attrs['scenario']}, every stage (linked)")
    if fmt is OutputFormat.table:
        for note in frame.attrs["notes"]:
            console.print(f"note: {note}")


def zone(
    members: str = typer.Option(..., "--members", help="Zone members: group or ISO3 list."),
    floor: list[str] = typer.Option(
        ...,
        "--floor",
        help="COMMODITY=MULTIPLE of the base reference price (1.3) or COMMODITY=45000usd.",
    ),
    mechanism: str = typer.Option("tariff", help="tariff (adjustable tariff) or guarantee (fund)."),
    with_ban: str | None = typer.Option(
        None, "--with-ban", help="Also ban this exporter's exports to every destination."
    ),
    stage: str | None = STAGE,
    linked: bool = typer.Option(
        False,
        "--linked",
        help="Solve the mineral's stages together, the floor at --stage; one row per stage.",
    ),
    year: int | None = YEAR,
    horizon: str = HORIZON,
    param: list[str] | None = PARAMS,
    release: list[str] | None = RELEASE,
    row_share: float = ROW_SHARE,
    table: TableChoice = TABLE,
    fmt: OutputFormat = FORMAT,
) -> None:
    """A preferential zone with reference-price floors: prices, supply, costs, dependence."""
    floors = _pairs(floor, "--floor")
    if linked:
        _linked_zone(members, floors, mechanism, with_ban, stage, year, horizon, fmt)
        return
    with stages(len(floors), "solving") as advance:
        results = zone_market(
            members,
            floors,
            mechanism=mechanism,
            with_ban=with_ban,
            **_model_options(year, horizon, param, release, row_share, stage),
        )
        advance("done")
    if fmt is OutputFormat.json:
        emit_json({name: result.to_dict() for name, result in results.items()})
        return
    if (fmt is OutputFormat.csv and table is TableChoice.summary) or fmt is OutputFormat.table:
        rows = []
        for name, result in results.items():
            frame = summary_frame(result).set_index("figure")["value"].rename(name)
            rows.append(frame)
        wide = pd.concat(rows, axis=1).reset_index()
        if fmt is OutputFormat.csv:
            emit(wide, fmt)
            return
        first = next(iter(results.values())).summary
        emit(
            wide,
            fmt,
            title=f"Zone of {len(first['bloc'])} members — {first['year']}, "
            f"{first['horizon']} horizon",
        )
        for name, result in results.items():
            markets = result.markets[result.markets["country"].isin(result.summary["bloc"])]
            emit(
                markets.sort_values("consumption_base_t", ascending=False).head(10),
                fmt,
                title=f"{name}: largest member markets",
                table_columns=[
                    "country",
                    "consumption_base_t",
                    "shortfall_pct",
                    "price_index",
                    "consumer_surplus_kusd",
                    "tariff_revenue_kusd",
                ],
            )
        return
    frames = [getattr(r, table.value).assign(commodity=name) for name, r in results.items()]
    emit(pd.concat(frames, ignore_index=True), fmt)


def backtest(
    episode: str | None = typer.Argument(
        None,
        help="Episode id (see the list without an argument), 'all', or 'recent' for the "
        "2023-2025 Chinese controls against USGS prices.",
    ),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Model a real export restriction from the year before it and compare with the data."""
    if episode == "recent":
        from critmin.scenarios.stage_backtest import stage_backtests

        with stages(1, "backtesting the 2023-2025 controls") as advance:
            frame = stage_backtests()
            advance("done")
        if fmt is OutputFormat.json:
            emit_json(frame.to_dict(orient="records"))
            return
        emit(
            frame.drop(columns="notes") if fmt is OutputFormat.table else frame,
            fmt,
            title="2023-2025 Chinese controls: predicted market price change vs USGS price (%)",
        )
        return
    table = episodes()
    if episode is None:
        emit(
            table[
                [
                    "episode",
                    "exporter",
                    "commodity",
                    "policy",
                    "fraction",
                    "base_year",
                    "outcome_year",
                    "start",
                ]
            ],
            fmt,
            title="Backtest episodes (critmin backtest EPISODE)",
        )
        return
    names = list(table["episode"]) if episode == "all" else [episode]
    with stages(len(names), "backtesting") as advance:
        runs = []
        for name in names:
            runs.append(run_backtest(name))
            advance(name)
    if fmt is OutputFormat.json:
        emit_json([run.to_dict() for run in runs] if episode == "all" else runs[0].to_dict())
        return
    if fmt is OutputFormat.csv:
        emit(pd.concat([r.table.assign(episode=r.episode["episode"]) for r in runs]), fmt)
        return
    for run in runs:
        e = run.episode
        emit(
            run.table,
            fmt,
            title=f"{e['episode']}: {e['exporter']} {e['policy']} on {e['commodity']}, "
            f"model calibrated on {e['base_year']}, data of {e['outcome_year']}",
            caption=f"% change from {e['base_year']}; source: {e['source']}",
        )
