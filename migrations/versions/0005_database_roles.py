"""Least privilege on PostgreSQL: group roles whose grants let each kind of login do its job and no more.

- consultflow_coordinator: runs every use case and reads contacts (outreach, erasure).
- consultflow_staff: planners, local experts, participants: runs use cases; cannot read contacts.
- consultflow_auditor: reads everything but contacts; writes nothing.
- consultflow_worker: the reminder worker: use cases (auto-close) and contacts (sending).
Nobody but the schema's owner (the login that runs migrations) can alter the schema, and nobody may
UPDATE, DELETE or TRUNCATE the audit table (only its owner could disable its triggers). Group
roles are cluster-wide and created once; the grants are per schema. SQLite has no logins: nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from consultflow.store.roles import legacy_groups_present

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
CONTRACT = "revokes what the per-person logins of 0004 held (participant, alembic_version): written before upgrades ran beside a serving release"

GROUPS = ("consultflow_coordinator", "consultflow_staff", "consultflow_auditor", "consultflow_worker")
WRITERS = "consultflow_coordinator, consultflow_staff, consultflow_worker"
EVERYONE = ", ".join(GROUPS)
APPEND_ONLY = ("audit_event", "personal_data_access", "personal_data_access_item")
# Participant columns anyone may read; `contact` is for coordinators and the worker only.
PARTICIPANT_OPEN = "id, name, village, lang, created_at, created_by_id, erased_at"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    may_create = "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper))"
    for group in GROUPS:  # made only where missing and the owner may (0013 replaces them with roles per database)
        missing = f"NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{group}')"  # noqa: S608 - constant names
        op.execute(
            f"DO $$ BEGIN IF {missing} AND {may_create} THEN CREATE ROLE {group} NOLOGIN; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    if not legacy_groups_present(op.get_bind()):
        return
    statements = [
        f"GRANT USAGE ON SCHEMA %I TO {EVERYONE}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {EVERYONE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {WRITERS}",
        f"GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO {WRITERS}",
        f"REVOKE UPDATE ON %I.alembic_version FROM {WRITERS}",
        f"REVOKE INSERT ON %I.alembic_version FROM {WRITERS}",
        *(f"REVOKE UPDATE ON %I.{table} FROM {WRITERS}" for table in APPEND_ONLY),
        "REVOKE SELECT ON %I.participant FROM consultflow_staff, consultflow_auditor",
        f"GRANT SELECT ({PARTICIPANT_OPEN}) ON %I.participant TO consultflow_staff, consultflow_auditor",
        "REVOKE UPDATE ON %I.participant FROM consultflow_staff",
    ]
    body = " ".join(f"EXECUTE format('{s.replace(chr(39), chr(39) * 2)}', s);" for s in statements)
    op.execute(f"DO $$ DECLARE s text := current_schema(); BEGIN {body} END $$")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql" or not legacy_groups_present(op.get_bind()):
        return
    op.execute(
        "DO $$ DECLARE s text := current_schema(); BEGIN "
        f"EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM {EVERYONE}', s); "
        f"EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM {EVERYONE}', s); "
        f"EXECUTE format('REVOKE ALL ON SCHEMA %I FROM {EVERYONE}', s); "
        "END $$"
    )
