"""The web application: wiring, settings from the environment, and how errors become answers.

Pages and the JSON API are thin: each calls one service, the same the CLI calls, so the rules,
validation messages and exit codes are the CLI's. Views are plain `def`s: FastAPI runs them in its
thread pool, each with its own unit of work.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute

from consultflow import __version__
from consultflow.domain.errors import (
    INTERNAL_ERROR_EXIT_CODE,
    ConsultflowError,
    TooManyAttemptsError,
)
from consultflow.logconfig import get_logger, record_internal_error
from consultflow.services.context import ServiceContext
from consultflow.web.common import (
    HERE,
    USAGE_EXIT_CODE,
    WebSettings,
    client_of,
    error_body,
    error_kind,
    http_status,
    wants_json,
)
from consultflow.web.limits import StaffGate
from consultflow.web.security import Guard, SecurityHeaders

log = get_logger(__name__)


@functools.cache
def portal_routes() -> tuple[BaseRoute, ...]:
    """The portal's pages, the plan review's pages, the public API and the staff API, built once a process.

    Every app takes these same route objects: a route holds no app's state (a view finds the app's
    services through the request), and building one (a pydantic field for each parameter, input
    and result) was most of what building an app and answering its first request cost. Including a
    router instead would have each app build its routes again when it first matched a request.
    """
    from consultflow.web import api, pages, programme_page, review_pages, staff  # noqa: PLC0415, F401 - their routes

    return (*pages.router.routes, *review_pages.router.routes, *api.router.routes, *staff.router().routes)


def create_app(ctx: ServiceContext, settings: WebSettings) -> FastAPI:
    """The portal over a wired service context."""
    from consultflow.web import staff  # noqa: PLC0415

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        scheduler = None
        if settings.jobs:
            from consultflow.web import jobs  # noqa: PLC0415 - APScheduler loads only in the real server

            scheduler = jobs.start(ctx, heads_seconds=settings.heads_seconds, close_seconds=settings.close_seconds)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)

    app = FastAPI(
        lifespan=lifespan,
        title="consultflow",
        version=__version__,
        summary="Submit opinions, follow them with a receipt code, read the published account.",
        docs_url=None,  # the interactive docs load scripts from a CDN; county intranets are offline
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        routes=list(portal_routes()),
    )
    app.state.ctx = ctx
    app.state.web = settings
    app.state.guard = Guard(ctx, settings.limits)
    generated = app.openapi
    app.openapi = lambda: staff.bound_numbers(generated())  # type: ignore[method-assign]
    if settings.oidc is not None:  # single sign-on: its routes exist only when it is configured
        from consultflow.web import oidc  # noqa: PLC0415 - Authlib loads only then

        app.include_router(oidc.router(settings.oidc))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(ConsultflowError, _refused)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.middleware("http")(_log_request)
    app.add_middleware(StaffGate)  # a token before a staff request's body is read; bodies bounded
    app.add_middleware(GZipMiddleware, minimum_size=500)  # pages and JSON compressed when the client asks
    app.add_middleware(SecurityHeaders, on_error=_bug)  # outermost: headers on every answer, a bug's too
    from consultflow.web import health  # noqa: PLC0415 - /readyz, and /metrics with prometheus_client

    health.install(app)  # last: request metrics see every answer
    return app


def app_from_env() -> FastAPI:
    """The app as `uvicorn --factory` builds it in each worker process, from CONSULTFLOW_* variables."""
    from consultflow.bootstrap import build_context  # noqa: PLC0415
    from consultflow.config import DEFAULT_DB, DEFAULT_TZ, Environment, Settings  # noqa: PLC0415
    from consultflow.logconfig import configure_logging  # noqa: PLC0415

    env = Environment()
    json_lines = bool(env.get("CONSULTFLOW_LOG_JSON", False))
    configure_logging(json_lines=json_lines, level=env.text("CONSULTFLOW_LOG_LEVEL", "INFO").upper())
    workflows, key_file = env.get("CONSULTFLOW_WORKFLOWS"), env.get("CONSULTFLOW_CHAIN_KEY_FILE")
    settings = Settings(
        db_url=env.text("CONSULTFLOW_DB", DEFAULT_DB),
        workflows_dir=Path(workflows) if workflows else None,
        tz_name=env.text("CONSULTFLOW_TZ", DEFAULT_TZ),
        log_json=json_lines,
        chain_key_file=Path(key_file) if key_file else None,
    )
    try:
        return create_app(build_context(settings, acting_proven=True), WebSettings.from_env())
    except ConsultflowError as exc:
        # `serve` checked all this before it started the workers; uvicorn starts a worker again when
        # one dies, perhaps while the database is away. That is one line, and the process ends for
        # uvicorn to try again (it does until the database answers), never a traceback.
        get_logger(__name__).error("worker_start_refused", error=exc, exit_code=exc.exit_code)
        raise SystemExit(exc.exit_code) from None


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsultflowError)
    status = http_status(exc)
    from consultflow.web.health import log_refusal  # noqa: PLC0415

    log_refusal(exc)  # a database failure: one line, rate-limited, no traceback
    headers = {"Retry-After": "2"} if status == 503 else None
    if isinstance(exc, TooManyAttemptsError):
        headers = {"Retry-After": str(max(1, int((exc.until - request.app.state.ctx.clock.now()).total_seconds())))}
    if wants_json(request):
        return JSONResponse(error_body(str(exc), exc.exit_code, error_kind(exc)), status, headers=headers)
    from consultflow.web.pages import error_page  # noqa: PLC0415

    return error_page(request, str(exc), status)


async def _malformed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
    message = f"{where}: {first.get('msg', 'malformed')}".replace("\n", " ")
    if wants_json(request):
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media and not (media == "application/json" or media.endswith("+json")):  # no type: read as JSON
            message = "the body must be JSON (Content-Type: application/json)"
            return JSONResponse(error_body(message, USAGE_EXIT_CODE, "unsupported_media_type"), 415)
        return JSONResponse(error_body(message, USAGE_EXIT_CODE, "usage"), 422)
    from consultflow.web.pages import error_page  # noqa: PLC0415

    return error_page(request, message, 422)


_KINDS = {400: "usage", 404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the path has not) in the API's error format."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if wants_json(request):
        message = {404: "no such API call", 405: "this API call does not take this method"}.get(status, str(exc.detail))
        kind = _KINDS.get(status, "refused")
        return JSONResponse(error_body(message, USAGE_EXIT_CODE, kind), status, headers=exc.headers)
    from consultflow.web.pages import error_page  # noqa: PLC0415

    response = error_page(request, str(exc.detail), status)
    response.headers.update(exc.headers or {})
    return response


async def _bug(scope: Any, exc: Exception) -> Response:
    """A bug anywhere in the app, answered by the outermost middleware (so with the security headers)."""
    if isinstance(exc, ConsultflowError):  # raised in a middleware (a token's lookup), e.g. the database is down
        return await _refused(Request(scope), exc)
    return await _internal(Request(scope), exc)


async def _internal(request: Request, exc: Exception) -> Response:
    record_internal_error(exc)  # the traceback goes to the error log only
    message = f"internal error ({type(exc).__name__}); it was logged, please report it"
    log.error("internal_error", kind=type(exc).__name__, path=request.url.path)
    if wants_json(request):
        return JSONResponse(error_body(message, INTERNAL_ERROR_EXIT_CODE, "internal"), 500)
    from consultflow.web.pages import error_page  # noqa: PLC0415

    return error_page(request, message, 500)


async def _log_request(request: Request, call_next: Any) -> Response:
    """One log line per request: method, path (never personal: codes travel in bodies), status, time, client key."""
    started = time.perf_counter()
    response: Response = await call_next(request)
    log.info(
        "request",
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        ms=round(1000 * (time.perf_counter() - started), 1),
        client=client_of(request),
    )
    return response
