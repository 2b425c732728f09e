"""The files the pages load come from the package: the partial Plotly.js bundle holds every
trace type the templates draw, the assets are cached for a year at digest-versioned URLs,
and /docs loads Swagger UI from the server itself."""

from __future__ import annotations

import re
from importlib.resources import files

from fastapi.testclient import TestClient

from critmin.web import create_app
from critmin.web.assets import ASSETS, url

STATIC = files("critmin.web") / "static"
TEMPLATES = files("critmin.web") / "templates"


def test_the_bundle_holds_every_trace_type_the_pages_draw():
    bundle = (STATIC / "plotly" / "plotly-critmin.min.js").read_text(encoding="utf-8")
    bundled = set(re.findall(r'moduleType:"trace",name:"([a-z0-9]+)"', bundle))
    used = set()
    for template in TEMPLATES.iterdir():
        if template.name.endswith(".html"):
            used |= set(re.findall(r'type: "([a-z0-9]+)"', template.read_text(encoding="utf-8")))
    assert used and used <= bundled, used - bundled
    assert len(bundle) < 2_000_000  # the full bundle is 4.8 MB
    assert (STATIC / "plotly" / "LICENSE.plotly.js.txt").read_text().startswith("MIT License")


def test_assets_are_cached_for_a_year_and_docs_are_local(tmp_path):
    client = TestClient(create_app(registry_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))
    for name in ASSETS:
        answer = client.get(url(name))
        assert answer.status_code == 200, name
        assert "max-age=31536000" in answer.headers["cache-control"], name
    assert client.get("/static/../app.py").status_code == 404
    docs = client.get("/docs")
    assert docs.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/static/swagger/") for s in sources), sources
    assert "cdn" not in docs.text.lower()
    page = client.get("/mineral?commodity=cobalt&year=2023")
    assert url("plotly.min.js") in page.text and url("critmin.js") in page.text
