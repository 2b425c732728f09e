"""Speed as felt (issue 17): kept answers carry an ETag and a repeat is a 304 with no body;
a kept answer is dropped when the dataset changes; pages, JSON and static files go gzipped to
a client that accepts it; the map outline has a digest-versioned URL; /docs carries the
OpenAPI document in the page; a run's permalink gives the builder the study back."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from critmin.registry.store import Registry
from critmin.registry.tokens import create_token
from critmin.scenarios.schema import validate_study
from critmin.web import cache, create_app
from critmin.web.assets import asset, topojson_url, url
from critmin.web.jobs import Job


@pytest.fixture
def client(tmp_path, isolated_user_data):
    return TestClient(create_app(registry_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))


@pytest.mark.parametrize("path", ["/builder", "/docs", "/mineral?commodity=gallium&year=2024"])
def test_a_repeat_with_the_etag_is_a_304_without_body(client, path):
    first = client.get(path)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "no-cache"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    assert "content-security-policy" in again.headers  # the security headers still come
    other = client.get(path, headers={"If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200 and other.content == first.content


def test_json_answers_have_etags_and_errors_are_not_kept(client):
    answer = client.get("/api/concentration/gallium", params={"year": 2024})
    assert answer.status_code == 200 and answer.headers["etag"]
    asked = {"If-None-Match": answer.headers["etag"]}
    assert client.get("/api/concentration/gallium?year=2024", headers=asked).status_code == 304
    wrong = client.get("/api/concentration/unobtainium")
    assert wrong.status_code == 404 and "etag" not in wrong.headers


def test_a_kept_answer_is_dropped_when_the_dataset_changes(monkeypatch):
    calls = []

    def answer(x):
        calls.append(x)
        return {"x": x, "call": len(calls)}

    kept = cache.Cached(answer)
    monkeypatch.setattr(cache, "dataset_stamp", lambda: "dataset@1")
    one = asyncio.run(kept(1))
    assert asyncio.run(kept(1)).body == one.body and calls == [1]  # kept
    monkeypatch.setattr(cache, "dataset_stamp", lambda: "dataset@2")  # an import
    two = asyncio.run(kept(1))
    assert calls == [1, 1] and json.loads(two.body)["call"] == 2
    assert two.headers["etag"] != one.headers["etag"]


def test_pages_json_and_static_files_are_gzipped_for_clients_that_accept_it(client):
    page = client.get("/builder", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip" and "<h1>Scenario builder</h1>" in page.text
    for name in ("plotly.min.js", "swagger/swagger-ui-bundle.js", "topojson/world_110m.json"):
        raw = client.get(url(name), headers={"Accept-Encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip", name
        assert raw.headers["vary"] == "Accept-Encoding"
        assert "immutable" in raw.headers["cache-control"]
        assert int(raw.headers["content-length"]) < len(asset(name)) / 2, name
        assert raw.content == asset(name)  # httpx undoes the gzip
        plain = client.get(url(name), headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == asset(name)
    png = client.get(url("swagger/favicon-32x32.png"), headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in png.headers  # already compressed


def test_the_map_outline_has_a_digest_versioned_url(client):
    page = client.get("/builder").text
    folder = unescape(re.search(r'data-topojson="([^"]+)"', page).group(1))
    assert folder == topojson_url() and re.fullmatch(r"/static/topojson-[0-9a-f]{12}/", folder)
    outline = client.get(folder + "world_110m.json")
    assert outline.status_code == 200 and "immutable" in outline.headers["cache-control"]
    assert outline.json()["type"] == "Topology"
    assert client.get(folder + "elsewhere.json").status_code == 404
    plotly = unescape(re.search(r'data-plotly="([^"]+)"', page).group(1))
    assert plotly == url("plotly.min.js")
    assert f'<link rel="preload" href="{plotly}" as="script">' in page


def test_docs_carry_the_openapi_document(client):
    page = client.get("/docs").text
    spec = re.search(r'<script id="openapi" type="application/json">(.*?)</script>', page, re.S)
    assert json.loads(spec.group(1)) == client.get("/openapi.json").json()
    assert "</" not in spec.group(1)  # escaped: nothing in it can close the element
    gzipped = client.get("/docs", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert len(gzip.compress(gzipped.content)) < len(gzipped.content)


def test_the_agreements_page_is_kept_until_the_registry_changes(client, tmp_path):
    first = client.get("/agreements", params={"bloc": "USA", "year": 2024})
    etag = first.headers["etag"]
    asked = {"If-None-Match": etag}
    assert client.get("/agreements?bloc=USA&year=2024", headers=asked).status_code == 304
    secret = create_token(Registry(f"sqlite:///{tmp_path / 'r.sqlite'}"), "tester")
    record = {"id": "cache-mou", "title": "MoU that changes the page", "kind": "memorandum",
              "status": "announced", "parties": [{"party": "USA"}, {"party": "AUS"}],
              "minerals": ["graphite"]}  # fmt: skip
    added = client.post(
        "/api/agreements", json=record, headers={"Authorization": f"Bearer {secret}"}
    )
    assert added.status_code == 201, added.text
    after = client.get("/agreements?bloc=USA&year=2024", headers=asked)
    assert after.status_code == 200 and "MoU that changes the page" in after.text
    assert after.headers["etag"] != etag


def test_a_run_view_gives_the_study_back_for_the_builder_form(tmp_path):
    study = validate_study(
        {
            "name": "builder: graphite",
            "base_year": 2024,
            "horizon": "long",
            "commodities": ["graphite"],
            "bloc": "USA,JPN",
            "policies": {
                "quotas": [{"exporter": "CHN", "targets": "USA", "fraction": 0.4}],
                "zone": {"members": "g7", "mechanism": "guarantee", "floors": {"graphite": 1.5}},
            },
            "outputs": ["markets", "prices"],
        },
        "body",
    )
    view = Job("a" * 32, study, tmp_path, 1).view()
    assert view["study"]["policies"]["quotas"][0]["fraction"] == 0.4
    assert view["study"]["policies"]["zone"]["floors"] == {"graphite": 1.5}
    assert validate_study(view["study"], "view") == study


def test_a_new_dataset_drops_the_figures_the_pages_are_made_of(client, monkeypatch):
    from critmin.web import pages

    assert client.get("/mineral?commodity=gallium&year=2024").status_code == 200
    assert pages._mineral.cache_info().currsize >= 1
    monkeypatch.setattr(pages, "dataset_stamp", lambda: "an imported dataset")
    monkeypatch.setattr(cache, "dataset_stamp", lambda: "an imported dataset")
    pages._follow_dataset()
    assert pages._mineral.cache_info().currsize == 0 and pages._traded.cache_info().currsize == 0
    again = client.get("/mineral?commodity=gallium&year=2024")  # computed anew, same data
    assert again.status_code == 200 and pages._mineral.cache_info().currsize == 1
