"""The staff API: every registered command as `POST /api/v1/commands/NAME`, behind a personal access token.

Routes, request and response schemas (and so the OpenAPI document) are generated from the command
registry (`consultflow.services.commands`); nothing here knows a use case. A request goes:
token → the person and their roles → the command's roles and the token's scope → the command's
handler, acting as that person (the pipeline then applies the workflow's and ownership rules in
the transaction). Staff never hold database credentials: only this server does.

A streamed command answers with JSON lines as its items are read (`consultflow.services.wire`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from consultflow.domain.errors import INTERNAL_ERROR_EXIT_CODE, ConsultflowError, PermissionDeniedError
from consultflow.logconfig import get_logger, record_internal_error
from consultflow.services import accounts, wire
from consultflow.services.commands.core import Command, registry
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import LARGEST_INT, SMALLEST_INT
from consultflow.web.common import Error, client_of, error_kind
from consultflow.web.limits import PRINCIPAL, SIGN_IN_FIRST, bearer_token

log = get_logger(__name__)

_STREAM_CHUNK = 64 * 1024  # bytes of JSON lines sent at a time
_STREAM_QUEUE = 16  # chunks waiting for a slow client before the reader waits too
HEARTBEAT_S = 10.0  # an empty line while a long change runs: the client knows the server is still at it

_ERROR_SCHEMA = "#/components/schemas/Error"  # the portal's routes and the held commands' put it there

# Every refusal a command's route can answer with, as the OpenAPI document lists them.
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "model": Error}
    for status, what in (
        (400, "refused (the CLI's message and exit code)"),
        (403, "no token, a token refused, or a role or scope that may not run this command"),
        (404, "no such record"),
        (408, "the body did not arrive in time"),
        (409, "not possible in the record's current state"),
        (413, "the body is too large"),
        (415, "the body is not JSON"),
        (422, "invalid input (the CLI's message and exit code)"),
        (429, "too many attempts"),
        (500, "internal error (logged)"),
        (503, "busy or the database is unavailable: nothing was written; try again"),
    )
}

# The same refusals by reference, for the command routes (the sign-in routes above put Error in the
# document): FastAPI builds a pydantic field for each response model of each route, and 11 models on
# each of 80 routes were most of what building the server's app cost. A streamed command answers in
# JSON lines, but is refused, before its stream starts, in JSON, so its refusals are these too.
_ERROR_REFS = {
    status: {"description": error["description"], "content": {"application/json": {"schema": {"$ref": _ERROR_SCHEMA}}}}
    for status, error in _ERRORS.items()
}


class JsonLines(StreamingResponse):
    """A streamed command's answer: one JSON document a line."""

    media_type = "application/x-ndjson"


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def principal(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer TOKEN (from `consultflow login`)")] = None,
) -> accounts.Principal:
    """The person a request's token belongs to.

    Raises:
        PermissionDeniedError: no token, or one that is unknown, expired or revoked.
    """
    proved = getattr(request.state, PRINCIPAL, None)  # the gate checked it already (command routes)
    if isinstance(proved, accounts.Principal):
        return proved
    token = bearer_token(authorization or "")
    if token is None:
        raise PermissionDeniedError(SIGN_IN_FIRST)
    return accounts.authenticate(_ctx(request), token)


Signed = Annotated[accounts.Principal, Depends(principal)]


def allowed(command: Command[Any, Any], who: accounts.Principal) -> None:
    """The command's roles and the token's scope; the pipeline checks the rest in the transaction.

    Raises:
        PermissionDeniedError: the person has none of the command's roles, or the token only reads.
    """
    if command.writes and who.scope != "write":
        msg = (
            f"this token may only read; {command.name} changes data (sign in again, or issue a token with scope write)"
        )
        raise PermissionDeniedError(msg)
    if not command.roles.intersection(who.roles):
        have = ", ".join(who.roles) or "none"
        may = ", ".join(sorted(r.value for r in command.roles))
        msg = f"{who.name} (role: {have}) may not run {command.name}; allowed roles: {may}"
        raise PermissionDeniedError(msg)


