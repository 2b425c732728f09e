"""Studies built on the market model: backtests against real export restrictions."""

from critmin.scenarios.backtest import Backtest, backtest, episodes

__all__ = ["Backtest", "backtest", "episodes"]
