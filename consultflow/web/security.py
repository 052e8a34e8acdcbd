"""Safe by default: security headers, CSRF tokens on forms, rate limits, client keys for logs.

No JavaScript runs on the portal, so the policy allows no script at all; styles come from the
portal's own stylesheet; nothing may frame it. Clients are known in logs and limits only by a keyed
hash of their address, never the address itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from consultflow.domain.errors import ConsultflowError, ValidationError
from consultflow.domain.receipts import receipt_hash
from consultflow.logconfig import get_logger
from consultflow.services import receipts, throttle
from consultflow.services.context import ServiceContext
from consultflow.services.throttle import Rate

log = get_logger(__name__)

# The rows a public page or API call gives of each table of the account or the plan table: a
# province's account is a file (`consultflow report account`), not one page held in a worker.
PUBLIC_REPORT_ROWS = 1000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds the security headers to every response (pages, API, static files, errors), and answers a bug itself.

    An exception that reaches it (a bug anywhere below) is answered by `on_error` with the headers
    too, instead of Starlette's outermost handler, which would answer without them.
    """

    def __init__(self, app: ASGIApp, on_error: Callable[[Scope, Exception], Awaitable[Any]] | None = None) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if self.on_error is None or started:
                raise
            response = await self.on_error(scope, exc)
            await response(scope, receive, send_with_headers)


def new_token() -> str:
    """A random token for a form (CSRF and the one-time form key)."""
    return secrets.token_urlsafe(24)


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a form's token with the cookie's."""
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


def client_key(secret: bytes, address: str) -> str:
    """A client's address as logs and limits know it: a keyed hash, not the address."""
    return hmac.new(secret, address.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


Limit = Rate  # at most `count` events per `seconds`


class Guard:
    """The portal's rate limits as pages and the API apply them, in one place, shared by every process.

    Counts are kept in the database (see `consultflow.services.throttle`): `submits` counts a
    client's submissions; `lookups` counts every receipt lookup of a client, right or wrong (past
    the limit, even a right code is refused unchecked, so guessing stops); `code` counts the
    lookups and answers made with one receipt code. Codes are known there only by their hash.
    """

    def __init__(self, ctx: ServiceContext, limits: Mapping[str, Limit]) -> None:
        self.ctx = ctx
        self.limits = dict(limits)

    def spend(self, bucket: str, key: str) -> bool:
        """Count one submission for client `key`; False when its limit was already reached."""
        assert bucket == "submits", bucket
        return throttle.spend(self.ctx, [(throttle.SUBMIT_CLIENT + key, self.limits[bucket])]) is None

    def asker(self, client: str) -> receipts.Asker:
        """What every receipt lookup of `client` is counted and limited by."""
        return receipts.Asker(client, self.limits["lookups"], self.limits["code"])


class FormRefusedError(ValidationError):
    """A form whose CSRF token is missing, forged, or from another session or receipt (HTTP 403)."""

    def __init__(self) -> None:
        super().__init__("the form expired or came from another site (CSRF token missing or wrong); reload the page")


def _mac(secret: bytes, *parts: str) -> str:
    joined = "\x00".join(("consultflow-form", *parts)).encode("utf-8", "surrogatepass")
    return hmac.new(secret, joined, hashlib.sha256).hexdigest()[:32]


def _receipt_part(receipt: str | None) -> str:
    try:
        return receipt_hash(receipt)[:32] if receipt else ""
    except ConsultflowError:
        return ""


def form_token(secret: bytes, session: str, receipt: str | None) -> str:
    """A form's CSRF token: HMACs under the server's secret of the visitor's session, and of it with their receipt code.

    A cookie planted from elsewhere (another port of the same host) cannot carry a token for
    another session, and a token from the planter's own session does not hold the victim's code.
    """
    return f"{_mac(secret, session)}.{_mac(secret, session, _receipt_part(receipt))}"


def form_token_ok(secret: bytes, given: str, session: str | None, receipt: str | None, *, bound: bool) -> bool:
    """Whether `given` is this session's token; `bound`: and for this receipt code (forms that act on it)."""
    if not session or not given:
        return False
    first, _, second = str(given).partition(".")
    ok = hmac.compare_digest(first, _mac(secret, session))
    if bound:
        ok = hmac.compare_digest(second, _mac(secret, session, _receipt_part(receipt))) and ok
    return ok
