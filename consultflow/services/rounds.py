"""Opening and closing rounds; closing applies the workflow's round-close rules set-based."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from consultflow.domain.audit import EventKind
from consultflow.domain.entering import Entering, round_close_effects
from consultflow.domain.errors import RoundStateError, ValidationError
from consultflow.domain.reminders import StateEntry, round_close_states
from consultflow.domain.roles import Action
from consultflow.services.consultations import RoundView, round_view
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.pipeline import Change, run

EVENT_BATCH = 2000


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
    if closes_at is not None and closes_at <= ctx.clock.now():
        msg = "--closes-at must be in the future"
        raise ValidationError(msg)

    def body(change: Change) -> RoundView:
        consultation = change.consultation(consultation_id)
        current = change.open_round(consultation.id)
        if current is not None:
            msg = (
                f"round {current.number} of consultation {consultation.id} is still open; "
                f"close it first with 'consultflow round close {consultation.id}'"
            )
            raise RoundStateError(msg)
        number = change.uow.consultations.last_round_number(consultation.id) + 1
        row = change.uow.consultations.add_round(consultation.id, number, closes_at, change.now)
        _stay_until_close(change, consultation.id, number)
        payload: dict[str, object] = {"number": number}
        if closes_at is not None:
            payload["closes_at"] = closes_at.isoformat()
        change.record(consultation.id, change.event(EventKind.ROUND_OPENED, round_no=number, payload=payload))
        return round_view(row)

    return run(
        ctx,
        acting=acting,
        action=Action.OPEN_ROUND,
        event="round_opened",
        body=body,
        describe=lambda view: {"consultation_id": consultation_id, "round": view.number},
    )


def _stay_until_close(change: Change, consultation_id: int, round_no: int) -> None:
    """Opinions whose deadline is the round's close: their reminders, now that it has a date."""
    states = round_close_states(change.spec(consultation_id))
    rows = change.uow.opinions.in_states(consultation_id, states)
    change.entered_state(StateEntry(i, consultation_id, round_no, s, at) for i, s, at, _seq in rows)


def reschedule_round(
    ctx: ServiceContext, *, acting: str | None, consultation_id: int, closes_at: datetime
) -> RoundView:
    """Give the open round a (new) closing time; reminders due at the close move with it."""
    if closes_at <= ctx.clock.now():
        msg = "the closing time must be in the future"
        raise ValidationError(msg)

    def body(change: Change) -> RoundView:
        consultation = change.consultation(consultation_id)
        rnd = change.uow.consultations.require_open_round(consultation.id)
        previous = rnd.closes_at
        rnd.closes_at = closes_at
        states = round_close_states(change.spec(consultation.id))
        change.uow.reminders.cancel_for_round(consultation.id, states, "the round's closing time changed", change.now)
        _stay_until_close(change, consultation.id, rnd.number)
        payload: dict[str, object] = {
            "closes_at": closes_at.isoformat(),
            "previous": previous.isoformat() if previous else None,
        }
        change.record(consultation.id, change.event(EventKind.ROUND_RESCHEDULED, round_no=rnd.number, payload=payload))
        return round_view(rnd)

    return run(
        ctx,
        acting=acting,
        action=Action.OPEN_ROUND,
        event="round_rescheduled",
        body=body,
        describe=lambda view: {"consultation_id": consultation_id, "round": view.number},
    )


def _plan(rows: Sequence[tuple[int, str, datetime, int]], effects: Mapping[str, Entering | None]) -> list[CloseStep]:
    steps = []
    for opinion_id, state, _at, _seq in rows:
        effect = effects[state]
        if effect is None:
            steps.append(CloseStep(opinion_id, "carry_over", None, state, state))
        else:
            steps.append(CloseStep(opinion_id, "fire", effect.trigger, state, effect.dest))
    return steps


def close_round(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    dry_run: bool = False,
) -> ClosePlan:
    """Close the open round, applying the round-close rule to every opinion still waiting.

    One UPDATE moves every affected opinion, compiled from the same definition of entering a state
    that single transitions apply; then one multi-row INSERT writes their audit events. A dry run
    computes the same plan from the same query and writes nothing.
    """

    def body(change: Change) -> ClosePlan:
        consultation = change.consultation(consultation_id)
        rnd = change.uow.consultations.require_open_round(consultation.id)
        spec = change.spec(consultation.id)
        effects = round_close_effects(spec)
        rows = change.uow.opinions.in_states(consultation.id, list(effects))
        steps = _plan(rows, effects)
        plan = ClosePlan(consultation.id, rnd.number, rnd.number + 1, dry_run, tuple(steps))
        if dry_run:
            return plan
        change.uow.opinions.close_round(consultation.id, effects, plan.next_round, change.now)
        payload = {"round_close": rnd.number, "next_round": plan.next_round}
        for start in range(0, len(steps), EVENT_BATCH):  # hashed and written a batch at a time: memory stays flat
            change.record(
                consultation.id,
                *(
                    change.event(
                        EventKind.CARRIED_OVER,  # the trigger column says whether it also moved
                        opinion_id=step.opinion_id,
                        opinion_seq=last_seq + 1,
                        trigger=step.trigger or "carry_over",
                        from_state=step.from_state,
                        to_state=step.to_state,
                        round_no=rnd.number,
                        completes_cycle=bool(step.trigger and spec.transitions[step.trigger].completes_cycle),
                        payload=payload,
                    )
                    for step, (_id, _state, _at, last_seq) in zip(
                        steps[start : start + EVENT_BATCH], rows[start : start + EVENT_BATCH], strict=True
                    )
                ),
            )
            change.append_events()
        change.record(
            consultation.id,
            change.event(
                EventKind.ROUND_CLOSED,
                round_no=rnd.number,
                payload={
                    "number": rnd.number,
                    "affected": len(steps),
                    "summary": {f"{a}:{f}->{t}": n for a, f, t, n in plan.summary()},
                },
            ),
        )
        rnd.status, rnd.closed_at = "closed", change.now
        fired = [s for s in steps if s.trigger is not None]
        change.left_state((s.opinion_id for s in fired), f"round {rnd.number} closed")
        change.uow.reminders.cancel_for_round(
            consultation.id, round_close_states(spec), f"round {rnd.number} closed", change.now
        )
        change.entered_state(
            StateEntry(s.opinion_id, consultation.id, plan.next_round, s.to_state, change.now) for s in fired
        )
        return plan

    return run(
        ctx,
        acting=acting,
        action=Action.CLOSE_ROUND,
        event="round_close_planned" if dry_run else "round_closed",
        body=body,
        describe=lambda plan: {"consultation_id": consultation_id, "round": plan.round_no, "affected": len(plan.steps)},
    )


def round_status(ctx: ServiceContext, consultation_id: int) -> RoundStatus:
    """The open round (if any), all rounds, and active opinions by state."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        rounds = tuple(round_view(r) for r in uow.consultations.rounds(consultation.id))
        current = uow.consultations.open_round(consultation.id)
        counts = uow.opinions.count_by_state(consultation.id, open_only=True)
    waiting = tuple((s, counts.get(s, 0)) for s in spec.active_states())
    return RoundStatus(consultation.id, round_view(current) if current else None, rounds, waiting)
