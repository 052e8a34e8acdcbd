"""Erasure masks stored delivery errors: the server may rewrite a delivery attempt's error.

A failed delivery's attempt keeps the channel's error, which may quote the recipient's name or
contact (an SMTP refusal naming the address). `participant erase` masks them, so the server's role
(PostgreSQL) gets UPDATE on `delivery_attempt.error`, that column only; it still may not change
whether an attempt succeeded or when it was made. Nothing else changes (the other tables erasure
updates were granted by 0013 and 0014). SQLite has no roles: nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.roles import current_roles

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _server() -> str | None:
    """The server role's name, quoted, when this database has one (PostgreSQL)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    role = current_roles(bind)["server"]
    there = bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    return _ident(role) if there else None


def upgrade() -> None:
    server = _server()
    if server is not None:
        op.execute(f"GRANT UPDATE (error) ON delivery_attempt TO {server}")


def downgrade() -> None:
    server = _server()
    if server is not None:
        op.execute(f"REVOKE UPDATE (error) ON delivery_attempt FROM {server}")
