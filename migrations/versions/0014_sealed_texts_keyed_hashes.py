"""Participants' keys for sealed free text, and keyed match and intake keys.

- `participant_key`: one random AES-256 key per participant (made here for every participant not
  erased). Their opinion, feedback, reply and correction texts written from now on are sealed with
  it, in the live tables and the audit events alike; erasure deletes the key. Texts recorded
  before this revision stay as they were written.
- `privacy_secret`: the server's secret for match and intake keys (a random one made here).
  Existing keys become HMAC-SHA256 of themselves under it (the code keys what it computes the same
  way), so a reader of the table can no longer test a guessed name and phone number; an erased
  participant's keys, and their opinions' intake keys, are cleared.
- Grants (PostgreSQL): only the server's role reads either table (it inserts and deletes keys);
  the worker and readers get nothing (the worker's reminders name opinions, never quote them).

Downgrade drops both tables; keyed hashes cannot be turned back into the plain ones, so they are
cleared (a re-import after a downgrade matches no earlier row) and sealed texts stay sealed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from consultflow.store.roles import current_roles
from consultflow.store.types import UTCDateTime

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
CONTRACT = "changes what participant.match_key and opinion.intake_key mean (keyed hashes) and seals texts: the previous release would write plain keys and open texts, so stop its servers first. Every participant and keyed opinion row stays locked, and participant writes wait (the new foreign key), until the upgrade commits"

_BATCH = 1000


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _keyed(secret: bytes, plain: str) -> str:
    # consultflow.domain.sealing.keyed, as it is at this revision
    return hmac.new(secret, plain.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def upgrade() -> None:
    op.create_table(
        "participant_key",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participant.id"], name=op.f("fk_participant_key_participant_id_participant")
        ),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_participant_key")),
    )
    op.create_table(
        "privacy_secret",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_privacy_secret")),
    )
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    secret = os.urandom(32)
    privacy_secret = sa.table(
        "privacy_secret", sa.column("name"), sa.column("secret"), sa.column("created_at", UTCDateTime())
    )
    bind.execute(sa.insert(privacy_secret).values(name="match_key", secret=secret.hex(), created_at=now))

    participant = sa.table(
        "participant", sa.column("id"), sa.column("match_key"), sa.column("erased_at", UTCDateTime())
    )
    keys = sa.table(
        "participant_key", sa.column("participant_id"), sa.column("secret"), sa.column("created_at", UTCDateTime())
    )
    opinion = sa.table("opinion", sa.column("id"), sa.column("participant_id"), sa.column("intake_key"))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(participant.c.id, participant.c.match_key, participant.c.erased_at)
            .where(participant.c.id > last)
            .order_by(participant.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        last = int(rows[-1][0])
        living = [r for r in rows if r[2] is None]
        if living:
            bind.execute(
                sa.insert(keys),
                [{"participant_id": r[0], "secret": os.urandom(32).hex(), "created_at": now} for r in living],
            )
        rehashed = [{"pid": r[0], "key": _keyed(secret, r[1]) if r[2] is None else None} for r in rows if r[1]]
        if rehashed:
            bind.execute(
                sa.update(participant)
                .where(participant.c.id == sa.bindparam("pid"))
                .values(match_key=sa.bindparam("key")),
                rehashed,
            )
    erased = sa.select(participant.c.id).where(participant.c.erased_at.is_not(None)).scalar_subquery()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(opinion.c.id, opinion.c.intake_key, opinion.c.participant_id.in_(erased))
            .where(opinion.c.id > last, opinion.c.intake_key.is_not(None))
            .order_by(opinion.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        last = int(rows[-1][0])
        bind.execute(
            sa.update(opinion).where(opinion.c.id == sa.bindparam("oid")).values(intake_key=sa.bindparam("key")),
            [{"oid": r[0], "key": None if r[2] else _keyed(secret, r[1])} for r in rows],
        )
    if bind.dialect.name == "postgresql":
        roles = current_roles(bind)
        server = _ident(roles["server"])
        there = set(
            bind.execute(sa.text("SELECT rolname FROM pg_roles WHERE rolname = :r"), {"r": roles["server"]}).scalars()
        )
        if there:
            op.execute(f"GRANT SELECT, INSERT, DELETE ON participant_key TO {server}")
            op.execute(f"GRANT SELECT ON privacy_secret TO {server}")


def downgrade() -> None:
    op.execute("UPDATE participant SET match_key = NULL")
    op.execute("UPDATE opinion SET intake_key = NULL")
    op.drop_table("privacy_secret")
    op.drop_table("participant_key")
