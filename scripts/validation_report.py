"""Print the USGS comparison of docs/validation.md as a Markdown table (run after data changes).

.venv/bin/python scripts/validation_report.py > /tmp/table.md
"""

from __future__ import annotations

import math

from critmin.metrics.validation import usgs_comparison


def cell(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.0%}"


def main() -> None:
    table = usgs_comparison()
    print("| mineral | stage | year | measure | USGS (scope) | critmin | status | agrees |")
    print("|---|---|---|---|---|---|---|---|")
    for row in table.sort_values(["measure", "mineral", "year"]).itertuples():
        measure = "reliance" if row.measure == "net_import_reliance" else "China share"
        scope = str(row.what).split(" (share of U.S. imports")[0]
        print(
            f"| {row.mineral} | {row.stage} | {row.year} | {measure} | {row.usgs_text} "
            f"({scope}) | {cell(row.critmin_value)} | {row.critmin_status} | "
            f"{'yes' if row.agrees else 'no'} |"
        )


if __name__ == "__main__":
    main()
