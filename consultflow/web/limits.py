"""Request bodies the staff API takes: a token first, and no more bytes than a command needs.

Starlette reads a request body without a size limit, and a form parser's limit does not cover
JSON. This gate sits in front of the staff API: a request without a bearer token is refused before
its body is read, and a body is counted as it arrives and refused (413) once it passes its limit,
so no client can make a server process hold an unbounded body. An import carries a file's rows
and gets the larger limit. Every other path has a limit too: 64 KB for the portal's JSON API,
128 KB for the portal's forms and anything else. A declared Content-Length past the limit is
refused before a byte is read; a chunked body is counted chunk by chunk. A body must arrive
within READ_SECONDS of the request (408 after), so a slow client cannot hold a worker.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from consultflow.domain.errors import ConsultflowError
from consultflow.services import accounts
from consultflow.services.context import ServiceContext

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COMMANDS = "/api/v1/commands/"
SIGN_IN = "/api/v1/auth/"
PORTAL_API = ("/api/v1/consultations", "/api/v1/receipts/")  # the villagers' JSON calls: one opinion at most
PORTAL_LIMIT = 64 * 1024
BODY_LIMIT = 8 * 1024 * 1024  # bytes: any command's fields (a 2,000,000-id list is about 16 MB: see IMPORT)
LARGE_BODY_LIMIT = 512 * 1024 * 1024  # bytes: an import's rows, or a province's id list
LARGE = frozenset({"opinion.import", "opinion.fire", "opinion.assign", "opinion.merge"})
SIGN_IN_LIMIT = 64 * 1024
OTHER_LIMIT = 128 * 1024  # bytes: a portal form (a 5,000-character opinion percent-encoded is about 45 KB)
READ_SECONDS = 30.0  # a whole body must arrive within this many seconds of the request


class _TooLargeError(Exception):
    """The body passed its limit (or its deadline): answered already."""


def limit_of(path: str) -> int:
    """The body limit of a path."""
    if path.startswith(COMMANDS):
        return LARGE_BODY_LIMIT if path.removeprefix(COMMANDS) in LARGE else BODY_LIMIT
    if path.startswith(SIGN_IN):
        return SIGN_IN_LIMIT
    if path.startswith(PORTAL_API):
        return PORTAL_LIMIT
    return OTHER_LIMIT


class StaffGate:
    """Refuses staff API requests without a token before reading them, and bodies past their limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request's token header and count its body as it arrives."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_of(str(scope.get("path", "")))
        headers = dict(scope.get("headers") or [])
        if scope["path"].startswith(COMMANDS):
            refusal = await _token_refused(scope, headers.get(b"authorization", b""))
            if refusal is not None:  # before a byte of the body is read: a bad token costs one lookup
                await _answer(send, *refusal)
                return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, _too_large(limit), "too_large")
            return
        seen = 0
        answered = False
        deadline = anyio.current_time() + READ_SECONDS

        async def counted() -> Message:
            nonlocal seen, answered
            left = deadline - anyio.current_time()
            with anyio.move_on_after(max(left, 0.0)) as waited:
                message = await receive()
            if waited.cancelled_caught:
                if not answered:
                    answered = True
                    await _answer(send, 408, f"the request's body did not arrive within {READ_SECONDS:g} s", "timeout")
                raise _TooLargeError
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and not answered:
                    answered = True  # the refusal goes out now; whatever the app answers after is dropped
                    await _answer(send, 413, _too_large(limit), "too_large")
                    raise _TooLargeError
            return message

        async def sending(message: Message) -> None:
            if not answered:
                await send(message)

        with contextlib.suppress(_TooLargeError):  # refused (413) and answered already
            await self.app(scope, counted, sending)


SIGN_IN_FIRST = "sign in first: 'consultflow login URL' (send Authorization: Bearer TOKEN)"
PRINCIPAL = "consultflow_principal"  # where the gate leaves who the token proved, for the route


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _token_refused(scope: Scope, header: bytes) -> tuple[int, str, str] | None:
    """Why the request's token is refused (status, line, kind), or None: then who it proves is in the scope."""
    token = bearer_token(header.decode("latin-1"))
    if token is None:
        return 403, SIGN_IN_FIRST, "permission_denied"
    ctx: ServiceContext = scope["app"].state.ctx
    try:
        who = await anyio.to_thread.run_sync(accounts.authenticate, ctx, token)
    except ConsultflowError as exc:
        return 403, str(exc), "permission_denied"
    scope.setdefault("state", {})[PRINCIPAL] = who
    return None


def _too_large(limit: int) -> str:
    if limit < 1024 * 1024:
        return f"the request is over {math.ceil(limit / 1024)} KB"
    return f"the request is over {limit // (1024 * 1024)} MB; split the file or the id list"


async def _answer(send: Send, status: int, message: str, kind: str) -> None:
    body = json.dumps({"error": message, "exit_code": 1, "kind": kind}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
