"""`/metrics` in the Prometheus text format (prometheus_client, the `metrics` extra).

Request latency and status are labelled by route template (`/c/{consultation_id}`), never by the
raw path, so no id or receipt code reaches a label. The database's figures (deliveries by status,
dead letters, pending reminders, open rounds, chain heads' ages) are read at scrape time through a
read-only use case, so every process reports the same. Request metrics are per process, unless
PROMETHEUS_MULTIPROC_DIR names a directory the server's processes share (prometheus_client's
multiprocess mode), when a scrape of any process reports them all.

`/metrics` answers only a request from this machine (127.0.0.1 or ::1, not through a proxy) or one
with `Authorization: Bearer` and CONSULTFLOW_METRICS_TOKEN.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from collections.abc import Iterator

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consultflow.config import environment
from consultflow.domain.errors import DatabaseUnavailableError
from consultflow.services import health
from consultflow.services.context import ServiceContext
from consultflow.web.health import database_problem

router = APIRouter(include_in_schema=False)

LOCAL = frozenset({"127.0.0.1", "::1"})
PROXIED = (b"x-forwarded-for", b"x-real-ip", b"forwarded")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestMetrics:
    """Each request's time and status, by method and route template (outermost middleware)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request; label it once the router has matched its route."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            labels = (str(scope.get("method", "")), route_of(scope), str(status))
            self.histogram.labels(*labels).observe(time.perf_counter() - started)


def route_of(scope: Scope) -> str:
    """The matched route's template (`/api/v1/consultations/{consultation_id}`), `/static`, or `unmatched`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if isinstance(template, str) and template:
        return _prefix(scope, template) + template
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return "unmatched"


_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def _prefix(scope: Scope, template: str) -> str:
    """The prefix an included router adds (`/api/v1`): the path less the route's own part, filled in.

    An included router's route knows only its own template; the prefix is fixed text, so it is
    what is left of the path once the route's part, with the request's parameters, is taken off.
    """
    params = scope.get("path_params") or {}
    path = str(scope.get("path", ""))
    try:
        own = _PARAM.sub(lambda m: str(params[m[1]]), template)
    except KeyError:
        return ""
    if own and path.endswith(own) and len(path) > len(own):
        return path[: -len(own)]
    return ""


class DatabaseFigures(Collector):
    """The gauges, read from the database at each scrape (one bounded query each)."""

    def __init__(self, ctx: ServiceContext, queries: health.HealthQueries) -> None:
        self.ctx = ctx
        self.queries = queries

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """consultflow_database_up, and the figures when it is up."""
        up = GaugeMetricFamily("consultflow_database_up", "1 when the database answered this scrape, else 0")
        try:
            figures = health.figures(self.ctx, self.queries)
        except DatabaseUnavailableError as exc:
            database_problem(str(exc), type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        deliveries = GaugeMetricFamily(
            "consultflow_deliveries", "deliveries in the outbox, by status", labels=["status"]
        )
        for status in sorted({"pending", "sending", "sent", "dead", *figures.deliveries}):
            deliveries.add_metric([status], figures.deliveries.get(status, 0))
        yield deliveries
        yield GaugeMetricFamily(
            "consultflow_dead_letters",
            "deliveries given up after their last attempt",
            value=figures.deliveries.get("dead", 0),
        )
        yield GaugeMetricFamily(
            "consultflow_pending_reminders", "reminders not yet sent", value=figures.pending_reminders
        )
        yield GaugeMetricFamily("consultflow_open_rounds", "rounds open now", value=figures.open_rounds)
        ages = GaugeMetricFamily(
            "consultflow_chain_head_age_seconds",
            "seconds since each consultation's last signed chain head (its last event when none is signed)",
            labels=["consultation"],
        )
        for consultation_id, age in sorted(figures.head_ages.items()):
            ages.add_metric([str(consultation_id)], age)
        yield ages
        yield GaugeMetricFamily(
            "consultflow_db_pool_checked_out",
            "database connections this process has checked out of its pool now",
            value=figures.pool_checked_out,
        )


def install(app: FastAPI) -> None:
    """Add `/metrics` and the request metrics' middleware (call it after every other middleware)."""
    from consultflow.bootstrap import health_queries  # noqa: PLC0415 - the composition root wires the store's queries

    ctx: ServiceContext = app.state.ctx
    shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry()
    # In multiprocess mode the values live in files every process writes; a scrape reads them all.
    histogram = Histogram(
        "consultflow_http_request_duration_seconds",
        "time to answer a request, by method, route template and status",
        ["method", "route", "status"],
        buckets=BUCKETS,
        registry=None if shared else registry,
    )
    figures = DatabaseFigures(ctx, health_queries(ctx))
    registry.register(figures)
    app.state.metrics_registry = registry
    app.state.metrics_database = figures
    app.state.metrics_shared = bool(shared)
    app.state.metrics_token = environment().text("CONSULTFLOW_METRICS_TOKEN").encode("utf-8")
    app.include_router(router)
    app.add_middleware(RequestMetrics, histogram=histogram)


def _allowed(request: Request) -> bool:
    token: bytes = request.app.state.metrics_token
    given = request.headers.get("authorization", "")
    if token and given.lower().startswith("bearer "):
        return hmac.compare_digest(given[7:].strip().encode("utf-8"), token)
    host = request.client.host if request.client is not None else ""
    proxied = any(name in PROXIED for name, _ in request.scope.get("headers", []))
    return host in LOCAL and not proxied


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """The Prometheus text format: request metrics, and the database's figures read now."""
    if not _allowed(request):
        message = (
            "metrics are served to this machine only (127.0.0.1), or with the bearer token CONSULTFLOW_METRICS_TOKEN"
        )
        return JSONResponse({"error": message, "exit_code": 1, "kind": "not_allowed"}, 403)
    scrape: CollectorRegistry = request.app.state.metrics_registry
    if request.app.state.metrics_shared:  # every process's request metrics, from the shared directory
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
        scrape.register(request.app.state.metrics_database)
    return Response(generate_latest(scrape), media_type=CONTENT_TYPE_LATEST)
