"""The brief: every number equals the API's, the first page is an executive summary with
sourced findings, tables are formatted for people, the CLI writes it, and a real Chromium
renders every chart with titles and prints it on A4 without a wrapped unit."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import pytest

import critmin as cm
from critmin.metrics.api import risk, stage_dependence
from critmin.report.brief import pct, pct_points, render_brief
from critmin.scenarios.briefing import briefing
from tests.cli.test_cli_end_to_end import critmin

BLOC, MINERALS, YEAR = "eu27", ["rare_earths", "graphite", "gallium"], 2024
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
    table = stage_dependence(BLOC, None, year=YEAR).set_index(["commodity", "stage"])
    assert data["stages"], "no stage rows"
    for row in data["stages"]:
        api = table.loc[(row["commodity"], row["stage"])]
        assert row["status"] == api["status"]
        for key in ("supplier_share", "traced_supplier_share", "any_stage_share"):
            if math.isnan(api[key]):  # no trade data at the stage: "–", never 0
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


def visible_text(html: str) -> str:
    body = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    body = re.sub(r"<style.*?</style>", " ", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def test_minerals_by_what_their_data_cover(brief):
    data, html, _ = brief
    # Gallium has refined-stage data (2024 processed trade): dependence and the market model
    # cover it at that stage...
    assert any(
        r["commodity"] == "gallium" and r["status"] != "no_trade_data" for r in data["stages"]
    )
    assert data["ban"]["gallium"]["stage"] == "refined" and data["ban"]["gallium"]["unit"] == "t Ga"
    # ...but the risk methods read the raw-material trade table, which has no gallium: it is
    # not covered there and not ranked (no "least risky, score 0").
    assert "gallium" not in data["risk_covered"]
    ranked = re.search(r'<table id="risk-table">(.*?)</table>', html, re.S).group(1)
    assert "gallium" not in ranked


def test_first_page_is_an_executive_summary(brief):
    _, html, _ = brief
    summary = re.search(r'<section id="executive">(.*?)</section>', html, re.S).group(1)
    items = re.findall(r"<li>(.*?)</li>", summary, re.S)
    assert 3 <= len(items) <= 5
    for item in items:
        assert "Source:" in item and re.search(r"\d", item), item
    first = items[0]
    assert "%" in first and re.search(r"\b(mine|refined|products|ores)\b", first)
    assert '<table id="options">' in summary and "fund" in summary and "tariffs raise" in summary
    assert html.index('id="executive"') < html.index('id="dependence"')


def test_tables_are_for_people_not_dataframe_dumps(brief):
    data, html, _ = brief
    text = visible_text(html)
    for raw in ("need_t", "covered_share", "supplier_share_before", "None", "nan", "e+0",
                "days left", "days_left"):  # fmt: skip
        assert not re.search(rf"\b{raw}\b", text), raw
    assert not re.search(r"-\d+ days", text)
    for row in data["deadlines"]:
        if row["overdue"]:
            assert "overdue since" in text
    # Units stick to their numbers (no-break space): a printed line cannot split them.
    assert not re.search(r"\d %", text) and not re.search(r"\d million USD", text)


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
        "brief", "--bloc", "msp", "--minerals", "REE,graphite", "--year", "2024",
        "--today", "2026-11-25", "--out", str(out), data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 1_000_000 and "brief written" in done.stdout
    # Minerals outside the market model's table: the brief is written, without options.
    japan = tmp_path / "jpn.html"
    done = critmin(
        "brief", "--bloc", "JPN", "--minerals", "gallium,germanium", "--out", str(japan),
        data_dir=isolated_user_data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    html = japan.read_text(encoding="utf-8")
    assert "refined gallium" in html and "t Ga" in html
    bad = critmin(
        "brief", "--minerals", "unobtainium", "--out", str(out), data_dir=isolated_user_data
    )
    assert bad.returncode == 2 and "unknown commodity 'unobtainium'" in bad.stderr


def wrapped_units(text: str) -> list[str]:
    """Lines of a PDF's text where a unit starts the line its number ended."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [
        f"{a} | {b}"
        for a, b in itertools.pairwise(lines)
        if re.search(r"(\d|million)$", a) and re.match(r"(%(?! of)|USD|million|months\b|t\b)", b)
    ]


