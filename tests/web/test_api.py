# ruff: noqa: E501  (request/expectation tables read best unwrapped)
"""The JSON API through FastAPI's test client: answers equal the Python API, errors are JSON
with the right status (never 500), writes need a bearer token."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import critmin as cm
from critmin.registry.store import SEED_FILE, Registry
from critmin.registry.tokens import create_token, revoke_token
from critmin.web import create_app

SEED = json.loads(SEED_FILE.read_text(encoding="utf-8"))


@pytest.fixture
def client(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    app = create_app(registry_url=url, read_token_required=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.registry_url = url
        yield test_client


def test_dependence_equals_the_python_api(client):
    response = client.get(
        "/api/dependence", params={"importer": "DEU", "commodity": "REE", "year": 2023}
    )
    assert response.status_code == 200
    rows = {row["stage"]: row for row in response.json()}
    api = cm.dependence("DEU", "REE", year=2023).set_index("stage")
    assert set(rows) == set(api.index) == {"mine", "refined", "product"}
    refined = rows["refined"]
    assert refined["supplier_share"] == pytest.approx(api.loc["refined", "supplier_share"])
    assert refined["status"] == api.loc["refined", "status"]
    # A stage without trade that year: a status and no number that looks like a share.
    assert rows["product"]["status"] == "no_trade_data"
    assert rows["product"]["import_reliance"] is None


def test_read_endpoints(client):
    assert client.get(
        "/api/trace", params={"importer": "DEU", "commodity": "REE", "year": 2023}
    ).json()["origins"]
    conc = client.get("/api/concentration/gallium", params={"year": 2024}).json()
    assert conc["commodity"] == "gallium" and conc["countries"]
    assert client.get(
        "/api/risk", params={"importer": "EU", "commodity": "cobalt", "year": 2023}
    ).json()
    shock = client.post("/api/shock", json={"exporter": "CHN", "commodity": "REE", "ban": True,
                                             "targets": "USA,JPN", "year": 2023})  # fmt: skip
    assert shock.status_code == 200 and shock.json()["summary"]["bloc_supplier_share"] == 0
    zone = client.post(
        "/api/zone", json={"members": "g7", "floors": {"rare_earths": 1.3}, "year": 2023}
    )
    assert zone.status_code == 200 and "rare_earths" in zone.json()
    assert len(client.get("/api/agreements").json()) == len(SEED["agreements"])
    assert client.get("/openapi.json").json()["info"]["title"] == "critmin"


def test_shock_and_zone_at_a_named_stage(client):
    """Issue 16: the API takes the stage and China's production quota, and says the stage."""
    shock = client.post(
        "/api/shock",
        json={"exporter": "CHN", "commodity": "rare_earths", "quota": 0.692, "year": 2024,
              "stage": "refined", "production_quota": 0.9},
    )  # fmt: skip
    assert shock.status_code == 200, shock.text
    summary = shock.json()["summary"]
    assert summary["stage"] == "refined"
    # China sells no rare-earth ore (it imports it): a clear 400, not a silent zero
    none = client.post(
        "/api/shock",
        json={"exporter": "CHN", "commodity": "rare_earths", "ban": True, "year": 2024,
              "stage": "mine"},
    )  # fmt: skip
    assert none.status_code == 400 and "nothing to act on" in none.json()["error"]
    mine = client.post(
        "/api/shock",
        json={"exporter": "USA", "commodity": "rare_earths", "ban": True, "year": 2024,
              "stage": "mine"},
    )  # fmt: skip
    assert mine.status_code == 200 and mine.json()["summary"]["stage"] == "mine"
    zone = client.post(
        "/api/zone",
        json={"members": "g7", "floors": {"rare_earths": 1.3}, "year": 2024, "stage": "refined"},
    )
    assert zone.status_code == 200 and zone.json()["rare_earths"]["summary"]["stage"] == "refined"
    bad = client.post(
        "/api/shock",
        json={"exporter": "CHN", "commodity": "REE", "ban": True, "stage": "smelted"},
    )
    assert bad.status_code == 422 and "stage" in bad.text


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "message"),
    [
        ("get", "/api/dependence", {"params": {"importer": "Germny", "commodity": "REE"}}, 404, "unknown country or group 'Germny'"),
        ("get", "/api/dependence", {"params": {"importer": "DEU", "year": "soon"}}, 422, "year: Input should be a valid integer"),
        ("get", "/api/dependence", {}, 422, "importer: Field required"),
        ("post", "/api/shock", {"json": {"exporter": "CHN", "commodity": "REE", "quota": 1.5}}, 422, "quota: Input should be less than or equal to 1"),
        ("post", "/api/shock", {"json": {"exporter": "CHN", "commodity": "REE", "colour": 1}}, 422, "colour: Extra inputs are not permitted"),
        ("post", "/api/shock", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON decode error"),
        ("post", "/api/shock", {"json": {"exporter": "CHN", "commodity": "REE"}}, 400, "exactly one of a ban or a quota"),
        ("post", "/api/zone", {"json": {"members": "g7", "floors": {"rare_earths": -1}}}, 400, "price floor must be a finite number"),
        ("get", "/api/agreements/nope", {}, 404, "nope"),
    ],
)  # fmt: skip
def test_errors_are_json_with_the_right_status(client, method, path, kwargs, status, message):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_world_dependence_and_the_pages(client):
    world = client.get("/api/dependence/world", params={"commodity": "REE", "year": 2023})
    assert world.status_code == 200
    rows = {row["importer"]: row for row in world.json()}
    one = cm.dependence("JPN", "REE", year=2023, stage="refined").iloc[0]
    assert rows["JPN"]["traced_supplier_share"] == pytest.approx(one["traced_supplier_share"])
    assert rows["JPN"]["stage"] == "refined" and rows["JPN"]["unit"] == "t REO"
    outline = client.get("/static/topojson/world_110m.json")
    assert outline.status_code == 200 and outline.json()["type"] == "Topology"
    for path, text in [
        ("/?commodity=REE&year=2023", "Dependence on CHN for Rare earths"),
        ("/mineral?commodity=cobalt&year=2023", "Cobalt: where it is mined"),
        ("/mineral?commodity=cobalt&year=2010", "mine production <strong>no data"),
        ("/?commodity=cobalt&year=2010", "Dependence on CHN for Cobalt"),
        ("/country?importer=EU&commodity=cobalt&year=2023", "EU"),
        ("/builder", "Scenario builder"),
        ("/agreements?bloc=USA&year=2023", "Agreements"),
    ]:
        page = client.get(path)
        assert page.status_code == 200 and text in page.text, path
    assert client.get("/mineral?commodity=unobtainium").status_code == 404
    before_mining_data = client.get("/api/concentration/cobalt", params={"year": 2010}).json()
    mine = {s["stage"]: s for s in before_mining_data["stages"]}["mine"]
    assert mine["production_hhi"] is None  # World Mining Data starts in 2018


