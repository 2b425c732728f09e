"""Issue 19: model requests in a bounded, cancellable pool of worker processes, and the
server's guards (slow clients, SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from critmin.errors import InputError, NotFoundError
from critmin.web.jobs import QueueFull
from critmin.web.models import ModelPool, ModelUnavailable

ZONE = {"members": "g7", "floors": {"rare_earths": 1.3}, "year": 2023}
HEAVY = {
    "members": "ministerial_2026",
    "floors": {"rare_earths": 1.3, "graphite": 1.3, "tungsten": 1.3},
    "with_ban": "CHN",
    "year": 2021,
}


def test_answers_errors_and_limits():
    async def scenario():
        pool = ModelPool(workers=1, max_waiting=0, time_limit=60)
        try:
            result = await pool.call("zone", dict(ZONE))
            assert "rare_earths" in result
            with pytest.raises(NotFoundError) as unknown:
                await pool.call("shock", {"exporter": "Atlantis", "commodity": "REE", "ban": True})
            assert unknown.value.suggestions
            with pytest.raises(InputError, match="over 100 times"):
                await pool.call("zone", {**ZONE, "floors": {"rare_earths": 1e308}})
            # One running, none may wait: the second is refused at once (429).
            first = asyncio.create_task(pool.call("zone", dict(HEAVY)))
            await asyncio.sleep(0.1)
            with pytest.raises(QueueFull):
                await pool.call("zone", dict(ZONE))
            await first
        finally:
            pool.close()

    asyncio.run(scenario())


def test_time_limit_and_a_departed_client_stop_the_worker():
    async def scenario():
        pool = ModelPool(workers=1, max_waiting=2, time_limit=0.3)
        try:
            with pytest.raises(ModelUnavailable, match=r"took more than 0\.3 s"):
                await pool.call("zone", dict(HEAVY))
            assert pool._idle == [] and pool._busy == set()  # the worker was killed

            pool.time_limit = 60
            left = time.monotonic() + 1.0

            async def gone() -> bool:
                return time.monotonic() > left

            started = time.monotonic()
            with pytest.raises(ModelUnavailable, match="client went away"):
                await pool.call("zone", dict(HEAVY), gone)
            assert time.monotonic() - started < 3
            assert await pool.call("zone", dict(ZONE))  # a fresh worker answers
        finally:
            pool.close()

    asyncio.run(scenario())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_closes_slow_clients_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "CRITMIN_DATA_DIR": str(tmp_path),
        "CRITMIN_DB_URL": f"sqlite:///{tmp_path}/registry.sqlite",
        "CRITMIN_WEB_RUNS_DIR": str(tmp_path / "runs"),
        "CRITMIN_WEB_REQUEST_SECONDS": "2",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "critmin", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # Headers one byte at a time: the connection is closed once 2 s have passed.
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        started = time.monotonic()
        with pytest.raises(OSError):
            for byte in b"GET /api/agreements HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaa":
                sock.sendall(bytes([byte]))
                time.sleep(0.5)
                if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    raise OSError("closed by the server")
        assert time.monotonic() - started < 6
        sock.close()
        # A silent connection is closed too.
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert idle.recv(1) == b""
        idle.close()
        assert httpx.get(f"{base}/api/agreements", timeout=10).status_code == 200
        # SIGTERM with a model request running: stopped within 10 s.
        with httpx.Client(timeout=30) as client:
            import threading

            threading.Thread(
                target=lambda: _quiet(client.post, f"{base}/api/zone", json=HEAVY), daemon=True
            ).start()
            time.sleep(1.0)
            sent = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)
            assert time.monotonic() - sent < 10
        assert "Traceback" not in server.stderr.read().decode()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _quiet(call, *args, **kwargs) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call(*args, **kwargs)


def test_requests_beyond_the_in_flight_limit_get_a_json_503():
    from starlette.testclient import TestClient

    from critmin.web.app import InFlightLimit

    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    limited = InFlightLimit(ok, limit=1)
    client = TestClient(limited)
    assert client.get("/api/agreements").status_code == 200
    limited.active = 1  # one request in progress: the next is refused
    busy = client.get("/api/agreements")
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    assert "requests in progress" in busy.json()["error"]
    assert client.get("/api/health").status_code == 200