def _endpoint(command: Command[Any, Any]) -> Callable[..., Awaitable[Response]]:
    def run(request: Request, who: accounts.Principal, body: Any) -> Response:
        allowed(command, who)
        wire.refuse_unstorable(body)
        ctx = replace(_ctx(request), token_id=who.token_id)  # each event records the token it came with
        log.info("command", command=command.name, actor=who.name, client=client_of(request))
        if command.streamed:
            return JsonLines(_stream(command, ctx, who.name, body))
        result = command.run(ctx, who.name, body)
        return Response(wire.encode_bytes(command.output, result), media_type="application/json")

    async def endpoint(request: Request, who: Signed, body: Any) -> Response:
        _strictly(command.input, await request.body())
        return await run_in_threadpool(run, request, who, body)

    # FastAPI reads the body's type from the signature: give it the command's input dataclass.
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            inspect.Parameter("who", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Signed),
            inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=command.input),
        ]
    )
    endpoint.__name__ = command.name.replace(".", "_")
    return endpoint


def _strictly(kind: Any, raw: bytes) -> None:
    """The body's JSON types as the document gives them: FastAPI's check alone takes 0 for false, "1" or true for 1.

    Raises:
        RequestValidationError: the first field whose JSON type is not the documented one (422, one line).
    """
    try:
        wire.adapter(kind).validate_json(raw, strict=True)
    except PydanticValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors[0]["type"] != "json_invalid":  # JSON Python reads (a lone surrogate): refuse_unstorable names it
            raise RequestValidationError(errors) from None


class _GoneError(Exception):
    """The client stopped reading: the reader stops too (a read's snapshot is let go)."""


def _stream(command: Command[Any, Any], ctx: ServiceContext, acting: str, body: Any) -> Iterator[bytes]:
    """Run a streamed command in its own thread; its items go out as JSON lines, a chunk at a time.

    The queue is bounded, so a slow client slows the reader instead of filling memory; a client that
    goes away stops it.
    """
    chunks: queue.Queue[bytes | None] = queue.Queue(_STREAM_QUEUE)
    gone = threading.Event()

    def put(chunk: bytes | None) -> None:
        while True:
            if gone.is_set():
                raise _GoneError
            try:
                chunks.put(chunk, timeout=0.5)
            except queue.Full:
                continue
            return

    sent = 0

    def use(items: Iterable[Any]) -> None:
        nonlocal sent
        buffer: list[bytes] = []
        size = 0
        for item in items:
            line = wire.item_line(command.output, item)
            buffer.append(line)
            size += len(line)
            sent += 1
            if size >= _STREAM_CHUNK:
                put(b"".join(buffer))
                buffer, size = [], 0
        if buffer:
            put(b"".join(buffer))

    def produce() -> None:
        try:
            command.run_streamed(ctx, acting, body, use)
            # Only now, the handler returned: its transaction has committed (a change, or a read of
            # personal information put on record), and the client may show what it was sent.
            put(wire.end_line(sent))
        except _GoneError:
            return
        except ConsultflowError as exc:
            _put_last(put, wire.error_line(str(exc), exc.exit_code, error_kind(exc)))
        except Exception as exc:  # noqa: BLE001 - the stream's own boundary: a bug is one line, logged
            record_internal_error(exc)
            log.error(  # noqa: TRY400 - the traceback went, masked, to the error log
                "internal_error", kind=type(exc).__name__, command=command.name
            )
            message = f"internal error ({type(exc).__name__}); it was logged, please report it"
            _put_last(put, wire.error_line(message, INTERNAL_ERROR_EXIT_CODE, "internal"))
        finally:
            _put_last(put, None)

    worker = threading.Thread(target=produce, name=f"stream-{command.name}", daemon=True)
    worker.start()
    try:
        while True:
            try:
                chunk = chunks.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                yield b"\n"
                continue
            if chunk is None:
                return
            yield chunk
    finally:
        gone.set()


