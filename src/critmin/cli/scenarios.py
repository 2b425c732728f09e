"""`critmin run`, `critmin ensemble`, `critmin coalition`, `critmin stockpile`: studies from
scenario files, Monte Carlo ensembles (local or Dask), coalition choice, stockpile size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from critmin.cli.output import OutputFormat, console, emit, emit_json, error_console
from critmin.cli.sanitise import terminal_text
from critmin.data import commodity as resolve_commodity
from critmin.data.columns import Table, text
from critmin.errors import InputError
from critmin.market import resolve_parameters
from critmin.market.api import resolve_countries
from critmin.market.chain import calibrate_market
from critmin.market.parameters import check_horizon, parse_overrides
from critmin.metrics.dependence import resolve_year
from critmin.scenarios.ensemble import HARD_MAX_DRAWS, MAX_DRAWS, run_ensemble
from critmin.scenarios.execution import executor
from critmin.scenarios.hazard import HazardModel

FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or json.")
WORKERS = typer.Option(1, "--workers", min=1, help="Local Dask worker processes (1 = in process).")
DASK = typer.Option(None, "--dask", help="Run on an existing Dask cluster: tcp://HOST:PORT.")
STAGE = typer.Option(
    None,
    "--stage",
    help="Stage whose market is solved: mine, refined or product (default: the stage of the "
    "commodity's HS codes).",
)


def _progress(total: int, label: str):
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(f"[bold]{escape(terminal_text(label))}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=error_console.get(),
        transient=True,
        disable=not error_console.is_terminal,  # no bar (nor blank line) in a pipe or log
    )
    task = bar.add_task(label, total=total)
    return bar, lambda n: bar.update(task, advance=n)


def run(
    scenario: Path = typer.Argument(..., help="Scenario file (YAML), see examples/."),
    out: Path = typer.Option(Path("results"), "--out", help="Folder for Parquet + summary.json."),
    workers: int = WORKERS,
    dask: str | None = DASK,
    stage: str | None = STAGE,
    fmt: str = typer.Option(
        "table",
        "--format",
        "-f",
        help="table, csv, json or xlsx; csv and xlsx also write the tables as CSV files or "
        "one results.xlsx beside the Parquet files.",
    ),
) -> None:
    """Run a study from a scenario file; results as Parquet plus a JSON summary (and CSV or
    XLSX with --format csv|xlsx)."""
    import pandas as pd

    from critmin.cli.run_export import export_run
    from critmin.scenarios.runner import run_study, study_work
    from critmin.scenarios.schema import load_study

    if fmt not in ("table", "csv", "json", "xlsx"):
        raise InputError(f"--format {fmt!r} is not one of table, csv, json, xlsx")

    study = load_study(scenario)  # every check happens here, before any work
    if stage is not None:  # --stage overrides the file's stage: (issue 16)
        from critmin.data.stages import check_stage

        study = study.model_copy(update={"stage": check_stage(stage)})
    bar, _ = _progress(study_work(study), study.name[:40])
    with bar, executor(workers, dask) as chunks:
        done = run_study(
            study,
            out=out,
            executor=chunks,
            progress=lambda step, finished, total: bar.update(bar.task_ids[0], completed=finished),
        )
    summary = done["summary"]
    exported = export_run(out, fmt) if fmt in ("csv", "xlsx") else []
    if fmt == "json":
        emit_json(summary)
        return
    rows = []
    for name, s in summary["markets"].items():
        rows.append(
            {
                "commodity": name,
                "stage": s.get("stage"),
                "world_price_index": s["world_price_index"],
                "bloc_shortfall_pct": s.get("bloc_shortfall_pct"),
                "bloc_self_sufficiency": s.get("bloc_self_sufficiency"),
                "bloc_supplier_share": s.get("bloc_supplier_share"),
                "net_welfare_kusd": s["net_welfare_kusd"],
                "expected_bloc_shortfall_pct": summary["ensembles"]
                .get(name, {})
                .get("bloc_expected_shortfall_pct"),
            }
        )
    shown = OutputFormat.csv if fmt == "csv" else OutputFormat.table
    emit(pd.DataFrame(rows), shown, title=f"{study.name} — {summary['base_year']}")
    if shown is OutputFormat.table:
        files = [*(summary.get("files", []) or ["…"]), *(p.name for p in exported)]
        console.print(f"results: {out}/ (summary.json, {', '.join(files)})")
        console.print(f"scenario hash {summary['provenance']['scenario_hash'][:16]}…")


def ensemble(
    commodity: str = typer.Option(..., "--commodity", help="Commodity id or alias."),
    bloc: str = typer.Option(..., "--bloc", help="Group or ISO3 list whose shortfall to report."),
    draws: int = typer.Option(1000, "--draws", min=1, help="Monte Carlo draws."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed (same seed, same numbers)."),
    year: int | None = typer.Option(None, help="Base year."),
    stage: str | None = STAGE,
    horizon: str = typer.Option("short", help="short or long."),
    targets: str = typer.Option("all", help="Restrictions hit all destinations or the bloc."),
    hazard: list[str] | None = typer.Option(
        None, "--hazard", help="Annual restriction probability of a supplier: ISO3=P."
    ),
    param: list[str] | None = typer.Option(None, "--param", help="NAME=VALUE overrides."),
    max_draws: int = typer.Option(MAX_DRAWS, "--max-draws", help="Resource limit on draws."),
    workers: int = WORKERS,
    dask: str | None = DASK,
    fmt: OutputFormat = FORMAT,
) -> None:
    """Distribution of shortfalls under random export restrictions (p5/p50/p95, CVaR 95 %)."""
    check_horizon(horizon)
    if max_draws > HARD_MAX_DRAWS:
        raise InputError(
            f"--max-draws {max_draws:,} exceeds the hard maximum of {HARD_MAX_DRAWS:,} draws "
            "(about 250 MB of results); split the study into several seeds"
        )
    if draws > max_draws:
        raise InputError(
            f"--draws {draws:,} exceeds --max-draws {max_draws:,}; raise it if you mean it"
        )
    item = resolve_commodity(commodity)
    members, _ = resolve_countries(bloc)
    overrides = {}
    for entry in hazard or []:
        code, _, value = entry.partition("=")
        try:
            overrides[resolve_countries(code)[0][0]] = float(value)
        except ValueError:
            raise InputError(f"--hazard {entry!r}: write ISO3=PROBABILITY") from None
    cal = calibrate_market(item.id, resolve_year(year), 0.0, (), stage)
    params = resolve_parameters(cal.countries, horizon, parse_overrides(param or []))
    bar, advance = _progress(draws, f"{item.id}: {draws:,} draws")
    with executor(workers, dask) as chunks, bar:
        result = run_ensemble(
            cal, params, members, draws, seed, HazardModel(overrides=overrides),
            targets=targets, executor=chunks, progress=advance, max_draws=max_draws,
        )  # fmt: skip
    table = result.importer_table()
    if fmt is OutputFormat.json:
        summary = {**result.summary(), "stage": cal.stage, "unit": cal.unit}
        emit_json({"summary": summary, "importers": table.records()})
        return
    if fmt is OutputFormat.csv:
        emit(table, fmt)
        return
    s = result.summary()
    figures = [
            ("draws", s["draws"]),
            ("bloc consumption, base (t)", s["bloc_consumption_base_t"]),
            ("expected bloc shortfall (t)", s["bloc_expected_shortfall_t"]),
            ("expected bloc shortfall (%)", s["bloc_expected_shortfall_pct"]),
            ("bloc shortfall p50 / p95 (t)", f"{s['bloc_p50_t']:,.0f} / {s['bloc_p95_t']:,.0f}"),
            ("bloc CVaR 95 % (t)", s["bloc_cvar95_t"]),
            ("world price index p5 / p50 / p95",
             f"{s['world_price_index_p5']:.2f} / {s['world_price_index_p50']:.2f} / "
             f"{s['world_price_index_p95']:.2f}"),
    ]  # fmt: skip
    head = Table({"figure": text([f for f, _ in figures]), "value": text([v for _, v in figures])})
    where = f", {cal.stage} stage ({cal.unit})" if cal.stage else ""
    emit(head, fmt, title=f"Ensemble: {item.id} {cal.year}{where}, seed {seed}")
    suppliers = Table(
        {
            "supplier": text(list(s["suppliers"])),
            **{
                k: np.array([v[k] for v in s["suppliers"].values()], dtype=float)
                for k in ("annual_probability", "event_share", "ban_share")
            },
        }
    )
    emit(
        suppliers.where(np.argsort(-suppliers["annual_probability"], kind="stable")),
        fmt,
        title="Restriction hazard by supplier",
    )
    emit(
        table.where(np.flatnonzero(table["in_bloc"])[:12]),
        fmt,
        title="Bloc members: expected shortfall and tail",
        table_columns=[
            "country",
            "consumption_base_t",
            "expected_shortfall_t",
            "expected_shortfall_pct",
            "p95_t",
            "cvar95_t",
        ],
    )


def coalition(
    core: str = typer.Option(..., "--core", help="Core importer(s): ISO3, group or list."),
    candidates: str = typer.Option(..., "--candidates", help="Candidate partners: group or list."),
    size: int = typer.Option(..., "--k", min=1, help="How many partners to choose."),
    commodities: str = typer.Option(..., "--commodities", help="Basket: comma-separated ids."),
    year: int | None = typer.Option(None, help="Base year."),
    stage: str | None = STAGE,
    check: bool = typer.Option(True, help="Check the choice with the market model."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """The k partners that best cover the core's imports from China (MILP), with Shapley
    shares, checked with the market model (Chinese ban, zone of core + partners)."""
    import pandas as pd

    from critmin.scenarios.coalition import best_coalition, coalition_problem, shapley

    core_codes, _ = resolve_countries(core)
    pool, _ = resolve_countries(candidates)
    pool = tuple(c for c in pool if c not in set(core_codes))
    basket = [resolve_commodity(c.strip()).id for c in commodities.split(",") if c.strip()]
    year = resolve_year(year)
    problem = coalition_problem(core_codes, pool, basket, year, stage=stage)
    members, value = best_coalition(problem, size)
    shares = shapley(problem, members)
    checks = []
    market = None
    if check:
        from critmin.scenarios.coalition import coalition_by_market

        # The coalition is chosen with the market model itself (issue 16): the proxy's choice
        # is kept beside it; where the two differ the market's is the answer.
        market = coalition_by_market(
            core_codes, pool, basket, year, size, problem=problem, stage=stage
        )
        checks = market.table.head(10).to_dict(orient="records")
    payload = {
        "core": list(core_codes),
        "members": list(members),
        "security": value,
        "coverage": dict(
            zip(
                problem.commodities,
                np.minimum(
                    1,
                    problem.relative_supply[[problem.candidates.index(m) for m in members]].sum(
                        axis=0
                    ),
                ).tolist(),
                strict=True,
            )
        ),
        "shapley": shares.to_dict(orient="records"),
        "market_check": checks,
        "market_members": list(market.members) if market else None,
        "market_security": market.market_security if market else None,
        "market_security_definition": (
            "share of the core's shortfall under a Chinese ban that the partners remove when "
            "their supply goes to the coalition (market model, basket-weighted)"
        ),
    }
    if fmt is OutputFormat.json:
        emit_json(payload)
        return
    emit(
        shares,
        fmt,
        title=f"Proxy's best {size} partners for {','.join(core_codes)}: cover {value:.3f} of "
        "the core's imports from China (0-1)",
    )
    if market is not None and fmt is OutputFormat.table:
        emit(
            pd.DataFrame(checks),
            fmt,
            title=f"Chosen with the market model: {','.join(market.members)}, removing "
            f"{market.market_security:.1%} of the core's shortfall under a Chinese ban",
        )


def stockpile(
    bloc: str = typer.Option(..., "--bloc", help="Bloc: group or ISO3 list."),
    commodity: str = typer.Option(..., "--commodity", help="Commodity id or alias."),
    target: float = typer.Option(
        ..., "--target", help="Shortfall % (or price index with --metric price)."
    ),
    probability: float = typer.Option(0.95, "--probability", help="Required probability (0-1)."),
    metric: str = typer.Option("shortfall", help="shortfall or price."),
    draws: int = typer.Option(300, "--draws", min=1, help="Monte Carlo draws."),
    seed: int = typer.Option(0, "--seed", min=0),
    year: int | None = typer.Option(None, help="Base year."),
    stage: str | None = STAGE,
    horizon: str = typer.Option("short", help="short or long."),
    max_months: float = typer.Option(12.0, "--max-months", help="Largest stockpile tried."),
    workers: int = WORKERS,
    dask: str | None = DASK,
    fmt: OutputFormat = FORMAT,
) -> None:
    """The smallest stockpile keeping the bloc's shortfall (or price) under a target."""
    import pandas as pd

    from critmin.scenarios.stockpile import size_stockpile

    check_horizon(horizon)
    item = resolve_commodity(commodity)
    members, _ = resolve_countries(bloc)
    cal = calibrate_market(item.id, resolve_year(year), 0.0, (), stage)
    params = resolve_parameters(cal.countries, horizon)
    bar, advance = _progress(41, f"{item.id}: sizing")
    with executor(workers, dask) as chunks, bar:
        result = size_stockpile(
            cal, params, members, target, probability, metric, draws, seed,
            max_months=max_months, executor=chunks, progress=advance,
        )  # fmt: skip
    if fmt is OutputFormat.json:
        emit_json({**result.to_dict(), "stage": cal.stage, "unit": cal.unit})
        return
    if fmt is OutputFormat.csv:
        emit(result.curve, fmt)
        return
    if result.tonnes is None:
        console.print(
            f"No stockpile up to {max_months:g} months of consumption reaches the target with "
            f"probability {probability:g}; the curve below shows how close it gets."
        )
    else:
        emit(
            pd.DataFrame(
                [
                    ("stockpile (t)", result.tonnes),
                    ("months of bloc consumption", result.months),
                    ("cost at base prices (million USD)", result.cost_musd),
                ],
                columns=["figure", "value"],
            ),
            fmt,
            title=f"{item.id}{f' ({cal.stage}, {cal.unit})' if cal.stage else ''}: "
            f"P({metric} ≤ {target:g}) ≥ {probability:g}, {draws} draws",
        )
    emit(result.curve.iloc[::4], fmt, title="Probability of meeting the target by stockpile size")
