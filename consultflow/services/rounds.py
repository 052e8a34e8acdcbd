"""Opening and closing rounds; closing applies the workflow's round-close rules set-based."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement, case, func, literal, select, update
from sqlalchemy.orm import Session

from consultflow.domain.audit import AuditContent, EventKind
from consultflow.domain.errors import RoundStateError, ValidationError
from consultflow.domain.reminders import round_close_states
from consultflow.domain.roles import Action, role_for_action
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.consultations import RoundView, round_view
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.reminders import StateEntry, cancel_for_opinions, cancel_for_round, record_reminders
from consultflow.store.models import Opinion, Round
from consultflow.store.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CloseStep:
    """What closing the round does to one opinion."""

    opinion_id: int
    action: str
    trigger: str | None
    from_state: str
    to_state: str


@dataclass(frozen=True)
class ClosePlan:
    """Everything a round close does; `--dry-run` shows this without doing it."""

    consultation_id: int
    round_no: int
    next_round: int
    dry_run: bool
    steps: tuple[CloseStep, ...]

    def summary(self) -> list[tuple[str, str, str, int]]:
        """(action, from, to, count) rows, largest first."""
        counts = Counter((s.action if s.trigger is None else s.trigger, s.from_state, s.to_state) for s in self.steps)
        return [(a, f, t, n) for (a, f, t), n in counts.most_common()]


@dataclass(frozen=True)
class RoundStatus:
    """Where a consultation's rounds stand and what is waiting in the current one."""

    consultation_id: int
    open_round: RoundView | None
    rounds: tuple[RoundView, ...]
    waiting: tuple[tuple[str, int], ...]


def open_round(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    closes_at: datetime | None = None,
) -> RoundView:
    """Open the next round; only one round is open at a time."""
    now = ctx.clock.now()
    if closes_at is not None and closes_at <= now:
        msg = "--closes-at must be in the future"
        raise ValidationError(msg)
    with ctx.uow() as uow:
        actor, roles = uow.actors.require(acting)
        role = role_for_action(actor.name, roles, Action.OPEN_ROUND)
        consultation = uow.consultations.get(consultation_id, lock=True)
        current = uow.consultations.open_round(consultation.id)
        if current is not None:
            msg = (
                f"round {current.number} of consultation {consultation.id} is still open; "
                f"close it first with 'consultflow round close {consultation.id}'"
            )
            raise RoundStateError(msg)
        number = 1 + (
            uow.session.scalar(select(func.max(Round.number)).where(Round.consultation_id == consultation.id)) or 0
        )
        row = Round(
            consultation_id=consultation.id,
            number=number,
            status="open",
            opened_at=now,
            closes_at=closes_at,
        )
        uow.session.add(row)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        _plan_round_close_reminders(uow, spec, consultation.id, row, now)
        payload: dict[str, object] = {"number": number}
        if closes_at is not None:
            payload["closes_at"] = closes_at.isoformat()
        uow.audit.append(
            consultation,
            [
                AuditContent(
                    kind=EventKind.ROUND_OPENED,
                    at=now,
                    actor=actor.name,
                    role=role.value,
                    round_no=number,
                    payload=payload,
                )
            ],
        )
        uow.commit()
    log.info("round_opened", consultation_id=consultation_id, round=number, actor=actor.name)
    return round_view(row)


def _plan_round_close_reminders(
    uow: UnitOfWork, spec: WorkflowSpec, consultation_id: int, rnd: Round, now: datetime
) -> None:
    """Reminders for opinions whose deadline is this round's close, now that it has a date."""
    if rnd.closes_at is None:
        return
    states = round_close_states(spec)
    if not states:
        return
    rows = uow.session.execute(
        select(Opinion.id, Opinion.state, Opinion.state_entered_at).where(
            Opinion.consultation_id == consultation_id, Opinion.state.in_(states)
        )
    ).all()
    entries = [StateEntry(i, consultation_id, rnd.number, s, at) for i, s, at in rows]
    record_reminders(uow, spec, entries, rnd.closes_at, now)


def reschedule_round(
    ctx: ServiceContext, *, acting: str | None, consultation_id: int, closes_at: datetime
) -> RoundView:
    """Give the open round a (new) closing time; reminders due at the close move with it."""
    now = ctx.clock.now()
    if closes_at <= now:
        msg = "the closing time must be in the future"
        raise ValidationError(msg)
    with ctx.uow() as uow:
        actor, roles = uow.actors.require(acting)
        role = role_for_action(actor.name, roles, Action.OPEN_ROUND)
        consultation = uow.consultations.get(consultation_id, lock=True)
        rnd = uow.consultations.require_open_round(consultation.id)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        previous = rnd.closes_at
        rnd.closes_at = closes_at
        cancel_for_round(uow, consultation.id, round_close_states(spec), "the round's closing time changed", now)
        _plan_round_close_reminders(uow, spec, consultation.id, rnd, now)
        uow.audit.append(
            consultation,
            [
                AuditContent(
                    kind=EventKind.ROUND_RESCHEDULED,
                    at=now,
                    actor=actor.name,
                    role=role.value,
                    round_no=rnd.number,
                    payload={
                        "closes_at": closes_at.isoformat(),
                        "previous": previous.isoformat() if previous else None,
                    },
                )
            ],
        )
        uow.commit()
    log.info("round_rescheduled", consultation_id=consultation_id, round=rnd.number, actor=actor.name)
    return round_view(rnd)


