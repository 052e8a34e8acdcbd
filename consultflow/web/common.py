"""What the server's modules share: settings, HTTP statuses and error documents, who is asking.

app.py wires the application; the API, the pages and sign-in import these from here, not from
app.py, so no module of the server imports the one that imports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from pydantic import BaseModel

from consultflow.config import environment
from consultflow.domain.errors import (
    ConfigurationError,
    ConflictError,
    ConsultflowError,
    DatabaseUnavailableError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    RoundStateError,
    TooManyAttemptsError,
    ValidationError,
)
from consultflow.web.security import FormRefusedError, Guard, Limit, client_key

if TYPE_CHECKING:
    from consultflow.web.oidc import OidcSettings

HERE = Path(__file__).parent
USAGE_EXIT_CODE = 2  # the CLI's exit code for a malformed call

# Default limits: generous for a person, tight for a script.
DEFAULT_LIMITS = {
    "submits": Limit(20, 3600),  # opinions per client per hour
    "lookups": Limit(30, 900),  # receipt lookups (right or wrong, any path) per client per 15 minutes
    "code": Limit(30, 3600),  # lookups and answers per receipt code per hour
}


#: Single sign-on is configured, or half configured (which `OidcSettings.from_env` refuses), when one of these is set.
OIDC_NAMED_BY = ("CONSULTFLOW_OIDC_ISSUER", "CONSULTFLOW_OIDC_CLIENT_ID", "CONSULTFLOW_OIDC_PUBLIC_URL")


@dataclass(frozen=True)
class WebSettings:
    """The portal's own settings (the database and the rest come from consultflow's Settings)."""

    secret: bytes
    limits: dict[str, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    secure_cookies: bool = False
    oidc: OidcSettings | None = None  # single sign-on, when CONSULTFLOW_OIDC_ISSUER is set
    jobs: bool = False  # run the server's schedule (signing heads, closing rounds): the real server does
    heads_seconds: float = 3600.0
    close_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> WebSettings:
        """CONSULTFLOW_WEB_SECRET (or _FILE), _LIMITS, _SECURE_COOKIES, and single sign-on's CONSULTFLOW_OIDC_*.

        Raises:
            ConfigurationError: a secret under 32 characters, limits that do not parse, or single
                sign-on configured without the oidc extra or with a setting that cannot work.
        """
        env = environment()
        secret = env.text("CONSULTFLOW_WEB_SECRET")
        secret_file = env.text("CONSULTFLOW_WEB_SECRET_FILE")
        if secret_file:
            try:
                secret = Path(secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                msg = f"CONSULTFLOW_WEB_SECRET_FILE {secret_file!r} cannot be read: {exc.strerror}"
                raise ConfigurationError(msg) from None
        if not secret:
            secret = os.urandom(32).hex()  # one process: fine; `consultflow web` shares one among workers
        if len(secret) < 32:
            msg = "CONSULTFLOW_WEB_SECRET must be at least 32 characters (e.g. from 'openssl rand -hex 32')"
            raise ConfigurationError(msg)
        secure = bool(env.get("CONSULTFLOW_WEB_SECURE_COOKIES", False))
        limits = parse_limits(env.text("CONSULTFLOW_WEB_LIMITS"))
        oidc = None
        if any(env.text(name) for name in OIDC_NAMED_BY):  # else Authlib is not even loaded (0.1 s a process)
            from consultflow.web.oidc import OidcSettings  # noqa: PLC0415 - it imports this module's helpers

            oidc = OidcSettings.from_env(env)
        return cls(
            secret.encode("utf-8"),
            limits,
            secure,
            oidc,
            jobs=bool(env.get("CONSULTFLOW_SERVER_JOBS", True)),
            heads_seconds=float(env.get("CONSULTFLOW_HEADS_SECONDS", 3600.0)),
            close_seconds=float(env.get("CONSULTFLOW_AUTO_CLOSE_SECONDS", 60.0)),
        )


def parse_limits(text: str) -> dict[str, Limit]:
    """`submits=20/3600,lookups=10/900,code=30/3600` (count per seconds); unnamed limits keep their defaults.

    Raises:
        ConfigurationError: an unknown name or a malformed count.
    """
    limits = dict(DEFAULT_LIMITS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        count, _, seconds = value.partition("/")
        if name not in limits or not count.isdigit() or not seconds.isdigit() or int(seconds) == 0:
            allowed = ", ".join(limits)
            msg = f"CONSULTFLOW_WEB_LIMITS: {part!r} is not NAME=COUNT/SECONDS with NAME one of {allowed}"
            raise ConfigurationError(msg)
        limits[name] = Limit(int(count), float(seconds))
    return limits


def http_status(exc: ConsultflowError) -> int:
    """The HTTP status of a refusal; the body also carries the CLI's exit code."""
    for kind, status in (
        (FormRefusedError, 403),
        (TooManyAttemptsError, 429),
        (NotFoundError, 404),
        (PermissionDeniedError, 403),
        (InvalidTransitionError, 409),
        (RoundStateError, 409),
        (ConflictError, 503),
        (DatabaseUnavailableError, 503),
        (ValidationError, 422),
    ):
        if isinstance(exc, kind):
            return status
    return 400


def error_kind(exc: BaseException) -> str:
    """A stable name for the error's kind: `not_found`, `validation`, ..."""
    name = type(exc).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_") or "error"


def client_of(request: Request) -> str:
    """The client's keyed hash (its address behind a trusted proxy, as uvicorn's proxy headers give it)."""
    address = request.client.host if request.client is not None else "unknown"
    settings: WebSettings = request.app.state.web
    return client_key(settings.secret, address)


def guard_of(request: Request) -> Guard:
    """The app's rate limits."""
    guard: Guard = request.app.state.guard
    return guard


def wants_json(request: Request) -> bool:
    """Whether the request came to the API (JSON errors) rather than a page (HTML errors)."""
    return request.url.path.startswith("/api/")


class Error(BaseModel):
    """Every refusal: the CLI's one line, its exit code, and a stable kind."""

    error: str
    exit_code: int
    kind: str


def error_body(message: str, exit_code: int, kind: str) -> dict[str, Any]:
    """The API's error document: the CLI's one line and exit code."""
    return {"error": message, "exit_code": exit_code, "kind": kind}
