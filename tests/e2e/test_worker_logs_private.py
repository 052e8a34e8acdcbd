"""The worker's log never holds a villager's name, phone or e-mail, nor what a database error quoted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from consultflow.store.models import Delivery
from tests.conftest import ROOT, Cli, sql_uow
from tests.e2e.test_worker import delivery_counts, prepare, wait_for

pytestmark = pytest.mark.slow


def test_a_worker_delivering_to_villagers_logs_neither_their_names_nor_their_contacts(
    db_url: str, tmp_path: Path
) -> None:
    """A real worker process, every log line it writes (-v, JSON), a villager reached through the log channel."""
    ctx = prepare(db_url, opinions_count=2)
    log = tmp_path / "worker.log"
    env = {**os.environ, "CONSULTFLOW_DB": db_url, "CONSULTFLOW_ERROR_LOG": str(tmp_path / "errors.log")}
    args = [
        sys.executable, "-m", "consultflow", "-v", "--log-json", "worker", "--interval", "0.3",
        "--digest-cron", "off", "--channels", "log",
    ]  # fmt: skip
    with log.open("ab") as sink:
        worker = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        wait_for(lambda: delivery_counts(ctx) and set(delivery_counts(ctx)) == {"sent"})
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    with sql_uow(ctx) as uow:
        to_villagers = list(uow.session.scalars(select(Delivery).where(Delivery.recipient_kind == "participant")))
    ctx.database.dispose()
    assert to_villagers and {d.recipient_name for d in to_villagers} == {"张秀英"}  # the villager was reminded
    text = log.read_text(encoding="utf-8")
    assert '"event": "reminder_message"' in text and "张某某" in text  # … through the log, pseudonymised
    assert "张秀英" not in text and "秀英" not in text
    assert "13812345678" not in text and "1234" not in text
    for staff_contact in ("liu@plan.example", "chen@county.example"):
        assert staff_contact not in text
    assert not (tmp_path / "errors.log").exists()


def test_a_database_error_in_the_error_log_quotes_no_value(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal error from the database keeps its kind and statement, never the values it was given."""
    from sqlalchemy.exc import IntegrityError

    from consultflow.cli.main import main
    from consultflow.services import consultations

    log = tmp_path / "errors.log"
    log.write_text("", encoding="utf-8")
    log.chmod(0o644)
    monkeypatch.setenv("CONSULTFLOW_ERROR_LOG", str(log))

    name = "".join(reversed(["秀英", "欧阳"]))  # not written whole here: a traceback quotes this line
    values = (name, "青龙村")

    def broken(*_args: object, **_kwargs: object) -> None:
        orig = Exception(f"duplicate key value\nDETAIL:  Key (name, village)=({name}, 青龙村) already exists.")
        raise IntegrityError("INSERT INTO participant (name, village) VALUES (?, ?)", values, orig)

    monkeypatch.setattr(consultations, "list_consultations", broken)
    result = cli.runner.invoke(main, ["--db", cli.url, "-v", "consultation", "list"], catch_exceptions=False)
    assert result.exit_code == 70
    written = log.read_text(encoding="utf-8")
    assert "IntegrityError" in written and "INSERT INTO participant" in written
    assert name not in written and name not in result.stderr
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)  # made private though it was there, readable, before
