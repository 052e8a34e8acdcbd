"""Staff accounts: credentials, access tokens, sign-in counting and the account log's chain (one class each).

Failed sign-ins are counted by one INSERT … ON CONFLICT DO UPDATE … RETURNING per key, so every
server process (and every worker of each) shares one count, with no read-then-write race. The
account log is appended under its head row's lock (FOR UPDATE on PostgreSQL; SQLite's BEGIN
IMMEDIATE serialises writers anyway), so sequence numbers never collide.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from consultflow.domain.accounts import AccountDraft, account_canonical, account_chain_key
from consultflow.domain.audit import ChainKey, payload_text, text_hash, utc_iso
from consultflow.domain.roles import Role
from consultflow.store.batches import STREAM_ROWS
from consultflow.store.bulk import table_of
from consultflow.store.models import (
    AccessToken,
    AccountChain,
    AccountEvent,
    Actor,
    ActorRole,
    SigninThrottle,
    StaffCredential,
)
from consultflow.store.types import UTCDateTime


class AccountStore:
    """A person's credential: password hash, two-step secret, and whether the account is disabled."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def credential(self, actor_id: int) -> StaffCredential | None:
        """A person's credential row, if they have one."""
        return self.session.get(StaffCredential, actor_id, populate_existing=True)

    def _credential_row(self, actor_id: int) -> StaffCredential:
        found = self.credential(actor_id)
        if found is None:
            found = StaffCredential(actor_id=actor_id)
            self.session.add(found)
        return found

    def save_password(self, actor_id: int, password_hash: str, now: datetime) -> None:
        """Set a person's password hash."""
        row = self._credential_row(actor_id)
        row.password_hash, row.password_set_at = password_hash, now
        self.session.flush()

    def replace_password_hash(self, actor_id: int, old: str, new: str) -> bool:
        """Replace the hash with one of today's parameters, unless the password changed meanwhile."""
        stmt = (
            update(StaffCredential)
            .where(StaffCredential.actor_id == actor_id, StaffCredential.password_hash == old)
            .values(password_hash=new)
            .returning(StaffCredential.actor_id)
        )
        return self.session.execute(stmt).first() is not None

    def set_totp(
        self, actor_id: int, *, secret: str | None, confirmed_at: datetime | None, last_step: int | None
    ) -> None:
        """Store (or clear) a person's two-step secret, when it was confirmed and the last step used."""
        row = self._credential_row(actor_id)
        row.totp_secret, row.totp_confirmed_at, row.totp_last_step = secret, confirmed_at, last_step
        self.session.flush()

    def use_totp_step(self, actor_id: int, step: int) -> bool:
        """Mark a time step's code used, in one UPDATE; False if it (or a later one) was used already."""
        stmt = (
            update(StaffCredential)
            .where(
                StaffCredential.actor_id == actor_id,
                or_(StaffCredential.totp_last_step.is_(None), StaffCredential.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .returning(StaffCredential.actor_id)
        )
        return self.session.execute(stmt).first() is not None

    def set_disabled(self, actor_id: int, at: datetime | None) -> None:
        """Disable a person's account (at a moment) or enable it again (None)."""
        self._credential_row(actor_id).disabled_at = at
        self.session.flush()

    def enabled_with_role(self, role: Role) -> list[int]:
        """Actors holding `role` whose account is not disabled, by id."""
        stmt = (
            select(ActorRole.actor_id)
            .outerjoin(StaffCredential, StaffCredential.actor_id == ActorRole.actor_id)
            .where(ActorRole.role == role.value, StaffCredential.disabled_at.is_(None))
            .order_by(ActorRole.actor_id)
        )
        return list(self.session.scalars(stmt))


class Throttle:
    """Failed sign-ins counted under a key (a name, a client), shared by every server process."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def locked_until(self, keys: Sequence[str], now: datetime) -> datetime | None:
        """The latest moment any of `keys` is locked until, if one is locked now."""
        stmt = select(func.max(SigninThrottle.locked_until)).where(
            SigninThrottle.key.in_(list(keys)), SigninThrottle.locked_until > now
        )
        return self.session.scalar(stmt)

    def count_failure(
        self, key: str, now: datetime, *, limit: int, window: timedelta, lock_for: timedelta
    ) -> tuple[int, datetime | None]:
        """Count one failed sign-in under `key`, atomically; (failures in the window, locked until).

        A window older than `window` starts again at 1. Reaching `limit` locks the key for
        `lock_for` from now.
        """
        table = table_of(SigninThrottle)
        moment = literal(now, UTCDateTime())
        until = literal(now + lock_for, UTCDateTime())
        stale = table.c.window_start <= now - window
        failures = case((stale, 1), else_=table.c.failures + 1)
        dialect = self.session.get_bind().dialect.name
        insert_into: Any = postgresql_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert_into(table)
            .values(key=key, failures=1, window_start=now, locked_until=now + lock_for if limit <= 1 else None)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "failures": failures,
                    "window_start": case((stale, moment), else_=table.c.window_start),
                    "locked_until": case((failures >= limit, until), else_=table.c.locked_until),
                },
            )
            .returning(table.c.failures, table.c.locked_until)
        )
        count, locked = self.session.execute(stmt).one()
        return int(count), locked

    def clear(self, key: str) -> None:
        """Forget the failed sign-ins counted under `key`."""
        self.session.execute(delete(SigninThrottle).where(SigninThrottle.key == key))


class TokenStore:
    """Personal access tokens, stored by their hash."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        actor_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        scope: str,
        now: datetime,
        expires_at: datetime,
    ) -> AccessToken:
        """Record a new token (by its hash)."""
        row = AccessToken(
            actor_id=actor_id,
            name=name,
            token_hash=token_hash,
            prefix=prefix,
            scope=scope,
            created_at=now,
            expires_at=expires_at,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, token_id: int) -> AccessToken | None:
        """A token by id."""
        return self.session.get(AccessToken, token_id)

    def bearer(self, token_hash: str) -> tuple[AccessToken, str, datetime | None] | None:
        """The token with this hash, its owner's name and when their account was disabled, in one query."""
        stmt = (
            select(AccessToken, Actor.name, StaffCredential.disabled_at)
            .join(Actor, Actor.id == AccessToken.actor_id)
            .outerjoin(StaffCredential, StaffCredential.actor_id == AccessToken.actor_id)
            .where(AccessToken.token_hash == token_hash)
        )
        row = self.session.execute(stmt).first()
        if row is None:
            return None
        token, owner, disabled_at = row
        return token, owner, disabled_at

    def touch(self, token_id: int, now: datetime, every: timedelta) -> bool:
        """Set last_used_at unless it was set less than `every` ago, in one UPDATE; whether it was set."""
        stmt = (
            update(AccessToken)
            .where(
                AccessToken.id == token_id,
                or_(AccessToken.last_used_at.is_(None), AccessToken.last_used_at < now - every),
            )
            .values(last_used_at=now)
            .returning(AccessToken.id)
        )
        return self.session.execute(stmt).first() is not None

    def revoke(self, token_id: int, *, by: int, now: datetime) -> bool:
        """Revoke a token not yet revoked; whether it was."""
        stmt = (
            update(AccessToken)
            .where(AccessToken.id == token_id, AccessToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by_id=by)
            .returning(AccessToken.id)
        )
        return self.session.execute(stmt).first() is not None

    def revoke_all_of(self, actor_id: int, *, by: int, now: datetime) -> list[int]:
        """Revoke every live token of an actor (neither revoked nor expired); their ids."""
        stmt = (
            update(AccessToken)
            .where(AccessToken.actor_id == actor_id, AccessToken.revoked_at.is_(None), AccessToken.expires_at > now)
            .values(revoked_at=now, revoked_by_id=by)
            .returning(AccessToken.id)
        )
        return sorted(self.session.scalars(stmt))

    def listing(self, actor_id: int | None) -> list[tuple[AccessToken, str, str | None]]:
        """Tokens (of one actor, or everyone's) with their owner's name and who revoked them, newest first."""
        revoker = aliased(Actor)
        stmt = (
            select(AccessToken, Actor.name, revoker.name)
            .join(Actor, Actor.id == AccessToken.actor_id)
            .outerjoin(revoker, revoker.id == AccessToken.revoked_by_id)
            .order_by(AccessToken.id.desc())
        )
        if actor_id is not None:
            stmt = stmt.where(AccessToken.actor_id == actor_id)
        return [(token, owner, revoked_by) for token, owner, revoked_by in self.session.execute(stmt)]


class AccountLog:
    """The account log: a hash chain of what was done to accounts, appended under its head's lock."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def head(self, *, lock: bool = False) -> AccountChain:
        """The account log's head row (locked when asked: appending takes it first)."""
        found = self.session.get(AccountChain, 1, with_for_update=lock or None, populate_existing=True)
        assert found is not None, "migration 0011 seeds the account log's head"
        return found

    def append(self, drafts: Sequence[AccountDraft], key: ChainKey | None) -> None:
        """Chain `drafts` after the head and insert them (HMAC-keyed with `key`, if configured).

        Raises:
            ConfigurationError: the log is keyed and `key` is missing or another one.
        """
        if not drafts:
            return
        head = self.head(lock=True)
        key = account_chain_key(head.key_id, key)
        key_id = key.key_id if key is not None else None
        seq, prev = head.seq, head.head
        rows: list[dict[str, object]] = []
        for draft in drafts:
            seq += 1
            payload = payload_text(draft.payload)
            canonical = account_canonical(
                chain_seq=seq,
                kind=draft.kind,
                actor=draft.actor,
                subject=draft.subject,
                at=utc_iso(draft.at),
                key_id=key_id,
                payload=payload,
            )
            digest = text_hash(prev, canonical, key)
            rows.append(
                {
                    "chain_seq": seq,
                    "kind": draft.kind,
                    "actor": draft.actor,
                    "subject": draft.subject,
                    "at": draft.at,
                    "payload": payload,
                    "key_id": key_id,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        self.session.execute(insert(table_of(AccountEvent)), rows)
        head.seq, head.head, head.key_id = seq, prev, key_id
        self.session.flush()

    def events(
        self, *, subject: str | None = None, involving: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AccountEvent]:
        """Account events, newest first: about one account, or acted by or on one person, of one kind."""
        where: list[ColumnElement[bool]] = []
        if subject is not None:
            where.append(AccountEvent.subject == subject)
        if involving is not None:
            where.append(or_(AccountEvent.subject == involving, AccountEvent.actor == involving))
        if kind is not None:
            where.append(AccountEvent.kind == kind)
        stmt = select(AccountEvent).where(*where).order_by(AccountEvent.chain_seq.desc()).limit(limit)
        return list(self.session.scalars(stmt))

    def chain(self) -> Generator[AccountEvent, None, None]:
        """Every account event in chain order, streamed (close it when stopping early: `contextlib.closing`)."""
        stmt = select(AccountEvent).order_by(AccountEvent.chain_seq).execution_options(yield_per=STREAM_ROWS)
        events = self.session.scalars(stmt)
        try:
            yield from events
        finally:
            events.close()
