"""Errors of the pages as HTML: a page request (not /api, not a file) whose answer is the
JSON error body gets a page with the message, the closest valid names as links and a way
back, with the same status. The JSON API keeps its JSON errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

JSON_PATHS = ("/api", "/static", "/openapi.json", "/docs", "/download")
TITLES = {400: "The model refused this question", 404: "Not found", 422: "Invalid choice",
          401: "A token is needed", 429: "Busy", 503: "Busy"}  # fmt: skip
MAX_ERROR_BODY = 64_000
_pages = Environment(
    loader=PackageLoader("critmin.web", "templates"), autoescape=select_autoescape(["html"])
)


def wants_page(scope: dict) -> bool:
    path = scope.get("path", "")
    return scope.get("method") == "GET" and not path.startswith(JSON_PATHS)


def suggestion_links(path: str, query: str, message: str, suggestions: list[str]) -> list[dict]:
    """Links to the same page with the offending parameter replaced by each suggestion: the
    parameter is the one whose value the message quotes."""
    params = parse_qsl(query, keep_blank_values=True)
    quoted = message.casefold()
    culprit = next((k for k, v in params if v and f"'{v.casefold()}'" in quoted), None)
    links = []
    for name in suggestions:
        if culprit is None:
            links.append({"text": name, "href": None})
            continue
        replaced = [(k, name if k == culprit else v) for k, v in params]
        links.append({"text": name, "href": f"{path}?{urlencode(replaced)}"})
    return links


def error_page(scope: dict, status: int, body: dict) -> bytes:
    path = scope.get("path", "/")
    query = scope.get("query_string", b"").decode("latin-1")
    message = str(body.get("error") or "error")
    suggestions = [str(s) for s in body.get("suggestions") or []][:8]
    return (
        _pages.get_template("error.html")
        .render(
            title=TITLES.get(status, "Error"),
            status=status,
            message=message,
            problems=[str(p) for p in body.get("problems") or []][:20],
            links=suggestion_links(path, query, message, suggestions),
            back=path if path != "/" else "/",
        )
        .encode("utf-8")
    )


class HtmlErrors:
    """Pure ASGI middleware: JSON error answers to page requests become HTML pages."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not wants_page(scope):
            return await self.app(scope, receive, send)
        held: dict = {}
        chunks: list[bytes] = []

        async def convert(event: dict) -> None:
            if event["type"] == "http.response.start":
                headers = dict(event.get("headers", []))
                is_json = headers.get(b"content-type", b"").startswith(b"application/json")
                if event["status"] >= 400 and is_json:
                    held["start"] = event
                    return
                return await send(event)
            if "start" not in held:
                return await send(event)
            chunks.append(event.get("body", b""))
            if event.get("more_body"):
                return
            raw = b"".join(chunks)[:MAX_ERROR_BODY]
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"error": raw.decode("utf-8", "replace")}
            start = held["start"]
            page = error_page(scope, start["status"], body if isinstance(body, dict) else {})
            kept = [
                (k, v)
                for k, v in start.get("headers", [])
                if k.lower() not in (b"content-type", b"content-length")
            ]
            await send(
                {
                    **start,
                    "headers": [
                        *kept,
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(page)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": page})

        return await self.app(scope, receive, convert)
