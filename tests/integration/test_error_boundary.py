"""One error boundary: driver errors in words, conflicts retried then named, bugs as one line and exit 70."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from consultflow.cli.main import main
from consultflow.domain.errors import AppendOnlyError, ConflictError, RetryableConflictError, ValidationError
from consultflow.domain.roles import Action
from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinions, pipeline
from consultflow.services.context import ServiceContext
from tests.conftest import Cli, engine_of, sql_uow
from tests.helpers import COORD, EXPERT, seed, submit


def test_the_audit_table_refuses_changes_in_words(ctx: ServiceContext) -> None:
    """An UPDATE or DELETE of audit events, even through the store, says the log is append-only."""
    setup = seed(ctx)
    submit(ctx, setup)
    for statement in ("UPDATE audit_event SET actor = 'x'", "DELETE FROM audit_event"):
        with pytest.raises(AppendOnlyError, match="append-only"), sql_uow(ctx) as uow:
            uow.session.execute(text(statement))
    with sql_uow(ctx) as uow:
        assert uow.session.scalar(text("SELECT count(*) FROM audit_event WHERE actor = 'x'")) == 0


def test_a_unique_violation_is_named_in_words(ctx: ServiceContext) -> None:
    """A duplicate name that slips past the service's own check is reported as what it means."""
    seed(ctx)
    with pytest.raises(ValidationError, match="an actor with that name is already registered"), sql_uow(ctx) as uow:
        uow.session.execute(
            text("INSERT INTO actor (name, lang, created_at) VALUES (:n, 'zh', '2026-01-01 00:00:00')"), {"n": COORD}
        )


def test_conflicts_are_retried_then_named(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """A use case that collides is run again from the start; one that keeps colliding writes nothing."""
    setup = seed(ctx)
    monkeypatch.setattr(pipeline, "_BACKOFF_BASE_S", 0.0)
    tries: list[int] = []

    def flaky(change: pipeline.Change) -> int:
        tries.append(1)
        change.consultation(setup.consultation_id).auto_close = True
        if len(tries) < 3:
            raise RetryableConflictError("a deadlock with another transaction")
        return len(tries)

    assert pipeline.run(ctx, acting=COORD, action=Action.CREATE_CONSULTATION, event="t", body=flaky) == 3
    assert consultations.show_consultation(ctx, setup.consultation_id).auto_close

    def always(change: pipeline.Change) -> None:
        change.consultation(setup.consultation_id).auto_close = False
        raise RetryableConflictError("a deadlock with another transaction")

    with pytest.raises(ConflictError, match="nothing was written after 5 tries") as caught:
        pipeline.run(ctx, acting=COORD, action=Action.CREATE_CONSULTATION, event="t", body=always)
    assert caught.value.exit_code == 75
    assert consultations.show_consultation(ctx, setup.consultation_id).auto_close


def test_locks_go_consultations_first(ctx: ServiceContext) -> None:
    """Asking for a consultation lock after opinion locks is refused as a bug, before any deadlock can happen."""
    setup = seed(ctx)
    opinion_id = submit(ctx, setup)
    other = consultations.create_consultation(ctx, acting=COORD, title="另一个", area="片区二")

    def wrong_order(change: pipeline.Change) -> None:
        change.opinions([opinion_id])
        change.consultation(other.id)

    with pytest.raises(pipeline.LockOrderError):
        pipeline.run(ctx, acting=EXPERT, action=None, event="t", body=wrong_order)


def test_no_unit_of_work_inside_another(sqlite_ctx: ServiceContext) -> None:
    """Opening a second transaction inside the first is refused at once (on SQLite it would wait for itself)."""
    with sqlite_ctx.uow(), pytest.raises(RuntimeError, match="already open"), sqlite_ctx.uow():
        pass


def test_create_with_an_unknown_workflow_is_quick_and_clear(cli: Cli) -> None:
    """An unknown or invalid workflow name is one line at once, not a wait for a lock."""
    cli.ok("actor", "add", COORD, "--role", "coordinator")
    started = time.monotonic()
    result = cli("consultation", "create", "标题", "--area", "片区", "--workflow", "nope", actor=COORD)
    assert result.exit_code == 1
    assert "unknown workflow 'nope'; known: consultation-loop" in result.stderr
    assert time.monotonic() - started < 5  # the old nested transaction waited ~11 s for its own lock


def test_an_internal_error_is_one_line_and_exit_70(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bug is one line naming its kind and where the traceback went; the traceback is in that file only."""
    log = tmp_path / "errors.log"
    monkeypatch.setenv("CONSULTFLOW_ERROR_LOG", str(log))

    def broken(*_args: object, **_kwargs: object) -> None:
        msg = "bug with 13812345678 inside"
        raise RuntimeError(msg)

    monkeypatch.setattr(consultations, "list_consultations", broken)
    result = cli.runner.invoke(main, ["--db", cli.url, "consultation", "list"], catch_exceptions=False)
    assert result.exit_code == 70
    assert result.stderr.strip().splitlines() == [
        f"Error: internal error (RuntimeError); details are in {log}; please report it"
    ]
    written = log.read_text(encoding="utf-8")
    assert "Traceback" in written and "RuntimeError" in written
    assert "13812345678" not in written  # contacts are masked even in tracebacks
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # readable by its owner alone


def test_out_of_range_numbers_are_usage_errors_in_every_command(cli: Cli) -> None:
    """An id no database column can hold, or zero, is one usage line (exit 2), never an internal error."""
    cli.ok("actor", "add", COORD, "--role", "coordinator")
    huge = "99999999999999999999"
    commands = [
        ("opinion", "fire", huge, "screen"),
        ("opinion", "show", huge),
        ("opinion", "assign", huge, "--to", COORD),
        ("opinion", "list", "--consultation", huge),
        ("opinion", "submit", "--consultation", "1", "--participant", huge, "--category", "x", "--channel", "y"),
        ("round", "open", huge),
        ("round", "close", "0"),
        ("consultation", "show", huge),
        ("audit", "history", huge),
        ("audit", "verify", huge),
        ("report", "adoption", huge),
        ("reminders", "show", huge),
        ("reminders", "cancel", huge),
    ]
    for args in commands:
        result = cli(*args, actor=COORD)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output, args


def test_a_merge_target_out_of_range_is_refused_in_words(ctx: ServiceContext) -> None:
    """`--into` with a number no opinion can have names the allowed range."""
    setup = seed(ctx)
    opinion_id = submit(ctx, setup)
    with pytest.raises(ValidationError, match="a number from 1 to 2147483647"):
        opinions.fire(ctx, acting=COORD, opinion_id=opinion_id, trigger="merge", fields={Field.MERGE_TARGET: 2**40})


def test_the_store_names_a_number_too_large_for_the_database(ctx: ServiceContext) -> None:
    """Should a huge number slip past the edge, both backends answer in words, not with a driver error."""
    with pytest.raises(ValidationError, match="larger than the database can hold"), sql_uow(ctx) as uow:
        uow.opinions.get(2**40 if engine_of(ctx).dialect.name == "postgresql" else 2**70)
