"""`db upgrade` on a PostgreSQL database a server is writing to: lock waits are bounded and retried."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from consultflow.cli.main import main
from consultflow.domain.errors import INTERNAL_ERROR_EXIT_CODE
from consultflow.store import migrate
from consultflow.store.engine import make_engine


@pytest.fixture(name="at_0016")
def _at_0016(db_url: str) -> Iterator[Engine]:
    """A PostgreSQL schema at revision 0016, the one before migration 0017 alters `consultation`."""
    if not db_url.startswith("postgresql"):
        pytest.skip("table locks and lock_timeout are PostgreSQL's; SQLite's upgrade takes the whole file")
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0016")
    yield engine
    engine.dispose()


def test_an_upgrade_that_waits_too_long_for_a_table_lock_starts_again_and_succeeds(
    at_0016: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer holding `consultation` past the lock timeout makes the first attempt give up, not stall the server."""
    engine = at_0016
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT", "200ms")
    attempts: list[str] = []

    # every attempt is a transaction of its own: count them (the writer's below is one more)
    event.listen(engine, "begin", lambda _conn: attempts.append("begin"))

    holding, release = threading.Event(), threading.Event()

    def writer() -> None:  # a server's transaction in the middle of a submission
        with engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE consultation IN ROW EXCLUSIVE MODE"))
            holding.set()
            release.wait(10)

    blocker = threading.Thread(target=writer)
    blocker.start()
    holding.wait(10)
    timer = threading.Timer(0.6, release.set)  # the writer commits after the first attempts gave up
    timer.start()
    try:
        migrate.upgrade(engine)
    finally:
        release.set()
        blocker.join(10)
        timer.cancel()
    upgrade_attempts = len(attempts) - 1  # the writer's own transaction began once
    assert upgrade_attempts >= 2, "the first attempt gave up on the lock and the upgrade began again"
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        columns = conn.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = 'consultation'")
        ).scalars()
        assert "programme_id" in set(columns)


def test_a_lock_never_had_ends_the_upgrade_with_the_database_as_it_was(
    at_0016: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the last attempt the lock error is reported (one line, by the CLI) and no migration is half applied."""
    engine = at_0016
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT", "100ms")
    monkeypatch.setattr(migrate, "UPGRADE_ATTEMPTS", 2)
    with engine.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE consultation IN ROW EXCLUSIVE MODE"))
        with pytest.raises(DBAPIError) as refused:
            migrate.upgrade(engine)
        said = CliRunner().invoke(main, ["--db", engine.url.render_as_string(hide_password=False), "db", "upgrade"])
    assert getattr(refused.value.orig, "sqlstate", None) == "55P03"
    assert said.exit_code not in (0, INTERNAL_ERROR_EXIT_CODE), said.output
    assert said.stderr.count("\n") == 1, said.stderr
    assert "a lock another transaction holds" in said.stderr
    assert "internal error" not in said.stderr
    assert migrate.current_revision(engine) == "0016"
