"""Participant groups, and a county programme of areas (issue 26).

- `participant.group_id` (nullable): the kind of person who took part, an id of the workflow's
  `groups:` (乡镇干部 officials, 企业代表 companies, 致富带头人 business leaders, 乡村乡贤 respected
  villagers, 普通群众 residents by default). Existing participants have none (NULL: not given).
- `programme`: a county programme (e.g. the county's five areas); `consultation.programme_id`
  (nullable) makes a consultation one area (片区) of it.

Grants (PostgreSQL): the server's role has table-wide SELECT, INSERT, UPDATE on participant and
consultation (0013), which covers the new columns; readers were granted participant's columns one
by one, so they get SELECT on `group_id` (a group is not personal data on its own), and
consultation's whole table already. `programme` holds no personal data: the server gets SELECT,
INSERT, UPDATE and its sequence, readers SELECT, the worker nothing. SQLite has no roles.

Downgrade drops the table and both columns (groups and programme membership are lost).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.roles import current_roles
from consultflow.store.types import UTCDateTime

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def upgrade() -> None:
    op.add_column("participant", sa.Column("group_id", sa.String(length=40), nullable=True))
    op.create_table(
        "programme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["actor.id"], name=op.f("fk_programme_created_by_id_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme")),
        sa.UniqueConstraint("name", name=op.f("uq_programme_name")),
    )
    bind = op.get_bind()
    # Plain ADD COLUMN on both backends (rebuilding `consultation` on SQLite would trip the foreign
    # keys that point at it): SQLite takes the reference inline, PostgreSQL as a named constraint.
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE consultation ADD COLUMN programme_id INTEGER REFERENCES programme (id)")
    else:
        op.add_column("consultation", sa.Column("programme_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_consultation_programme_id_programme", "consultation", "programme", ["programme_id"], ["id"]
        )
    op.create_index("ix_consultation_programme_id", "consultation", ["programme_id"])
    if bind.dialect.name == "postgresql":
        roles = current_roles(bind)
        there = set(
            bind.execute(
                sa.text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"),
                {"r": [roles["server"], roles["reader"]]},
            ).scalars()
        )
        sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence('programme', 'id')")).scalar_one()
        if roles["server"] in there:
            server = _ident(roles["server"])
            op.execute(f"GRANT SELECT, INSERT, UPDATE ON programme TO {server}")
            op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {sequence} TO {server}")
        if roles["reader"] in there:
            reader = _ident(roles["reader"])
            op.execute(f"GRANT SELECT ON programme TO {reader}")
            op.execute(f"GRANT SELECT (group_id) ON participant TO {reader}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # a dropped column keeps its grants in the catalogue: revoke them first
        reader = current_roles(bind)["reader"]
        if bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": reader}).first() is not None:
            op.execute(f"REVOKE SELECT (group_id) ON participant FROM {_ident(reader)}")  # noqa: S608 - a quoted role
    op.drop_index("ix_consultation_programme_id", table_name="consultation")
    if bind.dialect.name != "sqlite":
        op.drop_constraint("fk_consultation_programme_id_programme", "consultation", type_="foreignkey")
    op.drop_column("consultation", "programme_id")
    op.drop_table("programme")
    op.drop_column("participant", "group_id")
