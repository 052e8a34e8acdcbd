"""Backups that restore, on SQLite and PostgreSQL: taken while writers commit, verified, restored, refused.

A backup taken while real writer processes keep committing holds every opinion committed before
it started and none that was never committed; restored, it verifies. A backup of a tampered
database fails verification and is kept as FILE.failed; a restore into a database that is not
empty, a truncated file, or the other backend's file is one clear line and writes nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from consultflow.cli.main import main
from consultflow.domain.errors import ConfigurationError, ValidationError
from consultflow.services import backup as backup_service
from consultflow.services import opinions
from consultflow.services.context import ServiceContext
from consultflow.store import migrate
from consultflow.store.backup import SqlBackups
from consultflow.store.database import SqlDatabase
from consultflow.store.engine import make_engine, normalize_url
from consultflow.store.roles import role_names
from tests.conftest import PG_ENV, WORKFLOWS
from tests.helpers import EXPERT, Setup, seed, submit

pytestmark = pytest.mark.slow
WRITERS = 2


def _context(url: str) -> ServiceContext:
    return ServiceContext(database=SqlDatabase.from_url(url), workflows_dir=WORKFLOWS)


def _writer(url: str, setup: tuple[int, int], log: str, stop: str) -> None:
    """Submit opinions until told to stop; after each commit, append its id to `log`."""
    ctx = _context(url)
    n = 0
    with Path(log).open("a", encoding="utf-8") as out:
        while not Path(stop).exists():
            n += 1
            view = opinions.submit_opinion(
                ctx,
                acting=EXPERT,
                consultation_id=setup[0],
                participant_id=setup[1],
                category="environment_roads",
                channel="villagers_assembly",
                text=f"写入者 {os.getpid()} 的第 {n} 条意见",
            )
            out.write(f"{view.id}\n")
            out.flush()
    ctx.database.dispose()


def _committed(logs: list[Path]) -> set[int]:
    found: set[int] = set()
    for log in logs:
        if log.exists():
            found.update(int(line) for line in log.read_text(encoding="utf-8").split("\n")[:-1])  # whole lines only
    return found


@pytest.fixture(name="restore_url")
def _restore_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database to restore into: a new SQLite file, or a new PostgreSQL database."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.sqlite'}"
        return
    base = os.environ[PG_ENV]
    name = f"cf_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for role in role_names(name, "public").values():
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def _opinion_ids(url: str) -> set[int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT id FROM opinion")).scalars())
    finally:
        engine.dispose()


def _counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return (
                conn.execute(text("SELECT count(*) FROM opinion")).scalar_one(),
                conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one(),
            )
    finally:
        engine.dispose()


@pytest.fixture(name="live")
def _live(db_url: str) -> Iterator[tuple[ServiceContext, Setup]]:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    ctx = _context(db_url)
    setup = seed(ctx)
    for n in range(5):
        submit(ctx, setup, text=f"建议硬化第 {n} 组道路")
    yield ctx, setup
    ctx.database.dispose()


def test_a_backup_taken_while_writers_commit_restores_what_was_committed(
    live: tuple[ServiceContext, Setup], db_url: str, restore_url: str, tmp_path: Path
) -> None:
    """A backup taken while writers commit restores each opinion committed before it began, none never committed."""
    ctx, setup = live
    logs = [tmp_path / f"writer-{n}.log" for n in range(WRITERS)]
    stop = tmp_path / "stop"
    spawn = multiprocessing.get_context("spawn")
    writers = [
        spawn.Process(target=_writer, args=(db_url, (setup.consultation_id, setup.participant_id), str(log), str(stop)))
        for log in logs
    ]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 60
    while len(_committed(logs)) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = _committed(logs) | {1, 2, 3, 4, 5}
    path = tmp_path / "backup.db"
    report = backup_service.backup(ctx, SqlBackups(db_url), path, force=False)
    at_backup = len(_committed(logs))
    deadline = time.monotonic() + 60
    while len(_committed(logs)) <= at_backup and time.monotonic() < deadline:
        time.sleep(0.05)  # the writers go on committing after the backup
    stop.touch()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    committed = _committed(logs) | {1, 2, 3, 4, 5}
    assert report.verified.intact, report.verified
    assert report.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(committed) > len(before)

    target = _context(restore_url)
    restored = backup_service.restore(target, SqlBackups(restore_url), path, force=False)
    target.database.dispose()
    assert restored.verified.intact, restored.verified
    assert [r.consultation_id for r in restored.verified.reports] == [setup.consultation_id]
    held = _opinion_ids(restore_url)
    assert before <= held  # every opinion committed before the backup started
    assert held <= committed  # and none that was never committed
    assert not list(tmp_path.glob(".backup.db.partial-*"))


def test_a_backup_of_a_tampered_database_fails_and_is_kept_as_failed(
    live: tuple[ServiceContext, Setup], db_url: str, tmp_path: Path
) -> None:
    """A backup of a tampered database fails, naming the opinion, and is kept only as a private FILE.failed."""
    ctx, _setup = live
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE opinion SET state = 'adopted' WHERE id = 2"))
    engine.dispose()
    result = CliRunner().invoke(main, ["--db", db_url, "db", "backup", str(tmp_path / "b.db")])
    assert result.exit_code == 4, result.output
    assert "TAMPERED" in result.output
    assert "opinion 2" in result.output
    assert not (tmp_path / "b.db").exists()
    failed = tmp_path / "b.db.failed"
    assert stat.S_IMODE(failed.stat().st_mode) == 0o600
    ctx.database.dispose()


def test_a_tampered_sqlite_backup_fails_when_restored(sqlite_url: str, tmp_path: Path) -> None:
    """A backup file edited after it was taken fails verification when it is restored."""
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    ctx = _context(sqlite_url)
    submit(ctx, seed(ctx))
    path = tmp_path / "b.sqlite"
    assert backup_service.backup(ctx, SqlBackups(sqlite_url), path, force=False).verified.intact
    conn = sqlite3.connect(path)
    conn.execute("UPDATE opinion SET text = '改过的意见' WHERE id = 1")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "r.sqlite"), "db", "restore", str(path)])
    assert result.exit_code == 4, result.output
    assert "TAMPERED" in result.output
    ctx.database.dispose()


def test_restore_into_a_database_that_is_not_empty_is_refused_and_writes_nothing(
    live: tuple[ServiceContext, Setup], db_url: str, tmp_path: Path
) -> None:
    """A restore into a non-empty database is refused in one line and writes nothing; so is a backup onto a file."""
    ctx, setup = live
    path = tmp_path / "b.db"
    assert backup_service.backup(ctx, SqlBackups(db_url), path, force=False).verified.intact
    submit(ctx, setup, text="备份之后的意见")
    counts = _counts(db_url)
    result = CliRunner().invoke(main, ["--db", db_url, "db", "restore", str(path)])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1
    assert "is not empty" in result.output
    assert "give --force" in result.output
    assert _counts(db_url) == counts
    with pytest.raises(ValidationError, match="exists; give --force"):
        backup_service.backup(ctx, SqlBackups(db_url), path, force=False)


def test_a_truncated_backup_is_one_clear_line_and_nothing_is_written(
    live: tuple[ServiceContext, Setup], db_url: str, restore_url: str, tmp_path: Path
) -> None:
    """A truncated backup, or a file that is none, is refused in one clear line and nothing is restored."""
    ctx, _setup = live
    path = tmp_path / "b.db"
    assert backup_service.backup(ctx, SqlBackups(db_url), path, force=False).verified.intact
    truncated = tmp_path / "truncated.db"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    result = CliRunner().invoke(main, ["--db", restore_url, "db", "restore", str(truncated)])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1
    assert "damaged or truncated" in result.output
    if restore_url.startswith("sqlite"):
        assert not (tmp_path / "restored.sqlite").exists()
    else:
        engine = make_engine(restore_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'cf_%'")).scalar_one() == 0
        engine.dispose()
    not_one = tmp_path / "notes.txt"
    not_one.write_text("这不是备份", encoding="utf-8")
    result = CliRunner().invoke(main, ["--db", restore_url, "db", "restore", str(not_one)])
    assert result.exit_code == 1
    assert "not a consultflow backup" in result.output


@pytest.mark.postgres
def test_a_sqlite_backup_given_to_postgresql_and_missing_tools_are_one_line(
    restore_url: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses a SQLite backup, saying so; without pg_dump a backup says so and writes nothing."""
    if restore_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only")
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    path = tmp_path / "s.sqlite"
    result = CliRunner().invoke(main, ["--db", sqlite_url, "db", "backup", str(path)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["--db", restore_url, "db", "restore", str(path)])
    assert result.exit_code == 1
    assert "is a SQLite backup; this database is PostgreSQL" in result.output
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="pg_dump is not installed"):
        backup_service.backup(_context(restore_url), SqlBackups(restore_url), tmp_path / "p.db", force=False)
    assert not list(tmp_path.glob("*p.db*"))
