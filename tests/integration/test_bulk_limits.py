"""Bulk work without walls: calls touching more ids than a statement may carry, and failures at every step.

PostgreSQL refuses a statement with more than 65,535 parameters; every id list is chunked or set-based,
so calls with 70,000 ids work. And a failure at any step of `submit_many` or a round close, the
commit included, leaves nothing behind: there is no read after commit that could fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select, text

from consultflow.domain.errors import InvalidTransitionError
from consultflow.domain.vocabulary import Field
from consultflow.services import opinions, rounds, verify
from consultflow.services.context import ServiceContext
from consultflow.services.opinions import NewOpinion
from consultflow.store.models import AuditEvent, Opinion
from consultflow.store.uow import UnitOfWork
from tests.conftest import engine_of, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, assert_loop_invariants, seed, snapshot, submit

MANY = 70_000  # more than PostgreSQL's 65,535 parameters in one statement


class InjectedError(RuntimeError):
    """The failure a test plants."""


@contextmanager
def failing_at(ctx: ServiceContext, step: int) -> Iterator[list[str]]:
    """Make the `step`-th call into the store (any repository method, or the commit) raise; yields the calls seen."""
    seen: list[str] = []
    database: Any = ctx.database

    def counted(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(name)
            if len(seen) == step:
                raise InjectedError(name)
            return method(*args, **kwargs)

        return call

    class Failing(UnitOfWork):
        def __enter__(self) -> UnitOfWork:
            uow = super().__enter__()
            for repo_name in ("actors", "consultations", "opinions", "audit", "reminders", "logins", "intake"):
                repo = getattr(uow, repo_name)
                for attr in dir(type(repo)):
                    if not attr.startswith("_") and callable(getattr(repo, attr)):
                        setattr(repo, attr, counted(f"{repo_name}.{attr}", getattr(repo, attr)))
            return uow

        def commit(self) -> None:
            seen.append("commit")
            if len(seen) == step:
                raise InjectedError("commit")
            super().commit()

    database.unit_of_work = lambda: Failing(database._sessions)
    try:
        yield seen
    finally:
        del database.unit_of_work


def _state(ctx: ServiceContext) -> object:
    with engine_of(ctx).connect() as con:
        rounds_now = con.execute(text("SELECT number, status FROM consultation_round ORDER BY number")).all()
        reminders = con.execute(
            text("SELECT count(*), sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) FROM reminder")
        ).one()
    return snapshot(ctx), [tuple(r) for r in rounds_now], tuple(reminders)


def _all_or_nothing(ctx: ServiceContext, operation: Callable[[], object]) -> object:
    """Fail the operation at each of its store calls in turn, the commit included: each time nothing changes.

    Once the step is past its last call, it succeeds: so every step it takes was tried.
    """
    step = 1
    while True:
        before = _state(ctx)
        with failing_at(ctx, step) as seen:
            try:
                result = operation()
            except InjectedError:
                assert _state(ctx) == before, f"a failure at call {step} ({seen[-1]}) left something behind"
                step += 1
                continue
        assert step == len(seen) + 1 and seen[-1] == "commit"  # every call, the commit last, failed once
        return result


def test_submit_many_is_all_or_nothing_at_every_step(ctx: ServiceContext) -> None:
    """Submitting many opinions fails whole at any step, commit included; a success reports what it stored."""
    setup = seed(ctx)
    items = [NewOpinion(setup.participant_id, "industry", "villagers_assembly", f"意见{i}") for i in range(3)]
    views = _all_or_nothing(
        ctx, lambda: opinions.submit_many(ctx, acting=EXPERT, consultation_id=setup.consultation_id, items=items)
    )
    assert isinstance(views, list)
    with sql_uow(ctx) as uow:
        stored = uow.session.scalars(select(Opinion).order_by(Opinion.id)).all()
        assert [(o.id, o.text, o.state) for o in stored] == [
            (v.id, v.text, v.state) for v in views
        ]  # a truthful result


def test_round_close_is_all_or_nothing_at_every_step(ctx: ServiceContext) -> None:
    """A round close failing at any step, commit included, leaves nothing; one that succeeds keeps the chain whole."""
    setup = seed(ctx)
    answered = submit(ctx, setup)
    submit(ctx, setup)
    opinions.fire(ctx, acting=EXPERT, opinion_id=answered, trigger="screen", fields={})
    opinions.fire(ctx, acting=PLANNER, opinion_id=answered, trigger="give_feedback", fields={Field.TEXT: "已研究"})
    plan = _all_or_nothing(ctx, lambda: rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id))
    assert isinstance(plan, rounds.ClosePlan)
    with sql_uow(ctx) as uow:
        states = {int(i): str(st) for i, st in uow.session.execute(select(Opinion.id, Opinion.state))}
    assert plan.affected == len(states) and {m.to_state for m in plan.moves} == set(states.values())
    assert verify.verify_chain(ctx, setup.consultation_id).intact


@pytest.mark.slow
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_calls_with_70000_ids_work_on_postgresql(ctx: ServiceContext) -> None:
    """The 65,535-parameter wall is PostgreSQL's, so this runs there only."""
    setup = seed(ctx)
    with engine_of(ctx).begin() as con:  # the opinions themselves are laid down by hand: the calls are under test
        con.execute(
            text(
                "INSERT INTO opinion (consultation_id, workflow_id, participant_id, recorded_by_id, category, channel, "
                "text, state, state_entered_at, current_round, rounds_count, last_seq, submitted_at, version) "
                "SELECT :c, c.workflow_id, :p, 1, 'industry', 'villagers_assembly', '意见' || g, 'submitted', now(), 1, "
                "0, 1, now(), 1 FROM generate_series(1, :n) AS g, consultation c WHERE c.id = :c"
            ),
            {"c": setup.consultation_id, "p": setup.participant_id, "n": MANY},
        )
        ids = [int(i) for i in con.execute(text("SELECT id FROM opinion ORDER BY id")).scalars()]
    done = opinions.assign(ctx, acting=COORD, opinion_ids=ids, planner=PLANNER)
    assert len(done) == MANY and {a.assigned_to for a in done} == {PLANNER} and {a.seq for a in done} == {2}
    plan = rounds.close_round(ctx, acting=COORD, consultation_id=setup.consultation_id)
    assert plan.affected == MANY
    with sql_uow(ctx) as uow:
        moved = uow.session.scalar(select(func.count()).select_from(Opinion).where(Opinion.current_round == 2))
        events = uow.session.scalar(select(func.count()).select_from(AuditEvent))
    assert moved == MANY and (events or 0) >= 2 * MANY


