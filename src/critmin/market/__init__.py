"""The partial-equilibrium market model: calibration, policies, solver, welfare."""

from critmin.market.calibration import Calibration, calibrate, calibrate_from_tables
from critmin.market.model import BatchResult, simulate, simulate_batch
from critmin.market.parameters import Parameters, parameter_specs, resolve_parameters
from critmin.market.policies import Ban, ExportTax, Quota, Release, Scenario, Tariff, Zone
from critmin.market.result import MarketResult

__all__ = [
    "Ban",
    "BatchResult",
    "Calibration",
    "ExportTax",
    "MarketResult",
    "Parameters",
    "Quota",
    "Release",
    "Scenario",
    "Tariff",
    "Zone",
    "calibrate",
    "calibrate_from_tables",
    "parameter_specs",
    "resolve_parameters",
    "simulate",
    "simulate_batch",
]
