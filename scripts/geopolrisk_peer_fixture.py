"""Run the peer library geopolrisk-py 2.0.1 on a spread of tuples and store its outputs.

Maintainer tool, run in a separate virtual environment that has the peer installed (it
needs Python 3.11 and pandas ≤ 2.3.3, so it is never a critmin dependency):

    python3.11 -m venv /tmp/peer && /tmp/peer/bin/pip install geopolrisk-py==2.0.1
    HOME=$(mktemp -d) /tmp/peer/bin/python scripts/geopolrisk_peer_fixture.py \
        tests/fixtures/geopolrisk_peer.csv

HOME points at a scratch folder because importing the peer writes into $HOME/Documents.
One `gprs_calc` call per year: the peer silently stops a call at its first failing tuple,
so the script checks that every requested tuple came back and fails loudly otherwise.
The output is data (a CSV of the peer's numbers), not code.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

YEARS = list(range(2018, 2025))
# Peer country names (its Country_ISO table); chosen to cover large importers, producers,
# the peer's quirks (Guyana's duplicate WMD code, Tunisia's NaN 2018 aluminium) and blocs.
COUNTRIES = [
    "USA",
    "China",
    "Japan",
    "Germany",
    "France",
    "India",
    "Rep. of Korea",
    "Brazil",
    "Australia",
    "Canada",
    "South Africa",
    "Guyana",
    "Tunisia",
    "Netherlands",
    "Indonesia",
    "New Zealand",
]
REGIONS = {"Quad": ["Australia", "India", "Japan", "USA"]}
ENTITIES = [*COUNTRIES, "EU", *REGIONS]
MATERIALS = [
    "Cobalt",
    "Rare earth",
    "Lithium",
    "Aluminium",
    "Copper",
    "Nickel",
    "Graphite",
    "Tungsten",
    "Germanium",
    "Lead",
    "Gold",
    "Natural gas",
    "Asbestos",
    "Chromite",
]


def main(out: Path) -> int:
    import pandas as pd
    from geopolrisk.assessment.main import gprs_calc

    frames = []
    for year in YEARS:
        result = gprs_calc([year], ENTITIES, MATERIALS, REGIONS)
        expected = len(ENTITIES) * len(MATERIALS)
        if len(result) != expected:
            missing = set(itertools.product(ENTITIES, MATERIALS)) - set(
                zip(result["Country [Economic Entity]"], result["Raw Material"], strict=True)
            )
            print(f"{year}: peer returned {len(result)} of {expected}; lost {sorted(missing)[:5]}")
            return 1
        frames.append(result)
    table = pd.concat(frames, ignore_index=True).rename(
        columns={
            "Country [Economic Entity]": "entity",
            "Raw Material": "material",
            "Year": "year",
            "GeoPolRisk Score": "score",
            "GeoPolRisk Characterization Factor [eq. Kg-Cu/Kg]": "cf",
            "HHI": "hhi",
            "Import Risk": "import_risk",
            "Price": "price",
        }
    )[["entity", "material", "year", "score", "cf", "hhi", "import_risk", "price"]]
    table["members"] = table["entity"].map(
        lambda e: "|".join(REGIONS[e]) if e in REGIONS else ("EU" if e == "EU" else e)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.17g")
    print(f"{len(table)} tuples written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
