"""End to end in a real headless Chromium (Debian's, driven by Playwright): open the
overview, see its chart, run a scenario in the builder, see the charts, open the country
page (Sankey of traced origins) and the agreements tracker; screenshots are kept under the
test's output folder."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from critmin.registry.store import Registry
from critmin.registry.tokens import create_token
from critmin.web import create_app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    app = create_app(registry_url=f"sqlite:///{tmp_path / 'registry.sqlite'}")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(100):
        if running.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


def test_overview_and_builder_in_chromium(server, tmp_path, browser_page):
    page, errors = browser_page
    outside: list[str] = []  # the pages must work offline: nothing fetched from elsewhere
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.goto(f"{server}/?commodity=rare_earths&year=2023", timeout=60_000)
    page.wait_for_selector("#chart-dependence .main-svg .trace", timeout=30_000)
    # The world map draws a country shape per importer from the locally served outline.
    page.wait_for_selector("#chart-map .choroplethlocation", timeout=30_000)
    assert page.locator("#chart-map .choroplethlocation").count() > 100
    page.check('input[value="supplier_share"]')
    page.wait_for_selector("#chart-map .colorbar >> text=% direct", timeout=10_000)
    assert page.inner_text("h1").startswith("Dependence on CHN for Rare earths")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    page.goto(f"{server}/mineral?commodity=rare_earths&year=2023")
    page.wait_for_selector("#chart-concentration .main-svg .trace", timeout=30_000)
    page.wait_for_selector("#chart-history .main-svg .trace", timeout=10_000)
    assert page.locator("#chart-history .scatterlayer .trace").count() >= 5
    page.screenshot(path=str(tmp_path / "mineral.png"), full_page=True)

    page.goto(f"{server}/builder")
    page.select_option("#commodity", "graphite")
    page.fill("#targets", "USA,JPN")
    page.fill("#year", "2023")
    page.keyboard.press("Tab")
    page.click("#run")
    page.wait_for_selector("#chart-shortfall .main-svg .trace", timeout=60_000)
    page.wait_for_selector("#chart-prices .main-svg .trace", timeout=10_000)
    assert "Newton iterations" in page.inner_text("#status")
    assert "world price index" in page.inner_text("#summary")
    page.screenshot(path=str(tmp_path / "builder.png"), full_page=True)
    # The same ban with a zone and an ensemble: a background run with a progress bar.
    page.check("#zone")
    page.fill("#draws", "128")
    page.click("#run")
    page.wait_for_selector("#summary >> text=expected bloc shortfall", timeout=90_000)
    assert page.get_attribute("#progress", "value") == "1"
    page.wait_for_selector("#chart-welfare .main-svg .trace", timeout=10_000)
    page.wait_for_selector("#chart-bloc .main-svg .trace", timeout=10_000)
    page.screenshot(path=str(tmp_path / "builder-zone.png"), full_page=True)

    page.goto(f"{server}/country?importer=DEU&commodity=rare_earths&year=2023")
    page.wait_for_selector("#chart-minerals .main-svg .trace", timeout=30_000)
    page.wait_for_selector("#chart-sankey .sankey-node", timeout=30_000)
    assert page.locator("#chart-sankey .sankey-node").count() >= 3
    page.screenshot(path=str(tmp_path / "country.png"), full_page=True)

    page.goto(f"{server}/agreements?bloc=USA&year=2023")
    # No active commitment with tonnes covers the need: the chart says so instead of drawing
    # zero-height bars.
    page.wait_for_selector("#chart-coverage .empty-state, #chart-coverage .main-svg .trace",
                           state="attached", timeout=30_000)  # fmt: skip
    page.wait_for_selector("#chart-deadlines .main-svg", timeout=30_000)
    assert page.locator("table tr").count() >= 41  # header + the 40+ seeded agreements
    page.screenshot(path=str(tmp_path / "agreements.png"), full_page=True)
    # Writing from the page: a wrong token is refused, a valid one saves the record.
    page.fill("#token", "not-a-token")
    page.fill("#id", "browser-mou")
    page.fill("#title", "MoU typed in the browser")
    page.fill("#parties", "USA, AUS")
    page.fill("#minerals", "graphite")
    page.click("#save")
    page.wait_for_selector("#add-status.error", timeout=10_000)
    assert "bearer token" in page.inner_text("#add-status")
    secret = create_token(Registry(f"sqlite:///{tmp_path / 'registry.sqlite'}"), "browser")
    page.fill("#token", secret)
    page.click("#save")
    page.wait_for_selector("#add-status >> text=Saved browser-mou", timeout=10_000)
    page.reload()
    assert page.locator("table tr", has_text="MoU typed in the browser").count() == 1

    page.goto(f"{server}/builder")
    page.fill("#exporter", "Atlantis")  # a user error shows as a message, not a crash
    page.click("#run")
    page.wait_for_selector("#status.error", timeout=30_000)
    assert "unknown country" in page.inner_text("#status")
    assert not errors, errors
    assert not outside, outside
    assert (tmp_path / "overview.png").stat().st_size > 20_000
    assert (tmp_path / "builder.png").stat().st_size > 20_000


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)
               && !e.getAttribute('aria-label')
               && !(e.tagName === 'BUTTON' && e.textContent.trim()))
  .map(e => e.id || e.name || e.outerHTML.slice(0, 60))"""
CHARTS_WITHOUT_TEXT = """() => [...document.querySelectorAll('.chart')]
  .filter(e => e.getAttribute('role') !== 'img' || !e.getAttribute('aria-label')).map(e => e.id)"""


def test_pages_are_labelled_and_work_from_the_keyboard(server, browser_page):
    page, errors = browser_page
    for path in ["/", "/mineral", "/country", "/builder", "/agreements"]:
        page.goto(f"{server}{path}")
        assert page.evaluate(UNLABELLED) == [], path
        assert page.evaluate(CHARTS_WITHOUT_TEXT) == [], path
        assert page.locator("h1").count() == 1, path
        page.keyboard.press("Tab")  # the first stop is the skip link, then the navigation
        assert page.evaluate("document.activeElement.className") == "skip", path
    # Run a scenario without the mouse: tab from the last field to Run, press Enter.
    page.goto(f"{server}/builder")
    page.focus("#draws")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "run"
    page.keyboard.press("Enter")
    page.wait_for_selector("#chart-shortfall .main-svg .trace", timeout=60_000)
    assert not errors, errors
