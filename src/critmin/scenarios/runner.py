"""Run a validated study: one market solve per commodity (and an ensemble where asked),
results written as Parquet tables plus a JSON summary with provenance."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from critmin.data import commodity as resolve_commodity
from critmin.data import manifests
from critmin.data.io import atomic_path, os_problem, sweep_stale_temporaries, write_json_atomic
from critmin.errors import InputError
from critmin.market import (
    Ban,
    Calibration,
    ExportTax,
    MarketResult,
    Quota,
    Release,
    Scenario,
    Tariff,
    Zone,
    resolve_parameters,
    simulate,
)
from critmin.market.api import in_market, parse_floor, resolve_countries
from critmin.market.chain import calibrate_market
from critmin.market.policies import compile_scenario
from critmin.metrics.dependence import resolve_year
from critmin.scenarios.ensemble import EnsembleResult, run_ensemble
from critmin.scenarios.hazard import HazardModel
from critmin.scenarios.schema import Study


def _codes(names) -> tuple[tuple[str, ...] | None, bool]:
    if names is None:
        return None, False
    return resolve_countries(names if isinstance(names, str) else ",".join(names))


def scenario_for(study: Study, cal: Calibration) -> Scenario:
    """The study's policies on one commodity's market (floors only where one is set)."""
    p = study.policies
    bans, quotas, tariffs, taxes = [], [], [], []
    for ban in p.bans:
        targets, strict = _codes(ban.targets)
        bans.append(Ban(_codes(ban.exporter)[0][0], in_market(cal, targets, strict), strict))
    for quota in p.quotas:
        targets, strict = _codes(quota.targets)
        quotas.append(
            Quota(
                _codes(quota.exporter)[0][0],
                quota.fraction,
                in_market(cal, targets, strict),
                quota.aggregate,
                strict,
            )
        )
    for tariff in p.tariffs:
        importers, strict_i = _codes(tariff.importers)
        exporters, strict_e = _codes(tariff.exporters)
        tariffs.append(
            Tariff(
                in_market(cal, importers, strict_i),
                tariff.rate,
                in_market(cal, exporters, strict_e),
                strict_i and strict_e,
            )
        )
    for tax in p.export_taxes:
        targets, strict = _codes(tax.targets)
        taxes.append(
            ExportTax(_codes(tax.exporter)[0][0], tax.rate, in_market(cal, targets, strict), strict)
        )
    if p.controls:
        from critmin.scenarios.commitments import control_restrictions

        extra_bans, extra_quotas = control_restrictions(p.controls, cal, _codes, in_market)
        bans += extra_bans
        quotas += extra_quotas
    releases = [Release(_codes(name)[0][0], tonnes) for name, tonnes in p.releases.items()]
    if study.agreements == "active":
        from critmin.scenarios.commitments import secured_releases

        releases += secured_releases(cal)
    zone = None
    if p.zone is not None:
        floors = {name: value for name, value in p.zone.floors.items()}
        match = [v for k, v in floors.items() if _commodity_id(k) == cal.commodity]
        if match:
            members, strict = _codes(p.zone.members)
            level, unit = parse_floor(match[0])
            zone = Zone(in_market(cal, members, strict), level, unit, p.zone.mechanism)
    bloc, _ = _codes(study.bloc)
    return Scenario(
        name=f"{study.name} — {cal.commodity}",
        tariffs=tuple(tariffs),
        export_taxes=tuple(taxes),
        bans=tuple(bans),
        quotas=tuple(quotas),
        zone=zone,
        releases=tuple(releases),
        capacity={_codes(name)[0][0]: cap for name, cap in p.capacity.items()},
        bloc=tuple(c for c in (bloc or ()) if c in cal.countries),
    )


def _commodity_id(name: str) -> str:
    return resolve_commodity(name).id


def _parameters(study: Study, cal: Calibration):
    """The study's overrides; per-country values for countries absent from this
    commodity's market are dropped (they apply to the commodities where they trade)."""
    overrides: dict[str, Any] = {}
    for name, value in study.parameters.items():
        if isinstance(value, dict):
            value = {c: v for c, v in value.items() if c in cal.countries}
            if not value:
                continue
        overrides[name] = value
    return resolve_parameters(cal.countries, study.horizon, overrides)


