"""Staff accounts for the server: credentials, access tokens, sign-in throttling and the account log.

- staff_credential: a person's argon2id password hash, two-step (TOTP) secret, disabled time.
- access_token: personal access tokens, kept as SHA-256 only.
- signin_throttle: failed sign-ins per account name and per client, shared by every server process.
- account_event: an append-only hash chain of what happened to accounts; like audit_event, the
  database refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL). account_chain holds its head.

On PostgreSQL the per-person group roles get nothing on staff_credential, access_token and
signin_throttle: only the schema's owner, which the server connects as, reads or writes them.
Every group may read the account log (account_event, account_chain); coordinators may also
append to it (INSERT on account_event, UPDATE on account_chain), because registering a person
(`actor add`) records an event there. Nobody but the owner can alter the triggers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.roles import legacy_groups_present
from consultflow.store.types import UTCDateTime

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
EVERYONE = "consultflow_coordinator, consultflow_staff, consultflow_auditor, consultflow_worker"


def upgrade() -> None:
    op.create_table(
        "staff_credential",
        sa.Column("actor_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("password_set_at", UTCDateTime(), nullable=True),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name=op.f("fk_staff_credential_actor_id_actor")),
        sa.PrimaryKeyConstraint("actor_id", name=op.f("pk_staff_credential")),
    )
    op.create_table(
        "access_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=5), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write')", name=op.f("ck_access_token_scope")),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name=op.f("fk_access_token_actor_id_actor")),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["actor.id"], name=op.f("fk_access_token_revoked_by_id_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_token")),
    )
    op.create_index("ix_access_token_token_hash", "access_token", ["token_hash"], unique=True)
    op.create_index("ix_access_token_actor_id", "access_token", ["actor_id"])
    op.create_table(
        "signin_throttle",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_signin_throttle")),
    )
    op.create_table(
        "account_event",
        sa.Column("chain_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=True),
        sa.Column("subject", sa.String(length=120), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain_seq", name=op.f("pk_account_event")),
    )
    op.create_index("ix_account_event_subject", "account_event", ["subject"])
    account_chain = op.create_table(
        "account_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_account_chain_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_chain")),
    )
    assert account_chain is not None
    op.bulk_insert(account_chain, [{"id": 1, "seq": 0, "head": GENESIS_HASH, "key_id": None}])
    _protect_account_log()
    _grant()


def _protect_account_log() -> None:
    """Make the database itself refuse to edit or delete account events, as it does audit events."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER account_event_no_{verb.lower()} BEFORE {verb} ON account_event "
                "BEGIN SELECT RAISE(ABORT, 'account_event is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION account_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'account_event is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER account_event_no_change BEFORE UPDATE OR DELETE ON account_event "
        "FOR EACH ROW EXECUTE FUNCTION account_event_append_only()"
    )
    op.execute(
        "CREATE TRIGGER account_event_no_truncate BEFORE TRUNCATE ON account_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION account_event_append_only()"
    )


def _grant() -> None:
    """The account log readable by every group and appendable by coordinators; credentials by nobody but the owner."""
    if op.get_bind().dialect.name != "postgresql" or not legacy_groups_present(op.get_bind()):
        return
    op.execute(f"GRANT SELECT ON account_event, account_chain TO {EVERYONE}")
    op.execute("GRANT INSERT ON account_event TO consultflow_coordinator")
    op.execute("GRANT UPDATE ON account_chain TO consultflow_coordinator")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS account_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS account_event_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS account_event_no_change ON account_event")
        op.execute("DROP TRIGGER IF EXISTS account_event_no_truncate ON account_event")
        op.execute("DROP FUNCTION IF EXISTS account_event_append_only()")
    op.drop_table("account_chain")
    op.drop_index("ix_account_event_subject", table_name="account_event")
    op.drop_table("account_event")
    op.drop_table("signin_throttle")
    op.drop_index("ix_access_token_actor_id", table_name="access_token")
    op.drop_index("ix_access_token_token_hash", table_name="access_token")
    op.drop_table("access_token")
    op.drop_table("staff_credential")
