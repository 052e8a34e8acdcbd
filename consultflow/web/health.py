"""`/readyz` (the database answers, at the schema this consultflow knows) and, with prometheus_client, `/metrics`.

`/healthz` stays the liveness check: it answers while the process runs, whatever the database does.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from consultflow.domain.errors import DatabaseUnavailableError
from consultflow.logconfig import get_logger
from consultflow.services import health
from consultflow.services.context import ServiceContext

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

QUIET_SECONDS = 10.0  # one log line per kind of database failure per this many seconds
_last_logged: dict[str, float] = {}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 with the schema revision when the database answers at the schema this consultflow knows; else 503."""
    ctx: ServiceContext = request.app.state.ctx
    ready = health.readiness(ctx)
    if ready.ready:
        return JSONResponse({"ready": True, "schema": ready.revision})
    database_problem(ready.problem, ready.kind)
    body = {"error": ready.problem, "exit_code": ready.exit_code, "kind": ready.kind}
    return JSONResponse(body, 503, headers={"Retry-After": "5"})


def database_problem(message: str, kind: str) -> None:
    """One warning line for a database failure, at most one per kind every QUIET_SECONDS (no traceback)."""
    now = time.monotonic()
    if now - _last_logged.get(kind, -QUIET_SECONDS) >= QUIET_SECONDS:
        _last_logged[kind] = now
        log.warning("database_unavailable", kind=kind, error=message)


def log_refusal(exc: BaseException) -> None:
    """What the app's error handlers call for every refusal: a database failure is logged, rate-limited."""
    if isinstance(exc, DatabaseUnavailableError):
        database_problem(str(exc), type(exc).__name__)


def install(app: FastAPI) -> None:
    """`/readyz` always; `/metrics` and request metrics when prometheus_client is installed (the `metrics` extra).

    Call it last in `create_app`: the request metrics' middleware is then the outermost, and sees
    every answer, a bug's 500 too.
    """
    app.include_router(router)
    try:
        from consultflow.web import metrics  # noqa: PLC0415 - prometheus_client is optional
    except ImportError:
        log.info("metrics_off", reason="prometheus_client is not installed (pip install 'consultflow[metrics]')")
        return
    metrics.install(app)
