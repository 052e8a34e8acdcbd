"""Safe by default: security headers, CSRF tokens on forms, rate limits, client keys for logs.

No JavaScript runs on the portal, so the policy allows no script at all; styles come from the
portal's own stylesheet; nothing may frame it. Clients are known in logs and limits only by a keyed
hash of their address, never the address itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from consultflow.domain.errors import ConsultflowError
from consultflow.domain.receipts import receipt_hash
from consultflow.logconfig import get_logger

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
    """Adds the security headers to every response (pages, API, static files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def new_token() -> str:
    """A random token for a form (CSRF and the one-time form key)."""
    return secrets.token_urlsafe(24)


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a form's token with the cookie's."""
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


def client_key(secret: bytes, address: str) -> str:
    """A client's address as logs and limits know it: a keyed hash, not the address."""
    return hmac.new(secret, address.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Limit:
    """At most `count` events per `seconds`."""

    count: int
    seconds: float


class RateLimiter:
    """Sliding-window counters, per process; the reverse proxy's limits cover several workers together.

    The number of keys is bounded: past `max_keys`, the least recently used are forgotten.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def allow(self, key: str, limit: Limit, *, now: float | None = None) -> bool:
        """Count one event for `key`; False when the limit is already reached (the event is refused)."""
        at = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= at - limit.seconds:
                hits.popleft()
            allowed = len(hits) < limit.count
            if allowed:
                hits.append(at)
            self._hits[key] = hits  # re-inserted: most recently used last
            while len(self._hits) > self._max_keys:
                self._hits.pop(next(iter(self._hits)))
            return allowed

    def count(self, key: str, limit: Limit, *, now: float | None = None) -> int:
        """Events counted for `key` within the window (without counting one)."""
        at = time.monotonic() if now is None else now
        with self._lock:
            return sum(1 for t in self._hits.get(key, ()) if t > at - limit.seconds)


class Guard:
    """The portal's rate limits as pages and the API apply them, in one place.

    `submits` counts a client's submissions; `lookups` counts a client's wrong receipt codes (past
    the limit, even a right code is refused unchecked, so guessing stops); `code` counts the
    lookups and answers made with one receipt code. Codes are known here only by their hash.
    """

    def __init__(self, limits: Mapping[str, Limit]) -> None:
        self.limits = dict(limits)
        self.limiter = RateLimiter()

    def spend(self, bucket: str, key: str) -> bool:
        """Count one event for `key` in `bucket`; False when its limit was already reached."""
        return self.limiter.allow(f"{bucket}:{key}", self.limits[bucket])

    def spend_code(self, code: str) -> bool:
        """Count one use of a receipt code; a malformed code is left to the service to refuse."""
        try:
            digest = receipt_hash(code)
        except ConsultflowError:
            return True
        return self.spend("code", digest[:24])

    def guessing(self, client: str) -> bool:
        """Whether `client` has given too many wrong codes lately."""
        return self.limiter.count(f"lookups:{client}", self.limits["lookups"]) >= self.limits["lookups"].count

    def wrong_code(self, client: str) -> None:
        """A code that matched no opinion: counted against the client, and logged (by the client's hash)."""
        self.limiter.allow(f"lookups:{client}", self.limits["lookups"])
        log.warning("receipt_refused", client=client)
