"""What auditors read: an opinion's timeline, events by any filter, and every state as of a moment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, func, select

from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.opinion_views import OpinionView, opinion_view
from consultflow.store.models import AuditEvent, Opinion


@dataclass(frozen=True)
class HistoryEvent:
    """One event of the audit trail, as auditors read it."""

    seq: int
    at: datetime
    round_no: int | None
    kind: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    actor: str
    role: str
    completes_cycle: bool
    payload: dict[str, Any]
    opinion_id: int | None = None
    consultation_id: int | None = None
    chain_seq: int | None = None


def _event(e: AuditEvent) -> HistoryEvent:
    return HistoryEvent(
        seq=e.opinion_seq or 0,
        at=e.at,
        round_no=e.round_no,
        kind=e.kind,
        trigger=e.trigger,
        from_state=e.from_state,
        to_state=e.to_state,
        actor=e.actor,
        role=e.role,
        completes_cycle=e.completes_cycle,
        payload=json.loads(e.payload),
        opinion_id=e.opinion_id,
        consultation_id=e.consultation_id,
        chain_seq=e.chain_seq,
    )


def history(ctx: ServiceContext, opinion_id: int) -> tuple[OpinionView, list[HistoryEvent]]:
    """An opinion's full timeline from its audit events."""
    with ctx.uow() as uow:
        opinion = uow.opinions.get(opinion_id)
        events = [_event(e) for e in uow.audit.for_opinion(opinion.id)]
        return opinion_view(uow, opinion), events


@dataclass(frozen=True)
class EventFilter:
    """Which events to find; every filter given must hold."""

    consultation_id: int | None = None
    participant_id: int | None = None
    category: str | None = None
    channel: str | None = None
    state: str | None = None
    outcome: str | None = None
    round_no: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None


def search_events(ctx: ServiceContext, criteria: EventFilter) -> list[HistoryEvent]:
    """Opinion events matching every filter, in the order they happened.

    Participant, category, channel and outcome are the opinion's; state is where the event led
    (the events that moved opinions into it); round and time range are the event's.
    """
    where: list[ColumnElement[bool]] = [AuditEvent.opinion_id.is_not(None)]
    c = criteria
    opinion_filters = [
        (Opinion.consultation_id, c.consultation_id),
        (Opinion.participant_id, c.participant_id),
        (Opinion.category, c.category),
        (Opinion.channel, c.channel),
        (Opinion.outcome, c.outcome),
    ]
    where += [column == value for column, value in opinion_filters if value is not None]
    if c.state is not None:
        where.append(AuditEvent.to_state == c.state)
    if c.round_no is not None:
        where.append(AuditEvent.round_no == c.round_no)
    if c.since is not None:
        where.append(AuditEvent.at >= c.since)
    if c.until is not None:
        where.append(AuditEvent.at < c.until)
    with ctx.uow() as uow:
        if c.consultation_id is not None:
            uow.consultations.get(c.consultation_id)
        if c.participant_id is not None:
            uow.actors.participant(c.participant_id)
        stmt = (
            select(AuditEvent)
            .join(Opinion, Opinion.id == AuditEvent.opinion_id)
            .where(*where)
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        if c.limit is not None:
            stmt = stmt.limit(c.limit)
        return [_event(e) for e in uow.session.scalars(stmt)]


@dataclass(frozen=True)
class OpinionAsOf:
    """An opinion as it stood at a past moment, rebuilt from its events."""

    opinion_id: int
    consultation_id: int
    state: str
    outcome: str | None
    round_no: int
    rounds_count: int
    since: datetime


def as_of(ctx: ServiceContext, moment: datetime, consultation_id: int | None = None) -> list[OpinionAsOf]:
    """Every opinion's state at `moment`, from the audit events alone.

    Opinions submitted after `moment` did not exist yet and are left out.
    """
    with ctx.uow() as uow:
        if consultation_id is not None:
            uow.consultations.get(consultation_id)
        where = [AuditEvent.opinion_id.is_not(None), AuditEvent.at <= moment]
        if consultation_id is not None:
            where.append(AuditEvent.consultation_id == consultation_id)
        last = (
            select(
                AuditEvent.opinion_id.label("opinion_id"),
                func.max(AuditEvent.opinion_seq).label("seq"),
                func.sum(cast(AuditEvent.completes_cycle, Integer)).label("cycles"),
            )
            .where(*where)
            .group_by(AuditEvent.opinion_id)
            .subquery()
        )
        rows = uow.session.execute(
            select(
                AuditEvent.opinion_id,
                AuditEvent.consultation_id,
                AuditEvent.to_state,
                AuditEvent.round_no,
                AuditEvent.at,
                last.c.cycles,
                Opinion.workflow_id,
            )
            .join(last, and_(last.c.opinion_id == AuditEvent.opinion_id, last.c.seq == AuditEvent.opinion_seq))
            .join(Opinion, Opinion.id == AuditEvent.opinion_id)
            .order_by(AuditEvent.opinion_id)
        ).all()
        out = []
        for opinion_id, cid, state, round_no, at, cycles, workflow_id in rows:
            spec = spec_for(uow.consultations.workflow(workflow_id))
            outcome = spec.states[state].outcome
            out.append(
                OpinionAsOf(
                    opinion_id,
                    cid,
                    str(state),
                    outcome.value if outcome else None,
                    int(round_no or 0),
                    int(cycles or 0),
                    at,
                )
            )
        return out
