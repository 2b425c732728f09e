"""A repeat visit in headless Chromium: the charts show at once as the pictures kept from the
last visit (same data, same width), styled as Plotly.js draws them, until Plotly.js has run
and drawn them live; a run's permalink fills the builder's form with the run's study."""

from __future__ import annotations

import time

import httpx

from tests.web.test_browser import server  # noqa: F401  (the fixture)

MINERAL = "/mineral?commodity=rare_earths&year=2024"
LIVE = """() => [...document.querySelectorAll('.chart')].every(
  c => !c.hasAttribute('data-picture') && c.data && c.querySelector('.main-svg'))"""


def test_a_repeat_visit_shows_the_kept_pictures_then_draws_live(server, browser_page):  # noqa: F811
    page, errors = browser_page
    page.goto(server + MINERAL)
    page.wait_for_function(LIVE, timeout=60_000)
    live = page.inner_html("#chart-history")
    # Without Plotly.js the pictures stay: each chart is there, positioned by Plotly's rules.
    page.route("**/plotly.min.js*", lambda route: route.abort())
    page.goto(server + MINERAL)
    page.wait_for_selector("#chart-history[data-picture] .main-svg", timeout=10_000)
    assert page.locator("[data-picture]").count() == 3
    assert page.locator("#chart-history .scatterlayer .trace").count() >= 5
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('#chart-history .main-svg')).position"
        )
        == "absolute"
    )
    assert page.evaluate("!!document.getElementById('critmin-picture-style')")
    assert page.inner_html("#chart-history") == live
    page.unroute("**/plotly.min.js*")
    page.goto(server + MINERAL)
    page.wait_for_function(LIVE, timeout=60_000)  # replaced by the live charts
    assert page.locator("#chart-history .main-svg").count() == live.count('class="main-svg"')
    # Other data, another picture: a different year's page shows none of this one's.
    page.route("**/plotly.min.js*", lambda route: route.abort())
    page.goto(server + "/mineral?commodity=rare_earths&year=2023")
    page.wait_for_load_state("load")
    assert page.locator("[data-picture]").count() == 0
    page.unroute("**/plotly.min.js*")
    assert not [e for e in errors if "plotly.min.js" not in e], errors


def test_a_permalink_fills_the_form_with_the_runs_study(server, browser_page):  # noqa: F811
    page, errors = browser_page
    study = {
        "name": "builder: graphite",
        "base_year": 2024,
        "horizon": "long",
        "commodities": ["graphite"],
        "bloc": "USA,JPN,KOR",
        "policies": {
            "quotas": [{"exporter": "CHN", "targets": "USA,JPN", "fraction": 0.4}],
            "zone": {
                "members": "ministerial_2026",
                "mechanism": "guarantee",
                "floors": {"graphite": 1.5},
            },
        },
        "outputs": ["markets", "prices"],
    }
    run = httpx.post(f"{server}/api/runs", json=study, timeout=120).json()
    for _ in range(240):
        if httpx.get(f"{server}/api/runs/{run['id']}").json()["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    page.goto(f"{server}/builder?run={run['id']}")
    page.wait_for_selector("#chart-shortfall .main-svg .trace", timeout=60_000)
    form = page.evaluate("Object.fromEntries(new FormData(document.getElementById('scenario')))")
    assert form == {
        "commodity": "graphite",
        "year": "2024",
        "horizon": "long",
        "bloc": "USA,JPN,KOR",
        "kind": "quota",
        "exporter": "CHN",
        "quota": "0.4",
        "targets": "USA,JPN",
        "zone": "on",
        "members": "ministerial_2026",
        "floor": "1.5",
        "mechanism": "guarantee",
        "draws": "0",
    }
    assert not errors, errors
