"""Dependence figures computed from the data layer: the stage balances, reliance, shares,
concentration, tracing, supply risk.

`dependence`, `trace` and `world_dependence` answer by stage (mine, refined, product; see
docs/stages.md). The stage-blind figures over a commodity's HS bundle, kept for the pages and
methods that are defined on it (GeoPolRisk), are `commodity_dependence`, `commodity_trace` and
`world_commodity_dependence` in `critmin.metrics.api`.
"""

from critmin.metrics.api import stage_dependence as dependence
from critmin.metrics.api import stage_trace as trace
from critmin.metrics.api import world_stage_dependence as world_dependence
from critmin.metrics.balances import balance_sheet, balances
from critmin.metrics.concentration import (
    production_shares,
    stage_concentration,
    supply_concentration,
)
from critmin.metrics.dependence import dependence_from_tables, merge_blocs, supplier_shares
from critmin.metrics.tracing import origin_matrix, traced_import_origins

__all__ = [
    "balance_sheet",
    "balances",
    "dependence",
    "dependence_from_tables",
    "merge_blocs",
    "origin_matrix",
    "production_shares",
    "stage_concentration",
    "supplier_shares",
    "supply_concentration",
    "trace",
    "traced_import_origins",
    "world_dependence",
]