def test_writes_need_a_valid_token(client):
    record = {"id": "test-mou", "title": "Test MoU", "kind": "memorandum", "status": "signed",
              "signed": "2026-02-04", "parties": [{"party": "USA"}, {"party": "JPN"}]}  # fmt: skip
    assert client.post("/api/agreements", json=record).status_code == 401
    bad = client.post("/api/agreements", json=record, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "bearer token" in bad.json()["error"]
    registry = Registry(client.registry_url)
    secret = create_token(registry, "analyst")
    headers = {"Authorization": f"Bearer {secret}"}
    created = client.post("/api/agreements", json=record, headers=headers)
    assert created.status_code == 201, created.text
    assert client.get("/api/agreements/test-mou").json()["title"] == "Test MoU"
    malformed = client.post("/api/agreements", json={"id": "x"}, headers=headers)
    assert malformed.status_code == 422 and "problem" in malformed.json()["error"]
    again = client.post("/api/agreements", json=record, headers=headers)
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    revoke_token(registry, "analyst")
    assert (
        client.post("/api/agreements", json={**record, "id": "other"}, headers=headers).status_code
        == 401
    )


READS = ["/api/dependence?importer=DEU&commodity=REE", "/api/dependence/world?commodity=REE",
         "/api/trace?importer=DEU&commodity=REE", "/api/concentration/gallium",
         "/api/risk?importer=EU&commodity=cobalt", "/api/agreements",
         "/api/agreements/us-aus-framework-2025", "/api/runs", "/", "/builder",
         "/country?importer=DEU", "/mineral?commodity=gallium", "/agreements"]  # fmt: skip


def test_reads_can_be_closed_and_bodies_are_limited(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    app = create_app(registry_url=url, read_token_required=True)
    with TestClient(app) as closed:
        # Every read, pages included (they show the same data), needs a token; the schema
        # lists every API read, so a new one left open fails here.
        schema_reads = {
            path for path, methods in closed.get("/openapi.json").json()["paths"].items()
            if "get" in methods
        }  # fmt: skip
        covered = {path.split("?")[0] for path in READS}
        assert schema_reads - {"/api/health"} <= covered | {
            "/api/concentration/{commodity}", "/api/agreements/{ident}", "/api/runs/{ident}",
            "/api/runs/{ident}/tables/{table}",
        }  # fmt: skip
        for path in READS:
            assert closed.get(path).status_code == 401, path
        assert closed.get("/api/runs/" + "0" * 32).status_code == 401
        secret = create_token(Registry(url), "reader")
        with_token = {"Authorization": f"Bearer {secret}"}
        for path in READS:
            assert closed.get(path, headers=with_token).status_code == 200, path
        assert closed.get("/api/health").status_code == 200  # for load balancers
        too_big = closed.post(
            "/api/shock", content=b"x" * 1_000_001, headers={"content-type": "application/json"}
        )
        assert too_big.status_code == 413


HOSTILE_TITLE = "</script><script>window.pwned = 1</script><!--<script> & '\"\u2028"


def test_text_a_writer_stored_cannot_run_as_script_on_the_pages(client):
    """Stored XSS: an agreement title that would close the page's <script> element or open
    a comment inside it comes back as data, the same text once the page's JSON is parsed."""
    import datetime as dt
    import json
    import re

    soon = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    record = {"id": "hostile", "title": HOSTILE_TITLE, "kind": "memorandum", "status": "signed",
              "parties": [{"party": "USA"}, {"party": "JPN"}],
              "milestones": [{"title": HOSTILE_TITLE, "planned": soon, "status": "planned"}]}  # fmt: skip
    secret = create_token(Registry(client.registry_url), "writer")
    created = client.post("/api/agreements", json=record,
                          headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert created.status_code == 201, created.text
    page = client.get("/agreements").text
    assert "<script>window.pwned" not in page and "<!--<script>" not in page
    # The deadline chart's data: one <script> element, whose JSON holds the title unchanged.
    due = json.loads(re.search(r"const due = (\[.*?\]);\n", page).group(1))
    assert HOSTILE_TITLE in [item["title"] for item in due]
    # Every other place the title shows is HTML-escaped text.
    assert "&lt;/script&gt;&lt;script&gt;window.pwned" in page


def test_security_headers_on_pages_answers_and_refusals(client):
    """CSP (own scripts only, no framing), nosniff, no framing, on every kind of answer."""
    answers = [
        client.get("/"),
        client.get("/api/health"),
        client.get("/api/dependence", params={"importer": "Germny", "commodity": "REE"}),
        client.post(
            "/api/shock", content=b"x" * 1_000_001, headers={"content-type": "application/json"}
        ),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 413]
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"


def test_a_defect_is_a_json_500_without_details(tmp_path, monkeypatch, caplog):
    """An unexpected exception (a bug, not bad input) answers JSON, keeps the traceback and
    its text (paths, data) in the server log, out of the answer."""
    import critmin.web.app as web_app

    def broken(*args, **kwargs):
        raise RuntimeError("/home/analyst/secret.csv")

    monkeypatch.setattr(web_app, "stage_dependence", broken)
    app = create_app(registry_url=f"sqlite:///{tmp_path / 'r.sqlite'}", read_token_required=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/dependence", params={"importer": "DEU", "commodity": "REE"})
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error; the server log has the details"}
    assert "secret.csv" not in answer.text
    assert "secret.csv" in caplog.text
    assert answer.headers["x-content-type-options"] == "nosniff"
