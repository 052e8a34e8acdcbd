"""A process refuses to start on a schema it does not know, in one line with exit 78 (docs/operators/upgrading.md).

Older (not upgraded yet): run `db upgrade`. Newer (a later release migrated it): run that release.
A server already running keeps serving a database one expand-only step ahead, and its worker
processes (restarted by uvicorn) start on it too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from consultflow.bootstrap import build_context
from consultflow.cli.main import main
from consultflow.config import Settings
from consultflow.services.schema import SCHEMA_MISMATCH_EXIT_CODE, SchemaMismatchError
from consultflow.store import migrate
from consultflow.store.engine import make_engine
from tests.conftest import migrated
from tests.web.portal import Consultflow, served
from tests.web.test_browser import COORD

pytestmark = pytest.mark.slow

HEAD = migrate.head_revision() or ""
NEXT = f"{int(HEAD) + 1:04d}"


def later_release_expands(db_url: str) -> None:
    """What a later release's expand-only migration does: a nullable column, a table, its revision."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE opinion ADD COLUMN later_note VARCHAR(40)"))
        conn.execute(text("CREATE TABLE later_thing (id INTEGER PRIMARY KEY)"))
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": NEXT})
    engine.dispose()


def here(run: Consultflow, *args: str, actor: str | None = None) -> str:
    """A command run in this process on the same database and settings: to prepare what a real process meets."""
    env = {name: run.env[name] for name in ("CONSULTFLOW_DB", "CONSULTFLOW_WORKFLOWS")}
    result = CliRunner(env={**env, "CONSULTFLOW_ACTOR": actor}).invoke(main, ["-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.stdout


def start(run: Consultflow, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consultflow", *args],
        env={**run.env, "CONSULTFLOW_WEB_SECRET": "s" * 40},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_side_by_side(run: Consultflow, commands: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Each command a process of its own, all started at once (they only read the schema); results in order."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: start(run, *args), commands))


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == SCHEMA_MISMATCH_EXIT_CODE, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_server_and_worker_refuse_an_older_schema(db_url: str) -> None:
    """The server, worker and commands refuse a database not yet upgraded, in one line saying to run db upgrade."""
    run = Consultflow(db_url)
    migrated(db_url)
    engine = make_engine(db_url)
    previous = f"{int(HEAD) - 1:04d}"
    migrate.downgrade(engine, previous)
    engine.dispose()
    for refused in start_side_by_side(run, (("serve", "--port", "1"), ("worker",), ("opinion", "list"))):
        line = one_line(refused)
        assert f"is at schema {previous}, older than this consultflow's {HEAD}" in line
        assert "run 'consultflow db upgrade'" in line
    assert "(was" in here(run, "db", "upgrade")  # what the line says to do, done


def test_server_worker_and_upgrade_refuse_a_newer_schema(db_url: str) -> None:
    """The server, worker and db upgrade refuse a database a later release migrated, in one line saying to run it."""
    run = Consultflow(db_url)
    migrated(db_url)
    later_release_expands(db_url)
    *refused, as_json = start_side_by_side(
        run, (("serve", "--port", "1"), ("worker",), ("db", "upgrade"), ("--json", "worker"))
    )
    for proc in refused:
        line = one_line(proc)
        assert f"is at schema {NEXT}, newer than this consultflow's {HEAD}" in line
        assert "run that release's consultflow" in line
    assert json.loads(as_json.stderr)["exit_code"] == SCHEMA_MISMATCH_EXIT_CODE


def test_a_running_server_serves_on_after_an_expand_only_step(db_url: str, tmp_path: Path) -> None:
    """Rolling upgrade: the database moves one expand-only step ahead under a server that is running."""
    import httpx2 as httpx

    run = Consultflow(db_url)
    migrated(db_url)
    here(run, "actor", "add", COORD, "--role", "coordinator")  # the data, made in this process; the server is real
    here(run, "consultation", "create", "滚动升级", "--area", "测试片区", actor=COORD)
    here(run, "round", "open", "1", actor=COORD)
    with served(run, tmp_path) as base, httpx.Client(base_url=base, timeout=60) as web:
        body = {"category": "industry", "text": "升级之前", "village": "青龙村"}
        assert web.post("/api/v1/consultations/1/opinions", json=body).status_code in (200, 201)
        later_release_expands(db_url)
        body = {"category": "industry", "text": "升级之后", "village": "青龙村"}
        answer = web.post("/api/v1/consultations/1/opinions", json=body)
        assert answer.status_code in (200, 201), answer.text
    assert "Traceback" not in (tmp_path / "web.log").read_text(encoding="utf-8")

    # A worker process of that server, started (or restarted by uvicorn) now, starts too; nothing else does.
    settings = Settings(db_url=db_url)
    ctx = build_context(settings, acting_proven=True)
    ctx.database.dispose()
    with pytest.raises(SchemaMismatchError, match=f"newer than this consultflow's {HEAD}"):
        build_context(settings)
