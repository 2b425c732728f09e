"""The JSON API (FastAPI): dependence, concentration, tracing, risk, shocks, zones and
agreements; OpenAPI at /docs. An interface: every answer comes from the Python API."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from critmin import __version__
from critmin.data import commodity as resolve_commodity
from critmin.data.stages import latest_common_year, stages_of
from critmin.errors import CritminError, InputError, NotFoundError, UnknownNameError
from critmin.metrics.api import risk, stage_dependence, stage_trace, world_stage_dependence
from critmin.metrics.concentration import stage_concentration
from critmin.metrics.dependence import resolve_year
from critmin.registry.records import RecordError
from critmin.registry.store import Registry
from critmin.registry.tokens import token_holder
from critmin.scenarios.runner import prepare_study, study_work
from critmin.scenarios.schema import Study, check_size, parse_yaml, validate_study
from critmin.web.assets import router as assets_router
from critmin.web.assets import warm as warm_assets
from critmin.web.cache import Cached, ConditionalGet
from critmin.web.downloads import router as downloads_router
from critmin.web.encode import plain_records
from critmin.web.errors import HtmlErrors
from critmin.web.jobs import TABLES, QueueFull, RunQueue
from critmin.web.models import ModelPool, ModelUnavailable
from critmin.web.pages import router as pages_router
from critmin.web.server import IN_FLIGHT_LIMIT, install_log_flood_control

log = logging.getLogger("critmin.web")
MAX_BODY_BYTES = 1_000_000  # request-size limit
# Run-size limits of scenario runs on the server (units of work: a market solve or an
# ensemble draw; `critmin run` on one's own machine has only the study's own limits).
MAX_RUN_WORK = int(os.environ.get("CRITMIN_WEB_MAX_RUN_WORK", "20000"))
MAX_RUN_COMMODITIES = 10
MAX_IN_FLIGHT = IN_FLIGHT_LIMIT  # requests in progress per process (then 503 JSON)


class BodyTooLarge(CritminError):
    """A request body over the limit (answered 413)."""


class BodyLimit:
    """Pure ASGI middleware refusing bodies over `limit` bytes: at once from the
    Content-Length header, or while a chunked body streams in (no header to trust).

    Pure ASGI rather than `@app.middleware("http")`, whose per-request cost is several
    times larger and showed in the load test.
    """

    def __init__(self, app: Callable, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"request body over {self.limit:,} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await JSONResponse({"error": message}, 413)(scope, receive, send)
        received = 0

        async def counted() -> dict:
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(message)
            return event

        return await self.app(scope, counted, send)


class InFlightLimit:
    """Pure ASGI middleware answering 503 (JSON, `Retry-After`) beyond `limit` requests in
    progress in this process: a bound on the tasks and memory a burst can take, below
    uvicorn's own `limit_concurrency` (whose 503 is plain text) in `critmin serve`."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.active = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("path") == "/api/health":
            return await self.app(scope, receive, send)
        if self.active >= self.limit:
            busy = JSONResponse(
                {"error": f"{self.active} requests in progress on this server; retry shortly"},
                503,
                headers={"Retry-After": "5"},
            )
            return await busy(scope, receive, send)
        self.active += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.active -= 1


# Pages and answers may only run this server's own scripts (inline ones are the pages' own;
# their data is escaped by encode.script_json), may not be framed (clickjacking), and are not
# sniffed into another type. OWASP Secure Headers Project.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
        b"style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Pure ASGI middleware adding SECURITY_HEADERS to every HTTP answer."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(event: dict) -> None:
            if event["type"] == "http.response.start":
                event = {**event, "headers": [*event.get("headers", []), *SECURITY_HEADERS]}
            await send(event)

        return await self.app(scope, receive, with_headers)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShockRequest(Strict):
    exporter: str = Field(max_length=80, examples=["CHN"])
    commodity: str = Field(max_length=80, examples=["rare_earths"])
    ban: bool = False
    quota: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    targets: str | None = Field(None, max_length=2000, examples=["USA,JPN"])
    aggregate: bool = False
    year: int | None = Field(None, ge=1995, le=2100)
    horizon: Literal["short", "long"] = "short"
    stage: Literal["mine", "refined", "product"] | None = Field(
        None, description="stage of the restriction (default: the commodity's HS bundle)"
    )
    production_quota: float | None = Field(
        None, gt=0.0, le=1.0, allow_inf_nan=False,
        description="cap on the exporter's output, fraction of base (China 2010-2011)",
    )  # fmt: skip