def _put_last(put: Callable[[bytes | None], None], chunk: bytes | None) -> None:
    with contextlib.suppress(_GoneError):
        put(chunk)


@dataclass(frozen=True)
class SignIn:
    """A password sign-in that returns a personal access token for the CLI."""

    name: str
    password: str
    totp_code: str | None = None
    token_name: str = "cli"  # noqa: S105 - a label, not a secret
    scope: str = "write"
    expires_days: int = 30


@dataclass(frozen=True)
class Token:
    """A personal access token: shown once, stored only as a hash."""

    token: str
    token_id: int
    name: str
    scope: str
    expires_at: datetime


@dataclass(frozen=True)
class Whoami:
    """Who the token belongs to."""

    name: str
    roles: tuple[str, ...]
    token_id: int
    scope: str
    expires_at: datetime


def bound_numbers(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with each command's numbers bounded as `refuse_unstorable` bounds them (a 422 outside)."""
    schemas = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()

    def bound(schema: dict[str, Any], name: str) -> None:
        if "$ref" in schema and schema["$ref"] not in seen:
            seen.add(schema["$ref"])
            bound(schemas[schema["$ref"].rsplit("/", 1)[-1]], name)
        if schema.get("type") == "integer":
            schema.setdefault("minimum", 0 if name == "limit" else SMALLEST_INT)
            schema.setdefault("maximum", LARGEST_INT)
        for field, inner in schema.get("properties", {}).items():
            bound(inner, field)
        for inner in [*schema.get("anyOf", ()), *schema.get("prefixItems", ()), schema.get("items")]:
            if isinstance(inner, dict):
                bound(inner, name)

    for path, item in document.get("paths", {}).items():
        if path.startswith("/api/v1/commands/"):
            bound(item["post"]["requestBody"]["content"]["application/json"]["schema"], "")
    return document


@functools.cache
def router() -> APIRouter:
    """Sign-in, whoami, sign-out, and one route per registered command.

    Built once a process: the registry does not change while it runs, and every app takes its
    routes as they are (`consultflow.web.app.portal_routes`). Building them (a pydantic field for
    each command's input and result) was most of what building an app cost.
    """
    made = APIRouter(prefix="/api/v1")

    @made.post(
        "/auth/signin", tags=["sign-in"], responses=_ERRORS, summary="Sign in with a password (and TOTP code): a token"
    )
    def sign_in(request: Request, body: SignIn) -> Token:
        wire.refuse_unstorable(body)
        issued = accounts.sign_in(
            _ctx(request),
            name=body.name,
            password=body.password,
            totp_code=body.totp_code,
            client=client_of(request),
            token_name=body.token_name,
            scope=body.scope,
            expires_days=body.expires_days,
        )
        return Token(issued.token, issued.token_id, issued.name, issued.scope, issued.expires_at)

    @made.get("/auth/whoami", tags=["sign-in"], responses=_ERRORS, summary="Who this token belongs to")
    def whoami(who: Signed) -> Whoami:
        return Whoami(who.name, tuple(who.roles), who.token_id, who.scope, who.expires_at)

    @made.post("/auth/signout", tags=["sign-in"], responses=_ERRORS, summary="Revoke this token")
    def sign_out(request: Request, who: Signed) -> JSONResponse:
        accounts.revoke_token(_ctx(request), acting=who.name, token_id=who.token_id)
        return JSONResponse({"revoked": who.token_id})

    for command in registry().values():
        roles = ", ".join(sorted(r.value for r in command.roles))
        made.add_api_route(
            f"/commands/{command.name}",
            _endpoint(command),
            methods=["POST"],
            tags=[command.name.partition(".")[0]],
            summary=command.summary,
            description=(
                f"Roles: {roles}. {'Changes data (a token with scope write).' if command.writes else 'Reads only.'}"
                + (' Answers with JSON lines: {"item": ...} per item, then {"end": N}.' if command.streamed else "")
            ),
            response_model=None if command.streamed else command.output,
            response_class=JsonLines if command.streamed else JSONResponse,
            responses=_ERROR_REFS,
            operation_id=command.name,
        )
    return made
