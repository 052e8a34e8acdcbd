"""Staff accounts: the rules of passwords, access tokens, two-step codes, sign-in limits and the account log.

Staff sign in to the server with a password (and a code from an authenticator app once they turn
two-step codes on) and get a personal access token that the CLI sends with each call.

- Passwords are kept only as argon2id hashes (argon2-cffi's defaults, RFC 9106); a hash made
  with older parameters is replaced at the next sign-in.
- A token is "cft_" and 32 random bytes in URL-safe base64. Only its SHA-256 is stored: the
  token is random, so an unkeyed hash cannot be reversed by guessing. Its first 8 characters are
  kept to tell tokens apart in listings.
- Two-step codes are TOTP (RFC 6238: 6 digits, 30 seconds), accepted one step early or late;
  each step is used once.
- The account log is a hash chain of its own, as each consultation's audit chain is (the same
  canonical JSON and SHA-256, or HMAC-SHA256 with the chain key). It never holds a password,
  a token or a two-step secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from consultflow.domain.audit import ChainKey
from consultflow.domain.errors import ConfigurationError, ValidationError

PASSWORD_MIN, PASSWORD_MAX = 10, 1024
TOKEN_PREFIX = "cft_"  # noqa: S105 - the mark of a token, not a secret
TOKEN_SHOWN = 8  # characters of a token kept for listings ("cft_" and four more)
SCOPES = ("read", "write")
TOKEN_DAYS, TOKEN_MAX_DAYS = 90, 366
SIGNIN_TOKEN_DAYS = 30
TOKEN_TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often per token
ACCOUNT_FAILURES, CLIENT_FAILURES = 5, 20  # failed sign-ins per window before a lock
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_TIME = timedelta(minutes=15)
TOTP_ISSUER = "consultflow"
TOTP_VALID_WINDOW = 1  # steps accepted either side of the current one

_TOKEN = re.compile(r"cft_[A-Za-z0-9_-]{43}")
_CODE = re.compile(r"[0-9]{6}")

_HASHER = PasswordHasher()  # argon2id with RFC 9106's low-memory parameters


class AccountKind:
    """What an account event records."""

    SIGNIN = "signin"
    SIGNIN_FAILED = "signin_failed"
    TOKEN_ISSUED = "token_issued"  # noqa: S105 - a name, not a secret
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - a name, not a secret
    PASSWORD_SET = "password_set"  # noqa: S105 - a name, not a secret
    TOTP_ENABLED = "totp_enabled"
    TOTP_DISABLED = "totp_disabled"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    ROLE_GRANTED = "role_granted"
    ROLE_REVOKED = "role_revoked"
    ACTOR_ADDED = "actor_added"


class FailureReason:
    """Why a sign-in failed: recorded in the account log only, never told to the person signing in."""

    BAD_PASSWORD = "bad_password"  # noqa: S105 - a name, not a secret
    BAD_TOTP = "bad_totp"
    TOTP_REUSED = "totp_reused"
    LOCKED = "locked"
    UNKNOWN_ACCOUNT = "unknown_account"
    NO_PASSWORD = "no_password"  # noqa: S105 - a name, not a secret
    DISABLED = "disabled"
    # Single sign-on (OpenID Connect)
    BAD_STATE = "bad_state"  # the provider's answer reached another browser than the one that started, or too late
    PROVIDER_REFUSED = "provider_refused"  # the provider answered with an error, or would not exchange its code
    BAD_ID_TOKEN = "bad_id_token"  # noqa: S105 - a name; its signature, issuer, audience, expiry, nonce or claim failed
    BAD_GRANT = "bad_grant"  # the hand-off to the CLI was forged or expired, or came without its verifier


#: How a single sign-on is marked in the account log (`{"via": "oidc", "issuer": ...}`).
VIA_OIDC = "oidc"


@dataclass(frozen=True)
class AccountDraft:
    """An account event before it is chained: who acted, whose account, what happened."""

    kind: str
    at: datetime
    actor: str | None  # None: nobody proven (a failed sign-in, local administration)
    subject: str | None  # None: no known account (a sign-in under an unknown name)
    payload: dict[str, Any] | None = None


class CredentialRow(Protocol):
    """A person's password hash, two-step secret and whether their account is disabled."""

    actor_id: int
    password_hash: str | None
    password_set_at: datetime | None
    totp_secret: str | None
    totp_confirmed_at: datetime | None
    totp_last_step: int | None
    disabled_at: datetime | None


class TokenRow(Protocol):
    """A personal access token, without the token itself."""

    id: int
    actor_id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by_id: int | None


class AccountEventRow(Protocol):
    """A stored account event."""

    chain_seq: int
    kind: str
    actor: str | None
    subject: str | None
    at: datetime
    payload: str
    key_id: str | None
    prev_hash: str
    hash: str


