"""Identities and personal data: actors bound to logins and to their participant record, erasure, access records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.types import UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: rebuilding `actor` on SQLite would trip the foreign keys
    # that point at it. SQLite takes the reference inline; PostgreSQL as a named constraint.
    op.add_column("actor", sa.Column("login", sa.String(length=63), nullable=True))
    op.create_index("ix_actor_login", "actor", ["login"], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE actor ADD COLUMN participant_id INTEGER REFERENCES participant (id)")
    else:
        op.add_column("actor", sa.Column("participant_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_actor_participant_id_participant", "actor", "participant", ["participant_id"], ["id"])
    op.add_column("participant", sa.Column("erased_at", UTCDateTime(), nullable=True))
    op.create_table(
        "personal_data_access",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(length=60), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name="fk_personal_data_access_actor_id_actor"),
        sa.PrimaryKeyConstraint("id", name="pk_personal_data_access"),
    )
    op.create_index("ix_personal_data_access_at", "personal_data_access", ["at"])
    op.create_table(
        "personal_data_access_item",
        sa.Column("access_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["access_id"],
            ["personal_data_access.id"],
            name="fk_personal_data_access_item_access_id_personal_data_access",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participant.id"], name="fk_personal_data_access_item_participant_id_participant"
        ),
        sa.PrimaryKeyConstraint("access_id", "participant_id", name="pk_personal_data_access_item"),
    )
    op.create_index("ix_personal_data_access_item_participant_id", "personal_data_access_item", ["participant_id"])


def downgrade() -> None:
    op.drop_table("personal_data_access_item")
    op.drop_table("personal_data_access")
    op.drop_column("participant", "erased_at")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_actor_participant_id_participant", "actor", type_="foreignkey")
    op.drop_column("actor", "participant_id")
    op.drop_index("ix_actor_login", table_name="actor")
    op.drop_column("actor", "login")
