"""Dependence figures computed from the data layer: the stage balances, reliance, shares,
concentration, tracing, supply risk.

`dependence`, `trace` and `world_dependence` answer by stage (mine, refined, product; see
docs/stages.md). The stage-blind figures over a commodity's HS bundle, kept for the pages and
methods that are defined on it (GeoPolRisk), are `commodity_dependence`, `commodity_trace` and
`world_commodity_dependence` in `critmin.metrics.api`.

Names are loaded from their modules on first use (module `__getattr__`), so importing one
module of this package (the GeoPolRisk query, say) does not import pandas with the rest.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

from critmin._lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and editors; at run time `__getattr__` loads them
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

# public name -> module:attribute
_LAZY = {
    "balance_sheet": "critmin.metrics.balances:balance_sheet",
    "balances": "critmin.metrics.balances:balances",
    "dependence": "critmin.metrics.api:stage_dependence",
    "dependence_from_tables": "critmin.metrics.dependence:dependence_from_tables",
    "merge_blocs": "critmin.metrics.dependence:merge_blocs",
    "origin_matrix": "critmin.metrics.tracing:origin_matrix",
    "production_shares": "critmin.metrics.concentration:production_shares",
    "stage_concentration": "critmin.metrics.concentration:stage_concentration",
    "supplier_shares": "critmin.metrics.dependence:supplier_shares",
    "supply_concentration": "critmin.metrics.concentration:supply_concentration",
    "trace": "critmin.metrics.api:stage_trace",
    "traced_import_origins": "critmin.metrics.tracing:traced_import_origins",
    "world_dependence": "critmin.metrics.api:world_stage_dependence",
}


__getattr__, __dir__ = lazy_names(globals(), _LAZY)


class _Package(ModuleType):
    """`dependence` names both a public function and a submodule: the import system sets a
    submodule on its package when it is first imported, which would hide the function
    depending on import order; this keeps the attribute the function (the submodule stays
    in sys.modules, where `import critmin.metrics.dependence` finds it)."""

    @property
    def dependence(self) -> object:
        return __getattr__("dependence")

    @dependence.setter
    def dependence(self, _submodule: ModuleType) -> None:
        pass


sys.modules[__name__].__class__ = _Package


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
