"""A recorded review and a draft plan are written once: the server's role loses UPDATE on them.

0019 granted the server's role SELECT, INSERT and UPDATE on the plan's tables, and 0017 the same
on `programme`, but no use case ever updates a row of them: a plan version, its clauses and their
texts are imported, a review opened, a rating (with its sealed comment) recorded and an opinion
linked to clauses, each once, with its audit event. `audit verify` does not replay those events
against these rows, so an insider with the server's login could turn a 不满意 into a 满意, move a
comment to another clause, rewrite a clause's text or the version a review rated, or retitle a
programme, and nothing would name it. PostgreSQL now refuses: UPDATE is revoked from the server's
role on plan_version, plan_clause, plan_clause_text, plan_review, plan_rating, opinion_clause and
programme (SELECT and INSERT stay; it never had DELETE or TRUNCATE on them). The worker and the
reader never had UPDATE. SQLite has no roles: nothing.

Downgrade grants UPDATE back, as 0017 and 0019 gave it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.roles import current_roles

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
CONTRACT = "revokes UPDATE on the plan's tables and programme from the server's role; no release updates them, so servers of the previous release keep working"

WRITTEN_ONCE = (
    "plan_version",
    "plan_clause",
    "plan_clause_text",
    "plan_review",
    "plan_rating",
    "opinion_clause",
    "programme",
)


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
        op.execute(f"REVOKE UPDATE ON {', '.join(WRITTEN_ONCE)} FROM {server}")


def downgrade() -> None:
    server = _server()
    if server is not None:
        op.execute(f"GRANT UPDATE ON {', '.join(WRITTEN_ONCE)} TO {server}")