def provenance(study: Study) -> dict[str, Any]:
    """What produced the results: critmin version, dataset tables, scenario hash, seed."""
    from critmin import __version__

    keys = ("source", "version", "rows", "sha256", "file", "files", "location")
    tables = {
        name: {key: entry[key] for key in keys if key in entry}
        for name, entry in manifests().items()
    }
    return {
        "critmin_version": __version__,
        "scenario_hash": study.digest(),
        "seed": study.ensemble.seed if study.ensemble else None,
        "dataset": tables,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


Prepared = list[tuple[Calibration, Scenario, Any]]


def prepare_study(study: Study) -> Prepared:
    """Calibrate every market and check every policy of `study`, before any solve.

    A bad study fails here, before any work or file is produced; the result is what
    `run_study` solves (pass it as `prepared` to avoid calibrating twice).
    """
    year = resolve_year(study.base_year)
    prepared = []
    keep = [c for names in _all_named(study) for c in (_codes(names)[0] or ())]
    for name in study.commodities:
        cal = calibrate_market(name, year, 0.0, keep, study.stage)
        scenario = scenario_for(study, cal)
        compile_scenario(cal, scenario)  # refuse bad policies now, before any solve
        prepared.append((cal, scenario, _parameters(study, cal)))
    return prepared


def study_work(study: Study) -> int:
    """Units of work of a study for progress reports: one per market solve and per draw."""
    draws = study.ensemble.draws if study.ensemble else 0
    return len(study.commodities) * (1 + draws)


def run_study(
    study: Study,
    out: Path | None = None,
    executor: Callable | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    prepared: Prepared | None = None,
) -> dict[str, Any]:
    """Solve every commodity of `study` (and its ensemble); write results under `out`.

    All markets are calibrated and all policies checked before the first solve
    (`prepare_study`), so a bad study fails before any work or file is produced.
    `progress(step, done, total)` reports units of work (`study_work`) as they finish.
    """
    if out is not None:
        check_results_folder(Path(out))
    year = resolve_year(study.base_year)
    if prepared is None:
        prepared = prepare_study(study)
    total, finished = study_work(study), 0

    def report(step: str, units: int) -> None:
        nonlocal finished
        finished += units
        if progress:
            progress(step, finished, total)

    results: dict[str, MarketResult] = {}
    ensembles: dict[str, EnsembleResult] = {}
    for cal, scenario, params in prepared:
        results[cal.commodity] = simulate(cal, scenario, params)
        report(f"{cal.commodity}: market", 1)
        if study.ensemble:
            spec = study.ensemble
            hazard = HazardModel(
                base_rate=spec.hazard.base_rate,
                governance_weight=spec.hazard.governance_weight,
                ban_share=spec.hazard.ban_share,
                quota_low=spec.hazard.quota_low,
                quota_high=spec.hazard.quota_high,
                elasticity_cv=spec.hazard.elasticity_cv,
                overrides={_codes(k)[0][0]: v for k, v in spec.hazard.probabilities.items()},
            )
            ensembles[cal.commodity] = run_ensemble(
                cal,
                params,
                scenario.bloc or _codes(study.bloc)[0] or (),
                spec.draws,
                spec.seed,
                hazard=hazard,
                scenario=scenario,
                targets=spec.targets,
                executor=executor,
                max_draws=study.limits.max_draws,
                progress=lambda n, name=cal.commodity: report(f"{name}: ensemble", n),
            )
    summary = {
        "study": study.name,
        "base_year": year,
        "horizon": study.horizon,
        "markets": {name: r.summary for name, r in results.items()},
        "ensembles": {name: e.summary() for name, e in ensembles.items()},
        "provenance": provenance(study),
    }
    if study.agreements == "active":
        from critmin.scenarios.commitments import secured_supply

        summary["secured_supply"] = [row for cal, _, _ in prepared for row in secured_supply(cal)]
    if out is not None:
        summary["files"] = write_results(Path(out), study, results, ensembles, summary)
    return {"summary": summary, "results": results, "ensembles": ensembles}


def _all_named(study: Study):
    p = study.policies
    yield from (b.exporter for b in p.bans)
    yield from (b.targets for b in p.bans if b.targets)
    yield from (q.exporter for q in p.quotas)
    yield from (q.targets for q in p.quotas if q.targets)
    yield from (t.importers for t in p.tariffs)
    yield from (t.exporter for t in p.export_taxes)
    if p.zone:
        yield p.zone.members
    yield from p.releases
    yield from p.capacity
    for spec in p.controls:  # the measure's country and its targeted destination
        from critmin.registry.controls import measure

        item = measure(spec.measure)
        yield item["country"]
        if item["scope"] != "all":
            yield item["scope"]


def check_results_folder(out: Path) -> None:
    """Refuse, before any work, a results folder that cannot be one: an empty name, or a
    path that exists and is not a folder (a file, a device, a symbolic link)."""
    if str(out) in ("", "."):
        raise InputError("--out is empty; give a folder for the results")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"--out {out} exists and is not a folder; give a folder for the results")


def write_results(
    out: Path,
    study: Study,
    results: dict[str, MarketResult],
    ensembles: dict[str, EnsembleResult],
    summary: dict[str, Any],
) -> list[str]:
    """Parquet tables (one row set per commodity) and summary.json, each written to a
    temporary name and renamed; summary.json last, so its presence means a complete run."""
    check_results_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot write {out}: {os_problem(error)}") from None
    sweep_stale_temporaries(out)  # what a run killed earlier left half written
    # An earlier run's summary goes before any of its tables is replaced: a run stopped
    # half way must not leave that summary describing a mix of two runs' tables.
    (out / "summary.json").unlink(missing_ok=True)
    tables: dict[str, pd.DataFrame] = {}
    for name in ("markets", "prices", "flows"):
        if name in study.outputs:
            tables[name] = pd.concat(
                [getattr(r, name).assign(commodity=c) for c, r in results.items()],
                ignore_index=True,
            )
    if "ensemble" in study.outputs and ensembles:
        tables["ensemble"] = pd.concat(
            [e.importers().assign(commodity=c) for c, e in ensembles.items()], ignore_index=True
        )
    written: list[Path] = []
    try:
        for name, frame in tables.items():
            with atomic_path(out / f"{name}.parquet") as tmp:
                frame.to_parquet(tmp, index=False)
            written.append(out / f"{name}.parquet")
        files = sorted(f"{name}.parquet" for name in tables)
        write_json_atomic(out / "summary.json", {**summary, "files": files})
    except BaseException:
        # A failed write (a full disk, ...) leaves no table of this run without its summary.
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return files