def _plan(rows: list[tuple[int, str]], spec: WorkflowSpec) -> list[CloseStep]:
    steps = []
    for opinion_id, state in rows:
        rule = spec.round_close[state]
        if rule.action == "carry_over":
            steps.append(CloseStep(opinion_id, "carry_over", None, state, state))
        else:
            assert rule.trigger is not None
            dest = spec.transitions[rule.trigger].dest
            steps.append(CloseStep(opinion_id, "fire", rule.trigger, state, dest))
    return steps


def close_round(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    dry_run: bool = False,
) -> ClosePlan:
    """Close the open round, applying the round-close rule to every opinion still waiting.

    One UPDATE moves every affected opinion (its SET clauses read the pre-update row, so an
    opinion moved by one rule is never caught by another), then one multi-row INSERT writes their
    audit events. A dry run computes the same plan from the same query and writes nothing.
    """
    now = ctx.clock.now()
    with ctx.uow() as uow:
        actor, roles = uow.actors.require(acting)
        role = role_for_action(actor.name, roles, Action.CLOSE_ROUND)
        consultation = uow.consultations.get(consultation_id, lock=True)
        rnd = uow.consultations.require_open_round(consultation.id)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        affected = (
            Opinion.consultation_id == consultation.id,
            Opinion.state.in_(list(spec.round_close)),
        )
        rows = list(
            uow.session.execute(
                select(Opinion.id, Opinion.state, Opinion.last_seq).where(*affected).order_by(Opinion.id)
            )
        )
        steps = _plan([(r.id, r.state) for r in rows], spec)
        plan = ClosePlan(consultation.id, rnd.number, rnd.number + 1, dry_run, tuple(steps))
        if dry_run:
            return plan
        _apply_close(uow.session, spec, affected, plan.next_round, now)
        drafts = [
            AuditContent(
                kind=EventKind.CARRIED_OVER,  # the trigger column says whether it also moved
                at=now,
                actor=actor.name,
                role=role.value,
                opinion_id=step.opinion_id,
                opinion_seq=row.last_seq + 1,
                trigger=step.trigger or "carry_over",
                from_state=step.from_state,
                to_state=step.to_state,
                round_no=rnd.number,
                completes_cycle=bool(step.trigger and spec.transitions[step.trigger].completes_cycle),
                payload={"round_close": rnd.number, "next_round": plan.next_round},
            )
            for step, row in zip(steps, rows, strict=True)
        ]
        summary = {f"{a}:{f}->{t}": n for a, f, t, n in plan.summary()}
        drafts.append(
            AuditContent(
                kind=EventKind.ROUND_CLOSED,
                at=now,
                actor=actor.name,
                role=role.value,
                round_no=rnd.number,
                payload={
                    "number": rnd.number,
                    "affected": len(steps),
                    "summary": summary,
                },
            )
        )
        uow.audit.append(consultation, drafts)
        rnd.status, rnd.closed_at = "closed", now
        fired = [s for s in steps if s.trigger is not None]
        cancel_for_opinions(uow, [s.opinion_id for s in fired], f"round {rnd.number} closed", now)
        cancel_for_round(uow, consultation.id, round_close_states(spec), f"round {rnd.number} closed", now)
        entries = [StateEntry(s.opinion_id, consultation.id, plan.next_round, s.to_state, now) for s in fired]
        record_reminders(uow, spec, entries, None, now)
        uow.commit()
    log.info(
        "round_closed",
        consultation_id=consultation_id,
        round=rnd.number,
        affected=len(steps),
        actor=actor.name,
    )
    return plan


def _apply_close(
    session: Session,
    spec: WorkflowSpec,
    where: Sequence[ColumnElement[bool]],
    next_round: int,
    now: datetime,
) -> None:
    """The single set-based UPDATE for a round close, built from the workflow's rules."""
    fired = {s: spec.transitions[r.trigger] for s, r in spec.round_close.items() if r.trigger is not None}
    if not fired:
        values: dict[str, object] = {}
    else:
        values = {
            "state": case(
                {s: t.dest for s, t in fired.items()},
                value=Opinion.state,
                else_=Opinion.state,
            ),
            "state_entered_at": case(
                {s: literal(now, Opinion.state_entered_at.type) for s in fired},
                value=Opinion.state,
                else_=Opinion.state_entered_at,
            ),
            "rounds_count": Opinion.rounds_count
            + case(
                {s: int(t.completes_cycle) for s, t in fired.items()},
                value=Opinion.state,
                else_=0,
            ),
            "outcome": case(
                {s: literal(_outcome(spec, t.dest)) for s, t in fired.items()},
                value=Opinion.state,
                else_=Opinion.outcome,
            ),
        }
    values |= {
        "current_round": next_round,
        "last_seq": Opinion.last_seq + 1,
        "version": Opinion.version + 1,
    }
    session.execute(update(Opinion).where(*where).values(values).execution_options(synchronize_session=False))


def _outcome(spec: WorkflowSpec, state: str) -> str | None:
    outcome = spec.states[state].outcome
    return outcome.value if outcome else None


def round_status(ctx: ServiceContext, consultation_id: int) -> RoundStatus:
    """The open round (if any), all rounds, and active opinions by state."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        rounds = tuple(round_view(r) for r in uow.consultations.rounds(consultation.id))
        current = uow.consultations.open_round(consultation.id)
        counts = dict(
            uow.session.execute(
                select(Opinion.state, func.count())
                .where(
                    Opinion.consultation_id == consultation.id,
                    Opinion.outcome.is_(None),
                )
                .group_by(Opinion.state)
            ).all()
        )
    waiting = tuple((s, counts.get(s, 0)) for s in spec.active_states())
    return RoundStatus(consultation.id, round_view(current) if current else None, rounds, waiting)
