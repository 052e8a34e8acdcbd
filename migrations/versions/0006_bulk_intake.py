"""Bulk intake: opinions carry the key of the row they came from; participants a key to match them by.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.domain.intake import participant_key
from consultflow.store.roles import legacy_groups_present

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
LOCKS = "indexes opinion (consultation_id, intake_key) and participant (match_key), and fills every participant's match_key: their writers wait until the upgrade commits"


def upgrade() -> None:
    op.add_column("opinion", sa.Column("intake_key", sa.String(length=64), nullable=True))
    op.create_index("ix_opinion_consultation_id_intake_key", "opinion", ["consultation_id", "intake_key"], unique=True)
    op.add_column("participant", sa.Column("match_key", sa.String(length=64), nullable=True))
    op.create_index("ix_participant_match_key", "participant", ["match_key"])
    bind0 = op.get_bind()
    if bind0.dialect.name == "postgresql" and legacy_groups_present(bind0):  # they read participants by column
        op.execute("GRANT SELECT (match_key) ON participant TO consultflow_staff, consultflow_auditor")
    bind = op.get_bind()
    people = sa.table(
        "participant",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("village", sa.String),
        sa.column("contact", sa.String),
        sa.column("match_key", sa.String),
        sa.column("erased_at", sa.DateTime),
    )
    rows = bind.execute(sa.select(people.c.id, people.c.name, people.c.village, people.c.contact)).all()
    if rows:
        bind.execute(
            sa.update(people).where(people.c.id == sa.bindparam("pid")).values(match_key=sa.bindparam("key")),
            [{"pid": r.id, "key": participant_key(r.name, r.village, r.contact)} for r in rows],
        )


def downgrade() -> None:
    op.drop_index("ix_participant_match_key", table_name="participant")
    op.drop_column("participant", "match_key")
    op.drop_index("ix_opinion_consultation_id_intake_key", table_name="opinion")
    op.drop_column("opinion", "intake_key")
