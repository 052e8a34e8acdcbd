"""Alembic revisions, numbered 0001, 0002, … without gaps (`services.schema` relies on it).

Writing a migration: expand, then contract. `consultflow db upgrade` runs while the previous
release's servers serve (docs/operators/upgrading.md), so a migration may only add what that release
ignores: tables, nullable columns (or NOT NULL with a server default), indexes, constraints on new
tables, grants. It must not drop, rename or retype a table or column, drop an index or
constraint, revoke a grant, or change what a stored value means: the previous release still
reads and writes them until its servers are rolled. Those are a contract step, shipped a release
after the expand step that made them unused, and declared at the top of the migration as
`CONTRACT = "why, and what must be stopped first"`: operators stop the previous release's servers
before running it.

Locks. The whole upgrade is one transaction, so what a step locks stays locked until the last
step commits. Rewriting existing rows (a backfill) holds every row it touches; an index or a
foreign key on an existing large table (opinion, opinion_entry, audit_event, participant,
reminder, delivery…) blocks writes to it while it builds (on PostgreSQL CREATE INDEX
CONCURRENTLY inside `op.get_context().autocommit_block()` would not, but `store.migrate.upgrade`
runs every step in one transaction and does not support it yet). Such a step declares
`LOCKS = "what waits, and for about how long"`, and the release notes say so; adding a column
takes a short exclusive lock only (PostgreSQL 11+ adds a nullable column, or one with a constant
default, without rewriting the table).

`tests/unit/test_migration_rules.py` reads every migration's `upgrade()` and fails on an
operation of either kind that its module does not declare.
"""
