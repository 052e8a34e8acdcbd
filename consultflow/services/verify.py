"""Checking the hash chains: recompute every event's hash and name the first that does not match."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime

from consultflow.domain.audit import (
    GENESIS_HASH,
    ChainKey,
    canonical_text,
    chain_mode,
    payload_text,
    text_hash,
)
from consultflow.domain.errors import ValidationError
from consultflow.domain.model import ConsultationRow, EventSummary, StoredEvent
from consultflow.domain.roles import Role
from consultflow.domain.workflow import StateSpec
from consultflow.services.context import ServiceContext, spec_for


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
    mode: str = "SHA-256 (unkeyed)"


def _recomputed(e: StoredEvent, prev: str, key: ChainKey | None) -> bool:
    """Whether the stored event hashes to its stored hash, its fields read straight off the row.

    Payloads are stored as the hash sees them, so the stored text goes into the canonical form as
    it is. Events written before that (with spaces after separators) match once the payload is
    put in canonical form; an edit matches neither.
    """
    if text_hash(prev, _canonical(e, e.payload), key) == e.hash:
        return True
    return text_hash(prev, _canonical(e, payload_text(json.loads(e.payload))), key) == e.hash


def _canonical(e: StoredEvent, payload: str) -> str:
    return canonical_text(
        actor=e.actor,
        at=e.at,
        chain_seq=e.chain_seq,
        completes_cycle=bool(e.completes_cycle),
        consultation_id=e.consultation_id,
        from_state=e.from_state,
        kind=e.kind,
        opinion_id=e.opinion_id,
        opinion_seq=e.opinion_seq,
        payload=payload,
        role=e.role,
        round_no=e.round_no,
        to_state=e.to_state,
        trigger=e.trigger,
    )


def _broken(e: StoredEvent, problem: str) -> BrokenEvent:
    try:
        at: datetime | None = datetime.fromisoformat(e.at.replace("Z", "+00:00"))
    except ValueError:
        at = None
    return BrokenEvent(e.chain_seq, e.id, e.opinion_id, e.opinion_seq, e.kind, e.trigger, at, problem)


def verify_chain(
    ctx: ServiceContext,
    consultation_id: int,
    expect_head: tuple[int, str] | None = None,
    *,
    require_keyed: bool = False,
) -> ChainReport:
    """Recompute one consultation's chain, then compare what the events say with the live tables.

    The chain catches an edited event (its hash no longer matches), a deleted or inserted one (the
    sequence or the links break), and events cut off the end (the chain stops short of the recorded
    head). Replaying the events catches what the chain cannot see: an opinion's state, outcome,
    rounds count, sequence or planner changed in the live rows, or a tail cut off together with a
    rewound head. `expect_head` (sequence, hash), published earlier, proves that event is still
    part of today's chain. A keyed chain is checked with the configured key (refused without it);
    `require_keyed` fails an unkeyed chain, which anyone who can write the database could have
    recomputed (or turned into, by clearing the key id and rehashing).

    Raises:
        ConfigurationError: the chain is keyed and the configured key is missing or another one.
    """
    with ctx.reading() as uow:
        consultation = uow.consultations.get(consultation_id)
        key = ctx.key_for(consultation)
        mode = chain_mode(consultation.chain_key_id)
        if require_keyed and key is None:
            refusal = "the chain is not keyed (plain SHA-256), and a keyed chain was required"
            broken = BrokenEvent(0, None, None, None, None, None, None, refusal)
            return ChainReport(consultation.id, 0, consultation.chain_head, intact=False, broken=broken, mode=mode)
        # closing: a server-side cursor on PostgreSQL, abandoned at the first problem
        with closing(uow.audit.chain(consultation.id)) as events:
            report = replace(_walk(consultation, events, expect_head, key), mode=mode)
        if not report.intact:
            return report
        spec = spec_for(uow.consultations.workflow(consultation.workflow_id))
        planners = {a.id: a.name for a in uow.actors.with_role(Role.PLANNER)}
        with (
            closing(uow.opinions.live_columns(consultation.id)) as live,
            closing(uow.audit.summaries(consultation.id)) as said,
        ):
            problem = _compare(live, said, spec.states, planners)
    if problem is None:
        return report
    broken = BrokenEvent(report.events, None, None, None, None, None, None, problem)
    return replace(report, intact=False, broken=broken)


def _compare(
    live: Iterable[tuple[int, str, str | None, int, int, int | None]],
    said: Iterable[EventSummary],
    states: Mapping[str, StateSpec],
    planners: Mapping[int, str],
) -> str | None:
    """The first live row that disagrees with its events, in words; both come by id and are merged.

    An opinion that only the events record is named after every live row has agreed.
    """
    summaries = iter(said)
    events = next(summaries, None)
    only_in_events: int | None = None
    for opinion_id, state, live_outcome, rounds_count, last_seq, planner_id in live:
        while events is not None and events.opinion_id < opinion_id:
            only_in_events = events.opinion_id if only_in_events is None else only_in_events
            events = next(summaries, None)
        if events is None or events.opinion_id != opinion_id:
            return f"the live tables have opinion {opinion_id}, which no event records"
        outcome = states[events.state].outcome if events.state is not None and events.state in states else None
        checks = (
            ("state", state, events.state),
            ("outcome", live_outcome, outcome.value if outcome else None),
            ("rounds count", rounds_count, events.cycles),
            ("last sequence number", last_seq, events.last_seq),
            ("assigned planner", planners.get(planner_id) if planner_id else None, _planner(events.assigned)),
        )
        for what, now, recorded in checks:
            if now != recorded:
                return (
                    f"opinion {opinion_id}: the live {what} is {now!r} but its events say {recorded!r} "
                    "(a live row was edited)"
                )
        events = next(summaries, None)
    if only_in_events is None and events is not None:
        only_in_events = events.opinion_id
    if only_in_events is not None:
        return f"events record opinion {only_in_events}, which the live tables no longer have"
    return None


def _planner(assigned: str | None) -> str | None:
    """The planner an assignment event names."""
    if assigned is None:
        return None
    payload = json.loads(assigned)
    return str(payload.get("planner")) if isinstance(payload, dict) and payload else None


def _walk(
    consultation: ConsultationRow,
    events: Iterable[StoredEvent],
    expect_head: tuple[int, str] | None,
    key: ChainKey | None,
) -> ChainReport:
    prev, expected, count = GENESIS_HASH, 1, 0
    published_seq, published_hash = expect_head or (0, "")
    for event in events:
        count += 1
        problem = None
        if event.chain_seq != expected:
            problem = f"event #{expected} is missing (the next one found is #{event.chain_seq})"
        elif event.prev_hash != prev:
            problem = "does not link to the event before it (an event was removed or replaced)"
        else:
            try:
                if not _recomputed(event, prev, key):
                    problem = "its content does not match its hash (the event was edited)"
            except (ValueError, TypeError, AttributeError, OverflowError) as exc:
                problem = f"unreadable ({type(exc).__name__}: {exc})"
        if problem is None and event.chain_seq == published_seq and event.hash != published_hash:
            problem = (
                f"the published head #{published_seq} was {published_hash[:12]}…; "
                f"this chain has {event.hash[:12]}… there"
            )
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
    if published_seq > count:
        problem = f"the published head #{published_seq} is beyond this chain's end at #{count} (events were removed)"
        broken = BrokenEvent(count, None, None, None, None, None, None, problem)
        return ChainReport(consultation.id, count, prev, intact=False, broken=broken)
    return ChainReport(consultation.id, count, prev, intact=True)


def head(ctx: ServiceContext, consultation_id: int) -> tuple[int, str]:
    """A consultation's chain head (sequence, hash), to publish beside its account."""
    with ctx.uow() as uow:
        c = uow.consultations.get(consultation_id)
        return c.chain_seq, c.chain_head


def parse_head(text: str) -> tuple[int, str]:
    """`SEQ:HASH`, as `audit head` prints it."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        msg = (
            "--expect-head takes SEQ:HASH as 'consultflow audit head' prints it "
            f"(a number, a colon, 64 hex digits), not {text!r}"
        )
        raise ValidationError(msg)
    return int(seq), digest


def verify_all(
    ctx: ServiceContext,
    consultation_id: int | None = None,
    expect_head: tuple[int, str] | None = None,
    *,
    require_keyed: bool = False,
) -> list[ChainReport]:
    """Check one consultation's chain and live rows, or every consultation's."""
    if consultation_id is not None:
        return [verify_chain(ctx, consultation_id, expect_head, require_keyed=require_keyed)]
    if expect_head is not None:
        msg = "--expect-head names one consultation's head: give its id too"
        raise ValidationError(msg)
    with ctx.uow() as uow:
        ids = uow.consultations.ids()
    return [verify_chain(ctx, cid, require_keyed=require_keyed) for cid in ids]
