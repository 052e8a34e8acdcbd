"""Staff accounts on both backends: passwords, sign-in limits, two-step codes, tokens and the account log."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from consultflow.domain.audit import ChainKey
from consultflow.domain.clock import FixedClock
from consultflow.domain.errors import (
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
    ValidationError,
)
from consultflow.services import accounts, people
from consultflow.services.accounts import SIGNIN_REFUSED, TOKEN_REFUSED, IssuedToken
from consultflow.services.context import ServiceContext
from consultflow.store.models import AccessToken, AccountEvent, StaffCredential
from tests.conftest import engine_of, make_context, sql_uow
from tests.helpers import AUDITOR, COORD, EXPERT, PLANNER

PASSWORD = "青龙村 路灯 twenty-six"
NEW_PASSWORD = "correct horse battery staple"
CLIENT = "203.0.113.7"
KEY = ChainKey(b"county-secret-0123456789abcdef-0123")


@pytest.fixture(name="staff")
def _staff(ctx: ServiceContext) -> ServiceContext:
    """A coordinator, a planner, an expert and an auditor, each with the same password."""
    return _with_staff(ctx)


@pytest.fixture(name="pg_staff")
def _pg_staff(pg_ctx: ServiceContext) -> ServiceContext:
    """The same people, on PostgreSQL only."""
    return _with_staff(pg_ctx)


def _with_staff(ctx: ServiceContext) -> ServiceContext:
    people.add_actor(ctx, acting=None, name=COORD, roles=["coordinator"])
    for name, role in ((PLANNER, "planner"), (EXPERT, "expert"), (AUDITOR, "auditor")):
        people.add_actor(ctx, acting=COORD, name=name, roles=[role])
    for name in (COORD, PLANNER, EXPERT, AUDITOR):
        accounts.set_password(ctx, acting=None, name=name, password=PASSWORD)
    return ctx


def _sign_in(
    ctx: ServiceContext,
    name: str = PLANNER,
    password: str = PASSWORD,
    code: str | None = None,
    client: str = CLIENT,
    scope: str = "write",
) -> IssuedToken:
    return accounts.sign_in(
        ctx, name=name, password=password, totp_code=code, client=client, token_name="laptop", scope=scope
    )


def _refused(ctx: ServiceContext, **kwargs: str | None) -> str:
    with pytest.raises(PermissionDeniedError) as refused:
        _sign_in(ctx, **kwargs)  # type: ignore[arg-type]
    return str(refused.value)


def _reasons(ctx: ServiceContext) -> list[str]:
    """Why each failed sign-in failed, oldest first."""
    failed = accounts.account_events(ctx, acting=COORD, kind="signin_failed", limit=1000)
    return [str(e.payload["reason"]) for e in reversed(failed)]


def _dump(ctx: ServiceContext, *tables: str) -> str:
    with engine_of(ctx).connect() as conn:
        return "\n".join(str(tuple(row)) for table in tables for row in conn.execute(text(f"SELECT * FROM {table}")))


def _as_owner(ctx: ServiceContext, *statements: str) -> None:
    """SQL sent as the schema's owner with the account log's triggers out of the way (what only the owner can do)."""
    engine = engine_of(ctx)
    if engine.dialect.name == "sqlite":
        assert engine.url.database is not None
        conn = sqlite3.connect(engine.url.database)
        try:
            conn.execute("DROP TRIGGER IF EXISTS account_event_no_update")
            conn.execute("DROP TRIGGER IF EXISTS account_event_no_delete")
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    with engine.begin() as pg:
        pg.execute(text("ALTER TABLE account_event DISABLE TRIGGER account_event_no_change"))
        for statement in statements:
            pg.execute(text(statement))
        pg.execute(text("ALTER TABLE account_event ENABLE TRIGGER account_event_no_change"))


def test_passwords_are_kept_as_argon2id_hashes_under_one_policy(staff: ServiceContext) -> None:
    """The hash is argon2id and never the password; short, repeated or huge passwords get one line."""
    with sql_uow(staff) as uow:
        hashes = list(uow.session.scalars(select(StaffCredential.password_hash)))
    assert len(hashes) == 4 and all(h is not None and h.startswith("$argon2id$") for h in hashes)
    assert PASSWORD not in _dump(staff, "staff_credential", "account_event")
    for bad in ("short", "a" * 12, "x" * 1025):
        with pytest.raises(ValidationError, match="a password needs 10 to 1024 characters, not all the same one"):
            accounts.set_password(staff, acting=PLANNER, name=PLANNER, password=bad)


def test_a_person_sets_their_own_password_and_a_coordinator_anyones(staff: ServiceContext) -> None:
    """A planner may not set another's password; the coordinator may; the new one signs in, the old one not."""
    with pytest.raises(PermissionDeniedError, match="may not set other people's passwords"):
        accounts.set_password(staff, acting=PLANNER, name=EXPERT, password=NEW_PASSWORD)
    accounts.set_password(staff, acting=COORD, name=EXPERT, password=NEW_PASSWORD)
    accounts.set_password(staff, acting=PLANNER, name=PLANNER, password=NEW_PASSWORD, current_password=PASSWORD)
    assert _sign_in(staff, EXPERT, NEW_PASSWORD).owner == EXPERT
    assert _refused(staff, name=PLANNER, password=PASSWORD) == SIGNIN_REFUSED
    with pytest.raises(NotFoundError, match="unknown actor 'nobody'"):
        accounts.set_password(staff, acting=COORD, name="nobody", password=NEW_PASSWORD)
    with pytest.raises(ValidationError, match="consultflow's own actor"):
        accounts.set_password(staff, acting=None, name="system", password=NEW_PASSWORD)
    by = [(e.actor, e.subject) for e in accounts.account_events(staff, acting=COORD, kind="password_set")]
    assert by[:2] == [(PLANNER, PLANNER), (COORD, EXPERT)] and by[-1] == (None, COORD)  # None: local administration
    local = accounts.account_events(staff, acting=COORD, kind="password_set", name=COORD)[0]
    assert local.payload["via"] == "local administration"


