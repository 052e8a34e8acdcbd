"""Signed chain heads: what the server signed and published, kept append-only.

Each row is one head of one consultation's audit chain, or of the account log (consultation_id
NULL): its sequence number and hash, signed with
the server's Ed25519 key: the exact statement signed, the signature and the public key's id. The
published copies (a file, webhooks, mail, the portal) are the evidence; these rows let the portal
show the latest one and let verify name which head a rebuilt chain broke. Like audit_event, the
database refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.types import UTCDateTime

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signed_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=True),  # NULL: the account log's head
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=44), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_signed_head_consultation_id_consultation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_head")),
        sa.UniqueConstraint(
            "consultation_id",
            "seq",
            "key_id",
            name=op.f("uq_signed_head_consultation_id_seq_key_id"),
            postgresql_nulls_not_distinct=True,  # the account log's heads (NULL) are unique too
        ),
    )
    _protect()


def _protect() -> None:
    """The database itself refuses to edit or delete a signed head."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER signed_head_no_{verb.lower()} BEFORE {verb} ON signed_head "
                "BEGIN SELECT RAISE(ABORT, 'signed_head is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION signed_head_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'signed_head is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER signed_head_no_change BEFORE UPDATE OR DELETE ON signed_head "
        "FOR EACH ROW EXECUTE FUNCTION signed_head_append_only()"
    )
    op.execute(
        "CREATE TRIGGER signed_head_no_truncate BEFORE TRUNCATE ON signed_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION signed_head_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS signed_head_no_update")
        op.execute("DROP TRIGGER IF EXISTS signed_head_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS signed_head_no_change ON signed_head")
        op.execute("DROP TRIGGER IF EXISTS signed_head_no_truncate ON signed_head")
        op.execute("DROP FUNCTION IF EXISTS signed_head_append_only()")
    op.drop_table("signed_head")
