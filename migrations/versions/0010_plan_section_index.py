"""The plan table reads each plan section's opinions through an index.

`report plan` streams its rows one section at a time (so a province's table is never held);
without an index on the section each of those reads scanned the consultation's opinions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
LOCKS = "indexes opinion (consultation_id, plan_ref): writes to opinion wait while it builds"


def upgrade() -> None:
    op.create_index("ix_opinion_consultation_id_plan_ref", "opinion", ["consultation_id", "plan_ref"])


def downgrade() -> None:
    op.drop_index("ix_opinion_consultation_id_plan_ref", table_name="opinion")
