"""Scenario runs as background jobs: progress, results equal to `critmin run`'s, limits and
errors (422 for a bad study, 404 for an unknown run, never 500)."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from critmin.scenarios.runner import run_study
from critmin.scenarios.schema import validate_study
from critmin.web import create_app
from critmin.web.jobs import default_runs_dir

STUDY = {
    "name": "zone under a Chinese ban",
    "base_year": 2023,
    "commodities": ["rare_earths"],
    "bloc": "USA,JPN",
    "policies": {
        "bans": [{"exporter": "CHN", "targets": "USA,JPN"}],
        "zone": {"members": "g7", "floors": {"rare_earths": 1.3}},
    },
    "ensemble": {"draws": 100, "seed": 3},
    "outputs": ["markets", "prices", "ensemble"],
}


@pytest.fixture
def client(tmp_path):
    app = create_app(registry_url=f"sqlite:///{tmp_path / 'registry.sqlite'}")
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def wait(client, ident: str, seconds: float = 60) -> dict:
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{ident}").json()
        seen.append(run["done"])
        if run["status"] in ("done", "failed"):
            run["seen"] = seen
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {ident} not finished after {seconds} s: {run}")


def test_a_run_reports_progress_and_matches_critmin_run(client, tmp_path):
    started = client.post("/api/runs", json=STUDY)
    assert started.status_code == 202, started.text
    assert started.json()["total"] == 101  # one market solve + 100 draws
    run = wait(client, started.json()["id"])
    assert run["status"] == "done", run["error"]
    assert run["seen"] == sorted(run["seen"]) and run["done"] == 101 and run["progress"] == 1
    assert set(run["tables"]) == {"markets", "prices", "ensemble"}
    # The same study through the runner directly (what `critmin run` calls).
    direct = run_study(validate_study(STUDY), out=tmp_path / "direct")
    served = pd.DataFrame(client.get(f"/api/runs/{run['id']}/tables/markets").json())
    expected = direct["results"]["rare_earths"].markets
    assert served["shortfall_t"].to_numpy() == pytest.approx(expected["shortfall_t"].to_numpy())
    ours = run["summary"]["ensembles"]["rare_earths"]["bloc_expected_shortfall_pct"]
    theirs = direct["summary"]["ensembles"]["rare_earths"]["bloc_expected_shortfall_pct"]
    assert ours == pytest.approx(theirs, rel=1e-12)  # same seed, same draws
    assert (
        run["summary"]["provenance"]["scenario_hash"]
        == (direct["summary"]["provenance"]["scenario_hash"])
    )
    listed = client.get("/api/runs").json()
    assert [r["id"] for r in listed] == [run["id"]]


def test_yaml_bodies_are_accepted(client):
    body = yaml.safe_dump({**STUDY, "ensemble": None, "outputs": ["markets"]})
    started = client.post("/api/runs", content=body, headers={"content-type": "application/yaml"})
    assert started.status_code == 202, started.text
    assert wait(client, started.json()["id"])["status"] == "done"


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ({**STUDY, "ensemble": {"draws": 50_000}}, None, "exceed this server's limit"),
        ({**STUDY, "bloc": "Atlantis"}, None, "unknown country or group 'Atlantis'"),
        ({**STUDY, "extends": "/etc/passwd"}, None, "extends names a file"),
        ({**STUDY, "commodities": ["unobtainium"]}, None, "unobtainium"),
        ({**STUDY, "colour": "red"}, None, "unknown key"),
        ([1, 2], None, "a study is a mapping"),
        (b"\xff\xfe not utf-8", {"content-type": "application/json"}, "not valid UTF-8 JSON"),
        (b"[" * 100_000, {"content-type": "application/json"}, "nested too deeply"),
        (BOMB.encode(), {"content-type": "application/yaml"}, "more than 20,000 values"),
        (b"name: [unclosed", {"content-type": "application/yaml"}, "line 1 is not valid YAML"),
    ],
)
def test_bad_studies_are_refused_with_a_reason(client, body, headers, message):
    if isinstance(body, bytes):
        response = client.post("/api/runs", content=body, headers=headers)
    else:
        response = client.post("/api/runs", json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
    assert client.get("/api/runs").json() == []  # nothing was queued


def test_unknown_runs_and_tables(client):
    assert client.get("/api/runs/0123abcd").status_code == 404
    assert client.get("/api/runs/..%2F..%2Fetc").status_code == 404
    run = wait(client, client.post("/api/runs", json={**STUDY, "ensemble": None}).json()["id"])
    assert client.get(f"/api/runs/{run['id']}/tables/ensemble").status_code == 404
    assert client.get(f"/api/runs/{run['id']}/tables/secrets").status_code == 422


def test_a_full_queue_answers_429(client):
    client.app.state.runs.max_waiting = 0  # one run may go on, none may wait
    first = client.post("/api/runs", json=STUDY)
    assert first.status_code == 202
    response = client.post("/api/runs", json=STUDY)
    assert response.status_code == 429 and response.headers["retry-after"] == "60"
    assert "retry in a minute" in response.json()["error"]
    assert wait(client, first.json()["id"])["status"] == "done"


def test_every_server_process_answers_for_every_run(client, tmp_path):
    """`critmin serve --workers N` runs N processes sharing the runs folder: a run started
    in one is visible, with its tables, from another (here: a second app)."""
    run = wait(client, client.post("/api/runs", json={**STUDY, "ensemble": None}).json()["id"])
    other = create_app(registry_url=f"sqlite:///{tmp_path / 'registry.sqlite'}")
    with TestClient(other) as second:
        seen = second.get(f"/api/runs/{run['id']}").json()
        assert seen["status"] == "done" and seen["summary"] == run["summary"]
        assert len(second.get(f"/api/runs/{run['id']}/tables/markets").json()) > 100
        assert [r["id"] for r in second.get("/api/runs").json()] == [run["id"]]


def test_a_run_whose_server_died_is_reported_failed(client):
    folder = default_runs_dir() / ("ab" * 16)
    folder.mkdir(parents=True)
    status = {
        "id": "ab" * 16,
        "name": "killed",
        "status": "running",
        "step": "",
        "done": 3,
        "total": 10,
        "progress": 0.3,
        "created": "2026-11-25T00:00:00+00:00",
        "started": None,
        "finished": None,
        "error": None,
        "summary": None,
        "tables": [],
        "pid": 2**22 + 12345,
    }  # fmt: skip  (no such process)
    (folder / "status.json").write_text(json.dumps(status))
    seen = client.get(f"/api/runs/{'ab' * 16}").json()
    assert seen["status"] == "failed" and "stopped during this run" in seen["error"]
    assert client.get(f"/api/runs/{'ab' * 16}/tables/markets").status_code == 404


def test_old_runs_are_pruned(tmp_path):
    from critmin.web.jobs import RunQueue

    queue = RunQueue(tmp_path / "q", keep=2)
    study = validate_study({**STUDY, "ensemble": None, "outputs": ["markets"]})
    idents = []
    for _ in range(4):
        idents.append(queue.submit(study))
        while queue.view(idents[-1])["status"] not in ("done", "failed"):
            time.sleep(0.05)
    queue.close()
    left = sorted(p.name for p in (tmp_path / "q").iterdir())
    assert left == sorted(idents[-2:])  # the newest two kept


def test_a_run_cut_short_by_shutdown_reads_as_failed(client):
    ident = client.post("/api/runs", json={**STUDY, "ensemble": {"draws": 3000}}).json()["id"]
    while client.get(f"/api/runs/{ident}").json()["status"] != "running":
        time.sleep(0.05)
    client.app.state.runs.close()  # what the server does when it stops
    seen = client.get(f"/api/runs/{ident}").json()
    assert seen["status"] == "failed" and "stopped during this run" in seen["error"]
    assert not (default_runs_dir() / ident / "summary.json").exists()