def test_chromium_renders_every_chart(brief, tmp_path, browser_page):
    import shutil
    import subprocess

    page, errors = browser_page
    _, _, path = brief
    page.goto(Path(path).resolve().as_uri())
    for section in SECTIONS:
        page.wait_for_selector(f"#{section} .main-svg", timeout=20_000)
        bars = page.locator(f"#{section} .main-svg .trace").count()
        assert bars >= 1, f"{section} has no plotted trace"
        # Every chart has a title and both axes a title (with the unit).
        for part in ("gtitle", "xtitle", "ytitle"):
            assert page.locator(f"#{section} .{part}").first.text_content().strip(), (section, part)
    assert page.locator(".modebar-btn[data-title*='Share']").count() == 0
    assert page.locator(".modebar-btn--logo").count() == 0
    shot = page.screenshot(full_page=True)
    assert not errors, errors
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 50_000
    (tmp_path / "brief.png").write_bytes(shot)
    pdf = tmp_path / "brief.pdf"
    page.pdf(path=str(pdf), format="A4", prefer_css_page_size=True, print_background=True)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext") is None:
        pytest.skip("no pdftotext (poppler-utils) to read the printed PDF")
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Executive summary" in text
    assert not wrapped_units(text), wrapped_units(text)[:5]
    size = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert "(A4)" in size


def test_active_commitments_change_the_ban_and_controls_are_listed(brief):
    from critmin.scenarios.briefing import _secured

    data, html, _ = brief
    assert "cn-ga-ge-licence-2023" in html  # the tracker's measures on the brief's minerals
    assert {c["id"] for c in data["controls"]} >= {"cn-graphite-licence-2023"}
    assert 'id="secured-none"' in html  # no seeded commitment states tonnes
    record = {
        "id": "t", "status": "in_force", "parties": [{"party": "DEU"}],
        "commitments": [{"mineral": "graphite", "supplier": "CAN", "recipient": "DEU",
                         "tonnes_per_year": 50_000.0}],
    }  # fmt: skip
    import datetime as dt

    from critmin.data import countries_of

    rows = _secured([record], BLOC, countries_of(BLOC), data["ban"], YEAR, dt.date(2026, 6, 1))
    assert [r["commodity"] for r in rows] == ["graphite"]
    assert rows[0]["shortfall_pct_secured"] < rows[0]["shortfall_pct"]


def test_the_ban_and_zone_sections_at_a_named_stage(tmp_path):
    """`critmin brief --stage mine`: the market sections at that stage, and a mineral China
    sells none of at that stage (rare-earth ore: China imports it) not modelled, not zero."""
    from critmin.report import write_brief
    from critmin.scenarios.briefing import briefing

    data = briefing("JPN", ["graphite", "rare_earths"], 2024, stage="mine")
    assert {m: b["stage"] for m, b in data["ban"].items()} == {"graphite": "mine"}
    assert data["untraded"] == ["rare_earths"]
    assert {z["stage"] for z in data["zone"]["graphite"].values()} == {"mine"}
    html = write_brief(data, tmp_path / "mine.html").read_text(encoding="utf-8")
    assert "model the mine stage of every mineral" in html


def test_cli_refuses_an_unknown_stage(isolated_user_data, tmp_path):
    done = critmin(
        "brief", "--stage", "smelted", "--out", str(tmp_path / "b.html"),
        data_dir=isolated_user_data,
    )  # fmt: skip
    assert (
        done.returncode == 2 and "--stage 'smelted': give mine, refined or product" in done.stderr
    )
    assert not (tmp_path / "b.html").exists()
