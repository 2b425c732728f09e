"""Dependence figures computed from the data layer: shares, concentration, reliance."""

from critmin.metrics.concentration import production_shares, supply_concentration

__all__ = ["production_shares", "supply_concentration"]
