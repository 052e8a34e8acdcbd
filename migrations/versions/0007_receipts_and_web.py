"""Receipt codes and the web portal: opinions keep a hash of their receipt code; the portal has its actor.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from consultflow.domain.identity import PORTAL_ACTOR
from consultflow.store.types import UTCDateTime

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
LOCKS = "indexes opinion (receipt_hash): writes to opinion wait while it builds"


def upgrade() -> None:
    op.add_column("opinion", sa.Column("receipt_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_opinion_receipt_hash", "opinion", ["receipt_hash"], unique=True)
    _seed_portal_actor()


def _seed_portal_actor() -> None:
    """The actor the web portal acts as: a participant, tied per request to whoever shows a receipt code."""
    bind = op.get_bind()
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
    if bind.execute(sa.select(actor.c.id).where(actor.c.name == PORTAL_ACTOR)).first() is not None:
        return  # someone registered an actor of that name; the portal acts as them
    now = datetime.now(timezone.utc)
    new_id = bind.execute(
        sa.insert(actor).values(name=PORTAL_ACTOR, lang="zh", created_at=now).returning(actor.c.id)
    ).scalar_one()
    bind.execute(sa.insert(role).values(actor_id=new_id, role="participant", position=0))


def downgrade() -> None:
    op.drop_index("ix_opinion_receipt_hash", table_name="opinion")
    op.drop_column("opinion", "receipt_hash")
