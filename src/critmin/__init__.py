"""critmin: critical-minerals supply-chain policy analysis on open data.

import critmin as cm
cm.production(commodity="gallium", year=2024)
"""

from importlib.metadata import PackageNotFoundError, version

from critmin.data import (
    commodity,
    countries_of,
    country,
    governance,
    group,
    production,
    trade,
)
from critmin.errors import CritminError, DataError, InputError, SolverError
from critmin.market.api import shock, zone
from critmin.metrics import dependence, production_shares, trace

try:
    __version__ = version("critmin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "CritminError",
    "DataError",
    "InputError",
    "SolverError",
    "__version__",
    "commodity",
    "countries_of",
    "country",
    "dependence",
    "governance",
    "group",
    "production",
    "production_shares",
    "shock",
    "trace",
    "trade",
    "zone",
]