def test_a_sign_in_issues_a_token_that_proves_who_calls(staff: ServiceContext, clock: FixedClock) -> None:
    """The token authenticates as its owner with their roles and its scope; only its hash is stored."""
    issued = _sign_in(staff, scope="read")
    assert re.fullmatch(r"cft_[A-Za-z0-9_-]{43}", issued.token) and issued.prefix == issued.token[:8]
    assert issued.token not in repr(issued)
    assert timedelta(days=29) < issued.expires_at - clock.now() <= timedelta(days=30)
    who = accounts.authenticate(staff, issued.token)
    assert (who.name, who.roles, who.scope, who.token_id, who.may_write) == (
        PLANNER,
        ("planner",),
        "read",
        issued.token_id,
        False,
    )
    dump = _dump(staff, "access_token", "account_event", "signin_throttle")
    assert issued.token not in dump and PASSWORD not in dump
    signin = accounts.account_events(staff, acting=PLANNER, kind="signin")[0]
    assert (signin.actor, signin.subject, signin.payload["token_id"], signin.payload["client"]) == (
        PLANNER,
        PLANNER,
        issued.token_id,
        CLIENT,
    )


def test_every_failed_sign_in_gets_the_same_line_and_only_the_log_says_why(staff: ServiceContext) -> None:
    """Wrong password, unknown name, no password, a disabled account, a missing code: one line; reasons logged."""
    people.add_actor(staff, acting=COORD, name="新来的", roles=["planner"])  # no password yet
    totp = pyotp.TOTP(accounts.enable_totp(staff, acting=EXPERT).secret)
    step = totp.timecode(staff.clock.now())
    accounts.confirm_totp(staff, acting=EXPERT, code=totp.generate_otp(step), current_password=PASSWORD)
    near = {totp.generate_otp(s) for s in range(step - 1, step + 3)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333") if code not in near)
    accounts.disable_account(staff, acting=COORD, name=AUDITOR)
    said = {
        _refused(staff, password="wrong password!"),
        _refused(staff, name="nobody at all"),
        _refused(staff, name="新来的", password=PASSWORD),
        _refused(staff, name=AUDITOR),
        _refused(staff, name=EXPERT),
        _refused(staff, name=EXPERT, code=wrong),
        _refused(staff, password="长" * 100_000),  # checked as its first 1,025 characters: never a match
    }
    assert said == {SIGNIN_REFUSED}
    assert _reasons(staff) == [
        "bad_password",
        "unknown_account",
        "no_password",
        "disabled",
        "bad_totp",
        "bad_totp",
        "bad_password",
    ]
    unknown = accounts.account_events(staff, acting=COORD, kind="signin_failed", limit=1000)[-2]
    assert unknown.subject is None and "nobody at all" not in _dump(staff, "account_event")
    assert "wrong password!" not in _dump(staff, "account_event", "signin_throttle", "staff_credential")


def test_five_failures_lock_the_name_in_every_server_process_until_the_lock_ends(
    staff: ServiceContext, db_url: str, clock: FixedClock
) -> None:
    """Failures from two processes add up; the fifth locks even the right password out for 15 minutes."""
    other = make_context(db_url, clock)  # a second server process on the same database
    try:
        for attempt in range(5):
            assert _refused(staff if attempt % 2 else other, password=f"wrong guess {attempt}") == SIGNIN_REFUSED
        with pytest.raises(TooManyAttemptsError, match=r"^too many failed sign-ins; try again after \d\d:\d\d$") as err:
            _sign_in(other)
        locked_until = err.value.until
        assert timedelta(minutes=14) < locked_until - clock.now() <= timedelta(minutes=15)
        shown = locked_until.astimezone(staff.tz) + timedelta(seconds=59)
        assert str(err.value).endswith(f"{shown:%H:%M}")
        with pytest.raises(TooManyAttemptsError):
            _sign_in(staff, client="198.51.100.1")  # the name is locked, from any client
        assert _sign_in(staff, EXPERT).owner == EXPERT  # other names are not
        assert _reasons(staff) == ["bad_password"] * 5 + ["locked", "locked"]
        clock.advance(timedelta(minutes=15))
        assert _sign_in(other).owner == PLANNER
        for attempt in range(4):  # the success reset the count: four more failures do not lock
            _refused(staff, password=f"again wrong {attempt}")
        assert _sign_in(staff).owner == PLANNER
    finally:
        other.database.dispose()


def test_twenty_failures_from_one_client_lock_that_client(staff: ServiceContext) -> None:
    """Guessing across many names from one address locks the address, not the names."""
    for attempt in range(20):
        _refused(staff, name=f"guess{attempt}", client="192.0.2.66")
    with pytest.raises(TooManyAttemptsError):
        _sign_in(staff, client="192.0.2.66")
    assert _sign_in(staff, client="192.0.2.67").owner == PLANNER
    last = accounts.account_events(staff, acting=COORD, kind="signin_failed", limit=2)[1]
    assert "client_locked_until" in last.payload


def test_failures_are_counted_once_each_when_processes_fail_at_the_same_moment(staff: ServiceContext) -> None:
    """The count is one atomic statement per failure: concurrent failures are all counted."""
    now = staff.clock.now()

    def fail() -> None:
        with staff.uow() as uow:
            uow.throttle.count_failure(
                "account:race", now, limit=100, window=timedelta(minutes=15), lock_for=timedelta()
            )
            uow.commit()

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with staff.uow() as uow:
        failures, _ = uow.throttle.count_failure(
            "account:race", now, limit=100, window=timedelta(minutes=15), lock_for=timedelta()
        )
    assert failures == 9


def test_a_two_step_code_is_accepted_once(staff: ServiceContext, clock: FixedClock) -> None:
    """After confirming, a sign-in needs a fresh code; the code just used, or a reused one, is refused."""
    setup = accounts.enable_totp(staff, acting=PLANNER)
    assert setup.provisioning_uri.startswith("otpauth://totp/consultflow:") and setup.secret not in repr(setup)
    totp = pyotp.TOTP(setup.secret)
    with pytest.raises(ValidationError, match="that code does not match"):
        accounts.confirm_totp(staff, acting=PLANNER, code="12345", current_password=PASSWORD)
    step = totp.timecode(clock.now())
    accounts.confirm_totp(staff, acting=PLANNER, code=totp.generate_otp(step), current_password=PASSWORD)
    assert _refused(staff, code=totp.generate_otp(step)) == SIGNIN_REFUSED  # confirming used it
    assert _refused(staff) == SIGNIN_REFUSED  # no code at all
    assert _sign_in(staff, code=totp.generate_otp(step + 1)).owner == PLANNER
    assert _refused(staff, code=totp.generate_otp(step + 1)) == SIGNIN_REFUSED  # replayed
    assert _reasons(staff) == ["totp_reused", "bad_totp", "totp_reused"]
    with pytest.raises(ValidationError, match="on for 王规划 already"):
        accounts.enable_totp(staff, acting=PLANNER)
    with pytest.raises(PermissionDeniedError, match="may not turn off other people's two-step codes"):
        accounts.disable_totp(staff, acting=EXPERT, name=PLANNER)
    accounts.disable_totp(staff, acting=COORD, name=PLANNER)  # a lost phone
    turned_off = accounts.account_events(staff, acting=PLANNER, kind="totp_disabled")[0]
    assert (turned_off.actor, turned_off.subject, turned_off.payload) == (COORD, PLANNER, {"was_confirmed": True})
    assert _sign_in(staff).owner == PLANNER
    assert setup.secret not in _dump(staff, "account_event")
    with sql_uow(staff) as uow:
        assert list(uow.session.scalars(select(StaffCredential.totp_secret))) == [None] * 4


def test_expired_revoked_and_disabled_tokens_are_refused_with_one_line(
    staff: ServiceContext, clock: FixedClock
) -> None:
    """Expiry, revocation, a disabled account and a made-up token: the same refusal; enabling lets sign-in back."""
    short = accounts.issue_token(staff, acting=PLANNER, name="nightly export", scope="read", expires_days=1)
    long = accounts.issue_token(staff, acting=PLANNER, name="sync", scope="write", expires_days=366)
    revoked = _sign_in(staff)
    accounts.revoke_token(staff, acting=PLANNER, token_id=revoked.token_id)
    accounts.revoke_token(staff, acting=PLANNER, token_id=revoked.token_id)  # twice is once
    clock.advance(timedelta(days=1))
    for token in (short.token, revoked.token, "cft_" + "A" * 43, "not a token", ""):
        with pytest.raises(PermissionDeniedError) as refused:
            accounts.authenticate(staff, token)
        assert str(refused.value) == TOKEN_REFUSED
    assert accounts.authenticate(staff, long.token).scope == "write"
    accounts.disable_account(staff, acting=COORD, name=PLANNER)
    with pytest.raises(PermissionDeniedError, match="^token refused"):
        accounts.authenticate(staff, long.token)
    assert _refused(staff) == SIGNIN_REFUSED
    listed = {t.name: t for t in accounts.list_tokens(staff, acting=COORD, everyone=True)}
    assert (listed["nightly export"].status, listed["sync"].status, listed["laptop"].status) == (
        "expired",
        "revoked",
        "revoked",
    )
    assert (listed["sync"].revoked_by, listed["laptop"].revoked_by) == (COORD, PLANNER)
    accounts.enable_account(staff, acting=COORD, name=PLANNER)
    with pytest.raises(PermissionDeniedError):
        accounts.authenticate(staff, long.token)  # its tokens stay revoked
    assert accounts.authenticate(staff, _sign_in(staff).token).name == PLANNER
    for days in (0, 367):
        with pytest.raises(ValidationError, match="a token lasts 1 to 366 days"):
            accounts.issue_token(staff, acting=PLANNER, name="x", scope="read", expires_days=days)
    with pytest.raises(ValidationError, match="unknown token scope 'admin'"):
        accounts.issue_token(staff, acting=PLANNER, name="x", scope="admin", expires_days=5)


def test_last_use_is_written_at_most_once_a_minute(staff: ServiceContext, clock: FixedClock) -> None:
    """Reads within a minute leave last_used_at as it is; a read after a minute moves it."""
    issued = _sign_in(staff)

    def last_used() -> object:
        with sql_uow(staff) as uow:
            return uow.session.scalar(select(AccessToken.last_used_at).where(AccessToken.id == issued.token_id))

    assert last_used() is None
    accounts.authenticate(staff, issued.token)
    first = last_used()
    assert first is not None
    accounts.authenticate(staff, issued.token)
    assert last_used() == first
    clock.advance(timedelta(seconds=61))
    accounts.authenticate(staff, issued.token)
    later = last_used()
    assert later is not None and later != first


def test_a_planner_revokes_only_their_own_tokens_and_a_coordinator_anyones(staff: ServiceContext) -> None:
    """Someone else's token: refused to a planner, done by a coordinator; listings never show a token or hash."""
    mine = _sign_in(staff, EXPERT)
    theirs = _sign_in(staff, PLANNER)
    with pytest.raises(PermissionDeniedError, match="may not revoke other people's tokens"):
        accounts.revoke_token(staff, acting=EXPERT, token_id=theirs.token_id)
    accounts.authenticate(staff, theirs.token)
    accounts.revoke_token(staff, acting=COORD, token_id=theirs.token_id)
    with pytest.raises(PermissionDeniedError):
        accounts.authenticate(staff, theirs.token)
    with pytest.raises(NotFoundError, match="unknown token 999"):
        accounts.revoke_token(staff, acting=COORD, token_id=999)
    with pytest.raises(PermissionDeniedError, match="may not list other people's tokens"):
        accounts.list_tokens(staff, acting=EXPERT, everyone=True)
    assert [t.id for t in accounts.list_tokens(staff, acting=EXPERT)] == [mine.token_id]
    everyone = accounts.list_tokens(staff, acting=AUDITOR, everyone=True)
    assert [(t.owner, t.status) for t in everyone] == [(PLANNER, "revoked"), (EXPERT, "active")]
    assert mine.token not in repr(everyone) and mine.token[8:] not in repr(everyone)
    revoked = accounts.account_events(staff, acting=PLANNER, kind="token_revoked")
    assert [(e.actor, e.subject) for e in revoked] == [(COORD, PLANNER)]
    with pytest.raises(PermissionDeniedError, match="may not read other people's account events"):
        accounts.account_events(staff, acting=PLANNER, name=EXPERT)


def test_roles_change_by_coordinators_and_the_last_coordinator_stays(staff: ServiceContext) -> None:
    """Grant and revoke are for coordinators; a token sees the new roles; the last coordinator cannot go."""
    token = _sign_in(staff).token
    with pytest.raises(PermissionDeniedError, match="may not grant roles"):
        accounts.grant_role(staff, acting=PLANNER, name=PLANNER, role="coordinator")
    accounts.grant_role(staff, acting=COORD, name=PLANNER, role="expert")
    assert accounts.authenticate(staff, token).roles == ("planner", "expert")
    with pytest.raises(ValidationError, match="holds the role expert already"):
        accounts.grant_role(staff, acting=COORD, name=PLANNER, role="expert")
    with pytest.raises(ValidationError, match="unknown role 'system'"):
        accounts.grant_role(staff, acting=COORD, name=PLANNER, role="system")
    accounts.revoke_role(staff, acting=COORD, name=PLANNER, role="planner")
    assert accounts.authenticate(staff, token).roles == ("expert",)
    with pytest.raises(ValidationError, match="is the only role of"):
        accounts.revoke_role(staff, acting=COORD, name=PLANNER, role="expert")
    accounts.grant_role(staff, acting=COORD, name=COORD, role="auditor")
    with pytest.raises(ValidationError, match="last coordinator with an enabled account"):
        accounts.revoke_role(staff, acting=COORD, name=COORD, role="coordinator")
    with pytest.raises(ValidationError, match="last coordinator with an enabled account"):
        accounts.disable_account(staff, acting=COORD, name=COORD)
    accounts.grant_role(staff, acting=COORD, name=EXPERT, role="coordinator")
    accounts.revoke_role(staff, acting=COORD, name=COORD, role="coordinator")
    kinds = [e.kind for e in accounts.account_events(staff, acting=AUDITOR, limit=5)]
    assert kinds == ["role_revoked", "role_granted", "role_granted", "role_revoked", "role_granted"]


def test_adding_a_person_is_in_the_account_log_with_their_roles(staff: ServiceContext) -> None:
    """add_actor records actor_added in its own transaction: the first by consultflow itself."""
    added = [(e.actor, e.subject, e.payload) for e in accounts.account_events(staff, acting=COORD, kind="actor_added")]
    assert added[-1] == ("system", COORD, {"roles": ["coordinator"]})
    assert added[0] == (COORD, AUDITOR, {"roles": ["auditor"]})
    assert len(added) == 4


def test_the_account_log_verifies_and_an_owners_edits_are_caught(staff: ServiceContext) -> None:
    """Edited, inserted, deleted and cut-off events are each named; a published head is checked."""
    _sign_in(staff)
    _refused(staff, password="wrong guess 1")
    report = accounts.verify_account_chain(staff)
    head = accounts.account_chain_head(staff)
    assert report.intact and (report.events, report.head) == head and report.mode == "SHA-256 (unkeyed)"
    _as_owner(staff, "UPDATE account_event SET subject = 'mallory' WHERE chain_seq = 2")
    edited = accounts.verify_account_chain(staff)
    assert (edited.intact, edited.broken_seq) == (False, 2) and "was edited" in (edited.problem or "")
    _as_owner(staff, f"UPDATE account_event SET subject = '{PLANNER}' WHERE chain_seq = 2")
    assert accounts.verify_account_chain(staff).intact
    seq, last = head
    _as_owner(
        staff,
        "INSERT INTO account_event (chain_seq, kind, actor, subject, at, payload, key_id, prev_hash, hash) "
        f"SELECT {seq + 1}, kind, actor, subject, at, payload, key_id, '{last}', hash FROM account_event "
        f"WHERE chain_seq = {seq}",
    )
    inserted = accounts.verify_account_chain(staff)
    assert not inserted.intact and inserted.broken_seq == seq + 1
    _as_owner(staff, f"DELETE FROM account_event WHERE chain_seq = {seq + 1}")
    assert accounts.verify_account_chain(staff, expect_head=head).intact
    _as_owner(staff, f"DELETE FROM account_event WHERE chain_seq = {seq}")
    cut = accounts.verify_account_chain(staff)
    assert not cut.intact and "events were removed from the end" in (cut.problem or "")
    _as_owner(staff, "DELETE FROM account_event WHERE chain_seq = 3")
    gap = accounts.verify_account_chain(staff)
    assert (gap.broken_seq, gap.problem) == (3, "event #3: event #3 is missing (the next one found is #4)")


def test_a_published_head_that_differs_is_caught(staff: ServiceContext) -> None:
    """--expect-head with another hash at that event, or beyond the end, fails."""
    seq, _head = accounts.account_chain_head(staff)
    other = accounts.verify_account_chain(staff, expect_head=(seq, "f" * 64))
    assert not other.intact and "the published head" in (other.problem or "")
    beyond = accounts.verify_account_chain(staff, expect_head=(seq + 5, "f" * 64))
    assert not beyond.intact and "beyond the log's end" in (beyond.problem or "")


def test_the_database_refuses_to_change_or_delete_account_events(staff: ServiceContext) -> None:
    """UPDATE and DELETE on account_event are refused by the database itself, on both backends."""
    for statement in ("UPDATE account_event SET actor = 'mallory'", "DELETE FROM account_event"):
        with pytest.raises(DBAPIError, match="append-only"), engine_of(staff).begin() as conn:
            conn.execute(text(statement))
    with sql_uow(staff) as uow:
        assert "mallory" not in {e.actor for e in uow.session.scalars(select(AccountEvent))}
    assert accounts.verify_account_chain(staff).intact


def test_a_keyed_account_log_needs_its_key(staff: ServiceContext) -> None:
    """With a chain key, new events are HMAC-keyed; writing or checking them without the key is refused."""
    staff.chain_key = KEY
    _sign_in(staff)
    report = accounts.verify_account_chain(staff, require_keyed=True)
    assert report.intact and report.mode.startswith(f"HMAC-SHA256 with key {KEY.key_id} from event #")
    staff.chain_key = None
    with pytest.raises(ConfigurationError, match=f"the account log is keyed \\(key {KEY.key_id}\\)"):
        accounts.issue_token(staff, acting=PLANNER, name="x", scope="read", expires_days=3)
    with pytest.raises(ConfigurationError, match="keyed"):
        accounts.verify_account_chain(staff)
    staff.chain_key = ChainKey(b"another-county-secret-0123456789abcdef")
    with pytest.raises(ConfigurationError, match="but the configured key is"):
        _sign_in(staff)
    staff.chain_key = KEY
    assert accounts.verify_account_chain(staff).intact


def test_an_unkeyed_log_fails_when_keys_are_required(staff: ServiceContext) -> None:
    """require_keyed fails a log whose newest event is plain SHA-256."""
    report = accounts.verify_account_chain(staff, require_keyed=True)
    assert not report.intact and "not keyed" in (report.problem or "")


@pytest.fixture(name="pg_logins")
def _pg_logins(pg_staff: ServiceContext) -> Iterator[dict[str, ServiceContext]]:
    """On PostgreSQL: a staff login and a coordinator login (bound to their actors), each with a context."""
    import uuid

    from sqlalchemy import create_engine, make_url

    from consultflow.store.database import SqlDatabase
    from consultflow.store.engine import normalize_url
    from tests.conftest import WORKFLOWS

    staff = pg_staff
    engine = engine_of(staff)
    suffix = uuid.uuid4().hex[:8]
    names = {"coord": f"cf_acc_coord_{suffix}", "planner": f"cf_acc_planner_{suffix}"}
    with engine.begin() as conn:
        for login in names.values():
            conn.execute(text(f"CREATE ROLE {login} LOGIN"))
        conn.execute(
            text(
                f"GRANT consultflow_coordinator, consultflow_staff, consultflow_auditor TO {names['coord']} WITH ADMIN OPTION"
            )
        )
    url = engine.url.render_as_string(hide_password=False)
    contexts = {
        kind: ServiceContext(
            database=SqlDatabase(create_engine(normalize_url(str(make_url(url).set(username=login))))),
            workflows_dir=WORKFLOWS,
            clock=staff.clock,
        )
        for kind, login in names.items()
    }
    people.bind_login(staff, acting=COORD, name=COORD, login=names["coord"])  # the owner's first binding
    with engine.begin() as conn:  # as `actor bind` granted a planner before migration 0013
        conn.execute(text(f"GRANT consultflow_staff TO {names['planner']}"))
    try:
        yield contexts
    finally:
        for c in contexts.values():
            c.database.dispose()
        with engine.begin() as conn:
            for login in names.values():
                conn.execute(text(f"DROP OWNED BY {login}"))
                conn.execute(text(f"DROP ROLE {login}"))


@pytest.mark.postgres
def test_per_person_logins_read_no_credential_and_append_nothing(
    pg_logins: dict[str, ServiceContext], pg_staff: ServiceContext
) -> None:
    """Per-person logins read no credential, token or account event; a coordinator's login registers nobody.

    (Before migration 0013 a coordinator's own login could register people and append to the account
    log; the server is now the only writer, so that is refused by the database.)
    """
    for kind in ("coord", "planner"):
        for table in ("staff_credential", "access_token", "signin_throttle", "account_event"):
            with pytest.raises(DBAPIError, match="permission denied"), engine_of(pg_logins[kind]).connect() as conn:
                conn.execute(text(f"SELECT * FROM {table}"))
        with pytest.raises(DBAPIError, match="permission denied"), engine_of(pg_logins[kind]).begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO account_event (chain_seq, kind, at, payload, prev_hash, hash) "
                    "VALUES (999, 'x', now(), '{}', '', '')"
                )
            )
    with pytest.raises(PermissionDeniedError, match="the database refused this to your login"):
        people.add_actor(pg_logins["coord"], acting=None, name="钱规划", roles=["planner"])
    with engine_of(pg_staff).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM actor WHERE name = '钱规划'")).scalar_one() == 0
    assert accounts.verify_account_chain(pg_staff).intact


