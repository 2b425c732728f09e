"""Model requests of the web API (`POST /api/shock`, `POST /api/zone`) in a bounded,
cancellable pool of worker processes, like scenario runs (`critmin.web.jobs`).

A market solve is seconds of CPU that holds the interpreter lock: in the serving process
forty of them stalled every read for a minute (issue 19). Here each request is sent to one
of `workers` spawned processes; at most `max_waiting` more wait for one, and a request
beyond that is refused at once with 429 (`QueueFull`). A request that takes longer than
`time_limit` seconds, or whose client has gone away, has its worker process killed (the
only way to stop a solve half way) and answers 503; the next request starts a fresh worker.
Each worker is replaced after `max_tasks` requests, which bounds its memory.

Plumbing only: the worker calls `critmin.market.api.shock` / `zone` exactly as the
command line does and sends back `MarketResult.to_dict()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from multiprocessing import get_context
from typing import Any

from critmin.errors import CritminError, InputError, NotFoundError
from critmin.web.jobs import QueueFull

log = logging.getLogger("critmin.web")
TIME_LIMIT_ENV = "CRITMIN_WEB_MODEL_SECONDS"
WORKERS_ENV = "CRITMIN_WEB_MODEL_WORKERS"
_POLL_S = 0.25  # how often a waiting request checks whether its client is still there


class ModelUnavailable(CritminError):
    """A model request was stopped (time limit, worker lost, shutting down): HTTP 503."""

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClientGone(Exception):
    """The client closed the connection while its request waited or ran."""


def _serve(conn) -> None:  # pragma: no cover - runs in the worker process
    """The worker's loop: one request at a time from the pipe, one reply each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its workers itself
    from critmin.errors import UnknownNameError
    from critmin.market.api import shock, zone

    while True:
        try:
            kind, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if kind == "shock":
                result: Any = shock(args.pop("exporter"), args.pop("commodity"), **args).to_dict()
            else:
                results = zone(args.pop("members"), args.pop("floors"), **args)
                result = {name: r.to_dict() for name, r in results.items()}
            reply: tuple = ("ok", result)
        except UnknownNameError as error:
            reply = ("unknown", str(error), list(error.suggestions))
        except NotFoundError as error:
            reply = ("not_found", str(error))
        except CritminError as error:
            reply = ("refused", str(error))
        except Exception as error:  # a defect: the server logs it, the client gets one line
            import traceback

            reply = ("defect", f"{type(error).__name__}: {error}", traceback.format_exc())
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


class _Worker:
    """One worker process and the server's end of its pipe."""

    def __init__(self) -> None:
        context = get_context("spawn")  # a fresh interpreter: no server lock or thread copied
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.tasks = 0

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(timeout=2)
        with contextlib.suppress(Exception):
            self.conn.close()


class ModelPool:
    """At most `workers` model requests running, `max_waiting` more waiting; each stopped
    after `time_limit` seconds or when its client leaves."""

    def __init__(
        self,
        workers: int | None = None,
        max_waiting: int = 8,
        time_limit: float | None = None,
        max_tasks: int = 200,
    ) -> None:
        self.workers = workers or int(os.environ.get(WORKERS_ENV, "1"))
        self.max_waiting = max_waiting
        self.time_limit = time_limit or float(os.environ.get(TIME_LIMIT_ENV, "30"))
        self.max_tasks = max_tasks
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._admitted = 0
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def call(
        self, kind: str, args: dict, gone: Callable[[], Awaitable[bool]] | None = None
    ) -> Any:
        """Run `kind` ('shock' or 'zone') with `args` in a worker; `gone()` says whether the
        client has disconnected. Raises QueueFull (429), ModelUnavailable (503) or the
        request's own error (NotFoundError 404, InputError 400)."""
        if self._closed:
            raise ModelUnavailable("the server is shutting down", retry_after=5)
        if self._admitted >= self.workers + self.max_waiting:
            raise QueueFull(
                f"{self._admitted} model requests are running or waiting on this server "
                "(the limit); retry in a few seconds"
            )
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        self._admitted += 1
        try:
            await self._acquire(gone)
            try:
                reply = await self._run(kind, args, gone)
            finally:
                self._slots.release()
        except ClientGone:
            raise ModelUnavailable("the client went away; the request was stopped") from None
        finally:
            self._admitted -= 1
        status, message, *extra = reply
        if status == "ok":
            return message
        if status == "unknown":
            raise _Unknown(message, extra[0])
        if status == "not_found":
            raise NotFoundError(message)
        if status == "refused":
            raise InputError(message)
        log.error("model request %s failed: %s\n%s", kind, message, extra[0] if extra else "")
        raise RuntimeError(f"model worker: {message}")

    async def _acquire(self, gone: Callable[[], Awaitable[bool]] | None) -> None:
        assert self._slots is not None
        waited = 0.0
        while True:
            try:
                await asyncio.wait_for(self._slots.acquire(), _POLL_S)
                return
            except TimeoutError:
                waited += _POLL_S
            if gone is not None and await gone():
                raise ClientGone
            if waited > self.time_limit:
                raise ModelUnavailable(
                    f"no model worker free for {self.time_limit:g} s; retry later"
                )

    async def _run(
        self, kind: str, args: dict, gone: Callable[[], Awaitable[bool]] | None
    ) -> tuple:
        loop = asyncio.get_running_loop()
        worker = self._idle.pop() if self._idle else _Worker()
        self._busy.add(worker)
        keep = False
        try:
            worker.conn.send((kind, args))
            ready = asyncio.Event()
            fd = worker.conn.fileno()
            loop.add_reader(fd, ready.set)
            try:
                deadline = loop.time() + self.time_limit
                while not ready.is_set():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise ModelUnavailable(
                            f"the model took more than {self.time_limit:g} s and was stopped; "
                            "ask for fewer commodities or a smaller zone"
                        )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ready.wait(), min(_POLL_S, remaining))
                    if not ready.is_set() and gone is not None and await gone():
                        raise ClientGone
            finally:
                loop.remove_reader(fd)
            try:
                reply = await asyncio.to_thread(worker.conn.recv)
            except (EOFError, OSError):
                raise ModelUnavailable("the model worker stopped (out of memory?)") from None
            worker.tasks += 1
            keep = worker.tasks < self.max_tasks and not self._closed
            return reply
        finally:
            self._busy.discard(worker)
            if keep:
                self._idle.append(worker)
            else:  # stopped half way, failed or worn: the process goes, a new one comes
                worker.kill()

    def open(self) -> None:
        """Take requests (again): an application's lifespan may start after a stop."""
        self._closed = False

    def close(self) -> None:
        """Stop every worker now (a request running gets 503)."""
        self._closed = True
        for worker in [*self._idle, *self._busy]:
            worker.kill()
        self._idle.clear()


class _Unknown(NotFoundError):
    """An unknown name from a worker, with its suggestions (HTTP 404)."""

    def __init__(self, message: str, suggestions: list[str]) -> None:
        super().__init__(message)
        self.suggestions = suggestions
