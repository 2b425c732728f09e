"""critmin's stage figures against USGS Mineral Commodity Summaries 2026 (docs/validation.md).

Tolerances: ± 0.15 on a reliance or a share (USGS: Census trade, stocks and scrap included;
critmin: BACI, content factors, no stocks); '>X' and '<X' bounds with the same slack; 'E'
must be a net exporter. Every figure that misses is listed here with its reason, and a figure
that starts to agree or to miss differently fails the test, so the list stays true.
"""

from __future__ import annotations

import pytest

from critmin.metrics.validation import usgs_comparison

# (mineral, year, measure, USGS text) → why critmin differs. Kept in step with docs/validation.md.
KNOWN_MISSES = {
    ("antimony", 2024, "net_import_reliance", "86"): "oxide 282580 is not in the bundled trade",
    ("antimony", 2024, "china_share_of_us_imports", "66%"): "oxide 282580 not bundled",
    ("antimony", 2024, "china_share_of_us_imports", "55%"): "oxide 282580 not bundled",
    ("cobalt", 2023, "net_import_reliance", "69"): "HS92 810510 includes cobalt waste and scrap",
    ("nickel", 2024, "net_import_reliance", "43"): "USGS counts scrap; no refinery series",
    ("palladium", 2023, "net_import_reliance", "38"): "recycling counted by USGS, not here",
    ("palladium", 2024, "net_import_reliance", "34"): "recycling counted by USGS, not here",
    ("platinum", 2023, "net_import_reliance", "83"): "recycling counted by USGS, not here",
    ("platinum", 2024, "net_import_reliance", "85"): "recycling counted by USGS, not here",
    ("rare_earths", 2024, "net_import_reliance", "53"): "BACI imports above Census; factor 0.8",
    ("silicon", 2024, "net_import_reliance", "<50"): "U.S. production withheld (W)",
    ("titanium", 2024, "net_import_reliance", ">95"): "U.S. sponge production withheld (W)",
    ("indium", 2024, "china_share_of_us_imports", "12%"): "basket 811292 shares one split",
    ("tantalum", 2024, "china_share_of_us_imports", "47%"): "metal only vs all forms in data",
}
# Stages whose codes are only in the processed-stage extract (2024 with quantities): 2023 has
# no figure, and says so (status no_trade_data) rather than printing one.
NOT_IN_2023 = {"antimony", "chromium", "copper", "gallium", "germanium", "indium", "magnesium"}
NOT_IN_2023 |= {"manganese", "nickel", "silicon", "tin", "titanium"}
NO_TRADE = {"chromium", "manganese", "tin"}  # refined codes in no bundled table


@pytest.fixture(scope="module")
def comparison():
    return usgs_comparison()


def test_every_figure_agrees_or_its_miss_is_explained(comparison):
    unexplained = []
    for row in comparison.itertuples():
        key = (row.mineral, row.year, row.measure, row.usgs_text)
        if row.agrees:
            assert key not in KNOWN_MISSES, f"{key} now agrees: update the list and the docs"
            continue
        if row.critmin_status == "no_trade_data" and (
            (row.year == 2023 and row.mineral in NOT_IN_2023) or row.mineral in NO_TRADE
        ):
            continue
        if key not in KNOWN_MISSES:
            unexplained.append((*key, row.critmin_value, row.critmin_status))
    assert not unexplained, unexplained


def test_at_least_fifteen_minerals_agree_with_usgs(comparison):
    agreeing = set(comparison.loc[comparison["agrees"], "mineral"])
    assert len(agreeing) >= 15, sorted(agreeing)
    reliance = comparison[comparison["measure"] == "net_import_reliance"]
    assert reliance["mineral"].nunique() >= 15


def test_headline_minerals_agree(comparison):
    agreeing = comparison[comparison["agrees"]]
    for mineral, year in (
        ("rare_earths", 2023),
        ("gallium", 2024),
        ("germanium", 2024),
        ("graphite", 2024),
        ("cobalt", 2024),
        ("copper", 2024),
        ("magnesium", 2024),
    ):
        hit = agreeing[(agreeing["mineral"] == mineral) & (agreeing["year"] == year)]
        assert len(hit), (mineral, year)
