"""`critmin brief`: the one-file HTML briefing on the bundled (or user) data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from critmin.errors import InputError

DEFAULT_BLOC = "ministerial_2026"  # critmin.scenarios.briefing.DEFAULT_BLOC (kept light here)
DEFAULT_MINERALS = "rare_earths,graphite,tungsten,antimony,cobalt,lithium,nickel,germanium,gallium"
STAGES = ("dependence", "supply risk", "Chinese export ban", "preferential zone",
          "stockpile and agreements", "sources")  # fmt: skip


def brief(
    bloc: str = typer.Option(DEFAULT_BLOC, "--bloc", help="Group or ISO3 list."),
    minerals: str = typer.Option(
        DEFAULT_MINERALS, "--minerals", help="Comma-separated commodity ids or aliases."
    ),
    year: int | None = typer.Option(None, help="Base year (default: latest with data)."),
    today: str | None = typer.Option(None, help="Date for deadlines (YYYY-MM-DD)."),
    out: Path = typer.Option(Path("brief.html"), "--out", help="HTML file to write."),
    stage: str | None = typer.Option(
        None,
        "--stage",
        help="Stage of the ban and zone sections: mine, refined or product (default: each "
        "mineral's market stage).",
    ),
) -> None:
    """Write the briefing: executive summary and options, dependence by stage, risk, a
    Chinese ban, the zone, stockpile and the bloc's agreements."""
    from critmin.cli.output import console, stages
    from critmin.data import commodity as resolve_commodity
    from critmin.report import write_brief
    from critmin.scenarios.briefing import briefing

    ids = [resolve_commodity(m.strip()).id for m in minerals.split(",") if m.strip()]
    if not ids:
        raise InputError("--minerals names no mineral")
    try:
        reference = dt.date.fromisoformat(today) if today else None
    except ValueError:
        raise InputError(f"--today {today!r} is not YYYY-MM-DD") from None
    if stage is not None and stage not in ("mine", "refined", "product"):
        raise InputError(f"--stage {stage!r}: give mine, refined or product")
    if out.is_dir():  # say so now, not after a minute of work
        raise InputError(f"--out {out} is a folder; give a file name such as {out}/brief.html")
    with stages(len(STAGES) + 1, "brief") as advance:
        data = briefing(bloc, ids, year, reference, progress=advance, stage=stage)
        path = write_brief(data, out)
        advance("written")
    console.print(f"brief written: {path.resolve()}")