def test_sign_ins_at_the_same_moment_keep_the_log_whole(staff: ServiceContext) -> None:
    """Right and wrong passwords from several threads at once: every attempt is one event and the chain verifies."""
    outcomes: list[str] = []

    def attempt(name: str, password: str) -> None:
        try:
            _sign_in(staff, name, password, client=f"10.1.0.{len(name)}")
            outcomes.append("in")
        except PermissionDeniedError:
            outcomes.append("refused")

    plan = [(PLANNER, PASSWORD), (EXPERT, "wrong password"), (AUDITOR, PASSWORD), (COORD, "wrong again!")] * 2
    threads = [threading.Thread(target=attempt, args=step) for step in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["in"] * 4 + ["refused"] * 4
    assert len(accounts.account_events(staff, acting=COORD, kind="signin")) == 4
    assert len(accounts.account_events(staff, acting=COORD, kind="signin_failed")) == 4
    assert accounts.verify_account_chain(staff).intact


def test_changing_your_own_password_takes_the_current_one(staff: ServiceContext) -> None:
    """A token someone took cannot lock its owner out: without the current password the change is refused and counted."""
    for wrong in (None, "not my password at all"):
        with pytest.raises(PermissionDeniedError, match="your current password is not right"):
            accounts.set_password(staff, acting=PLANNER, name=PLANNER, password=NEW_PASSWORD, current_password=wrong)
    assert _sign_in(staff, PLANNER, PASSWORD).owner == PLANNER  # the old password still works (and resets the count)
    refused = accounts.account_events(staff, acting=COORD, kind="signin_failed", name=PLANNER)
    assert [e.payload["via"] for e in refused[:2]] == ["password change", "password change"]
    for _ in range(5):  # five wrong in a row lock the account, as five failed sign-ins do
        with pytest.raises(PermissionDeniedError):
            accounts.set_password(staff, acting=PLANNER, name=PLANNER, password=NEW_PASSWORD, current_password="x" * 12)
    with pytest.raises(TooManyAttemptsError):
        accounts.set_password(staff, acting=PLANNER, name=PLANNER, password=NEW_PASSWORD, current_password=PASSWORD)


def test_a_taken_token_cannot_tie_the_account_to_another_phone(staff: ServiceContext, clock: FixedClock) -> None:
    """Turning two-step codes on or off for oneself takes the current password; a coordinator's reset does not."""
    setup = accounts.enable_totp(staff, acting=PLANNER)
    code = pyotp.TOTP(setup.secret).at(clock.now())
    with pytest.raises(PermissionDeniedError, match="your current password is not right"):
        accounts.confirm_totp(staff, acting=PLANNER, code=code)
    accounts.confirm_totp(staff, acting=PLANNER, code=code, current_password=PASSWORD)
    with pytest.raises(PermissionDeniedError, match="your current password is not right"):
        accounts.disable_totp(staff, acting=PLANNER, name=PLANNER, current_password="not it at all")
    accounts.disable_totp(staff, acting=PLANNER, name=PLANNER, current_password=PASSWORD)
    assert _sign_in(staff, PLANNER, PASSWORD).owner == PLANNER  # no code needed again
