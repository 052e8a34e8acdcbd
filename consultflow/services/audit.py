"""What auditors read: an opinion's timeline, events by any filter, and every state as of a moment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from consultflow.domain.document import Reread
from consultflow.domain.model import AuditEventRow, EventFilter
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.opinion_views import OpinionView, opinion_view

T = TypeVar("T")

__all__ = ["EventFilter", "HistoryEvent", "OpinionAsOf", "as_of", "history", "search_events"]


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


def _event(e: AuditEventRow) -> HistoryEvent:
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


def search_events(ctx: ServiceContext, criteria: EventFilter) -> list[HistoryEvent]:
    """Opinion events matching every filter, in the order they happened, held (see `use_event_search`)."""
    return use_event_search(ctx, criteria, list)


def use_event_search(ctx: ServiceContext, criteria: EventFilter, use: Callable[[Reread[HistoryEvent]], T]) -> T:
    """Opinion events matching every filter, in the order they happened (see `EventFilter`).

    Given to `use` while they can be read, streamed from one query on each pass: the events of a
    million opinions are written out in flat memory.
    """
    with ctx.reading() as uow:
        if criteria.consultation_id is not None:
            uow.consultations.get(criteria.consultation_id)
        if criteria.participant_id is not None:
            uow.participants.get(criteria.participant_id)
        return use(Reread(lambda: (_event(e) for e in uow.audit.search(criteria))))


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
    """Every opinion's state at `moment`, held (see `use_as_of`)."""
    return use_as_of(ctx, moment, consultation_id, list)


def use_as_of(
    ctx: ServiceContext, moment: datetime, consultation_id: int | None, use: Callable[[Iterator[OpinionAsOf]], T]
) -> T:
    """Every opinion's state at `moment`, from the audit events alone, given to `use` as it is read.

    Opinions submitted after `moment` did not exist yet and are left out. The rows come by id from
    one streamed query, so a million opinions are counted or written out in flat memory.
    """
    with ctx.reading() as uow:
        if consultation_id is not None:
            uow.consultations.get(consultation_id)

        def rows() -> Iterator[OpinionAsOf]:
            for last in uow.audit.last_events(moment, consultation_id):
                outcome = spec_for(uow.workflows.get(last.workflow_id)).states[last.state].outcome
                yield OpinionAsOf(
                    last.opinion_id,
                    last.consultation_id,
                    last.state,
                    outcome.value if outcome else None,
                    last.round_no,
                    last.cycles,
                    last.at,
                )

        return use(rows())
