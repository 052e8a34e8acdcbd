"""Staff sign-in for the server: passwords, two-step codes, personal access tokens and the account log.

Staff sign in with their name, a password and (once they turn it on) a two-step code, and get a
personal access token; each later call shows the token (`authenticate`). Every change to an
account, and every sign-in, successful or not, is an event in the account log, a hash chain of
its own that `verify_account_chain` checks as `audit verify` checks a consultation's.

- Every failed sign-in gets the same one line, whatever went wrong; why it failed is only in the
  account log. An unknown name costs the same password check as a known one.
- Failed sign-ins are counted in the database, so all server processes share the count: 5 under
  one name in 15 minutes lock that name for 15 minutes, 20 from one client lock the client. The
  attempts are committed although the call raises.
- Each change runs in one transaction: through the pipeline where a person acts, or in a short
  transaction of its own where nobody is proven yet (a sign-in) or nobody is named (local
  administration).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from consultflow.domain.accounts import (
    ACCOUNT_FAILURES,
    CLIENT_FAILURES,
    FAILURE_WINDOW,
    LOCK_TIME,
    PASSWORD_MAX,
    SIGNIN_TOKEN_DAYS,
    TOKEN_DAYS,
    TOKEN_TOUCH_EVERY,
    VIA_OIDC,
    AccountDraft,
    AccountKind,
    FailureReason,
    account_canonical,
    account_chain_key,
    account_key,
    checked_days,
    checked_password,
    checked_scope,
    client_key,
    hash_password,
    is_token_text,
    needs_rehash,
    new_token,
    new_totp_secret,
    payload_of,
    token_hash,
    totp_step,
    totp_uri,
    verify_password,
)
from consultflow.domain.audit import GENESIS_HASH, ChainKey, chain_mode, text_hash, utc_iso
from consultflow.domain.errors import (
    ConflictError,
    ConsultflowError,
    NotFoundError,
    PermissionDeniedError,
    RetryableConflictError,
    TooManyAttemptsError,
    ValidationError,
)
from consultflow.domain.identity import PORTAL_ACTOR
from consultflow.domain.model import ActorRow
from consultflow.domain.roles import ASSIGNABLE_ROLES, Role, acting_role
from consultflow.logconfig import get_logger
from consultflow.services import identity
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import required_text
from consultflow.services.pipeline import MAX_ATTEMPTS, Change, run
from consultflow.services.ports import AccountEventRow, UnitOfWork

log = get_logger(__name__)

R = TypeVar("R")

SIGNIN_REFUSED = "sign-in refused: wrong name, password or code"
EXTERNAL_REFUSED = "sign-in refused: your single sign-on identity is not an enabled consultflow staff account here"
TOKEN_REFUSED = "token refused: unknown, expired or revoked; sign in again with 'consultflow login'"  # noqa: S105
LOCAL_ADMINISTRATION = "local administration"
_COORDINATORS = (Role.COORDINATOR,)
_READERS_OF_ALL = (Role.COORDINATOR, Role.AUDITOR)
_CLIENT_MAX = 100
_EVENTS_MAX = 10_000


@dataclass(frozen=True)
class IssuedToken:
    """A new access token. `token` is shown this once and never stored; keep it like a password."""

    token: str = field(repr=False)
    token_id: int
    owner: str
    name: str
    scope: str
    prefix: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenView:
    """A token as listed: never the token nor its hash."""

    id: int
    owner: str
    name: str
    prefix: str
    scope: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    status: str  # "active", "expired" or "revoked"


@dataclass(frozen=True)
class Principal:
    """Who a valid token proves is calling, with their roles now and what the token allows."""

    actor_id: int
    name: str
    roles: tuple[str, ...]
    token_id: int
    scope: str  # "read": reading commands only; "write": everything the roles allow
    expires_at: datetime

    @property
    def may_write(self) -> bool:
        """Whether the token allows changes."""
        return self.scope == "write"


@dataclass(frozen=True)
class TotpSetup:
    """A two-step secret waiting for its first code: type the secret or scan the URI into an authenticator app."""

    secret: str = field(repr=False)
    provisioning_uri: str = field(repr=False)


@dataclass(frozen=True)
class AccountEventView:
    """One event of the account log."""

    seq: int
    kind: str
    actor: str | None
    subject: str | None
    at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class AccountChainReport:
    """The result of checking the account log: its length and head, and the first event that does not match."""

    events: int
    head: str
    intact: bool
    broken_seq: int | None = None
    problem: str | None = None
    mode: str = "SHA-256 (unkeyed)"


# Writing account events


def record_account_events(uow: UnitOfWork, key: ChainKey | None, *drafts: AccountDraft) -> None:
    """Append events to the account log in the caller's transaction (with the chain key, if configured).

    Raises:
        ConfigurationError: the log is keyed and the configured key is missing or another one.
    """
    uow.account_log.append(drafts, key)


def _queue(uow: UnitOfWork) -> None:
    """Take the account log's head lock before anything else an account change touches.

    Every account change appends to the log, so they queue here in one lock order (no deadlock
    between a sign-in and, say, disabling the same account), and a check that reads other
    accounts (the last coordinator) sees them settled.
    """
    uow.account_log.head(lock=True)


def _transaction(ctx: ServiceContext, event: str | None, body: Callable[[UnitOfWork], R]) -> R:
    """One transaction with nobody proven acting (a sign-in, local administration), retried as the pipeline retries."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with ctx.writing() as uow:
                result = body(uow)
                uow.commit()
        except RetryableConflictError as exc:
            if attempt == MAX_ATTEMPTS:
                msg = f"{exc}; nothing was written after {attempt} tries: run the same command again"
                raise ConflictError(msg) from None
            time.sleep(min(1.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret
            continue
        if event is not None:
            log.info(event)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


# People and their roles


def _person(uow: UnitOfWork, name: str) -> tuple[ActorRow, list[Role]]:
    """A registered person who may have an account, with their roles."""
    found = uow.actors.by_name(name)
    if found is None:
        msg = f"unknown actor {name!r}; register people with 'consultflow actor add'"
        raise NotFoundError(msg)
    roles = uow.actors.roles(found.id)
    if Role.SYSTEM in roles or found.name == PORTAL_ACTOR:
        msg = f"{name!r} is consultflow's own actor; it has no account"
        raise ValidationError(msg)
    return found, roles


def _coordinator(change: Change, what: str) -> None:
    acting_role(change.actor.name, change.roles, _COORDINATORS, what)


def _role(raw: str) -> Role:
    try:
        role = Role(raw)
    except ValueError:
        role = None
    if role is None or role not in ASSIGNABLE_ROLES:
        msg = f"unknown role {raw!r}; allowed: {', '.join(r.value for r in ASSIGNABLE_ROLES)}"
        raise ValidationError(msg)
    return role


def _reader(ctx: ServiceContext, uow: UnitOfWork, acting: str | None) -> tuple[ActorRow, list[Role]]:
    """The person reading, as the pipeline would name them (their login decides once logins are bound)."""
    proven = bool(getattr(ctx, "acting_proven", False))  # the server proves who acts: its login proves nothing
    return identity.acting_actor(uow, acting, None if proven else uow.logins.session_login())


# Passwords


def set_password(
    ctx: ServiceContext, *, acting: str | None, name: str, password: str, current_password: str | None = None
) -> None:
    """Set a person's password: their own (with the current one), or anyone's by a coordinator.

    Changing your own password takes the current one, so a token someone took from you cannot lock
    you out; a wrong one counts as a failed sign-in (the same limits, on the account log).

    `acting=None` is local administration, e.g. `consultflow --db URL account set-password`: whoever
    can write the database directly may set any password (on PostgreSQL, only the schema's owner
    can write credentials). The account log records it as done by local administration.

    Raises:
        ValidationError: a password the policy refuses, or consultflow's own actors.
        NotFoundError: no such person.
        PermissionDeniedError: someone else's password, and the acting person is not a coordinator;
            or your own, without the right current password.
        TooManyAttemptsError: too many wrong passwords for this account lately.
    """
    hashed = hash_password(checked_password(password))  # argon2 takes its time outside the transaction
    stored = _current_checked(ctx, name, current_password) if acting is not None and acting == name else None

    def write(uow: UnitOfWork, actor: str | None, roles: Sequence[Role], now: datetime) -> None:
        _queue(uow)
        subject, _roles = _person(uow, name)
        if actor is not None and actor != subject.name:
            acting_role(actor, roles, _COORDINATORS, "set other people's passwords")
        if actor is not None and actor == subject.name and stored is not None:
            cred = uow.accounts.credential(subject.id)
            if cred is None or cred.password_hash != stored:  # changed since it was checked
                raise PermissionDeniedError(CURRENT_PASSWORD_WRONG)
        uow.accounts.save_password(subject.id, hashed, now)
        record_account_events(
            uow, ctx.chain_key, AccountDraft(AccountKind.PASSWORD_SET, now, actor, subject.name, _local(uow, actor))
        )

    if acting is None:
        _transaction(ctx, "password_set", lambda uow: write(uow, None, (), ctx.clock.now()))
        return
    run(
        ctx,
        acting=acting,
        action=None,
        event="password_set",
        body=lambda change: write(change.uow, change.actor.name, change.roles, change.now),
        describe=lambda _r: {"subject": name},
    )


CURRENT_PASSWORD_WRONG = "your current password is not right; changing your own password takes the current one"  # noqa: S105 - a message


def _current_checked(ctx: ServiceContext, name: str, current: str | None) -> str | None:
    """The stored hash your current password matches (None if you have none yet), or a refusal on record."""
    now = ctx.clock.now()
    with ctx.reading() as uow:
        found = _account(uow, name)
        until = uow.throttle.locked_until([account_key(name)], now)
    if until is not None:
        raise _too_many(ctx, until)
    if found is None or found.password_hash is None:
        return None
    if verify_password(found.password_hash, current or ""):
        return found.password_hash

    def refuse(uow: UnitOfWork) -> None:
        _queue(uow)
        uow.throttle.count_failure(
            account_key(name), now, limit=ACCOUNT_FAILURES, window=FAILURE_WINDOW, lock_for=LOCK_TIME
        )
        payload = {"reason": FailureReason.BAD_PASSWORD, "via": "password change"}
        record_account_events(uow, ctx.chain_key, AccountDraft(AccountKind.SIGNIN_FAILED, now, name, name, payload))

    _transaction(ctx, None, refuse)
    raise PermissionDeniedError(CURRENT_PASSWORD_WRONG)


def _local(uow: UnitOfWork, actor: str | None) -> dict[str, Any] | None:
    """What the account log says of a change nobody named: local administration, by which login."""
    if actor is not None:
        return None
    login = uow.logins.session_login()
    return {"via": LOCAL_ADMINISTRATION} | ({"login": login} if login is not None else {})


# Signing in


@dataclass(frozen=True)
class _Account:
    """What a sign-in needs of an account, read before the password is checked."""

    actor_id: int
    name: str
    password_hash: str | None
    totp_secret: str | None  # only once confirmed
    disabled: bool


@dataclass(frozen=True)
class _Attempt:
    """A sign-in attempt after the password (and code) were checked, outside any transaction."""

    name: str
    client: str
    account: _Account | None
    reason: str | None  # None: the password (and code) matched
    totp_step: int | None
    rehashed: str | None  # a stronger hash of the same password, to store
    now: datetime


def sign_in(
    ctx: ServiceContext,
    *,
    name: str,
    password: str,
    totp_code: str | None,
    client: str,
    token_name: str,
    scope: str = "write",
    expires_days: int = SIGNIN_TOKEN_DAYS,
) -> IssuedToken:
    """Check a name, password and two-step code; issue a personal access token.

    The account and the client are checked against the sign-in limits first. An unknown name
    costs the same password check as a known one. The attempt is recorded either way, committed
    before any refusal is raised; only the account log says why an attempt failed.

    Raises:
        ValidationError: a token name, scope or lifetime that is not allowed.
        TooManyAttemptsError: too many failed sign-ins under this name or from this client.
        PermissionDeniedError: anything else wrong, with one line whatever it was.
    """
    label = required_text(token_name, "token name", 80)
    scope = checked_scope(scope)
    days = checked_days(expires_days)
    name = name.strip()[:120]
    client = client.strip()[:_CLIENT_MAX] or "unknown"
    now = ctx.clock.now()
    with ctx.reading() as uow:
        locked = uow.throttle.locked_until([account_key(name), client_key(client)], now)
        account = _account(uow, name)
    if locked is not None:
        attempt = _Attempt(name, client, account, FailureReason.LOCKED, None, None, now)
    else:
        attempt = _checked(name, client, account, password, totp_code, now)
    issued, until = _transaction(ctx, None, lambda uow: _settle(ctx, uow, attempt, label, scope, days))
    if issued is not None:
        log.info("signin", actor=issued.owner, client=client, token_id=issued.token_id)
        return issued
    log.info("signin_failed", client=client)
    if until is not None:
        raise _too_many(ctx, until)
    raise PermissionDeniedError(SIGNIN_REFUSED)


def _account(uow: UnitOfWork, name: str) -> _Account | None:
    found = uow.actors.by_name(name) if name else None
    if found is None or found.name == PORTAL_ACTOR or Role.SYSTEM in uow.actors.roles(found.id):
        return None
    cred = uow.accounts.credential(found.id)
    if cred is None:
        return _Account(found.id, found.name, None, None, disabled=False)
    secret = cred.totp_secret if cred.totp_confirmed_at is not None else None
    return _Account(found.id, found.name, cred.password_hash, secret, disabled=cred.disabled_at is not None)


def _checked(
    name: str, client: str, account: _Account | None, password: str, totp_code: str | None, now: datetime
) -> _Attempt:
    """Check the password (and code) outside any transaction: argon2 takes tens of milliseconds."""
    stored = account.password_hash if account is not None else None
    # Longer than any password the policy allows: checking one character more costs the same and
    # still never matches, however much was sent.
    matched = verify_password(stored, password[: PASSWORD_MAX + 1])
    step: int | None = None
    reason: str | None = None
    if account is None:
        reason = FailureReason.UNKNOWN_ACCOUNT
    elif stored is None:
        reason = FailureReason.NO_PASSWORD
    elif not matched:
        reason = FailureReason.BAD_PASSWORD
    elif account.disabled:
        reason = FailureReason.DISABLED
    elif account.totp_secret is not None:
        step = totp_step(account.totp_secret, totp_code or "", now)
        reason = FailureReason.BAD_TOTP if step is None else None
    rehashed = hash_password(password) if reason is None and stored is not None and needs_rehash(stored) else None
    return _Attempt(name, client, account, reason, step, rehashed, now)


def _settle(
    ctx: ServiceContext, uow: UnitOfWork, attempt: _Attempt, label: str, scope: str, days: int
) -> tuple[IssuedToken | None, datetime | None]:
    """Record the attempt: (the token issued, or None; the moment a lock lasts until, if it is locked)."""
    _queue(uow)
    now, account, keys = attempt.now, attempt.account, [account_key(attempt.name), client_key(attempt.client)]
    reason = attempt.reason
    if reason is None:
        assert account is not None
        reason = _still_valid(uow, attempt, account, keys)
    subject = account.name if account is not None else None
    if reason == FailureReason.LOCKED:
        until = uow.throttle.locked_until(keys, now)
        locked = {"reason": reason, "client": attempt.client}
        record_account_events(uow, ctx.chain_key, AccountDraft(AccountKind.SIGNIN_FAILED, now, None, subject, locked))
        return None, until or now + LOCK_TIME
    if reason is not None:
        payload: dict[str, Any] = {"reason": reason, "client": attempt.client}
        for key, limit in zip(keys, (ACCOUNT_FAILURES, CLIENT_FAILURES), strict=True):
            failures, until = uow.throttle.count_failure(
                key, now, limit=limit, window=FAILURE_WINDOW, lock_for=LOCK_TIME
            )
            if failures == limit and until is not None:  # this attempt started the lock
                payload[f"{key.split(':', 1)[0]}_locked_until"] = utc_iso(until)
        record_account_events(uow, ctx.chain_key, AccountDraft(AccountKind.SIGNIN_FAILED, now, None, subject, payload))
        return None, None
    assert account is not None
    uow.throttle.clear(keys[0])
    rehashed = False
    if attempt.rehashed is not None and account.password_hash is not None:
        rehashed = uow.accounts.replace_password_hash(account.actor_id, account.password_hash, attempt.rehashed)
    issued = _issue(uow, account.actor_id, account.name, label, scope, days, now)
    signed_in = {"client": attempt.client, **_token_payload(issued)} | ({"rehashed": True} if rehashed else {})
    record_account_events(
        uow, ctx.chain_key, AccountDraft(AccountKind.SIGNIN, now, account.name, account.name, signed_in)
    )
    return issued, None


def _still_valid(uow: UnitOfWork, attempt: _Attempt, account: _Account, keys: Sequence[str]) -> str | None:
    """Why a matching password no longer lets the attempt in, read in the writing transaction.

    Attempts checked at the same time may have locked the account meanwhile; the password, the
    two-step secret or the account may have changed; the code's step may have been used.
    """
    if uow.throttle.locked_until(keys, attempt.now) is not None:
        return FailureReason.LOCKED
    cred = uow.accounts.credential(account.actor_id)
    if cred is None or cred.password_hash != account.password_hash:
        return FailureReason.BAD_PASSWORD
    if cred.disabled_at is not None:
        return FailureReason.DISABLED
    secret = cred.totp_secret if cred.totp_confirmed_at is not None else None
    if secret != account.totp_secret:
        return FailureReason.BAD_TOTP
    if attempt.totp_step is not None and not uow.accounts.use_totp_step(account.actor_id, attempt.totp_step):
        return FailureReason.TOTP_REUSED
    return None


def _too_many(ctx: ServiceContext, until: datetime) -> TooManyAttemptsError:
    local = until.astimezone(ctx.tz)
    if local.second or local.microsecond:  # "after 10:16", never a minute early
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return TooManyAttemptsError(f"too many failed sign-ins; try again after {local:%H:%M}", until)


# Single sign-on


def sign_in_external(
    ctx: ServiceContext,
    *,
    name: str,
    issuer: str,
    subject: str,
    client: str,
    token_name: str,
    scope: str = "write",
    expires_days: int = SIGNIN_TOKEN_DAYS,
) -> IssuedToken:
    """Issue a personal access token to a person an identity provider vouched for (single sign-on).

    The caller has checked the provider's answer (the ID token's signature, issuer, audience,
    expiry and nonce): `name` is the claim that names the consultflow actor, `subject` the
    provider's own id for them. No account is ever created here: `name` must be a registered
    person with a staff role whose account is not disabled. No password or two-step code is asked;
    the provider's own checks stand in for them. The limits of a password sign-in apply under the
    same keys: a locked name or client is refused, and a refusal counts against both. The attempt
    is recorded either way (`{"via": "oidc", "issuer": ...}`), committed before a refusal is
    raised; only the account log says why it failed.

    Raises:
        ValidationError: a token name, scope or lifetime that is not allowed.
        TooManyAttemptsError: too many failed sign-ins under this name or from this client.
        PermissionDeniedError: an unknown, disabled or non-staff person (one line, whichever it is).
    """
    label = required_text(token_name, "token name", 80)
    scope = checked_scope(scope)
    days = checked_days(expires_days)
    name = name.strip()[:120]
    client = client.strip()[:_CLIENT_MAX] or "unknown"
    via = _via(issuer, subject)
    now = ctx.clock.now()

    def settle(uow: UnitOfWork) -> tuple[IssuedToken | None, datetime | None]:
        _queue(uow)
        keys = [(account_key(name), ACCOUNT_FAILURES), (client_key(client), CLIENT_FAILURES)]
        account = _account(uow, name)
        reason = None
        if account is None or not set(uow.actors.roles(account.actor_id)).intersection(ASSIGNABLE_ROLES):
            reason = FailureReason.UNKNOWN_ACCOUNT
        elif account.disabled:
            reason = FailureReason.DISABLED
        if reason is not None or account is None or uow.throttle.locked_until([k for k, _ in keys], now):
            subject_name = account.name if account is not None else None
            payload = {**via, "reason": reason, "client": client}
            return None, _refused_attempt(ctx, uow, keys, subject_name, payload, now)
        uow.throttle.clear(keys[0][0])
        issued = _issue(uow, account.actor_id, account.name, label, scope, days, now)
        signed_in = {**via, "client": client, **_token_payload(issued)}
        record_account_events(
            uow, ctx.chain_key, AccountDraft(AccountKind.SIGNIN, now, account.name, account.name, signed_in)
        )
        return issued, None

    issued, until = _transaction(ctx, None, settle)
    if issued is not None:
        log.info("signin", actor=issued.owner, client=client, token_id=issued.token_id, via=VIA_OIDC)
        return issued
    log.info("signin_failed", client=client, via=VIA_OIDC)
    if until is not None:
        raise _too_many(ctx, until)
    raise PermissionDeniedError(EXTERNAL_REFUSED)


def refuse_external_sign_in(
    ctx: ServiceContext,
    *,
    issuer: str,
    client: str,
    reason: str,
    message: str,
    check: str | None = None,
    name: str | None = None,
) -> ConsultflowError:
    """Record a single sign-on refused before anyone was proven: the provider's answer or the hand-off failed a check.

    It counts against the client as a failed password sign-in does, never against a name: `name`
    (a name the provider vouched for, when the hand-off to the CLI failed) only says whose account
    the event is about. `reason` is a `FailureReason`, `check` which check failed. The event is
    committed before this returns.

    Returns:
        The error to raise: TooManyAttemptsError while the client is locked, else
        PermissionDeniedError with `message`.
    """
    client = client.strip()[:_CLIENT_MAX] or "unknown"
    payload: dict[str, Any] = {**_via(issuer, None), "reason": reason, "client": client}
    if check is not None:
        payload["check"] = check[:80]
    now = ctx.clock.now()

    def settle(uow: UnitOfWork) -> datetime | None:
        _queue(uow)
        account = _account(uow, name.strip()[:120]) if name else None
        subject = account.name if account is not None else None
        return _refused_attempt(ctx, uow, [(client_key(client), CLIENT_FAILURES)], subject, payload, now)

    until = _transaction(ctx, None, settle)
    log.info("signin_failed", client=client, via=VIA_OIDC)
    if until is not None:
        return _too_many(ctx, until)
    return PermissionDeniedError(message)


def _via(issuer: str, subject: str | None) -> dict[str, Any]:
    """What the account log says of how a single sign-on came: the provider, and its id for the person."""
    return {"via": VIA_OIDC, "issuer": issuer[:300]} | ({"oidc_subject": subject[:255]} if subject else {})


def _refused_attempt(
    ctx: ServiceContext,
    uow: UnitOfWork,
    keys: Sequence[tuple[str, int]],
    subject: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> datetime | None:
    """Record a refused sign-in and count it under each (key, limit); the lock's end, if one held already.

    As a password sign-in: while a key is locked nothing is counted and the event's reason is
    `locked`; the attempt that reaches a limit starts the lock, and its event says until when.
    """
    until = uow.throttle.locked_until([k for k, _ in keys], now)
    if until is not None:
        locked = {**payload, "reason": FailureReason.LOCKED}
        record_account_events(uow, ctx.chain_key, AccountDraft(AccountKind.SIGNIN_FAILED, now, None, subject, locked))
        return until
    for key, limit in keys:
        failures, locks = uow.throttle.count_failure(key, now, limit=limit, window=FAILURE_WINDOW, lock_for=LOCK_TIME)
        if failures == limit and locks is not None:  # this attempt started the lock
            payload[f"{key.split(':', 1)[0]}_locked_until"] = utc_iso(locks)
    record_account_events(uow, ctx.chain_key, AccountDraft(AccountKind.SIGNIN_FAILED, now, None, subject, payload))
    return None


# Tokens


def _issue(uow: UnitOfWork, actor_id: int, owner: str, label: str, scope: str, days: int, now: datetime) -> IssuedToken:
    text, digest, prefix = new_token()
    expires_at = now + timedelta(days=days)
    row = uow.tokens.add(
        actor_id=actor_id, name=label, token_hash=digest, prefix=prefix, scope=scope, now=now, expires_at=expires_at
    )
    return IssuedToken(text, row.id, owner, label, scope, prefix, expires_at)


def _token_payload(issued: IssuedToken) -> dict[str, Any]:
    """What the account log says of a token: never the token."""
    return {
        "token_id": issued.token_id,
        "token_name": issued.name,
        "prefix": issued.prefix,
        "scope": issued.scope,
        "expires_at": utc_iso(issued.expires_at),
    }


def issue_token(
    ctx: ServiceContext, *, acting: str, name: str, scope: str, expires_days: int = TOKEN_DAYS
) -> IssuedToken:
    """Another token for the acting person (for automation), named `name`, lasting `expires_days`.

    Raises:
        ValidationError: a blank name, an unknown scope, or a lifetime outside 1 to 366 days.
        PermissionDeniedError: the acting person's account is disabled.
    """
    label = required_text(name, "token name", 80)
    scope = checked_scope(scope)
    days = checked_days(expires_days)

    def body(change: Change) -> IssuedToken:
        _queue(change.uow)
        actor, _roles = _person(change.uow, change.actor.name)
        cred = change.uow.accounts.credential(actor.id)
        if cred is not None and cred.disabled_at is not None:
            msg = f"the account of {actor.name} is disabled; a coordinator can enable it again"
            raise PermissionDeniedError(msg)
        issued = _issue(change.uow, actor.id, actor.name, label, scope, days, change.now)
        draft = AccountDraft(AccountKind.TOKEN_ISSUED, change.now, actor.name, actor.name, _token_payload(issued))
        record_account_events(change.uow, ctx.chain_key, draft)
        return issued

    return run(
        ctx,
        acting=acting,
        action=None,
        event="token_issued",
        body=body,
        describe=lambda t: {"token_id": t.token_id, "scope": t.scope},
    )


def revoke_token(ctx: ServiceContext, *, acting: str, token_id: int) -> None:
    """Revoke a token: one's own, or anyone's by a coordinator. A token revoked already stays as it is.

    Raises:
        NotFoundError: no such token.
        PermissionDeniedError: someone else's token, and the acting person is not a coordinator.
    """

    def body(change: Change) -> bool:
        _queue(change.uow)
        token = change.uow.tokens.get(token_id)
        if token is None:
            msg = f"unknown token {token_id}; list tokens with 'consultflow token list'"
            raise NotFoundError(msg)
        if token.actor_id != change.actor.id:
            _coordinator(change, "revoke other people's tokens")
        if not change.uow.tokens.revoke(token_id, by=change.actor.id, now=change.now):
            return False
        owner = change.uow.actors.get(token.actor_id)
        payload = {"token_id": token_id, "token_name": token.name, "prefix": token.prefix}
        draft = AccountDraft(
            AccountKind.TOKEN_REVOKED, change.now, change.actor.name, owner.name if owner else None, payload
        )
        record_account_events(change.uow, ctx.chain_key, draft)
        return True

    run(
        ctx,
        acting=acting,
        action=None,
        event="token_revoked",
        body=body,
        describe=lambda revoked: {"token_id": token_id, "revoked": revoked},
    )


def list_tokens(ctx: ServiceContext, *, acting: str, everyone: bool = False) -> list[TokenView]:
    """The acting person's tokens, newest first; everyone's for coordinators and auditors.

    Raises:
        PermissionDeniedError: everyone's, asked by someone else.
    """
    now = ctx.clock.now()
    with ctx.reading() as uow:
        actor, roles = _reader(ctx, uow, acting)
        if everyone:
            acting_role(actor.name, roles, _READERS_OF_ALL, "list other people's tokens")
        found = uow.tokens.listing(None if everyone else actor.id)
    return [
        TokenView(
            id=t.id,
            owner=owner,
            name=t.name,
            prefix=t.prefix,
            scope=t.scope,
            created_at=t.created_at,
            expires_at=t.expires_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
            revoked_by=revoked_by,
            status="revoked" if t.revoked_at is not None else "expired" if t.expires_at <= now else "active",
        )
        for t, owner, revoked_by in found
    ]


def authenticate(ctx: ServiceContext, token: str) -> Principal:
    """Who a token proves is calling, with their roles now.

    One read on a snapshot; last_used_at is written at most once a minute per token, in a short
    transaction of its own.

    Raises:
        PermissionDeniedError: an unknown, expired or revoked token, or one of a disabled account
            (one line, whichever it is).
    """
    if not is_token_text(token):
        raise PermissionDeniedError(TOKEN_REFUSED)
    now = ctx.clock.now()
    with ctx.reading() as uow:
        found = uow.tokens.bearer(token_hash(token))
        if found is None:
            raise PermissionDeniedError(TOKEN_REFUSED)
        row, owner, disabled_at = found
        if row.revoked_at is not None or row.expires_at <= now or disabled_at is not None:
            raise PermissionDeniedError(TOKEN_REFUSED)
        roles = tuple(r.value for r in uow.actors.roles(row.actor_id))
        principal = Principal(row.actor_id, owner, roles, row.id, row.scope, row.expires_at)
        stale = row.last_used_at is None or row.last_used_at < now - TOKEN_TOUCH_EVERY
    if stale:
        _transaction(ctx, None, lambda uow: uow.tokens.touch(principal.token_id, now, TOKEN_TOUCH_EVERY))
    return principal


# Two-step codes


def enable_totp(ctx: ServiceContext, *, acting: str) -> TotpSetup:
    """Start two-step codes for the acting person: a new secret, used once `confirm_totp` is given a code.

    Raises:
        ValidationError: two-step codes are on already.
    """

    def body(change: Change) -> TotpSetup:
        _queue(change.uow)
        actor, _roles = _person(change.uow, change.actor.name)
        cred = change.uow.accounts.credential(actor.id)
        if cred is not None and cred.totp_confirmed_at is not None:
            msg = f"two-step codes are on for {actor.name} already; turn them off first to set up another device"
            raise ValidationError(msg)
        secret = new_totp_secret()
        change.uow.accounts.set_totp(actor.id, secret=secret, confirmed_at=None, last_step=None)
        return TotpSetup(secret, totp_uri(secret, actor.name))

    return run(ctx, acting=acting, action=None, event="totp_setup", body=body)


def confirm_totp(ctx: ServiceContext, *, acting: str, code: str, current_password: str | None = None) -> None:
    """Turn two-step codes on with the first code the authenticator app shows (that code is then used).

    It takes the current password too: a token someone took cannot tie the account to their phone.

    Raises:
        ValidationError: nothing set up, on already, or a code that does not match.
        PermissionDeniedError: the current password is not right (counted as a failed sign-in).
    """
    _current_checked(ctx, acting, current_password)

    def body(change: Change) -> None:
        _queue(change.uow)
        actor, _roles = _person(change.uow, change.actor.name)
        cred = change.uow.accounts.credential(actor.id)
        if cred is None or cred.totp_secret is None:
            msg = f"no two-step setup waits for {actor.name}; start one with 'consultflow account totp enable'"
            raise ValidationError(msg)
        if cred.totp_confirmed_at is not None:
            msg = f"two-step codes are on for {actor.name} already"
            raise ValidationError(msg)
        step = totp_step(cred.totp_secret, code, change.now)
        if step is None:
            msg = "that code does not match: type the 6 digits the app shows now (is the device's clock right?)"
            raise ValidationError(msg)
        change.uow.accounts.set_totp(actor.id, secret=cred.totp_secret, confirmed_at=change.now, last_step=step)
        draft = AccountDraft(AccountKind.TOTP_ENABLED, change.now, actor.name, actor.name)
        record_account_events(change.uow, ctx.chain_key, draft)

    run(ctx, acting=acting, action=None, event="totp_enabled", body=body)


def disable_totp(ctx: ServiceContext, *, acting: str, name: str, current_password: str | None = None) -> None:
    """Turn two-step codes off: one's own (with the current password), or anyone's by a coordinator (a lost phone).

    Raises:
        ValidationError: two-step codes are not on (nor being set up).
        NotFoundError: no such person.
        PermissionDeniedError: someone else's, and the acting person is not a coordinator; or one's own
            without the right current password.
    """
    if acting == name:
        _current_checked(ctx, acting, current_password)

    def body(change: Change) -> None:
        _queue(change.uow)
        subject, _roles = _person(change.uow, name)
        if subject.id != change.actor.id:
            _coordinator(change, "turn off other people's two-step codes")
        cred = change.uow.accounts.credential(subject.id)
        if cred is None or cred.totp_secret is None:
            msg = f"two-step codes are not on for {subject.name}"
            raise ValidationError(msg)
        payload = {"was_confirmed": cred.totp_confirmed_at is not None}
        change.uow.accounts.set_totp(subject.id, secret=None, confirmed_at=None, last_step=None)
        draft = AccountDraft(AccountKind.TOTP_DISABLED, change.now, change.actor.name, subject.name, payload)
        record_account_events(change.uow, ctx.chain_key, draft)

    run(ctx, acting=acting, action=None, event="totp_disabled", body=body, describe=lambda _r: {"subject": name})


# Accounts and roles (coordinators)


def _others_coordinate(change: Change, subject: ActorRow) -> bool:
    """Whether someone else holds the coordinator role with an enabled account."""
    return any(i != subject.id for i in change.uow.accounts.enabled_with_role(Role.COORDINATOR))


def disable_account(ctx: ServiceContext, *, acting: str, name: str) -> None:
    """Disable a person's account (coordinators only): no sign-in, and every token of theirs revoked.

    Raises:
        ValidationError: disabled already, or the last coordinator with an enabled account.
        NotFoundError: no such person.
        PermissionDeniedError: the acting person is not a coordinator.
    """

    def body(change: Change) -> None:
        _queue(change.uow)
        _coordinator(change, "disable accounts")
        subject, roles = _person(change.uow, name)
        cred = change.uow.accounts.credential(subject.id)
        if cred is not None and cred.disabled_at is not None:
            msg = f"the account of {subject.name} is disabled already"
            raise ValidationError(msg)
        if Role.COORDINATOR in roles and not _others_coordinate(change, subject):
            msg = f"{subject.name} is the last coordinator with an enabled account; make someone else coordinator first"
            raise ValidationError(msg)
        change.uow.accounts.set_disabled(subject.id, change.now)
        revoked = change.uow.tokens.revoke_all_of(subject.id, by=change.actor.id, now=change.now)
        payload = {"tokens_revoked": list(revoked)}
        draft = AccountDraft(AccountKind.ACCOUNT_DISABLED, change.now, change.actor.name, subject.name, payload)
        record_account_events(change.uow, ctx.chain_key, draft)

    run(ctx, acting=acting, action=None, event="account_disabled", body=body, describe=lambda _r: {"subject": name})


def enable_account(ctx: ServiceContext, *, acting: str, name: str) -> None:
    """Enable a disabled account again (coordinators only); its old tokens stay revoked.

    Raises:
        ValidationError: the account is not disabled.
        NotFoundError: no such person.
        PermissionDeniedError: the acting person is not a coordinator.
    """

    def body(change: Change) -> None:
        _queue(change.uow)
        _coordinator(change, "enable accounts")
        subject, _roles = _person(change.uow, name)
        cred = change.uow.accounts.credential(subject.id)
        if cred is None or cred.disabled_at is None:
            msg = f"the account of {subject.name} is not disabled"
            raise ValidationError(msg)
        change.uow.accounts.set_disabled(subject.id, None)
        draft = AccountDraft(AccountKind.ACCOUNT_ENABLED, change.now, change.actor.name, subject.name)
        record_account_events(change.uow, ctx.chain_key, draft)

    run(ctx, acting=acting, action=None, event="account_enabled", body=body, describe=lambda _r: {"subject": name})


def grant_role(ctx: ServiceContext, *, acting: str, name: str, role: str) -> None:
    """Give a person one more role (coordinators only).

    A PostgreSQL login bound to them keeps its group role: rebind it, or grant the group by hand.

    Raises:
        ValidationError: an unknown role, or one they hold already.
        NotFoundError: no such person.
        PermissionDeniedError: the acting person is not a coordinator.
    """
    granted = _role(role)

    def body(change: Change) -> None:
        _queue(change.uow)
        _coordinator(change, "grant roles")
        subject, roles = _person(change.uow, name)
        if granted in roles:
            msg = f"{subject.name} holds the role {granted.value} already"
            raise ValidationError(msg)
        change.uow.actors.add_role(subject.id, granted)
        payload = {"role": granted.value}
        draft = AccountDraft(AccountKind.ROLE_GRANTED, change.now, change.actor.name, subject.name, payload)
        record_account_events(change.uow, ctx.chain_key, draft)

    run(ctx, acting=acting, action=None, event="role_granted", body=body, describe=lambda _r: {"subject": name})


def revoke_role(ctx: ServiceContext, *, acting: str, name: str, role: str) -> None:
    """Take a role from a person (coordinators only); the last coordinator keeps theirs.

    Raises:
        ValidationError: an unknown role, one they do not hold, their only role, or the last
            coordinator's.
        NotFoundError: no such person.
        PermissionDeniedError: the acting person is not a coordinator.
    """
    revoked = _role(role)

    def body(change: Change) -> None:
        _queue(change.uow)
        _coordinator(change, "revoke roles")
        subject, roles = _person(change.uow, name)
        if revoked not in roles:
            msg = f"{subject.name} does not hold the role {revoked.value}"
            raise ValidationError(msg)
        if roles == [revoked]:
            msg = f"{revoked.value} is the only role of {subject.name}; disable the account instead"
            raise ValidationError(msg)
        if revoked is Role.COORDINATOR and not _others_coordinate(change, subject):
            msg = f"{subject.name} is the last coordinator with an enabled account; make someone else coordinator first"
            raise ValidationError(msg)
        change.uow.actors.remove_role(subject.id, revoked)
        payload = {"role": revoked.value}
        draft = AccountDraft(AccountKind.ROLE_REVOKED, change.now, change.actor.name, subject.name, payload)
        record_account_events(change.uow, ctx.chain_key, draft)

    run(ctx, acting=acting, action=None, event="role_revoked", body=body, describe=lambda _r: {"subject": name})


# The account log


def account_events(
    ctx: ServiceContext, *, acting: str, name: str | None = None, kind: str | None = None, limit: int = 100
) -> list[AccountEventView]:
    """Account events, newest first: coordinators and auditors read everyone's, others their own.

    `name` keeps the events about one person's account; `kind` one kind.

    Raises:
        ValidationError: a limit outside 1 to 10,000.
        PermissionDeniedError: someone else's events, asked by someone neither coordinator nor auditor.
    """
    if isinstance(limit, bool) or not 1 <= limit <= _EVENTS_MAX:
        msg = f"--limit takes 1 to {_EVENTS_MAX:,}, not {limit}"
        raise ValidationError(msg)
    with ctx.reading() as uow:
        actor, roles = _reader(ctx, uow, acting)
        reads_all = any(r in roles for r in _READERS_OF_ALL)
        if not reads_all and name not in (None, actor.name):
            acting_role(actor.name, roles, _READERS_OF_ALL, "read other people's account events")  # refuses
        involving = None if reads_all else actor.name
        found = uow.account_log.events(subject=name, involving=involving, kind=kind, limit=limit)
        return [_event_view(e) for e in found]


def _event_view(e: AccountEventRow) -> AccountEventView:
    return AccountEventView(e.chain_seq, e.kind, e.actor, e.subject, e.at, payload_of(e.payload))


def account_chain_head(ctx: ServiceContext) -> tuple[int, str]:
    """The account log's head (sequence, hash), to publish and check later with `expect_head`."""
    with ctx.reading() as uow:
        head = uow.account_log.head()
        return head.seq, head.head


def verify_account_chain(
    ctx: ServiceContext, *, expect_head: tuple[int, str] | None = None, require_keyed: bool = False
) -> AccountChainReport:
    """Recompute the account log's chain and name the first event that does not match.

    It catches an edited event (its hash), a deleted or inserted one (the sequence or the links
    break), and events cut off the end (compared with the recorded head). `expect_head`, published
    earlier, proves that event is still part of today's log. Keyed events are checked with the
    configured chain key; `require_keyed` fails a log whose newest event is not keyed.

    Raises:
        ConfigurationError: keyed events, and the configured key is missing or another one.
    """
    published_seq, published_hash = expect_head or (0, "")
    with ctx.reading() as uow:
        recorded = uow.account_log.head()
        recorded_seq, recorded_head, recorded_key = recorded.seq, recorded.head, recorded.key_id
        with closing(uow.account_log.chain()) as events:  # a server-side cursor on PostgreSQL, left at a problem
            walked = _walk(ctx, events, published_seq, published_hash)
    count, prev, last_key, keyed_from, broken = walked
    mode = chain_mode(last_key)
    if keyed_from is not None and keyed_from > 1:
        mode += f" from event #{keyed_from} (plain SHA-256 before)"
    if broken is not None:
        return AccountChainReport(count, prev, intact=False, broken_seq=broken[0], problem=broken[1], mode=mode)
    problem = None
    if count != recorded_seq or prev != recorded_head or last_key != recorded_key:
        problem = (
            f"the log ends at event #{count} but its head records #{recorded_seq} "
            "(events were removed from the end, or the head was rewritten)"
        )
    elif published_seq > count:
        problem = f"the published head #{published_seq} is beyond the log's end at #{count} (events were removed)"
    elif require_keyed and last_key is None:
        problem = "the account log is not keyed (plain SHA-256), and a keyed log was required"
    if problem is not None:
        return AccountChainReport(count, prev, intact=False, broken_seq=count + 1, problem=problem, mode=mode)
    return AccountChainReport(count, prev, intact=True, mode=mode)


def _walk(
    ctx: ServiceContext, events: Iterable[AccountEventRow], published_seq: int, published_hash: str
) -> tuple[int, str, str | None, int | None, tuple[int, str] | None]:
    """(events read, last hash, last key id, first keyed event, the first broken one and why)."""
    prev, expected, last_key = GENESIS_HASH, 1, None
    keyed_from: int | None = None
    for e in events:
        problem = None
        if e.chain_seq != expected:
            problem = f"event #{expected} is missing (the next one found is #{e.chain_seq})"
        elif e.prev_hash != prev:
            problem = "does not link to the event before it (an event was removed or replaced)"
        elif e.key_id is None and keyed_from is not None:
            problem = f"is not keyed, but the log is keyed from event #{keyed_from} (it was rewritten without the key)"
        else:
            key = None if e.key_id is None else account_chain_key(e.key_id, ctx.chain_key)
            try:
                canonical = account_canonical(
                    chain_seq=e.chain_seq,
                    kind=e.kind,
                    actor=e.actor,
                    subject=e.subject,
                    at=utc_iso(e.at),
                    key_id=e.key_id,
                    payload=e.payload,
                )
                if text_hash(prev, canonical, key) != e.hash:
                    problem = "its content does not match its hash (the event was edited)"
            except (ValueError, TypeError, AttributeError) as exc:
                problem = f"unreadable ({type(exc).__name__}: {exc})"
        if problem is None and e.chain_seq == published_seq and e.hash != published_hash:
            problem = (
                f"the published head #{published_seq} was {published_hash[:12]}…; the log has {e.hash[:12]}… there"
            )
        if problem is not None:
            return expected - 1, prev, last_key, keyed_from, (expected, f"event #{expected}: {problem}")
        if e.key_id is not None and keyed_from is None:
            keyed_from = e.chain_seq
        prev, expected, last_key = e.hash, expected + 1, e.key_id
    return expected - 1, prev, last_key, keyed_from, None
