"""critmin's stage figures next to the published ones: USGS net import reliance and China's share
of U.S. imports (USGS Mineral Commodity Summaries 2026, reference/usgs_mcs2026.csv).

The comparison is the one a reader of both would make: the same country, year and stage. USGS
works from Census trade (general imports, gross weight converted to content by USGS) and
includes stock changes and secondary (scrap) supply; critmin works from BACI (CEPII's reconciled
mirror of UN Comtrade) with the content factors of supply_chain.csv and no stocks — the
tolerances below allow for that, and docs/validation.md explains every miss.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from critmin.data.stages import stage_minerals, stages_of, usgs_reference
from critmin.metrics.api import stage_dependence

# Absolute tolerance on a fraction (reliance or share), and the years compared.
RELIANCE_TOLERANCE = 0.15
SHARE_TOLERANCE = 0.15
YEARS = (2023, 2024)
# Where USGS gives several reliance figures for one stage, the one matching critmin's codes.
SCOPE = {"titanium": "sponge", "silicon": "total", "zinc": "refined|slab"}
SCOPE_IMPORTS = {"titanium": "sponge", "magnesium": "unwrought|metal", "indium": "unwrought"}
_BOUND = re.compile(r"^\s*([<>])\s*(\d+)")


def _compare(usgs_text: str, usgs_value: float, ours: float, status: str) -> tuple[bool, str]:
    """Whether critmin's figure agrees with USGS's string (a number, '>95', '<50' or 'E')."""
    text = str(usgs_text).strip()
    if text == "E":
        return status == "net_exporter", "net exporter"
    if np.isnan(ours):
        return False, "no figure"
    bound = _BOUND.match(text)
    if bound:
        limit = int(bound.group(2)) / 100
        if bound.group(1) == ">":
            return ours >= limit - RELIANCE_TOLERANCE, f"≥ {limit:.2f} − tol"
        return ours <= limit + RELIANCE_TOLERANCE, f"≤ {limit:.2f} + tol"
    return abs(ours - usgs_value) <= RELIANCE_TOLERANCE, f"± {RELIANCE_TOLERANCE}"


def usgs_comparison(years: tuple[int, ...] = YEARS) -> pd.DataFrame:
    """U.S. net import reliance and China's share of U.S. imports, USGS vs critmin, per mineral.

    Columns: mineral, year, stage, measure (net_import_reliance | china_share_of_us_imports),
    what (USGS's scope), usgs_text, usgs_value, critmin_value, critmin_status, test (what
    "agrees" means), agrees. China's share: USGS gives 2021–24 import sources; critmin's figure
    is the tonnage-weighted share over the years of `years` with data at that stage.
    """
    reference = usgs_reference()
    mapped = set(stage_minerals())
    reference = reference[reference["mineral"].isin(mapped)]
    ours = {
        year: stage_dependence("USA", None, year=year).set_index(["commodity", "stage"])
        for year in years
    }
    rows = []
    reliance = reference[
        (reference["measure"] == "net_import_reliance") & reference["year"].isin(years)
    ]
    for item in reliance.itertuples():  # one row per published figure (~100)
        if item.stage not in stages_of(item.mineral):
            continue
        scope = SCOPE.get(item.mineral)
        if scope and not re.search(scope, str(item.what)):
            continue
        row = ours[item.year].loc[(item.mineral, item.stage)]
        agrees, test = _compare(
            item.usgs_text, item.value, float(row["import_reliance"]), row["status"]
        )
        rows.append(
            {
                "mineral": item.mineral,
                "year": item.year,
                "stage": item.stage,
                "measure": "net_import_reliance",
                "what": item.what,
                "usgs_text": item.usgs_text,
                "usgs_value": item.value,
                "critmin_value": float(row["import_reliance"]),
                "critmin_status": row["status"],
                "test": test,
                "agrees": agrees,
            }
        )
    china = reference[
        (reference["measure"] == "china_share_of_us_imports") & reference["value"].notna()
    ]
    for item in china.itertuples():
        if item.stage not in stages_of(item.mineral):
            continue
        scope = SCOPE_IMPORTS.get(item.mineral)
        if scope and not re.search(scope, str(item.what)):
            continue
        imports = np.array([ours[y].loc[(item.mineral, item.stage), "imports"] for y in years])
        shares = np.array(
            [ours[y].loc[(item.mineral, item.stage), "supplier_share"] for y in years], float
        )
        known = ~np.isnan(shares) & (imports > 0)
        value = (
            float((shares[known] * imports[known]).sum() / imports[known].sum())
            if (known.any())
            else float("nan")
        )
        rows.append(
            {
                "mineral": item.mineral,
                "year": item.year,
                "stage": item.stage,
                "measure": "china_share_of_us_imports",
                "what": item.what,
                "usgs_text": item.usgs_text,
                "usgs_value": item.value,
                "critmin_value": value,
                "critmin_status": "ok" if known.any() else "no_trade_data",
                "test": f"± {SHARE_TOLERANCE}",
                "agrees": bool(known.any() and abs(value - item.value) <= SHARE_TOLERANCE),
            }
        )
    return pd.DataFrame(rows)
