"""Opinions: submitting, assigning, listing, and moving them through the workflow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from consultflow.domain.audit import AuditContent, EventKind
from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.machine import PreparedTransition
from consultflow.domain.roles import Action, Role, role_for_action
from consultflow.domain.vocabulary import Field
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.context import ServiceContext, engine_for, spec_for
from consultflow.services.inputs import required_text
from consultflow.services.opinion_views import OpinionView, opinion_views
from consultflow.services.reminders import StateEntry, cancel_for_opinions, record_reminders
from consultflow.store.models import (
    Actor,
    Consultation,
    Opinion,
    OpinionEntry,
    Round,
)
from consultflow.store.uow import UnitOfWork

log = structlog.get_logger(__name__)

MAX_OPINION_CHARS = 5000


@dataclass(frozen=True)
class TransitionResult:
    """What one fired trigger did."""

    opinion_id: int
    trigger: str
    from_state: str
    to_state: str
    round_no: int
    rounds_count: int
    actor: str
    role: str
    seq: int
    at: datetime


@dataclass(frozen=True)
class FireRequest:
    """One trigger to fire, for bulk use (`fire_many`)."""

    opinion_id: int
    trigger: str
    fields: Mapping[Field, object]


@dataclass(frozen=True)
class NewOpinion:
    """One opinion to record (`submit_many` takes a batch, e.g. from a meeting's notes)."""

    participant_id: int
    category: str
    channel: str
    text: str


def submit_opinion(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    participant_id: int,
    category: str,
    channel: str,
    text: str,
) -> OpinionView:
    """Record an opinion in the consultation's open round."""
    item = NewOpinion(participant_id, category, channel, text)
    return submit_many(ctx, acting=acting, consultation_id=consultation_id, items=[item])[0]


def submit_many(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    items: Sequence[NewOpinion],
) -> list[OpinionView]:
    """Record several opinions in the open round, in one transaction: all of them, or none."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        actor, roles = uow.actors.require(acting)
        role = role_for_action(actor.name, roles, Action.SUBMIT_OPINION)
        consultation = uow.consultations.get(consultation_id, lock=True)
        workflow = uow.consultations.workflow(consultation.workflow_id)
        spec = spec_for(workflow)
        open_round = uow.consultations.require_open_round(consultation.id)
        rows: list[Opinion] = []
        for item in items:
            _check_choice(item.category, spec.categories, "category")
            _check_choice(item.channel, spec.channels, "channel")
            participant = uow.actors.participant(item.participant_id)
            rows.append(
                Opinion(
                    consultation_id=consultation.id,
                    workflow_id=workflow.id,
                    participant_id=participant.id,
                    recorded_by_id=actor.id,
                    category=item.category,
                    channel=item.channel,
                    text=required_text(item.text, "opinion text", MAX_OPINION_CHARS),
                    state=spec.initial,
                    state_entered_at=now,
                    current_round=open_round.number,
                    rounds_count=0,
                    last_seq=1,
                    submitted_at=now,
                )
            )
        uow.session.add_all(rows)
        uow.flush()
        uow.audit.append(
            consultation,
            [
                AuditContent(
                    kind=EventKind.SUBMITTED,
                    at=now,
                    actor=actor.name,
                    role=role.value,
                    opinion_id=row.id,
                    opinion_seq=1,
                    trigger="submit",
                    to_state=spec.initial,
                    round_no=open_round.number,
                    payload={
                        "category": row.category,
                        "channel": row.channel,
                        "participant_id": row.participant_id,
                    },
                )
                for row in rows
            ],
        )
        entries = [StateEntry(r.id, consultation.id, r.current_round, r.state, now) for r in rows]
        record_reminders(uow, spec, entries, open_round.closes_at, now)
        uow.commit()
        views = opinion_views(uow, rows)
    for view in views:
        log.debug(
            "opinion_submitted",
            opinion_id=view.id,
            round=open_round.number,
            actor=actor.name,
        )
    log.info(
        "opinions_submitted",
        count=len(views),
        round=open_round.number,
        actor=actor.name,
    )
    return views


def _check_choice(value: str, choices: Mapping[str, object], what: str) -> None:
    if value not in choices:
        allowed = ", ".join(choices)
        msg = f"unknown {what} {value!r}; allowed: {allowed}"
        raise ValidationError(msg)


def fire(
    ctx: ServiceContext,
    *,
    acting: str | None,
    opinion_id: int,
    trigger: str,
    fields: Mapping[Field, object],
) -> TransitionResult:
    """Fire one trigger on one opinion: state change and audit event in one transaction."""
    results = fire_many(ctx, acting=acting, requests=[FireRequest(opinion_id, trigger, fields)])
    return results[0]


def fire_many(ctx: ServiceContext, *, acting: str | None, requests: Sequence[FireRequest]) -> list[TransitionResult]:
    """Fire several triggers in one transaction: all of them happen, or none.

    Each still runs through the opinion's workflow machine, role and field checks.
    """
    now = ctx.clock.now()
    results: list[TransitionResult] = []
    with ctx.uow() as uow:
        actor, roles = uow.actors.require(acting)
        loaded = {o.id: o for o in uow.opinions.get_many(list(dict.fromkeys(r.opinion_id for r in requests)))}
        rounds: dict[int, tuple[Consultation, Round | None]] = {}
        drafts: dict[int, list[AuditContent]] = {}
        for request in requests:
            opinion = loaded[request.opinion_id]
            if opinion.consultation_id not in rounds:
                consultation = uow.consultations.get(opinion.consultation_id, lock=True)
                rounds[consultation.id] = (consultation, uow.consultations.open_round(consultation.id))
            consultation, open_round = rounds[opinion.consultation_id]
            result, draft = _transition(uow, opinion, open_round, actor, roles, request, now)
            results.append(result)
            drafts.setdefault(consultation.id, []).append(draft)
        for consultation_id, events in drafts.items():
            uow.audit.append(rounds[consultation_id][0], events)
        moved = [loaded[i] for i in dict.fromkeys(r.opinion_id for r in results if r.from_state != r.to_state)]
        cancel_for_opinions(uow, [o.id for o in moved], "the opinion left the state", now)
        for consultation_id, (consultation, _) in rounds.items():
            entries = [
                StateEntry(o.id, o.consultation_id, o.current_round, o.state, o.state_entered_at)
                for o in moved
                if o.consultation_id == consultation_id
            ]
            open_round = uow.consultations.open_round(consultation_id)
            spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
            record_reminders(uow, spec, entries, open_round.closes_at if open_round else None, now)
        uow.commit()
    if len(results) == 1:
        r = results[0]
        log.info(
            "transition",
            opinion_id=r.opinion_id,
            trigger=r.trigger,
            from_state=r.from_state,
            to_state=r.to_state,
            actor=r.actor,
            round=r.round_no,
        )
    else:
        log.info("transitions", count=len(results), actor=actor.name)
    return results


def _transition(
    uow: UnitOfWork,
    opinion: Opinion,
    open_round: Round | None,
    actor: Actor,
    roles: Sequence[Role],
    request: FireRequest,
    now: datetime,
) -> tuple[TransitionResult, AuditContent]:
    """Move one opinion; returns the result and its audit event, which the caller appends."""
    engine = engine_for(uow.consultations.workflow(opinion.workflow_id))
    prepared = engine.prepare(
        subject_name=f"opinion {opinion.id}",
        state=opinion.state,
        trigger=request.trigger,
        actor_name=actor.name,
        actor_roles=roles,
        fields=request.fields,
    )
    if open_round is None:  # checked after the trigger, so a wrong trigger is named first
        open_round = uow.consultations.require_open_round(opinion.consultation_id)
    if Field.MERGE_TARGET in prepared.fields:
        _check_merge_target(uow, opinion, int(prepared.fields[Field.MERGE_TARGET]))
    from_state = opinion.state
    to_state = engine.apply(opinion, prepared)
    _apply_effects(opinion, prepared, engine.spec, open_round.number, now)
    seq = opinion.last_seq = opinion.last_seq + 1
    if prepared.spec.entry is not None:
        text = prepared.fields.get(Field.TEXT) or prepared.fields.get(Field.REASON) or ""
        stance = prepared.fields.get(Field.STANCE)
        uow.session.add(
            OpinionEntry(
                opinion_id=opinion.id,
                opinion_seq=seq,
                round_no=open_round.number,
                kind=prepared.spec.entry.value,
                stance=str(stance) if stance else None,
                text=str(text),
                actor_id=actor.id,
                created_at=now,
            )
        )
    draft = AuditContent(
        kind=EventKind.TRANSITION,
        at=now,
        actor=actor.name,
        role=prepared.role.value,
        opinion_id=opinion.id,
        opinion_seq=seq,
        trigger=prepared.spec.trigger,
        from_state=from_state,
        to_state=to_state,
        round_no=open_round.number,
        completes_cycle=prepared.spec.completes_cycle,
        payload={f.value: v for f, v in prepared.fields.items()},
    )
    result = TransitionResult(
        opinion.id,
        prepared.spec.trigger,
        from_state,
        to_state,
        open_round.number,
        opinion.rounds_count,
        actor.name,
        prepared.role.value,
        seq,
        now,
    )
    return result, draft


def _apply_effects(
    opinion: Opinion,
    prepared: PreparedTransition,
    spec: WorkflowSpec,
    round_no: int,
    now: datetime,
) -> None:
    """What entering the new state means for the opinion's columns."""
    opinion.state_entered_at = now
    opinion.current_round = round_no
    if prepared.spec.completes_cycle:
        opinion.rounds_count += 1
    outcome = spec.states[opinion.state].outcome
    opinion.outcome = outcome.value if outcome else None
    if Field.PLAN_REF in prepared.fields:
        opinion.plan_ref = str(prepared.fields[Field.PLAN_REF])
    if Field.MERGE_TARGET in prepared.fields:
        opinion.merged_into_id = int(prepared.fields[Field.MERGE_TARGET])


def _check_merge_target(uow: UnitOfWork, opinion: Opinion, target_id: int) -> None:
    if target_id == opinion.id:
        msg = f"opinion {opinion.id} cannot be merged into itself"
        raise ValidationError(msg)
    try:
        target = uow.opinions.get(target_id)
    except NotFoundError:
        msg = f"--into {target_id}: no such opinion"
        raise ValidationError(msg) from None
    if target.consultation_id != opinion.consultation_id:
        elsewhere = target.consultation_id
        msg = f"--into {target_id}: that opinion belongs to consultation {elsewhere}, not {opinion.consultation_id}"
        raise ValidationError(msg)
    if target.outcome in ("merged", "withdrawn"):
        hint = f"; merge into {target.merged_into_id} instead" if target.merged_into_id else ""
        msg = f"--into {target_id}: that opinion is {target.outcome}{hint}"
        raise ValidationError(msg)


def assign(ctx: ServiceContext, *, acting: str | None, opinion_ids: Sequence[int], planner: str) -> list[OpinionView]:
    """Hand opinions to a planner; their work queue is `opinion list --assigned-to`."""
    if not opinion_ids:
        msg = "give at least one opinion id"
        raise ValidationError(msg)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        actor, roles = uow.actors.require(acting)
        role = role_for_action(actor.name, roles, Action.ASSIGN_OPINION)
        target = uow.actors.by_name(planner)
        if target is None or Role.PLANNER not in uow.actors.roles(target.id):
            msg = f"{planner!r} is not a registered planner; add one with 'consultflow actor add NAME --role planner'"
            raise ValidationError(msg)
        opinions = uow.opinions.get_many(list(dict.fromkeys(opinion_ids)))
        drafts: dict[int, list[AuditContent]] = {}
        for op in opinions:
            if op.outcome is not None:
                msg = f"opinion {op.id} is already decided ({op.state}); only open opinions can be assigned"
                raise ValidationError(msg)
            op.assigned_planner_id = target.id
            op.last_seq += 1
            drafts.setdefault(op.consultation_id, []).append(
                AuditContent(
                    kind=EventKind.ASSIGNED,
                    at=now,
                    actor=actor.name,
                    role=role.value,
                    opinion_id=op.id,
                    opinion_seq=op.last_seq,
                    trigger="assign",
                    from_state=op.state,
                    to_state=op.state,
                    round_no=op.current_round,
                    payload={"planner": target.name},
                )
            )
        for consultation_id, events in drafts.items():
            uow.audit.append(uow.consultations.get(consultation_id, lock=True), events)
        uow.commit()
        views = opinion_views(uow, opinions)
    log.info("opinions_assigned", count=len(views), planner=target.name, actor=actor.name)
    return views