def test_bulk_fire_in_batches_matches_one_at_a_time_and_is_all_or_nothing(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fired a few at a time (batch size 3 here) in id order, results still come in the order asked."""
    setup = seed(ctx)
    ids = [submit(ctx, setup, f"意见{i}") for i in range(10)]
    monkeypatch.setattr(opinions, "FIRE_BATCH", 3)
    asked = ids[::-1]  # not id order
    broken = [
        *(opinions.FireRequest(i, "screen", {}) for i in asked[:-1]),
        opinions.FireRequest(asked[-1], "adopt", {}),
    ]
    before = _state(ctx)
    with pytest.raises(InvalidTransitionError):
        opinions.fire_many(ctx, acting=EXPERT, requests=broken)  # the last batch fails: earlier ones are undone
    assert _state(ctx) == before
    results = opinions.fire_many(ctx, acting=EXPERT, requests=[opinions.FireRequest(i, "screen", {}) for i in asked])
    assert [r.opinion_id for r in results] == asked and {r.to_state for r in results} == {"under_review"}
    single = submit(ctx, setup, "单独")
    one = opinions.fire(ctx, acting=EXPERT, opinion_id=single, trigger="screen", fields={})
    with sql_uow(ctx) as uow:
        rows = {
            o.id: (o.state, o.last_seq, o.current_round, o.rounds_count, o.version)
            for o in uow.session.scalars(select(Opinion))
        }
    assert {rows[i] for i in ids} == {rows[single]} and one.seq == rows[single][1]
    assert_loop_invariants(ctx, setup.consultation_id)
