"""The data layer under 'critmin dependence' runs without pandas or pyarrow (issue 18: importing
pandas alone takes most of the command's 0.8 s): the supply map, the stage trade and production
tables, rule Q1, the years with trade and the name lookups."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from critmin.data.quality import corrected_quantities
from critmin.data.resolve import commodity, countries_of, country
from critmin.data.stages import latest_common_year, stage_production_table, stage_trade_table

trade = stage_trade_table(2023, ("rare_earths",))
made = stage_production_table(2023, ("rare_earths",))
fixed = corrected_quantities(trade)
loaded = sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'pyarrow'})
print(json.dumps({
    "loaded": loaded,
    "trade": len(trade),
    "made": len(made),
    "fixed": len(fixed),
    "year": latest_common_year([("rare_earths", "refined"), ("rare_earths", "product")]),
    "country": country("DEU").iso3,
    "commodity": commodity("REE").id,
    "eu27": len(countries_of("eu27")),
}))
"""


def test_stage_tables_and_names_load_without_pandas():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["trade"] == result["fixed"] == 2482
    assert result["made"] > 10
    assert result["year"] == 2024
    assert (result["country"], result["commodity"], result["eu27"]) == ("DEU", "rare_earths", 27)
