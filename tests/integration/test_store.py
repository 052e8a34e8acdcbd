"""The schema: made by migrations only, equal to the models, append-only where it must be."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from consultflow.services.context import ServiceContext
from consultflow.store import migrate
from consultflow.store.engine import make_engine
from consultflow.store.models import AuditEvent, Base, Participant
from tests.conftest import engine_of, sql_uow
from tests.helpers import seed


def test_migrations_equal_models(db_url: str) -> None:
    """After `upgrade head` autogenerate finds nothing to change: models and migrations agree."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(db_url: str) -> None:
    """Every migration can be undone and redone; the audit triggers come back with the table."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert "opinion" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_sqlite_is_set_up_for_concurrent_use(sqlite_url: str) -> None:
    """WAL, foreign keys and a busy timeout are on for every connection."""
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert (conn.execute(text("PRAGMA busy_timeout")).scalar() or 0) >= 5000
    engine.dispose()


def test_audit_table_refuses_update_and_delete(ctx: ServiceContext) -> None:
    """The database itself refuses to edit or delete audit events."""
    seed(ctx)
    for statement in ("UPDATE audit_event SET actor = 'mallory'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"), engine_of(ctx).begin() as conn:
            conn.execute(text(statement))
    with sql_uow(ctx) as uow:
        assert {e.actor for e in uow.session.scalars(select(AuditEvent))} != {"mallory"}


def test_times_come_back_in_utc_and_naive_times_are_refused(ctx: ServiceContext) -> None:
    """A local time is stored as the same instant in UTC; a naive time is an error, not a guess."""
    seed(ctx)
    shanghai = timezone(timedelta(hours=8))
    moment = datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=shanghai)
    with sql_uow(ctx) as uow:
        row = uow.session.get(Participant, 1)
        assert row is not None
        row.created_at = moment
        uow.commit()
    with sql_uow(ctx) as uow:
        row = uow.session.get(Participant, 1)
        assert row is not None
        assert row.created_at == moment
        assert row.created_at.utcoffset() == timedelta(0)
        row.created_at = datetime(2026, 5, 1, 9, 30)  # noqa: DTZ001 - the point of the test
        with pytest.raises(Exception, match="naive datetime"):
            uow.flush()


def test_chinese_text_round_trips(ctx: ServiceContext) -> None:
    """Chinese names and villages are stored and read back unchanged."""
    seed(ctx)
    with sql_uow(ctx) as uow:
        row = uow.session.get(Participant, 1)
        assert row is not None
        assert (row.name, row.village) == ("张秀英", "青龙村")
