"""A process refuses to start on a schema it does not know, in one line with exit 78 (docs/operators/upgrading.md).

Older (not upgraded yet): run `db upgrade`. Newer (a later release migrated it): run that release.
A server already running keeps serving a database one expand-only step ahead, and its worker
processes (restarted by uvicorn) start on it too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from consultflow.bootstrap import build_context
from consultflow.config import Settings
from consultflow.services.schema import SCHEMA_MISMATCH_EXIT_CODE, SchemaMismatchError
from consultflow.store import migrate
from consultflow.store.engine import make_engine
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


def start(run: Consultflow, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consultflow", *args],
        env={**run.env, "CONSULTFLOW_WEB_SECRET": "s" * 40},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == SCHEMA_MISMATCH_EXIT_CODE, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_server_and_worker_refuse_an_older_schema(db_url: str) -> None:
    """The server, worker and commands refuse a database not yet upgraded, in one line saying to run db upgrade."""
    run = Consultflow(db_url)
    run("db", "upgrade")
    engine = make_engine(db_url)
    previous = f"{int(HEAD) - 1:04d}"
    migrate.downgrade(engine, previous)
    engine.dispose()
    for args in (("serve", "--port", "1"), ("worker",), ("opinion", "list")):
        line = one_line(start(run, *args))
        assert f"is at schema {previous}, older than this consultflow's {HEAD}" in line
        assert "run 'consultflow db upgrade'" in line
    assert "(was" in run("db", "upgrade")


def test_server_worker_and_upgrade_refuse_a_newer_schema(db_url: str) -> None:
    """The server, worker and db upgrade refuse a database a later release migrated, in one line saying to run it."""
    run = Consultflow(db_url)
    run("db", "upgrade")
    later_release_expands(db_url)
    for args in (("serve", "--port", "1"), ("worker",), ("db", "upgrade")):
        line = one_line(start(run, *args))
        assert f"is at schema {NEXT}, newer than this consultflow's {HEAD}" in line
        assert "run that release's consultflow" in line
    as_json = start(run, "--json", "worker")
    assert json.loads(as_json.stderr)["exit_code"] == SCHEMA_MISMATCH_EXIT_CODE


def test_a_running_server_serves_on_after_an_expand_only_step(db_url: str, tmp_path: Path) -> None:
    """Rolling upgrade: the database moves one expand-only step ahead under a server that is running."""
    import httpx2 as httpx

    run = Consultflow(db_url)
    run("db", "upgrade")
    run("actor", "add", COORD, "--role", "coordinator")
    run("consultation", "create", "滚动升级", "--area", "测试片区", actor=COORD)
    run("round", "open", "1", actor=COORD)
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
