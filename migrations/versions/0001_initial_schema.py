"""Initial schema: workflows, actors, participants, consultations, rounds, opinions, audit.

The audit table is append-only in the database itself: triggers refuse UPDATE and DELETE.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 04:22:36.801000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from consultflow.store.types import UTCDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "actor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("contact", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actor")),
        sa.UniqueConstraint("name", name=op.f("uq_actor_name")),
    )
    op.create_table(
        "workflow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_workflow_name_version")),
    )
    op.create_table(
        "actor_role",
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name=op.f("fk_actor_role_actor_id_actor")),
        sa.PrimaryKeyConstraint("actor_id", "role", name=op.f("pk_actor_role")),
    )
    op.create_table(
        "consultation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("area", sa.String(length=200), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("chain_seq", sa.Integer(), nullable=False),
        sa.Column("chain_head", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["actor.id"],
            name=op.f("fk_consultation_created_by_id_actor"),
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_consultation_workflow_id_workflow"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation")),
    )
    op.create_table(
        "participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("village", sa.String(length=120), nullable=False),
        sa.Column("contact", sa.String(length=255), nullable=True),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["actor.id"],
            name=op.f("fk_participant_created_by_id_actor"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participant")),
    )
    op.create_table(
        "consultation_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closes_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_consultation_round_status")),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_consultation_round_consultation_id_consultation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_round")),
        sa.UniqueConstraint(
            "consultation_id",
            "number",
            name=op.f("uq_consultation_round_consultation_id_number"),
        ),
    )
    op.create_table(
        "opinion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("assigned_planner_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=60), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=60), nullable=False),
        sa.Column("state_entered_at", UTCDateTime(), nullable=False),
        sa.Column("current_round", sa.Integer(), nullable=False),
        sa.Column("rounds_count", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("plan_ref", sa.String(length=200), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_planner_id"],
            ["actor.id"],
            name=op.f("fk_opinion_assigned_planner_id_actor"),
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_opinion_consultation_id_consultation"),
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["opinion.id"],
            name=op.f("fk_opinion_merged_into_id_opinion"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_opinion_participant_id_participant"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["actor.id"],
            name=op.f("fk_opinion_recorded_by_id_actor"),
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_opinion_workflow_id_workflow"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion")),
    )
    with op.batch_alter_table("opinion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opinion_assigned_planner_id_state"),
            ["assigned_planner_id", "state"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_opinion_consultation_id_outcome_rounds_count"),
            ["consultation_id", "outcome", "rounds_count"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_opinion_consultation_id_state"),
            ["consultation_id", "state"],
            unique=False,
        )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("chain_seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("opinion_id", sa.Integer(), nullable=True),
        sa.Column("opinion_seq", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=60), nullable=True),
        sa.Column("from_state", sa.String(length=60), nullable=True),
        sa.Column("to_state", sa.String(length=60), nullable=True),
        sa.Column("round_no", sa.Integer(), nullable=True),
        sa.Column("completes_cycle", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultation.id"],
            name=op.f("fk_audit_event_consultation_id_consultation"),
        ),
        sa.ForeignKeyConstraint(
            ["opinion_id"],
            ["opinion.id"],
            name=op.f("fk_audit_event_opinion_id_opinion"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sa.UniqueConstraint(
            "consultation_id",
            "chain_seq",
            name=op.f("uq_audit_event_consultation_id_chain_seq"),
        ),
        sa.UniqueConstraint(
            "opinion_id",
            "opinion_seq",
            name=op.f("uq_audit_event_opinion_id_opinion_seq"),
        ),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_event_consultation_id_at"),
            ["consultation_id", "at"],
            unique=False,
        )

    op.create_table(
        "opinion_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("opinion_id", sa.Integer(), nullable=False),
        sa.Column("opinion_seq", sa.Integer(), nullable=False),
        sa.Column("round_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("stance", sa.String(length=20), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name=op.f("fk_opinion_entry_actor_id_actor")),
        sa.ForeignKeyConstraint(
            ["opinion_id"],
            ["opinion.id"],
            name=op.f("fk_opinion_entry_opinion_id_opinion"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_entry")),
    )
    with op.batch_alter_table("opinion_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opinion_entry_opinion_id_round_no"),
            ["opinion_id", "round_no"],
            unique=False,
        )

    _seed_system_actor()
    _protect_audit_table()


def downgrade() -> None:
    _unprotect_audit_table()
    with op.batch_alter_table("opinion_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opinion_entry_opinion_id_round_no"))

    op.drop_table("opinion_entry")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_consultation_id_at"))

    op.drop_table("audit_event")
    with op.batch_alter_table("opinion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opinion_consultation_id_state"))
        batch_op.drop_index(batch_op.f("ix_opinion_consultation_id_outcome_rounds_count"))
        batch_op.drop_index(batch_op.f("ix_opinion_assigned_planner_id_state"))

    op.drop_table("opinion")
    op.drop_table("consultation_round")
    op.drop_table("participant")
    op.drop_table("consultation")
    op.drop_table("actor_role")
    op.drop_table("workflow")
    op.drop_table("actor")


def _seed_system_actor() -> None:
    """The actor under which consultflow itself acts (round auto-close, lapses)."""
    actor = sa.table(
        "actor",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("lang", sa.String),
        sa.column("created_at", UTCDateTime()),
    )
    role = sa.table(
        "actor_role",
        sa.column("actor_id", sa.Integer),
        sa.column("role", sa.String),
        sa.column("position", sa.Integer),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(actor, [{"id": 1, "name": "system", "lang": "en", "created_at": now}])
    op.bulk_insert(role, [{"actor_id": 1, "role": "system", "position": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('actor', 'id'), 1)")


def _protect_audit_table() -> None:
    """Make the database itself refuse to edit or delete audit events."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
    )


def _unprotect_audit_table() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
    op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
