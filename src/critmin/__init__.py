"""critmin: critical-minerals supply-chain policy analysis on open data.

import critmin as cm
cm.production(commodity="gallium", year=2024)

Importing critmin only defines names: each public function is loaded from its module on
first use (module `__getattr__`), so `import critmin` and `critmin --help` stay quick and
do not import pandas, DuckDB, SciPy, SQLAlchemy or FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from critmin._lazy import lazy_names
from critmin.errors import CritminError, DataError, InputError, SolverError

if TYPE_CHECKING:  # for type checkers and editors; at run time `__getattr__` loads them
    from critmin.data import (
        commodity,
        countries_of,
        country,
        governance,
        group,
        production,
        trade,
    )
    from critmin.market.api import shock, zone
    from critmin.market.linked_report import linked_shock, linked_zone
    from critmin.metrics import dependence, production_shares, trace

# public name -> the module that defines it
_LAZY = {
    "commodity": "critmin.data",
    "countries_of": "critmin.data",
    "country": "critmin.data",
    "governance": "critmin.data",
    "group": "critmin.data",
    "production": "critmin.data",
    "trade": "critmin.data",
    "shock": "critmin.market.api",
    "zone": "critmin.market.api",
    "linked_shock": "critmin.market.linked_report",
    "linked_zone": "critmin.market.linked_report",
    "dependence": "critmin.metrics",
    "production_shares": "critmin.metrics",
    "trace": "critmin.metrics",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("critmin")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0"


_load, _names = lazy_names(globals(), _LAZY)


def __getattr__(name: str) -> object:
    """Load a public function (or `__version__`) on first use and keep it."""
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    return _load(name)


def __dir__() -> list[str]:
    return sorted({*_names(), "__version__"})


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
    "linked_shock",
    "linked_zone",
    "production",
    "production_shares",
    "shock",
    "trace",
    "trade",
    "zone",
]
