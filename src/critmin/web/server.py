"""How `critmin serve` runs uvicorn: timeouts for slow clients, a connection limit, a
bounded shutdown, and a log that a flood of bad requests cannot fill (issue 19).

- A request must arrive whole (headers and body) within `REQUEST_SECONDS` of its first
  byte, and a new connection must start one within that time: uvicorn times out idle
  keep-alive connections only, so a client sending a byte a second held a connection (and
  a file descriptor) for ever. `GuardedH11Protocol` closes such connections.
- Headers are limited to `MAX_HEADER_BYTES` (h11's incomplete-event limit); bodies to
  1 MB by the application (`critmin.web.app.BodyLimit`).
- At most `MAX_CONNECTIONS` connections and tasks (uvicorn's `limit_concurrency`); beyond,
  uvicorn answers 503, and a connection beyond `MAX_OPEN_CONNECTIONS` is closed at once.
- SIGTERM: open requests get `SHUTDOWN_SECONDS` to finish, then are cancelled (model
  workers and run processes are killed by the application's shutdown).
- `install_log_flood_control`: the same message is logged at most `LOG_BURST` times a
  minute; the next one says how many were suppressed.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_SECONDS = float(os.environ.get("CRITMIN_WEB_REQUEST_SECONDS", "15"))
KEEP_ALIVE_SECONDS = 5
MAX_HEADER_BYTES = 16_384
# 200 reads a second that stall for 5 s (a loaded 2-core machine) are 1,000 in flight.
MAX_CONNECTIONS = int(os.environ.get("CRITMIN_WEB_MAX_CONNECTIONS", "1000"))


def _open_connection_limit() -> int:
    """MAX_CONNECTIONS and a margin that still gets uvicorn's 503, kept well under the
    process's file-descriptor limit (often 1,024) so that accept() never fails."""
    try:
        import resource

        descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if descriptors == resource.RLIM_INFINITY:
            descriptors = 1 << 20
    except (ImportError, OSError, ValueError):  # no such limit on this platform
        descriptors = 1024
    return max(64, min(MAX_CONNECTIONS + 100, descriptors - 200))


MAX_OPEN_CONNECTIONS = _open_connection_limit()
LIMIT_CONCURRENCY = max(32, min(MAX_CONNECTIONS, MAX_OPEN_CONNECTIONS - 100))
# The application answers 503 with a JSON body first (critmin.web.app.InFlightLimit).
IN_FLIGHT_LIMIT = max(16, LIMIT_CONCURRENCY - 50)
SHUTDOWN_SECONDS = 5
LOG_BURST = 10
LOG_WINDOW_S = 60.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's arrival (slowloris)."""

    _deadline: object = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_OPEN_CONNECTIONS:
            # Beyond the connections uvicorn would answer 503: closed at once, so that idle
            # or half-sent connections by the thousand cannot exhaust file descriptors.
            self.transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()  # type: ignore[attr-defined]
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            # Headers or body still incomplete: the connection goes; the application (if the
            # headers came) sees a disconnect. Logged at debug level only (no flood).
            self.logger.debug("closing a connection whose request did not arrive in time")
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._arm()
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the whole request is in: the application has it

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request on a kept-alive connection is uvicorn's keep-alive
        # timer's job; a partial next request arms the deadline again in data_received.
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def timeout_keep_alive_handler(self) -> None:
        self._disarm()
        super().timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class _FloodFilter(logging.Filter):
    """At most LOG_BURST records of one message per minute; then one count of the rest."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, object], list] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 1000:
                self._seen.clear()
            window = self._seen.setdefault(key, [now, 0, 0])  # start, logged, suppressed
            if now - window[0] > LOG_WINDOW_S:
                suppressed = window[2]
                window[:] = [now, 0, 0]
                if suppressed:
                    record.msg = (
                        f"{record.msg} ({suppressed} like it suppressed in the last minute)"
                    )
            if window[1] >= LOG_BURST:
                window[2] += 1
                return False
            window[1] += 1
        return True


_installed: list[_FloodFilter] = []


def install_log_flood_control() -> None:
    """Add the flood filter to the loggers a bad client can make write (once a process)."""
    if _installed:
        return
    flood = _FloodFilter()
    _installed.append(flood)
    for name in ("uvicorn.error", "uvicorn.access", "critmin.web"):
        logging.getLogger(name).addFilter(flood)


def serve(host: str, port: int, workers: int = 1) -> None:
    """Run the application under uvicorn with the limits above."""
    import uvicorn

    uvicorn.run(
        "critmin.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        http="critmin.web.server:GuardedH11Protocol",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=LIMIT_CONCURRENCY,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        backlog=256,
    )
