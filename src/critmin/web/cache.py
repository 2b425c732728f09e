"""Answers of read-only questions kept as bytes (the dataset does not change while the
server runs): a repeated question is answered on the event loop with no worker thread,
query or rendering; a new one is computed in a worker thread. Errors are not kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool


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
        self.answers: dict[tuple, bytes] = {}

    def _compute(self, args: tuple) -> bytes:
        return self.encode(self.function(*args))

    async def __call__(self, *args: Any) -> Response:
        body = self.answers.get(args)
        if body is None:
            body = await run_in_threadpool(self._compute, args)
            if len(self.answers) >= self.maxsize:
                self.answers.clear()
            self.answers[args] = body
        return Response(body, media_type=self.media_type)


def cached_html(function: Callable) -> Cached:
    """`Cached` for functions returning a rendered page (str)."""
    return Cached(function, "text/html; charset=utf-8", str.encode, maxsize=1024)
