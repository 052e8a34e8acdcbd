"""What an imported row said: its content key and the file's other columns, kept with the opinion.

`opinion import` scopes a row's key to its source (the platform or a named source, and the sheet),
so one platform's 序号 7 is no longer another's. `content_key` holds a keyed hash of what the row
said, so a row whose key is already recorded with other content is refused, naming the opinion.
`source_fields` holds the file's other columns (来源, 所用时间, 记录人…; never an IP address) as JSON,
sealed with the participant's key like the text, so erasure forgets them with her texts.

Grants: the server's role has table-wide SELECT, INSERT and UPDATE on `opinion` (0013), which
covers new columns; readers were granted SELECT column by column, so they see neither. Nothing to
grant. SQLite has no roles.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("opinion", sa.Column("content_key", sa.String(length=64), nullable=True))
    op.add_column("opinion", sa.Column("source_fields", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("opinion", "source_fields")
    op.drop_column("opinion", "content_key")
