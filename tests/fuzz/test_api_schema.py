"""Fuzzing the web API from its own OpenAPI schema with schemathesis (in process, ASGI).

Every operation gets requests generated from the schema: valid ones and ones that break it
(wrong types, missing fields, out-of-range numbers, odd strings and headers). The property:
no answer is a server error (5xx), and every error is a JSON body with an "error" message.
Writes are sent twice, with the generated Authorization header and with a valid token, so
the generated bodies reach the registry's own validation.

`make test` sends over 1,000 requests (the module fails if a full run sent fewer);
CRITMIN_STRESS=1 (`make stress`) sends many more.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from critmin.registry.store import Registry
from critmin.registry.tokens import create_token
from critmin.web import create_app
from tests.fuzz import budget

MIN_REQUESTS = 1000
sent = {"requests": 0, "operations": set(), "statuses": Counter()}

# The app is built at import (schemathesis reads its schema when the module is collected),
# in a folder of its own: a registry with one write token and a runs folder. A generated
# run that passes validation is queued and solved for real.
FOLDER = Path(tempfile.mkdtemp(prefix="critmin-api-fuzz-"))
REGISTRY_URL = f"sqlite:///{FOLDER / 'registry.sqlite'}"
_registry = Registry(REGISTRY_URL)
TOKEN = create_token(_registry, "fuzz")
_registry.engine.dispose()
APP = create_app(registry_url=REGISTRY_URL, read_token_required=False, runs_dir=FOLDER / "runs")
OPERATIONS = sum(len(methods) for methods in APP.openapi()["paths"].values())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _check(response, case) -> None:
    sent["requests"] += 1
    sent["statuses"][response.status_code] += 1
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/json"), where
        assert isinstance(response.json().get("error"), str), where


@schema.parametrize()
@settings(
    max_examples=budget(80, 1500),
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_every_error_is_json(case):
    sent["operations"].add(case.operation.label)
    _check(case.call(), case)
    if case.method == "POST" and case.path == "/api/agreements":
        _check(case.call(headers={"Authorization": f"Bearer {TOKEN}"}), case)


@pytest.fixture(scope="module", autouse=True)
def enough_requests(request):
    """After the module: a run over every operation sent at least MIN_REQUESTS requests."""
    yield
    APP.state.runs.close()
    shutil.rmtree(FOLDER, ignore_errors=True)
    if len(sent["operations"]) == OPERATIONS and request.session.testsfailed == 0:
        assert sent["requests"] >= MIN_REQUESTS, sent["requests"]
    print(
        f"\nschemathesis: {sent['requests']:,} requests over {len(sent['operations'])} operations; "
        f"answers by status: {dict(sorted(sent['statuses'].items()))}"
    )
