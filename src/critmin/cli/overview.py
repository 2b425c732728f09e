"""`critmin overview`: who mines the main critical minerals (what `make demo` prints for now)."""

from __future__ import annotations

import pandas as pd
import typer

from critmin.cli.output import OutputFormat, console, emit
from critmin.data import country
from critmin.metrics import supply_concentration

MAIN_MINERALS = (
    "rare_earths",
    "gallium",
    "germanium",
    "graphite",
    "antimony",
    "tungsten",
    "cobalt",
    "lithium",
    "nickel",
    "manganese",
    "copper",
)


def overview(
    minerals: list[str] | None = typer.Option(None, "--mineral", help="Minerals to show."),
    year: int | None = typer.Option(None, help="Year (default: each mineral's latest)."),
    supplier: str = typer.Option("CHN", help="Supplier whose share gets its own column."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f"),
) -> None:
    """Mine-production shares of the top three producers and of China, per mineral."""
    focus = country(supplier).iso3
    table = supply_concentration(
        commodity=list(minerals or MAIN_MINERALS),
        year="latest" if year is None else year,
        focus=focus,
    )
    frame = pd.DataFrame(
        {
            "mineral": table["commodity"],
            "year": table["year"],
            "world_t": table["world_qty_t"],
            "top_producers": [
                "  ".join(f"{c} {s:.0%}" for c, s in zip(codes, shares, strict=True))
                for codes, shares in zip(table["top_countries"], table["top_shares"], strict=True)
            ],
            "top3_share": table["top_share"],
            f"{focus}_share": table["focus_share"],
            "hhi": table["hhi"],
        }
    ).sort_values(f"{focus}_share", ascending=False)
    emit(
        frame.reset_index(drop=True),
        fmt,
        title="Who mines the critical minerals (share of world production)",
        caption="Source: World Mining Data (Austrian Federal Ministry of Finance) via the "
        "bundled critmin dataset. HHI on a 0-1 scale.",
    )
    if fmt is OutputFormat.table:
        console.print(
            "Next: [bold]critmin data list[/] for the dataset, "
            "[bold]critmin data show production --commodity gallium --year 2024[/]"
        )
