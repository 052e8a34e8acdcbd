"""Shared fixtures: fresh migrated databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text

from consultflow.cli.main import main
from consultflow.domain import accounts as account_rules
from consultflow.domain.clock import FixedClock
from consultflow.services.context import ServiceContext
from consultflow.store import migrate
from consultflow.store.database import SqlDatabase
from consultflow.store.engine import make_engine, normalize_url
from consultflow.store.roles import role_names
from consultflow.store.uow import UnitOfWork

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
PG_ENV = "CONSULTFLOW_TEST_PG"
START = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)

if os.environ.get("CI"):
    # Hypothesis's CI profile: the same examples on every run (derandomised, no example database, no
    # deadline), so a red CI is a bug to read from the log, not a lucky draw; on a desk it explores.
    hypothesis_settings.load_profile("ci")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the longest tests first (marked `long`), keeping the order otherwise.

    pytest-xdist hands each worker a block of the collection and lets an idle worker take from
    another's queue; a test of two minutes started last would run alone while the other core idles.
    """
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def _cheap_argon2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Passwords hash at test speed in the test's own process: the same argon2id at its smallest cost.

    The shipped cost (64 MiB, four lanes) takes a quarter of a second of both cores per hash, and
    the suite signs people in hundreds of times. Servers and CLIs the tests start as processes
    hash as shipped; `@pytest.mark.argon2_as_shipped` keeps the shipped hasher here too.
    """
    if request.node.get_closest_marker("argon2_as_shipped") is None:
        monkeypatch.setattr(account_rules, "_HASHER", CHEAP_ARGON2)
    account_rules._no_account_hash.cache_clear()  # the dummy hash follows the hasher: an unknown name
    yield  # costs what a known one does
    account_rules._no_account_hash.cache_clear()


@pytest.fixture(autouse=True)
def _no_stored_sign_in(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a sign-in of the machine's user: the CLI works on the database it is given."""
    monkeypatch.setenv("CONSULTFLOW_CREDENTIALS", str(tmp_path_factory.mktemp("home") / "credentials.json"))
    for name in ("CONSULTFLOW_SERVER", "CONSULTFLOW_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (a URL such as postgresql://postgres@127.0.0.1/test)")
    schema = f"cf_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(base))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            # Migration 0013's roles for this schema (cluster-wide objects: they would outlive the schema).
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            for role in role_names(database, schema).values():
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@pytest.fixture(name="db_url", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def _db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'consultflow.sqlite'}"
    else:
        yield from _pg_schema_url()


@pytest.fixture(name="sqlite_url")
def _sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite database file (for tests that need only one backend)."""
    return f"sqlite:///{tmp_path / 'consultflow.sqlite'}"


@pytest.fixture(name="clock")
def _clock() -> FixedClock:
    """A clock that moves only when a test moves it."""
    return FixedClock(START, tick=timedelta(seconds=1))


_TEMPLATE: list[Path] = []


def _sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:///` URL that does not exist yet (or is empty), else None."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return path if not path.exists() or path.stat().st_size == 0 else None


def _migrated_template() -> Path:
    """A SQLite file migrated to head once per test process (running every migration costs about a second)."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="consultflow-template-"))
        template = folder / "head.sqlite"
        engine = make_engine(f"sqlite:///{template}")
        migrate.upgrade(engine)
        engine.dispose()  # the last connection's close folds the WAL into the file
        _TEMPLATE.append(template)
    return _TEMPLATE[0]


def migrated(url: str) -> None:
    """Bring a test's database to the schema head: a new SQLite file is a copy of one migrated once.

    The copy is the file `db upgrade` makes (tests/integration/test_store.py runs the migrations
    themselves, up, down and up, on both backends); PostgreSQL schemas are migrated each time.
    """
    target = _sqlite_file(url)
    if target is not None:
        shutil.copyfile(_migrated_template(), target)
        return
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def make_context(url: str, clock: FixedClock) -> ServiceContext:
    """A migrated database and the services over it."""
    migrated(url)
    engine = make_engine(url)
    return ServiceContext(database=SqlDatabase(engine), workflows_dir=WORKFLOWS, clock=clock)


def sql_uow(ctx: ServiceContext) -> UnitOfWork:
    """The store's own unit of work, with its session, for tests that check rows with SQL."""
    uow = ctx.uow()
    assert isinstance(uow, UnitOfWork)
    return uow


def engine_of(ctx: ServiceContext) -> Engine:
    """The SQLAlchemy engine behind a context (tests that send raw SQL need it)."""
    assert isinstance(ctx.database, SqlDatabase)
    return ctx.database.engine


@pytest.fixture(name="ctx")
def _ctx(db_url: str, clock: FixedClock) -> Iterator[ServiceContext]:
    """Services over a fresh migrated database, on both backends."""
    ctx = make_context(db_url, clock)
    yield ctx
    ctx.database.dispose()


@pytest.fixture(name="pg_ctx")
def _pg_ctx(clock: FixedClock) -> Iterator[ServiceContext]:
    """Services over a fresh migrated PostgreSQL schema, for what only PostgreSQL has (skipped without it)."""
    for url in _pg_schema_url():
        ctx = make_context(url, clock)
        yield ctx
        ctx.database.dispose()


@pytest.fixture(name="sqlite_ctx")
def _sqlite_ctx(sqlite_url: str, clock: FixedClock) -> Iterator[ServiceContext]:
    """Services over a fresh migrated SQLite database."""
    ctx = make_context(sqlite_url, clock)
    yield ctx
    ctx.database.dispose()


class Cli:
    """Runs `consultflow` in-process against one database with a controllable clock."""

    def __init__(self, url: str, clock: FixedClock) -> None:
        self.url = url
        self.clock = clock
        self.runner = CliRunner()

    def __call__(self, *args: str, actor: str | None = None) -> Result:
        head = ["--db", self.url, "--workflows", str(WORKFLOWS), "-q"]
        if actor:
            head += ["--as", actor]
        return self.runner.invoke(main, [*head, *args], obj={"clock": self.clock}, catch_exceptions=False)

    def ok(self, *args: str, actor: str | None = None) -> Result:
        """Run and insist on success."""
        result = self(*args, actor=actor)
        assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
        return result


@pytest.fixture(name="cli")
def _cli(db_url: str, clock: FixedClock) -> Cli:
    """The CLI on a fresh database (upgraded), on both backends."""
    cli = Cli(db_url, clock)
    migrated(db_url)
    return cli