class ZoneRequest(Strict):
    members: str = Field(max_length=2000, examples=["ministerial_2026"])
    floors: dict[str, float | str] = Field(min_length=1, max_length=20)
    mechanism: Literal["tariff", "guarantee"] = "tariff"
    with_ban: str | None = Field(None, max_length=80)
    year: int | None = Field(None, ge=1995, le=2100)
    horizon: Literal["short", "long"] = "short"
    stage: Literal["mine", "refined", "product"] | None = Field(
        None, description="stage the floors are set at (default: each commodity's HS bundle)"
    )


def create_app(
    registry_url: str | None = None,
    read_token_required: bool | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
) -> FastAPI:
    """The application; `read_token_required` (or CRITMIN_WEB_READ_TOKEN=1) closes reads;
    background runs are kept in `runs_dir` (default $CRITMIN_WEB_RUNS_DIR or the user cache)."""
    if read_token_required is None:
        read_token_required = os.environ.get("CRITMIN_WEB_READ_TOKEN", "") == "1"
    runs = RunQueue(runs_dir)
    models = ModelPool()  # /api/shock and /api/zone: worker processes, bounded, cancellable
    install_log_flood_control()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        models.open()
        # The OpenAPI document and the gzipped static files, made off the event loop now
        # rather than on the first visitor's request.
        threading.Thread(target=warm_assets, args=(app,), daemon=True).start()
        yield
        models.close()
        runs.close()

    app = FastAPI(
        title="critmin",
        version=__version__,
        description="Critical-minerals dependence, supply risk, market shocks and agreements.",
        lifespan=lifespan,
        docs_url=None,  # /docs: Swagger UI from the package (critmin.web.assets), no CDN
        redoc_url=None,
    )

    @lru_cache(maxsize=1)
    def registry() -> Registry:
        return Registry(registry_url)

    def holder(authorization: str | None) -> str | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        return token_holder(registry(), authorization[7:].strip())

    def require_writer(authorization: Annotated[str | None, Header()] = None) -> str:
        name = holder(authorization)
        if name is None:
            raise HTTPException(
                401, "a valid bearer token is required to write (critmin tokens create NAME)"
            )
        return name

    def require_reader(authorization: Annotated[str | None, Header()] = None) -> None:
        if read_token_required and holder(authorization) is None:
            raise HTTPException(401, "reading requires a bearer token on this server")

    app.add_middleware(HtmlErrors)  # innermost: a page's JSON error becomes an HTML page
    app.add_middleware(ConditionalGet)  # 304 for an unchanged answer (its ETag asked again)
    # Pages and JSON compressed for clients that accept it (static files come precompressed).
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(InFlightLimit, limit=MAX_IN_FLIGHT)
    app.add_middleware(SecurityHeaders)  # outermost: the body limit's 413s get them too

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, error: BodyTooLarge):
        return JSONResponse({"error": str(error)}, 413)

    @app.exception_handler(UnknownNameError)
    async def unknown(request: Request, error: UnknownNameError):
        return JSONResponse({"error": str(error), "suggestions": error.suggestions}, 404)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, error: NotFoundError):
        suggestions = getattr(error, "suggestions", None)  # an unknown name from a model worker
        body = {"error": str(error), **({"suggestions": suggestions} if suggestions else {})}
        return JSONResponse(body, 404)

    @app.exception_handler(ModelUnavailable)
    async def unavailable(request: Request, error: ModelUnavailable):
        return JSONResponse(
            {"error": str(error)}, 503, headers={"Retry-After": str(error.retry_after)}
        )

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, error: ClientDisconnect):
        # The client left mid-body: nobody reads the answer, and no traceback is logged
        # (half-sent requests by the thousand would flood the log).
        return JSONResponse({"error": "the client disconnected"}, 400)

    @app.exception_handler(RecordError)
    async def invalid_record(request: Request, error: RecordError):
        # A well-formed body whose record breaks the registry's rules is a 422, like any
        # validation failure; an id that exists already is a conflict.
        taken = all("already exists" in problem for problem in error.problems)
        return JSONResponse(
            {"error": str(error), "problems": error.problems}, 409 if taken else 422
        )

    @app.exception_handler(QueueFull)
    async def busy(request: Request, error: QueueFull):
        return JSONResponse({"error": str(error)}, 429, headers={"Retry-After": "60"})

    @app.exception_handler(CritminError)
    async def refused(request: Request, error: CritminError):
        return JSONResponse({"error": str(error)}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if isinstance(error.__cause__, BodyTooLarge):  # a chunked body over the limit
            return JSONResponse({"error": str(error.__cause__)}, 413)
        if error.detail == "There was an error parsing the body":
            # FastAPI's answer to a body json cannot read (e.g. nested deeper than Python's
            # recursion limit): a malformed body, so 422 like any other.
            return JSONResponse({"error": "body: not valid JSON or nested too deeply"}, 422)
        return JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in error.errors()
        ]
        return JSONResponse({"error": "; ".join(problems)}, 422)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception):
        # A defect: JSON like every other error, the details in the server's log only (a
        # traceback can show paths and data the client has no business seeing).
        # Starlette answers it outside every middleware, so the headers are added here.
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        headers = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
        message = "internal error; the server log has the details"
        return JSONResponse({"error": message}, 500, headers=headers)

    readers = [Depends(require_reader)]

    @Cached
    def _dependence(
        importer: str,
        commodity: str | None,
        year: int | None,
        supplier: str,
        basis: str,
        stage: str,
    ):
        table = stage_dependence(
            importer, commodity, year=year, supplier=supplier, basis=basis, stage=stage
        )
        return plain_records(table.drop(columns=["suppliers"]))

    @app.get("/api/dependence", dependencies=readers, tags=["dependence"])
    async def get_dependence(
        importer: Annotated[str, Query(max_length=2000, examples=["DEU"])],
        commodity: Annotated[str | None, Query(max_length=80)] = None,
        year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
        supplier: Annotated[str, Query(max_length=80)] = "CHN",
        basis: Literal["content", "gross", "value", "qty"] = "content",
        stage: Literal["all", "mine", "refined", "product"] = "all",
    ) -> list[dict[str, Any]]:
        """Dependence by stage: reliance (a fraction, or null with a status saying why), the
        supplier's direct, traced and any-stage shares, codes covered (docs/stages.md)."""
        return await _dependence(importer, commodity, year, supplier, basis, stage)

    @Cached
    def _world(commodity: str, year: int | None, supplier: str, basis: str, stage: str | None):
        return plain_records(world_stage_dependence(commodity, stage, year, supplier, basis))

    @app.get("/api/dependence/world", dependencies=readers, tags=["dependence"])
    async def get_world_dependence(
        commodity: Annotated[str, Query(max_length=80, examples=["rare_earths"])],
        year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
        supplier: Annotated[str, Query(max_length=80)] = "CHN",
        basis: Literal["content", "gross", "value", "qty"] = "content",
        stage: Literal["mine", "refined", "product"] | None = None,
    ) -> list[dict[str, Any]]:
        """Every importer's dependence at one stage (the overview map; default: the mineral's
        last stage with trade that year)."""
        return await _world(commodity, year, supplier, basis, stage)

    @Cached
    def _trace(importer: str, commodity: str, year: int | None, stage: str | None):
        table = stage_trace(importer, commodity, stage=stage, year=year)
        chosen, used = str(table["stage"].iloc[0]), int(table["year"].iloc[0])
        origins = table.drop(columns=["stage", "year"])
        return {"stage": chosen, "year": used, "origins": plain_records(origins)}

    @Cached
    def _concentration(commodity: str, year: int | None):
        item = resolve_commodity(commodity)
        if year is None:
            pairs = [(item.id, s) for s in stages_of(item.id)]
            year = latest_common_year(pairs) or resolve_year(None)
        table, summary = stage_concentration(item.id, resolve_year(year))
        return {
            "commodity": item.id,
            "year": year,
            "stages": plain_records(summary),
            "countries": plain_records(table),
        }

    @Cached
    def _risk(importer: str | None, commodity: str | None, year: int | None, method: str):
        return plain_records(risk(importer, commodity, year, method))

    @app.get("/api/trace", dependencies=readers, tags=["dependence"])
    async def get_trace(
        importer: Annotated[str, Query(max_length=2000)],
        commodity: Annotated[str, Query(max_length=80)],
        year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
        stage: Literal["mine", "refined", "product"] | None = None,
    ) -> dict[str, Any]:
        """Who processed the importer's supply of a stage and whose input it carried up the
        chain (default: the mineral's last stage with trade)."""
        return await _trace(importer, commodity, year, stage)

    @app.get("/api/concentration/{commodity}", dependencies=readers, tags=["dependence"])
    async def get_concentration(
        commodity: str, year: Annotated[int | None, Query(ge=1995, le=2100)] = None
    ) -> dict[str, Any]:
        """Production and export shares at each stage of the mineral's chain, with HHIs."""
        return await _concentration(commodity, year)

    @app.get("/api/risk", dependencies=readers, tags=["risk"])
    async def get_risk(
        importer: Annotated[str | None, Query(max_length=2000)] = None,
        commodity: Annotated[str | None, Query(max_length=80)] = None,
        year: Annotated[int | None, Query(ge=1995, le=2100)] = None,
        method: Literal["geopolrisk", "eu-sr"] = "geopolrisk",
    ) -> list[dict[str, Any]]:
        """GeoPolRisk or EU supply risk."""
        return await _risk(importer, commodity, year, method)

    @app.post("/api/shock", dependencies=readers, tags=["market"])
    async def post_shock(body: ShockRequest, request: Request) -> dict[str, Any]:
        """An export ban or quota solved by the market model (in a model worker process;
        429 when the workers and their queue are full, 503 past the time limit)."""
        return await models.call("shock", body.model_dump(), request.is_disconnected)

    @app.post("/api/zone", dependencies=readers, tags=["market"])
    async def post_zone(body: ZoneRequest, request: Request) -> dict[str, Any]:
        """The preferential zone with floors, per commodity (in a model worker process;
        429 when the workers and their queue are full, 503 past the time limit)."""
        return await models.call("zone", body.model_dump(), request.is_disconnected)

    @app.post(
        "/api/runs",
        status_code=202,
        dependencies=readers,
        tags=["runs"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": Study.model_json_schema()},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_run(request: Request) -> dict[str, Any]:
        """Start a scenario run in the background (the body is a study, as in a scenario
        file, in JSON or YAML); poll GET /api/runs/{id} for its progress and results."""
        study = _study_from_body(await request.body(), request.headers.get("content-type", ""))
        try:  # calibrate and check every policy now: a bad study never reaches the queue
            await run_in_threadpool(prepare_study, study)
        except CritminError as error:  # unknown names, bad policies: the body's fault
            raise HTTPException(422, f"body: {error}") from None
        ident = runs.submit(study)
        return {**runs.view(ident), "status_url": f"/api/runs/{ident}"}

    @app.get("/api/runs", dependencies=readers, tags=["runs"])
    async def list_runs() -> list[dict[str, Any]]:
        """The runs this server remembers (the last 100 finished and any still going)."""
        return runs.views()

    @app.get("/api/runs/{ident}", dependencies=readers, tags=["runs"])
    async def get_run(ident: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
        """A run's status, progress (0–1), and when done its summary and tables."""
        return json.loads(json.dumps(runs.view(ident), default=str))

    @app.get("/api/runs/{ident}/tables/{table}", dependencies=readers, tags=["runs"])
    async def get_run_table(
        ident: Annotated[str, Path(max_length=64)], table: Literal[TABLES]
    ) -> list[dict[str, Any]]:
        """One result table of a finished run (markets, prices, flows or ensemble)."""
        return plain_records(await run_in_threadpool(runs.table, ident, table))

    @app.get("/api/agreements", dependencies=readers, tags=["agreements"])
    async def list_agreements() -> list[dict[str, Any]]:
        """Every agreement of the registry."""
        return json.loads(json.dumps(await run_in_threadpool(registry().records), default=str))

    @app.get("/api/agreements/{ident}", dependencies=readers, tags=["agreements"])
    async def get_agreement(ident: str) -> dict[str, Any]:
        return json.loads(json.dumps(await run_in_threadpool(registry().get, ident), default=str))

    @app.post("/api/agreements", status_code=201, tags=["agreements"])
    async def add_agreement(
        record: dict[str, Any], writer: str = Depends(require_writer)
    ) -> dict[str, Any]:
        """Add an agreement (bearer token required); the record is validated by the registry."""
        added = await run_in_threadpool(registry().add, record, f"token:{writer}")
        return json.loads(json.dumps(added, default=str))

    app.state.registry = registry
    app.state.runs = runs
    # The pages show what the read endpoints answer, so they close with them (a browser
    # then needs a proxy that adds the token; see SECURITY.md).
    app.include_router(pages_router, dependencies=readers)
    app.include_router(downloads_router, dependencies=readers)
    app.include_router(assets_router)

    @app.get("/api/health", tags=["meta"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def _study_from_body(raw: bytes, content_type: str) -> Study:
    """A study from a JSON or YAML body, checked for size, shape and run-size limits."""
    try:
        text = raw.decode("utf-8")
        data = parse_yaml(text, "body") if "yaml" in content_type else json.loads(text)
        if not isinstance(data, dict):
            raise InputError("body: a study is a mapping (name, commodities, policies, ...)")
        check_size(data, "body")
    except CritminError as error:
        raise HTTPException(422, str(error)) from None
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else "unreadable"
        kind = "YAML" if "yaml" in content_type else "JSON"
        raise HTTPException(422, f"body: not valid UTF-8 {kind} ({reason})") from None
    if "extends" in data:
        raise HTTPException(422, "body: extends names a file; send the merged study instead")
    try:
        study = validate_study(data, "body")
    except CritminError as error:
        raise HTTPException(422, str(error)) from None
    if len(study.commodities) > MAX_RUN_COMMODITIES:
        raise HTTPException(
            422, f"body: commodities: at most {MAX_RUN_COMMODITIES} per run on this server"
        )
    work = study_work(study)
    if work > MAX_RUN_WORK:
        raise HTTPException(
            422,
            f"body: {work:,} solves (commodities × (1 + ensemble draws)) exceed this server's "
            f"limit of {MAX_RUN_WORK:,}; lower ensemble.draws or use `critmin run`",
        )
    return study
