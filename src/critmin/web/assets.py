"""Files the pages load, served from the package with long-lived caching: the partial
Plotly.js bundle, the chart helper, the map outline and Swagger UI for /docs (no CDN)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

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


@lru_cache(maxsize=len(ASSETS))
def asset(name: str) -> bytes:
    return (files("critmin.web") / "static" / ASSETS[name][0]).read_bytes()


@lru_cache(maxsize=len(ASSETS))
def version(name: str) -> str:
    """The first 12 hex digits of the file's SHA-256: the cache-busting part of its URL."""
    return hashlib.sha256(asset(name)).hexdigest()[:12]


def url(name: str) -> str:
    return f"/static/{name}?v={version(name)}"


@router.get("/static/{name:path}")
async def static(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no static file {name!r}")
    return Response(asset(name), media_type=ASSETS[name][1], headers=FOREVER)


@router.get("/docs", response_class=HTMLResponse)
async def docs() -> HTMLResponse:
    """Swagger UI from the package (the CDN FastAPI defaults to is blocked by the CSP)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="critmin API",
        swagger_js_url=url("swagger/swagger-ui-bundle.js"),
        swagger_css_url=url("swagger/swagger-ui.css"),
        swagger_favicon_url=url("swagger/favicon-32x32.png"),
        swagger_ui_parameters={"validatorUrl": None},
    )
