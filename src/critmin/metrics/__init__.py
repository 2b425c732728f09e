"""Dependence figures computed from the data layer: shares, concentration, reliance, tracing."""

from critmin.metrics.api import dependence, trace, world_dependence
from critmin.metrics.concentration import production_shares, supply_concentration
from critmin.metrics.dependence import dependence_from_tables, merge_blocs, supplier_shares
from critmin.metrics.tracing import origin_matrix, traced_import_origins

__all__ = [
    "dependence",
    "dependence_from_tables",
    "merge_blocs",
    "origin_matrix",
    "production_shares",
    "supplier_shares",
    "supply_concentration",
    "trace",
    "traced_import_origins",
    "world_dependence",
]
