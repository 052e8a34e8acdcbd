"""Reading commands run on a unit that only reads: no write lock on SQLite, READ ONLY on PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from consultflow.services import commands
from consultflow.services.context import ServiceContext
from tests.conftest import sql_uow
from tests.helpers import COORD, seed, submit


def test_a_reading_command_does_not_wait_for_a_writer_on_sqlite(sqlite_ctx: ServiceContext, sqlite_url: str) -> None:
    """While another connection holds SQLite's write lock, every reading command still answers (a writer would fail)."""
    setup = seed(sqlite_ctx)
    submit(sqlite_ctx, setup)
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    writer = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")
    try:
        for name, given in (
            ("consultation.list", commands.Nothing()),
            ("consultation.show", commands.OfConsultation(setup.consultation_id)),
            ("round.status", commands.OfConsultation(setup.consultation_id)),
            ("opinion.show", commands.OfOpinion(1)),
            ("audit.history", commands.OfOpinion(1)),
            ("audit.verify", commands.Verify(setup.consultation_id)),
        ):
            assert commands.lookup(name).run(sqlite_ctx, None, given) is not None, name
        listed = commands.lookup("opinion.list").run_streamed(sqlite_ctx, None, commands.ListOpinions(), list)
        assert [v.id for v in listed] == [1]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.postgres
def test_a_reading_units_writes_are_refused_by_postgresql(pg_ctx: ServiceContext) -> None:
    """On PostgreSQL the reading unit is READ ONLY: a stray write inside a read is refused by the database."""
    ctx = pg_ctx
    seed(ctx)
    reading = ctx.for_reading()
    uow = sql_uow(reading)
    with uow, pytest.raises(DBAPIError, match="read-only transaction"):
        uow.session.execute(text("UPDATE consultation SET title = 'x'"))
    with sql_uow(ctx) as writer:
        assert writer.session.execute(text("SELECT title FROM consultation")).scalar() != "x"


def test_a_read_of_personal_data_is_still_put_on_record(ctx: ServiceContext) -> None:
    """A reading command that shows full names writes its access record through the pipeline's writing unit."""
    seed(ctx)
    from consultflow.services import personal_data

    before = len(personal_data.access_records(ctx))
    chunks = commands.lookup("report.render").run_streamed(
        ctx,
        COORD,
        commands.registry()["report.render"].input(1, "account", "json", names="full", purpose="回访"),
        list,
    )
    assert chunks
    assert len(personal_data.access_records(ctx)) == before + 1
