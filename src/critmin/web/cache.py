"""Answers of read-only questions kept as bytes, keyed on the question and the dataset
(`dataset_stamp`: an import is seen at once): a repeated question is answered on the event
loop with no worker thread, query or rendering; a new one is computed in a worker thread.
Errors are not kept.

Every kept answer carries a weak ETag (a digest of its bytes) and `Cache-Control: no-cache`:
a browser keeps it and asks again with If-None-Match, and `ConditionalGet` answers 304 with
no body when nothing changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from critmin.data.catalog import dataset_stamp

REVALIDATE = "no-cache"  # keep it, but ask each time (the answer is a 304 when unchanged)


def etag_of(body: bytes) -> str:
    return 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class Cached:
    """Wrap `function(*args)`; its result is encoded once (JSON by default) and kept.

    At most `maxsize` answers are kept (all dropped when full: simple and bounded, and a
    server's questions repeat far more often than that).
    """

    def __init__(
        self,
        function: Callable,
        media_type: str = "application/json",
        encode: Callable[[Any], bytes] | None = None,
        maxsize: int = 4096,
    ) -> None:
        self.function = function
        self.media_type = media_type
        self.encode = encode or (lambda value: json.dumps(value, allow_nan=False).encode())
        self.maxsize = maxsize
        self.answers: dict[tuple, tuple[bytes, str]] = {}

    def _compute(self, args: tuple) -> tuple[bytes, str]:
        body = self.encode(self.function(*args))
        return body, etag_of(body)

    async def __call__(self, *args: Any) -> Response:
        key = (args, dataset_stamp())
        answer = self.answers.get(key)
        if answer is None:
            answer = await run_in_threadpool(self._compute, args)
            if len(self.answers) >= self.maxsize:
                self.answers.clear()
            self.answers[key] = answer
        body, etag = answer
        headers = {"ETag": etag, "Cache-Control": REVALIDATE}
        return Response(body, media_type=self.media_type, headers=headers)


def cached_html(function: Callable) -> Cached:
    """`Cached` for functions returning a rendered page (str)."""
    return Cached(function, "text/html; charset=utf-8", str.encode, maxsize=1024)


def html_answer(body: str) -> Response:
    """A page rendered per request (e.g. from the registry), with its ETag."""
    raw = body.encode()
    headers = {"ETag": etag_of(raw), "Cache-Control": REVALIDATE}
    return Response(raw, media_type="text/html; charset=utf-8", headers=headers)


# Headers a 304 repeats (RFC 9110 §15.4.5); the body and its length are left out.
_KEPT_ON_304 = {b"etag", b"cache-control", b"vary", b"content-location", b"date", b"expires"}


def _matches(asked: bytes, etag: bytes) -> bool:
    """If-None-Match against an ETag, by weak comparison (RFC 9110 §13.1.2)."""
    if asked.strip() == b"*":
        return True
    bare = etag.removeprefix(b"W/")
    return any(tag.strip().removeprefix(b"W/") == bare for tag in asked.split(b","))


class ConditionalGet:
    """Pure ASGI middleware answering 304 Not Modified to a GET or HEAD whose If-None-Match
    names the ETag of the 200 the app answers (the app still computes it: for kept answers
    that is a dictionary look-up; the saving is the transfer and the browser's parsing)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        asked = dict(scope["headers"]).get(b"if-none-match")
        if asked is None:
            return await self.app(scope, receive, send)
        state = {"unmodified": False}

        async def conditional(event: dict) -> None:
            if event["type"] == "http.response.start":
                headers = event.get("headers", [])
                etag = next((v for k, v in headers if k.lower() == b"etag"), None)
                if event["status"] == 200 and etag is not None and _matches(asked, etag):
                    state["unmodified"] = True
                    kept = [(k, v) for k, v in headers if k.lower() in _KEPT_ON_304]
                    await send({"type": "http.response.start", "status": 304, "headers": kept})
                    await send({"type": "http.response.body", "body": b""})
                    return
            elif state["unmodified"]:
                return  # the 200's body: not sent
            await send(event)

        return await self.app(scope, receive, conditional)
