"""Files the pages load, served from the package with long-lived caching: the partial
Plotly.js bundle, the chart helper, the map outline and Swagger UI for /docs (no CDN).

Each URL carries the file's digest (`url`), so a file is cached for a year as immutable and
a repeat visit asks for none of them; text files are gzipped once, when first asked for, and
sent compressed to every client that accepts it."""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from critmin.web.cache import html_answer
from critmin.web.encode import script_json

router = APIRouter(include_in_schema=False)
# A year, immutable: the URLs carry the file's digest (?v=...), so a new file is a new URL.
FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}
ASSETS = {
    "plotly.min.js": ("plotly/plotly-critmin.min.js", "application/javascript"),
    "critmin.js": ("critmin.js", "application/javascript"),
    "topojson/world_110m.json": ("topojson/world_110m.json", "application/json"),
    "swagger/swagger-ui-bundle.js": ("swagger/swagger-ui-bundle.js", "application/javascript"),
    "swagger/swagger-ui.css": ("swagger/swagger-ui.css", "text/css"),
    "swagger/favicon-32x32.png": ("swagger/favicon-32x32.png", "image/png"),
}
COMPRESSED = ("application/javascript", "application/json", "text/css")


@lru_cache(maxsize=len(ASSETS))
def asset(name: str) -> bytes:
    return (files("critmin.web") / "static" / ASSETS[name][0]).read_bytes()


@lru_cache(maxsize=len(ASSETS))
def compressed(name: str) -> bytes:
    return gzip.compress(asset(name), compresslevel=9, mtime=0)


@lru_cache(maxsize=len(ASSETS))
def version(name: str) -> str:
    """The first 12 hex digits of the file's SHA-256: the cache-busting part of its URL."""
    return hashlib.sha256(asset(name)).hexdigest()[:12]


def url(name: str) -> str:
    return f"/static/{name}?v={version(name)}"


def topojson_url() -> str:
    """The folder Plotly.js loads the map outline from (it appends `world_110m.json`, so the
    digest is in the folder's name rather than a query)."""
    return f"/static/topojson-{version('topojson/world_110m.json')}/"


def _answer(name: str, request: Request) -> Response:
    media_type = ASSETS[name][1]
    if media_type not in COMPRESSED:
        return Response(asset(name), media_type=media_type, headers=FOREVER)
    headers = {**FOREVER, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(compressed(name), media_type=media_type, headers=headers)
    return Response(asset(name), media_type=media_type, headers=headers)


@router.get("/static/topojson-{digest}/{name}")
async def topojson(digest: str, name: str, request: Request) -> Response:
    key = f"topojson/{name}"
    if key not in ASSETS:
        raise HTTPException(404, f"no static file {key!r}")
    return _answer(key, request)


@router.get("/static/{name:path}")
async def static(name: str, request: Request) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no static file {name!r}")
    return _answer(name, request)


def warm(app) -> None:
    """Compute what the first requests would otherwise wait for (run in a thread)."""
    app.openapi()
    for name, (_, media_type) in ASSETS.items():
        if media_type in COMPRESSED:
            compressed(name)


DOCS = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>critmin API</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script>
</head>
<body>
<div id="swagger-ui"></div>
<script id="openapi" type="application/json">{spec}</script>
<script>
addEventListener("DOMContentLoaded", () => {{
  window.ui = SwaggerUIBundle({{
    spec: JSON.parse(document.getElementById("openapi").textContent),
    dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
    showExtensions: true, showCommonExtensions: true, validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  }});
}});
</script>
</body>
</html>
"""


@lru_cache(maxsize=4)
def _docs_page(spec: str) -> str:
    return DOCS.format(
        favicon=url("swagger/favicon-32x32.png"),
        css=url("swagger/swagger-ui.css"),
        js=url("swagger/swagger-ui-bundle.js"),
        spec=spec,
    )


@router.get("/docs")
async def docs(request: Request) -> Response:
    """Swagger UI from the package (the CDN FastAPI defaults to is blocked by the CSP), with
    the OpenAPI document in the page: no second request before the operations show."""
    spec = script_json(request.app.openapi())
    return html_answer(_docs_page(spec))
