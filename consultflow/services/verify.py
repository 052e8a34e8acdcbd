"""Checking the hash chains: recompute every event's hash and name the first that does not match."""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime

from consultflow.domain.audit import GENESIS_HASH, AuditContent, chain_hash
from consultflow.domain.model import AuditEventRow, ConsultationRow
from consultflow.services.context import ServiceContext


@dataclass(frozen=True)
class BrokenEvent:
    """The first event where a chain stops matching, and how."""

    chain_seq: int
    event_id: int | None
    opinion_id: int | None
    opinion_seq: int | None
    kind: str | None
    trigger: str | None
    at: datetime | None
    problem: str


@dataclass(frozen=True)
class ChainReport:
    """The result of checking one consultation's chain."""

    consultation_id: int
    events: int
    head: str
    intact: bool
    broken: BrokenEvent | None = None


def _content(e: AuditEventRow) -> AuditContent:
    return AuditContent(
        consultation_id=e.consultation_id,
        chain_seq=e.chain_seq,
        kind=e.kind,
        at=e.at,
        actor=e.actor,
        role=e.role,
        opinion_id=e.opinion_id,
        opinion_seq=e.opinion_seq,
        trigger=e.trigger,
        from_state=e.from_state,
        to_state=e.to_state,
        round_no=e.round_no,
        completes_cycle=bool(e.completes_cycle),
        payload=json.loads(e.payload),
    )


def _broken(e: AuditEventRow, problem: str) -> BrokenEvent:
    return BrokenEvent(e.chain_seq, e.id, e.opinion_id, e.opinion_seq, e.kind, e.trigger, e.at, problem)


def verify_chain(ctx: ServiceContext, consultation_id: int) -> ChainReport:
    """Recompute one consultation's chain from the genesis hash to the recorded head.

    Catches an edited event (its hash no longer matches), a deleted or inserted one (the sequence
    or the links break), and events cut off the end (the chain stops short of the recorded head).
    """
    with ctx.uow() as uow:
        consultation = uow.consultations.get(consultation_id)
        # closing: a server-side cursor on PostgreSQL, abandoned at the first problem
        with closing(uow.audit.chain(consultation.id)) as events:
            return _walk(consultation, events)


def _walk(consultation: ConsultationRow, events: Iterable[AuditEventRow]) -> ChainReport:
    prev, expected, count = GENESIS_HASH, 1, 0
    for event in events:
        count += 1
        problem = None
        if event.chain_seq != expected:
            problem = f"event #{expected} is missing (the next one found is #{event.chain_seq})"
        elif event.prev_hash != prev:
            problem = "does not link to the event before it (an event was removed or replaced)"
        else:
            try:
                if chain_hash(prev, _content(event)) != event.hash:
                    problem = "its content does not match its hash (the event was edited)"
            except (ValueError, TypeError) as exc:
                problem = f"unreadable: {exc}"
        if problem is not None:
            return ChainReport(consultation.id, count, prev, intact=False, broken=_broken(event, problem))
        prev, expected = event.hash, expected + 1
    if count != consultation.chain_seq or prev != consultation.chain_head:
        problem = (
            f"the chain ends at event #{count} but the consultation recorded #{consultation.chain_seq} "
            "(events were removed from the end, or the head was rewritten)"
        )
        broken = BrokenEvent(count + 1, None, None, None, None, None, None, problem)
        return ChainReport(consultation.id, count, prev, intact=False, broken=broken)
    return ChainReport(consultation.id, count, prev, intact=True)


def verify_all(ctx: ServiceContext, consultation_id: int | None = None) -> list[ChainReport]:
    """Check one consultation's chain, or every consultation's."""
    if consultation_id is not None:
        return [verify_chain(ctx, consultation_id)]
    with ctx.uow() as uow:
        ids = uow.consultations.ids()
    return [verify_chain(ctx, cid) for cid in ids]
