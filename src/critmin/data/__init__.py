"""The dataset catalog: bundled Parquet tables, importers, commodities, countries and groups."""

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
