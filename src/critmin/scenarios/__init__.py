"""Studies built on the market model: scenario files, Monte Carlo ensembles (local or on
Dask), coalition search, stockpile sizing, backtests against real export restrictions."""

from critmin.scenarios.backtest import Backtest, backtest, episodes
from critmin.scenarios.coalition import best_coalition, coalition_problem, shapley
from critmin.scenarios.ensemble import EnsembleResult, run_ensemble
from critmin.scenarios.hazard import HazardModel
from critmin.scenarios.runner import run_study
from critmin.scenarios.schema import Study, load_study, validate_study
from critmin.scenarios.stockpile import StockpileResult, size_stockpile

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
