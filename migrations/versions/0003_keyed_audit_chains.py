"""Consultations may have an HMAC-keyed audit chain: the key's id is stored, never the key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 14:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consultation") as batch:
        batch.add_column(sa.Column("chain_key_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consultation") as batch:
        batch.drop_column("chain_key_id")
