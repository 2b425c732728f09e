"""The brief: every number equals the API's, the CLI writes it, and a real Chromium renders
every chart."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

import critmin as cm
from critmin.metrics.api import risk
from critmin.report.brief import pct, pct_points, render_brief
from critmin.scenarios.briefing import briefing
from tests.cli.test_cli_end_to_end import critmin

BLOC, MINERALS, YEAR = "msp", ["rare_earths", "graphite", "gallium"], 2023
SECTIONS = ["chart-dependence", "chart-risk", "chart-ban", "chart-zone", "chart-stockpile"]


@pytest.fixture(scope="module")
def brief(tmp_path_factory):
    data = briefing(BLOC, MINERALS, YEAR)
    html = render_brief(data)
    path = tmp_path_factory.mktemp("brief") / "brief.html"
    path.write_text(html, encoding="utf-8")
    return data, html, path


def embedded(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="brief-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_every_number_equals_the_api(brief):
    data, html, _ = brief
    assert embedded(html) == json.loads(json.dumps(data, default=str))
    table = cm.dependence(BLOC, None, year=YEAR).set_index("commodity")
    for row in data["dependence"]:
        api = table.loc[row["commodity"]]
        for key in ("supplier_share", "traced_supplier_share"):
            if math.isnan(api[key]):  # no imports (gallium): shown as "–", not as 0
                assert row[key] is None
            else:
                assert row[key] == pytest.approx(api[key], rel=1e-12)
                assert pct(row[key]) in html
    scores = risk(BLOC, None, YEAR).set_index("commodity")["score"]
    for row in data["geopolrisk"]:
        assert row["score"] == pytest.approx(scores[row["commodity"]], rel=1e-12)
        assert f"{row['score']:.4f}" in html
    for mineral, ban in data["ban"].items():
        api = cm.shock("CHN", mineral, ban=True, targets=BLOC, year=YEAR).summary
        assert ban["bloc_shortfall_pct"] == pytest.approx(api["bloc_shortfall_pct"], rel=1e-9)
        assert ban["world_price_index"] == pytest.approx(api["world_price_index"], rel=1e-9)
        assert pct_points(ban["bloc_shortfall_pct"]) in html
        stock = data["stockpile"][mineral]
        assert stock["tonnes"] == pytest.approx(
            api["bloc_consumption_base_t"] - api["bloc_consumption_t"], rel=1e-9
        )
    zones = {
        mechanism: cm.zone(BLOC, dict.fromkeys(data["traded"], 1.3), mechanism=mechanism, year=YEAR)
        for mechanism in ("tariff", "guarantee")
    }
    for mineral, by_mechanism in data["zone"].items():
        for mechanism, figures in by_mechanism.items():
            api = zones[mechanism][mineral].summary
            assert figures["china_share"] == pytest.approx(api["bloc_supplier_share"], rel=1e-9)
            assert figures["fund_cost_kusd"] == pytest.approx(
                api["fund_cost_kusd"], rel=1e-9, abs=1e-6
            )
            assert pct(figures["china_share"]) in html


def test_minerals_without_trade_are_named_not_modelled(brief):
    data, html, _ = brief
    assert data["untraded"] == ["gallium"] and "gallium" not in data["ban"]
    assert "No trade data in the bundled dataset for gallium" in html


def test_the_brief_is_self_contained(brief):
    _, html, _ = brief
    # Nothing is fetched: no external script or stylesheet (plotly.js is inlined).
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert html.count("<script>") >= len(SECTIONS) + 1  # plotly.js + one per chart
    for section in SECTIONS:
        assert f'id="{section}"' in html


def test_cli_writes_the_brief(isolated_user_data, tmp_path):
    out = tmp_path / "b.html"
    done = critmin(
        "brief", "--bloc", "msp", "--minerals", "REE,graphite", "--year", "2023",
        "--today", "2026-11-25", "--out", str(out), data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 1_000_000 and "brief written" in done.stdout
    bad = critmin(
        "brief", "--minerals", "unobtainium", "--out", str(out), data_dir=isolated_user_data
    )
    assert bad.returncode == 2 and "unknown commodity 'unobtainium'" in bad.stderr


def test_chromium_renders_every_chart(brief, tmp_path, browser_page):
    page, errors = browser_page
    _, _, path = brief
    page.goto(Path(path).resolve().as_uri())
    for section in SECTIONS:
        page.wait_for_selector(f"#{section} .main-svg", timeout=20_000)
        bars = page.locator(f"#{section} .main-svg .trace").count()
        assert bars >= 1, f"{section} has no plotted trace"
    shot = page.screenshot(full_page=True)
    assert not errors, errors
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 50_000
    (tmp_path / "brief.png").write_bytes(shot)
