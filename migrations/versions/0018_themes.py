"""Themes planners code opinions with (issue 26).

`opinion_theme` holds each theme an opinion is coded with (normalised text, several per opinion).
Adding and removing a theme are audit events in the opinion's chain (theme_added, theme_removed):
the table holds what is coded now; the events, who coded what and when.

Grants (PostgreSQL): the server's role reads, adds and removes themes (SELECT, INSERT, DELETE) and
uses the id sequence; readers may SELECT (themes are staff's tags, no personal data); the worker
nothing. SQLite has no roles.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.roles import current_roles
from consultflow.store.types import UTCDateTime

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def upgrade() -> None:
    op.create_table(
        "opinion_theme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("opinion_id", sa.Integer(), nullable=False),
        sa.Column("theme", sa.String(length=60), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_opinion_theme_consultation_id_consultation")
        ),
        sa.ForeignKeyConstraint(["opinion_id"], ["opinion.id"], name=op.f("fk_opinion_theme_opinion_id_opinion")),
        sa.ForeignKeyConstraint(["added_by_id"], ["actor.id"], name=op.f("fk_opinion_theme_added_by_id_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_theme")),
        sa.UniqueConstraint("opinion_id", "theme", name=op.f("uq_opinion_theme_opinion_id_theme")),
    )
    op.create_index(
        op.f("ix_opinion_theme_consultation_id_theme"), "opinion_theme", ["consultation_id", "theme"], unique=False
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    roles = current_roles(bind)
    there = set(
        bind.execute(
            sa.text("SELECT rolname FROM pg_roles WHERE rolname IN (:s, :r)"),
            {"s": roles["server"], "r": roles["reader"]},
        ).scalars()
    )
    if roles["server"] in there:
        server = _ident(roles["server"])
        op.execute(f"GRANT SELECT, INSERT, DELETE ON opinion_theme TO {server}")
        sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence('opinion_theme', 'id')")).scalar_one()
        if sequence is not None:
            op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {sequence} TO {server}")
    if roles["reader"] in there:
        op.execute(f"GRANT SELECT ON opinion_theme TO {_ident(roles['reader'])}")


def downgrade() -> None:
    op.drop_index(op.f("ix_opinion_theme_consultation_id_theme"), table_name="opinion_theme")
    op.drop_table("opinion_theme")