class ChainHeadRow(Protocol):
    """The account log's last sequence number and hash, and the key its last event was hashed with."""

    seq: int
    head: str
    key_id: str | None


def checked_password(password: str) -> str:
    """`password` as given, if the policy allows it.

    Raises:
        ValidationError: too short, too long, or one character repeated.
    """
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX or len(set(password)) < 2:
        msg = (
            f"a password needs {PASSWORD_MIN} to {PASSWORD_MAX} characters, not all the same one "
            "(a phrase of several words is easiest to remember)"
        )
        raise ValidationError(msg)
    return password


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted; it starts with $argon2id$)."""
    return _HASHER.hash(password)


@cache
def _no_account_hash() -> str:
    return _HASHER.hash("consultflow: a name without an account")


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; with no hash, the same work against a dummy one, and False."""
    try:
        matched = _HASHER.verify(stored if stored is not None else _no_account_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored is not None


def needs_rehash(stored: str) -> bool:
    """Whether a hash was made with other parameters than today's (replaced at the next sign-in)."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def new_token() -> tuple[str, str, str]:
    """A new access token: (the token, shown once; its SHA-256, stored; its first characters, shown in lists)."""
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return text, token_hash(text), text[:TOKEN_SHOWN]


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_token_text(token: str) -> bool:
    """Whether `token` has the form consultflow's tokens have (anything else names none)."""
    return _TOKEN.fullmatch(token) is not None


def checked_scope(scope: str) -> str:
    """A token scope: 'read' (reading commands only) or 'write'.

    Raises:
        ValidationError: another word.
    """
    if scope not in SCOPES:
        msg = f"unknown token scope {scope!r}; allowed: {', '.join(SCOPES)}"
        raise ValidationError(msg)
    return scope


def checked_days(days: int) -> int:
    """How many days a token lasts: 1 to 366.

    Raises:
        ValidationError: fewer or more.
    """
    if isinstance(days, bool) or not 1 <= days <= TOKEN_MAX_DAYS:
        msg = f"a token lasts 1 to {TOKEN_MAX_DAYS} days, not {days}"
        raise ValidationError(msg)
    return days


def new_totp_secret() -> str:
    """A new two-step secret: 160 random bits in base32, as authenticator apps take it."""
    return pyotp.random_base32()


def totp_uri(secret: str, account: str) -> str:
    """The otpauth:// URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is (the current one, or one either side), or None.

    The caller stores the step, so that each code is accepted once.
    """
    cleaned = code.replace(" ", "")
    if _CODE.fullmatch(cleaned) is None:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), cleaned):
            return step
    return None


def account_key(name: str) -> str:
    """The throttle key counting failed sign-ins under one name (known or not)."""
    return f"account:{name}"


def client_key(client: str) -> str:
    """The throttle key counting failed sign-ins from one client (its address, as the server saw it)."""
    return f"client:{client}"


def account_chain_key(chain_key_id: str | None, configured: ChainKey | None) -> ChainKey | None:
    """The key the next account event is hashed with.

    An unkeyed log becomes keyed with the first event written while a chain key is configured
    (the HMAC over that event's link then also protects every event before it); a keyed log is
    never extended without its key.

    Raises:
        ConfigurationError: the log is keyed and the configured key is missing or another one.
    """
    if chain_key_id is None or (configured is not None and configured.key_id == chain_key_id):
        return configured
    if configured is None:
        msg = (
            f"the account log is keyed (key {chain_key_id}); set CONSULTFLOW_CHAIN_KEY_FILE "
            "or CONSULTFLOW_CHAIN_KEY to the key it was written with"
        )
        raise ConfigurationError(msg)
    msg = f"the account log is keyed with key {chain_key_id}, but the configured key is {configured.key_id}"
    raise ConfigurationError(msg)


def payload_of(stored: str) -> dict[str, Any]:
    """A stored payload as a dict ({} for anything else)."""
    loaded = json.loads(stored)
    return loaded if isinstance(loaded, dict) else {}


def _text(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def account_canonical(
    *, chain_seq: int, kind: str, actor: str | None, subject: str | None, at: str, key_id: str | None, payload: str
) -> str:
    """The text an account event's hash is taken over: every field as canonical JSON, keys sorted.

    `at` is `consultflow.domain.audit.utc_iso` text and `payload` is `payload_text`, as stored.
    """
    return (
        f'{{"actor":{_text(actor)},"at":{_text(at)},"chain_seq":{int(chain_seq)},"key_id":{_text(key_id)},'
        f'"kind":{_text(kind)},"payload":{payload},"subject":{_text(subject)}}}'
    )
