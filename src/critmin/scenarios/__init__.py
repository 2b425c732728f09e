"""Studies built on the market model: scenario files, Monte Carlo ensembles (local or on
Dask), coalition search, stockpile sizing, backtests against real export restrictions.

The names below load their module on first use, so that an ensemble does not import the
coalition MILP (SciPy's optimiser) or the scenario-file schema it does not need. The
backtest is bound at once: its function shares the name of its module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from critmin._lazy import lazy_names
from critmin.scenarios.backtest import Backtest, backtest, episodes

if TYPE_CHECKING:
    from critmin.scenarios.coalition import best_coalition, coalition_problem, shapley
    from critmin.scenarios.ensemble import EnsembleResult, run_ensemble
    from critmin.scenarios.hazard import HazardModel
    from critmin.scenarios.runner import run_study
    from critmin.scenarios.schema import Study, load_study, validate_study
    from critmin.scenarios.stockpile import StockpileResult, size_stockpile

_LAZY = {
    "best_coalition": "coalition",
    "coalition_problem": "coalition",
    "shapley": "coalition",
    "EnsembleResult": "ensemble",
    "run_ensemble": "ensemble",
    "HazardModel": "hazard",
    "run_study": "runner",
    "Study": "schema",
    "load_study": "schema",
    "validate_study": "schema",
    "StockpileResult": "stockpile",
    "size_stockpile": "stockpile",
}


__getattr__, __dir__ = lazy_names(
    globals(), {name: f"critmin.scenarios.{module}" for name, module in _LAZY.items()}
)


__all__ = [
    "Backtest",
    "EnsembleResult",
    "HazardModel",
    "StockpileResult",
    "Study",
    "backtest",
    "best_coalition",
    "coalition_problem",
    "episodes",
    "load_study",
    "run_ensemble",
    "run_study",
    "shapley",
    "size_stockpile",
    "validate_study",
]
