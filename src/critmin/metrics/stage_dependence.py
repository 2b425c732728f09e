"""Dependence at each stage of a mineral's chain, read from the material balances.

For an importer (a country, or a bloc treated as one economy) and each mineral × stage:

- import reliance (USGS Mineral Commodity Summaries): (imports − exports) / apparent
  consumption, apparent consumption = production + imports − exports, all within one stage;
- supplier shares s_e = M_e / Σ M (direct), HHI = Σ s², top-3 share;
- traced shares: who processed the stage's imports (origin re-attribution, proportional mixing,
  `critmin.metrics.tracing.origin_matrix`, with the stage's own production as origin) and, up
  the chain, whose ore and whose refining they carry (each processor's availability at the
  stage above mixed in the same way);
- exposure at any stage: the share of the importer's supply of the stage (production plus
  imports) that passed through the supplier at this stage or any stage above,
  e_s(c) = Σ_r S_s[r, c] · (1 if r is the supplier else e_{s−1}(r)), which is
  1 − Π (1 − share at each stage) along the traced paths.

A figure that is not a share gets a status instead of a number that looks like one.

The figures are computed on NumPy columns in `critmin.metrics.stage_grid` (so the command line
answers without pandas); the functions here give them as DataFrames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from critmin.data.columns import Table
from critmin.metrics.stage_exposure import direct_mix_matrix
from critmin.metrics.stage_grid import grid_table, merge_blocs_tables
from critmin.metrics.tracing import import_matrix

if TYPE_CHECKING:
    import pandas as pd

    from critmin.metrics.balances import Balances

KEYS = ["mineral", "stage"]
STATUSES = (
    "ok",
    "basket_split",
    "production_implied",
    "no_production_data",
    "transit",
    "net_exporter",
    "not_traded",
    "no_trade_data",
)


def balance_tables(bal: Balances) -> tuple[Table, Table, Table, Table]:
    """The balances' flows, production, coverage and corrections as Tables."""
    return bal.flow_table, bal.production_table, bal.coverage_table, bal.correction_table


def merged(bal: Balances, blocs: dict[str, Sequence[str]]) -> tuple[Table, Table]:
    """The balances' flows and production with each bloc merged into one economy."""
    flows, made, _, _ = balance_tables(bal)
    made = made.select([*KEYS, "country", "amount"])
    return merge_blocs_tables(flows, made, blocs or {}, KEYS)


def merged_tables(
    bal: Balances, blocs: dict[str, Sequence[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`merged` as DataFrames."""
    flows, made = merged(bal, blocs)
    return flows.frame(), made.frame()


def stage_dependence_rows(
    bal: Balances,
    importer: str,
    blocs: dict[str, Sequence[str]] | None = None,
    supplier: str = "CHN",
    risky_suppliers: Sequence[str] = (),
    minerals: Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
) -> Table:
    """`stage_dependence_table` as a Table (no pandas)."""
    flows, made = merged(bal, blocs or {})
    _, _, coverage, corrections = balance_tables(bal)
    table = grid_table(
        flows,
        made,
        coverage,
        corrections,
        bal.year,
        bal.basis,
        supplier,
        risky_suppliers,
        minerals,
        stages,
        importers=[importer],
    )
    return table.select([n for n in table.names if n != "country"])


def stage_dependence_table(
    bal: Balances,
    importer: str,
    blocs: dict[str, Sequence[str]] | None = None,
    supplier: str = "CHN",
    risky_suppliers: Sequence[str] = (),
    minerals: Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per mineral × stage for `importer` (see the module docstring).

    Quantities are in the stage's unit on the balances' basis (content t, gross t or kUSD).
    `import_reliance` is a fraction in [0, 1] or NaN, and `status` says why when NaN or bounded.
    """
    rows = stage_dependence_rows(bal, importer, blocs, supplier, risky_suppliers, minerals, stages)
    return rows.frame()


def dependence_grid(
    bal: Balances,
    flows: pd.DataFrame | Table | None = None,
    made: pd.DataFrame | Table | None = None,
    supplier: str = "CHN",
    risky_suppliers: Sequence[str] = (),
    minerals: Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
    importers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Dependence of every country (or of `importers`) at every mineral × stage, in one pass.

    The same figures as `stage_dependence_table`, one row per importer × mineral × stage; the
    origin systems are solved once per stage for all countries. The `suppliers` lists are
    built only when `importers` is given (they are one dict per flow).
    """
    own_flows, own_made, coverage, corrections = balance_tables(bal)
    flows = own_flows if flows is None else _table(flows)
    made = own_made if made is None else _table(made)
    table = grid_table(
        flows,
        made,
        coverage,
        corrections,
        bal.year,
        bal.basis,
        supplier,
        risky_suppliers,
        minerals,
        stages,
        importers,
    )
    return table.frame()


def _table(frame: pd.DataFrame | Table) -> Table:
    return frame if isinstance(frame, Table) else Table.from_frame(frame)


def direct_mix(
    flows: pd.DataFrame, sheet: pd.DataFrame
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """For a stage without a production series: each exporter is the processor of what it
    exports (no re-export tracing), and a country's supply is its implied production plus its
    imports by immediate source: S[r, c] = (P_c·δ_rc + M_rc) / (P_c + M_c). Returns countries,
    S and the import matrix M.
    """
    countries = sorted(set(flows["exporter"]) | set(flows["importer"]) | set(sheet["country"]))
    index = {c: i for i, c in enumerate(countries)}
    imports = import_matrix(flows, index)
    made = np.zeros(len(countries))
    produced = sheet[sheet["production"].fillna(0.0) > 0]
    made[produced["country"].map(index).to_numpy(dtype=np.int64)] = produced["production"]
    return countries, direct_mix_matrix(made, imports), imports
