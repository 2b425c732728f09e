"""The dataset catalog: bundled Parquet tables, importers, commodities, countries and groups.

Names are loaded from their modules on first use (module `__getattr__`), so importing one
module of this package (`critmin.data.catalog`, say) does not import pandas with the rest:
the command-line paths that must start quickly read the tables without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from critmin._lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and editors; at run time `__getattr__` loads them
    from critmin.data.catalog import manifests, query, table_source, user_data_dir
    from critmin.data.controls import export_controls
    from critmin.data.groups import Group, load_groups
    from critmin.data.resolve import (
        Commodity,
        Country,
        all_commodities,
        all_countries,
        commodity,
        countries_of,
        country,
        group,
    )
    from critmin.data.tables import governance, production, trade

# public name -> the module that defines it
_LAZY = {
    "manifests": "critmin.data.catalog",
    "query": "critmin.data.catalog",
    "table_source": "critmin.data.catalog",
    "user_data_dir": "critmin.data.catalog",
    "export_controls": "critmin.data.controls",
    "Group": "critmin.data.groups",
    "load_groups": "critmin.data.groups",
    "Commodity": "critmin.data.resolve",
    "Country": "critmin.data.resolve",
    "all_commodities": "critmin.data.resolve",
    "all_countries": "critmin.data.resolve",
    "commodity": "critmin.data.resolve",
    "countries_of": "critmin.data.resolve",
    "country": "critmin.data.resolve",
    "group": "critmin.data.resolve",
    "governance": "critmin.data.tables",
    "production": "critmin.data.tables",
    "trade": "critmin.data.tables",
}


__getattr__, __dir__ = lazy_names(globals(), _LAZY)

__all__ = [
    "Commodity",
    "Country",
    "Group",
    "all_commodities",
    "all_countries",
    "commodity",
    "countries_of",
    "country",
    "export_controls",
    "governance",
    "group",
    "load_groups",
    "manifests",
    "production",
    "query",
    "table_source",
    "trade",
    "user_data_dir",
]
