"""Roles per database: the server's, the reminder worker's and analysts', each with only what it needs.

Three NOLOGIN group roles named after the database and schema (consultflow.store.roles:
`cf_<database>[_<schema>]_server|worker|reader`), so two counties on one cluster share no grants:

- server: the only writer (`consultflow serve`). SELECT on every table; INSERT and UPDATE on the
  live tables its use cases change; DELETE only on actor_role (a role revoked) and
  signin_throttle (a count cleared); SELECT and INSERT only on the append-only tables
  (audit_event, signed_head, personal_data_access(_item), account_event); SELECT on
  alembic_version; the sequences. No DDL, no TRIGGER, no REFERENCES, owns nothing.
- worker: the reminder worker (`consultflow worker`), which delivers and closes no rounds. It
  reads what finds due reminders, their opinions, rounds and workflows, and the recipients
  (actors and participants, with their contacts); it may INSERT and UPDATE deliveries, INSERT
  delivery attempts, and UPDATE only the reminder columns it sets (status, closed_at,
  cancel_reason).
- reader: auditors and analysts with SQL. SELECT on consultation, consultation_round, workflow,
  opinion (not intake_key, a hash of the row's name and contact), opinion_entry, audit_event,
  signed_head, reminder, personal_data_access(_item), actor (not contact nor login), actor_role,
  and participant without name, contact and match_key (a hash of them). Nothing on
  staff_credential, access_token, signin_throttle, delivery or delivery_attempt (recipients'
  names and message bodies), nor the account log.

The four cluster-wide groups of 0005 (consultflow_coordinator, _staff, _auditor, _worker) lose
every privilege on this schema's tables and sequences (they keep USAGE on the schema, so their
logins hear "permission denied"): per-person logins that are their members can change and read
nothing here. Give an auditor's personal login the reader role (`consultflow db login NAME
--existing --role reader`). Tables added by later migrations must grant to these roles
themselves (there are no default privileges).

The login that runs this migration needs CREATEROLE (unless the three roles exist already).
Downgrade revokes everything from the three roles, which stay (with their members), and restores
the grants 0005, 0006 and 0011 gave the four groups. SQLite has no roles: nothing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.domain.errors import PermissionDeniedError
from consultflow.store.roles import current_roles

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What this step contracts or locks (migrations/versions/__init__.py; tests/unit/test_migration_rules.py).
CONTRACT = "revokes every privilege of the four cluster-wide groups: their logins (the previous release's way to connect) stop working; move the processes to the new roles' logins first"

OLD_GROUPS = ("consultflow_coordinator", "consultflow_staff", "consultflow_auditor", "consultflow_worker")
APPEND_ONLY = ("audit_event", "signed_head", "personal_data_access", "personal_data_access_item", "account_event")

# The server's privileges, table by table (what its use cases do: `grep` the store for update/delete).
SERVER = {
    "alembic_version": "SELECT",
    "workflow": "SELECT, INSERT",
    "actor": "SELECT, INSERT, UPDATE",
    "actor_role": "SELECT, INSERT, DELETE",
    "participant": "SELECT, INSERT, UPDATE",
    "consultation": "SELECT, INSERT, UPDATE",
    "consultation_round": "SELECT, INSERT, UPDATE",
    "opinion": "SELECT, INSERT, UPDATE",
    "opinion_entry": "SELECT, INSERT",
    "reminder": "SELECT, INSERT, UPDATE",
    "delivery": "SELECT, INSERT, UPDATE",
    "delivery_attempt": "SELECT",
    "staff_credential": "SELECT, INSERT, UPDATE",
    "access_token": "SELECT, INSERT, UPDATE",
    "signin_throttle": "SELECT, INSERT, UPDATE, DELETE",
    "account_chain": "SELECT, UPDATE",
    **dict.fromkeys(APPEND_ONLY, "SELECT, INSERT"),
}
WORKER = {
    "alembic_version": "SELECT",
    "workflow": "SELECT",
    "actor": "SELECT",
    "actor_role": "SELECT",
    "participant": "SELECT",
    "consultation_round": "SELECT",
    "opinion": "SELECT",
    "reminder": "SELECT, UPDATE (status, closed_at, cancel_reason)",
    "delivery": "SELECT, INSERT, UPDATE",
    "delivery_attempt": "INSERT",
}
READER: tuple[str, ...] = (
    "consultation",
    "consultation_round",
    "workflow",
    "opinion_entry",
    "audit_event",
    "signed_head",
)
READER += ("reminder", "personal_data_access", "personal_data_access_item", "actor_role", "alembic_version")
# Columns the reader may not see: personal data, or hashes of it a guess could be checked against.
READER_HIDDEN = {
    "participant": ("name", "contact", "match_key"),
    "opinion": ("intake_key",),
    "actor": ("contact", "login"),
}

# What 0005, 0006 and 0011 granted the four groups, for the downgrade.
TABLES_AT_0005 = (
    "actor",
    "workflow",
    "actor_role",
    "consultation",
    "participant",
    "consultation_round",
    "opinion",
    "audit_event",
    "opinion_entry",
    "reminder",
    "delivery",
    "delivery_attempt",
    "personal_data_access",
    "personal_data_access_item",
    "alembic_version",
)
PARTICIPANT_OPEN_0005 = "id, name, village, lang, created_at, created_by_id, erased_at"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _schema() -> str:
    return str(op.get_bind().execute(sa.text("SELECT current_schema()")).scalar_one())


def _existing(roles: Sequence[str]) -> list[str]:
    rows = op.get_bind().execute(sa.text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"), {"r": list(roles)})
    found = set(rows.scalars())
    return [r for r in roles if r in found]


def _create_roles(names: Sequence[str]) -> None:
    there = _existing(names)
    missing = [n for n in names if n not in there]
    if not missing:
        return
    me, may = (
        op.get_bind()
        .execute(sa.text("SELECT current_user, rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user"))
        .one()
    )
    if not may:
        msg = (
            f"migration 0013 creates this database's roles ({', '.join(missing)}), and login {me!r} may not "
            "create roles: a superuser must run 'ALTER ROLE … CREATEROLE' for the owner (or create the roles "
            "NOLOGIN), then run 'consultflow db upgrade' again; nothing was changed"
        )
        raise PermissionDeniedError(msg)
    for name in missing:
        op.execute(f"CREATE ROLE {_ident(name)} NOLOGIN")


def _columns_except(table: str, hidden: Sequence[str]) -> str:
    columns = [c["name"] for c in sa.inspect(op.get_bind()).get_columns(table) if c["name"] not in hidden]
    return ", ".join(_ident(c) for c in columns)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    roles = current_roles(op.get_bind())
    _create_roles(list(roles.values()))
    schema = _ident(_schema())
    server, worker, reader = (_ident(roles[k]) for k in ("server", "worker", "reader"))
    old = _existing(OLD_GROUPS)
    if old:  # the per-person logins' groups: their write grants go, and their reads of tables with them
        groups = ", ".join(_ident(g) for g in old)
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {groups}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {groups}")
        # USAGE on the schema stays: their logins are told "permission denied for table …", not "no such table".
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {server}, {worker}, {reader}")
    for table, privileges in SERVER.items():
        op.execute(f"GRANT {privileges} ON {table} TO {server}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {server}")
    for table, privileges in WORKER.items():
        op.execute(f"GRANT {privileges} ON {table} TO {worker}")
    sequence = op.get_bind().execute(sa.text("SELECT pg_get_serial_sequence('delivery', 'id')")).scalar_one()
    if sequence is not None:
        op.execute(f"GRANT USAGE ON SEQUENCE {sequence} TO {worker}")
    op.execute(f"GRANT SELECT ON {', '.join(READER)} TO {reader}")
    for table, hidden in READER_HIDDEN.items():
        op.execute(f"GRANT SELECT ({_columns_except(table, hidden)}) ON {table} TO {reader}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = _ident(_schema())
    new = ", ".join(_ident(r) for r in _existing(list(current_roles(op.get_bind()).values())))
    if new:
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {new}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {new}")
        op.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {new}")
    if len(_existing(OLD_GROUPS)) < len(OLD_GROUPS):  # someone dropped them: nothing to restore to
        return
    everyone = ", ".join(OLD_GROUPS)
    writers = "consultflow_coordinator, consultflow_staff, consultflow_worker"
    old_tables = ", ".join(TABLES_AT_0005)
    sequences = [
        s
        for s in (
            op.get_bind().execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": t}).scalar_one()
            for t in TABLES_AT_0005
            if t not in ("actor_role", "personal_data_access_item", "alembic_version", "delivery_attempt")
        )
        if s is not None
    ]
    # 0005
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {everyone}")
    op.execute(f"GRANT SELECT ON {old_tables} TO {everyone}")
    if sequences:
        op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(sequences)} TO {writers}")
    op.execute(f"GRANT INSERT, UPDATE ON {old_tables} TO {writers}")
    op.execute(f"REVOKE INSERT, UPDATE ON alembic_version FROM {writers}")
    op.execute(f"REVOKE UPDATE ON audit_event, personal_data_access, personal_data_access_item FROM {writers}")
    op.execute("REVOKE SELECT ON participant FROM consultflow_staff, consultflow_auditor")
    op.execute(f"GRANT SELECT ({PARTICIPANT_OPEN_0005}) ON participant TO consultflow_staff, consultflow_auditor")
    op.execute("REVOKE UPDATE ON participant FROM consultflow_staff")
    # 0006
    op.execute("GRANT SELECT (match_key) ON participant TO consultflow_staff, consultflow_auditor")
    # 0011
    op.execute(f"GRANT SELECT ON account_event, account_chain TO {everyone}")
    op.execute("GRANT INSERT ON account_event TO consultflow_coordinator")
    op.execute("GRANT UPDATE ON account_chain TO consultflow_coordinator")
