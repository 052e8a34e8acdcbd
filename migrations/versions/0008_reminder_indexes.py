"""Reminders are cancelled by opinion and by consultation without scanning them all.

Without these, SQLite chose the (status, send_at) index for "this opinion's pending reminders",
and every transition read every pending reminder: 4 ms a transition at 20,000 reminders, growing
with the data (measured by benchmarks/engines.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
LOCKS = "indexes reminder twice: writes to reminder wait while they build"


def upgrade() -> None:
    op.create_index("ix_reminder_opinion_id_status", "reminder", ["opinion_id", "status"])
    op.create_index("ix_reminder_consultation_id_status", "reminder", ["consultation_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_reminder_consultation_id_status", table_name="reminder")
    op.drop_index("ix_reminder_opinion_id_status", table_name="reminder")
