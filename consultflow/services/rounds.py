"""Opening and closing rounds; closing applies the workflow's round-close rules set-based."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from consultflow.domain.audit import EventKind
from consultflow.domain.entering import Entering, round_close_effects
from consultflow.domain.errors import RoundStateError, ValidationError
from consultflow.domain.reminders import StateEntry, round_close_states
from consultflow.domain.roles import Action
from consultflow.services import heads
from consultflow.services.batching import batched
from consultflow.services.consultations import RoundView, round_view
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.pipeline import Change, run

EVENT_BATCH = 2000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CloseStep:
    """What closing the round does to one opinion (listed by a dry run)."""

    opinion_id: int
    action: str
    trigger: str | None
    from_state: str
    to_state: str


@dataclass(frozen=True, slots=True)
class CloseMove:
    """How many opinions a round close moves (or carries over) from one state to another."""

    action: str  # the trigger fired, or carry_over
    from_state: str
    to_state: str
    opinions: int


@dataclass(frozen=True)
class ClosePlan:
    """Everything a round close does, in totals; a dry run also lists each opinion's step.

    A real close does not hold a step per opinion (a province's close moves a million): each
    opinion's step is its audit event.
    """

    consultation_id: int
    round_no: int
    next_round: int
    dry_run: bool
    affected: int
    moves: tuple[CloseMove, ...]
    steps: tuple[CloseStep, ...] = ()

    def summary(self) -> list[tuple[str, str, str, int]]:
        """(action, from, to, count) rows, largest first."""
        return [(m.action, m.from_state, m.to_state, m.opinions) for m in self.moves]


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

    return run(
        ctx,
        acting=acting,
        action=Action.OPEN_ROUND,
        event="round_opened",
        body=lambda change: open_in(change, consultation_id, closes_at),
        describe=lambda view: {"consultation_id": consultation_id, "round": view.number},
    )


def open_in(change: Change, consultation_id: int, closes_at: datetime | None) -> RoundView:
    """Open the consultation's next round within a change (a review round opens one this way too)."""
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


def _stay_until_close(change: Change, consultation_id: int, round_no: int) -> None:
    """Opinions whose deadline is the round's close: their reminders, now that it has a date."""
    states = round_close_states(change.spec(consultation_id))
    for batch in batched(change.uow.opinions.in_states(consultation_id, states), EVENT_BATCH):
        change.entered_state(StateEntry(i, consultation_id, round_no, s, at) for i, s, at, _seq in batch)
        change.flush()


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


def close_round(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    dry_run: bool = False,
) -> ClosePlan:
    """Close the open round, applying the round-close rule to every opinion still waiting.

    The waiting opinions stream from one query, 2,000 at a time: each batch's audit events are
    hashed and written and its reminders cancelled and planned. Then one UPDATE moves them all,
    compiled from the same definition of entering a state that single transitions apply. Memory
    stays flat whatever the count. A dry run reads the same query, lists each step, writes nothing.
    """

    def body(change: Change) -> ClosePlan:
        consultation = change.consultation(consultation_id)
        rnd = change.uow.consultations.require_open_round(consultation.id)
        spec = change.spec(consultation.id)
        effects = round_close_effects(spec)
        waiting = change.uow.opinions.in_states(consultation.id, list(effects))
        moves: Counter[tuple[str, str, str]] = Counter()
        if dry_run:
            steps = tuple(_step(i, state, effects[state]) for i, state, _at, _seq in waiting)
            moves.update((s.trigger or s.action, s.from_state, s.to_state) for s in steps)
            return _close_plan(consultation.id, rnd.number, moves, dry_run=True, steps=steps)
        next_round = rnd.number + 1
        rnd.status, rnd.closed_at = "closed", change.now
        # Before any reminder is planned below, so those are not cancelled with the round's.
        change.uow.reminders.cancel_for_round(
            consultation.id, round_close_states(spec), f"round {rnd.number} closed", change.now
        )
        payload = {"round_close": rnd.number, "next_round": next_round}
        for batch in batched(waiting, EVENT_BATCH):  # read before the UPDATE: each row as it was
            fired = []
            for opinion_id, state, _at, last_seq in batch:
                effect = effects[state]
                trigger = effect.trigger if effect else None
                to_state = effect.dest if effect else state
                moves[(trigger or "carry_over", state, to_state)] += 1
                if effect is not None:
                    fired.append(StateEntry(opinion_id, consultation.id, next_round, to_state, change.now))
                change.record(
                    consultation.id,
                    change.event(
                        EventKind.CARRIED_OVER,  # the trigger column says whether it also moved
                        opinion_id=opinion_id,
                        opinion_seq=last_seq + 1,
                        trigger=trigger or "carry_over",
                        from_state=state,
                        to_state=to_state,
                        round_no=rnd.number,
                        completes_cycle=bool(trigger and spec.transitions[trigger].completes_cycle),
                        payload=payload,
                    ),
                )
            change.left_state((e.opinion_id for e in fired), f"round {rnd.number} closed")
            change.entered_state(fired)
            change.flush()  # events, cancelled and planned reminders: a batch at a time
        change.uow.opinions.close_round(consultation.id, effects, next_round, change.now)
        plan = _close_plan(consultation.id, rnd.number, moves, dry_run=False)
        change.record(
            consultation.id,
            change.event(
                EventKind.ROUND_CLOSED,
                round_no=rnd.number,
                payload={
                    "number": rnd.number,
                    "affected": plan.affected,
                    "summary": {f"{a}:{f}->{t}": n for a, f, t, n in plan.summary()},
                },
            ),
        )
        return plan

    plan = run(
        ctx,
        acting=acting,
        action=Action.CLOSE_ROUND,
        event="round_close_planned" if dry_run else "round_closed",
        body=body,
        describe=lambda plan: {"consultation_id": consultation_id, "round": plan.round_no, "affected": plan.affected},
    )
    if not dry_run:  # the closed round's head is signed and published at once (on the server, which holds the key)
        heads.sign_quietly(ctx, consultation_id)
    return plan


def _step(opinion_id: int, state: str, effect: Entering | None) -> CloseStep:
    if effect is None:
        return CloseStep(opinion_id, "carry_over", None, state, state)
    return CloseStep(opinion_id, "fire", effect.trigger, state, effect.dest)


def _close_plan(
    consultation_id: int,
    round_no: int,
    moves: Counter[tuple[str, str, str]],
    *,
    dry_run: bool,
    steps: tuple[CloseStep, ...] = (),
) -> ClosePlan:
    return ClosePlan(
        consultation_id,
        round_no,
        round_no + 1,
        dry_run=dry_run,
        affected=moves.total(),
        moves=tuple(CloseMove(a, f, t, n) for (a, f, t), n in moves.most_common()),
        steps=steps,
    )


def round_status(ctx: ServiceContext, consultation_id: int) -> RoundStatus:
    """The open round (if any), all rounds, and active opinions by state."""
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        spec = spec_for(uow.workflows.get(consultation.workflow_id))
        rounds = tuple(round_view(r) for r in uow.consultations.rounds(consultation.id))
        current = uow.consultations.open_round(consultation.id)
        counts = uow.opinions.count_by_state(consultation.id, open_only=True)
    waiting = tuple((s, counts.get(s, 0)) for s in spec.active_states())
    return RoundStatus(consultation.id, round_view(current) if current else None, rounds, waiting)
