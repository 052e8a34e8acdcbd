"""An in-memory unit of work for the use-case unit tests: the ports' protocols over plain objects.

It keeps transaction semantics (everything is copied on enter and restored unless committed), so
"a refused use case writes nothing" can be tested in milliseconds. The worker's outbox and the
auditors' figures are database aggregates and are tested against real databases only.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal, NoReturn

from consultflow.domain.accounts import AccountDraft
from consultflow.domain.audit import (
    GENESIS_HASH,
    AuditContent,
    ChainKey,
    EventKind,
    chain_hash,
    payload_text,
    utc_iso,
)
from consultflow.domain.entering import Entering
from consultflow.domain.errors import NotFoundError, RetryableConflictError, RoundStateError
from consultflow.domain.heads import SignedHead
from consultflow.domain.model import (
    MOVING_COLUMNS,
    AccessRecord,
    EventFilter,
    EventSummary,
    FactEvent,
    LastEvent,
    LiveEntry,
    LiveOpinion,
    MovingOpinion,
    NewEntry,
    NewOpinionRow,
    OpinionFilter,
    StoredEvent,
)
from consultflow.domain.reminders import StateEntry, plan_reminders
from consultflow.domain.roles import Role
from consultflow.domain.workflow import WorkflowSpec


@dataclass
class Row:
    """A record: any attributes, like a mapped row."""

    id: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["attrs"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("id", "attrs"):
            object.__setattr__(self, name, value)
        else:
            self.attrs[name] = value


def _row(table: list[Row], **attrs: Any) -> Row:
    row = Row(len(table) + 1, dict(attrs))
    table.append(row)
    return row


@dataclass
class Tables:
    """Everything the fake database holds."""

    actors: list[Row] = field(default_factory=list)
    roles: dict[int, list[Role]] = field(default_factory=dict)
    participants: list[Row] = field(default_factory=list)
    workflows: list[Row] = field(default_factory=list)
    consultations: list[Row] = field(default_factory=list)
    rounds: list[Row] = field(default_factory=list)
    opinions: list[Row] = field(default_factory=list)
    entries: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    reminders: list[Row] = field(default_factory=list)
    accesses: list[Row] = field(default_factory=list)
    account_events: list[AccountDraft] = field(default_factory=list)


def _no_aggregates(*_args: object, **_kwargs: object) -> NoReturn:
    msg = "the fake unit of work covers the use cases; aggregates run against a real database"
    raise NotImplementedError(msg)


class FakeActors:
    """People who act, and participants."""

    def __init__(self, t: Tables) -> None:
        self.t = t

    def by_name(self, name: str) -> Row | None:
        return next((a for a in self.t.actors if a.name == name), None)

    def require(self, name: str | None) -> tuple[Row, list[Role]]:
        found = self.by_name(name) if name else None
        if found is None:
            raise NotFoundError(f"unknown actor {name!r}")
        return found, self.roles(found.id)

    def system(self) -> Row:
        return self.t.actors[0]

    def roles(self, actor_id: int) -> list[Role]:
        return list(self.t.roles.get(actor_id, []))

    def count_people(self) -> int:
        return sum(1 for a in self.t.actors if self.t.roles.get(a.id) != [Role.SYSTEM])

    def get(self, actor_id: int) -> Row | None:
        return next((a for a in self.t.actors if a.id == actor_id), None)

    def with_role(self, role: Role) -> list[Row]:
        return [a for a in self.t.actors if role in self.t.roles.get(a.id, [])]

    def with_roles(self) -> list[tuple[Row, list[Role]]]:
        return [(a, self.roles(a.id)) for a in self.t.actors]

    def participants(self, village: str | None = None) -> list[Row]:
        return [p for p in self.t.participants if village in (None, p.village)]

    def add(
        self,
        *,
        name: str,
        lang: str,
        contact: str | None,
        roles: Sequence[Role],
        now: datetime,
        participant_id: int | None = None,
        login: str | None = None,
    ) -> Row:
        row = _row(
            self.t.actors,
            name=name,
            lang=lang,
            contact=contact,
            created_at=now,
            participant_id=participant_id,
            login=login,
        )
        self.t.roles[row.id] = list(roles)
        return row

    def participant(self, participant_id: int) -> Row:
        found = self.participants_by_id([participant_id])
        if not found:
            raise NotFoundError(f"unknown participant {participant_id}")
        return found[0]

    def participants_by_id(self, participant_ids: Sequence[int]) -> list[Row]:
        return [p for p in self.t.participants if p.id in set(participant_ids)]

    def missing_participants(self, participant_ids: Sequence[int]) -> list[int]:
        known = {p.id for p in self.t.participants}
        return [i for i in dict.fromkeys(participant_ids) if i not in known]

    def add_participant(
        self, *, name: str, village: str, contact: str | None, lang: str, created_by: int, now: datetime
    ) -> Row:
        return _row(
            self.t.participants,
            name=name,
            village=village,
            contact=contact,
            lang=lang,
            created_by_id=created_by,
            erased_at=None,
            created_at=now,
        )

    def registered_participant(self, name: str, village: str, contact: str) -> int | None:
        same = [
            p.id
            for p in self.t.participants
            if (p.name, p.village, p.contact) == (name, village, contact) and p.erased_at is None
        ]
        return min(same, default=None)


class FakeConsultations:
    """Consultations, workflows and rounds; row locks are written to `locks` as asked."""

    def __init__(self, t: Tables, locks: list[tuple[str, tuple[int, ...]]]) -> None:
        self.t = t
        self.locks = locks

    def lock_of_opinions(self, opinion_ids: Sequence[int]) -> list[Row]:
        owners = sorted({o.consultation_id for o in self.t.opinions if o.id in set(opinion_ids)})
        return [self.get(c, lock=True) for c in owners]

    def get(self, consultation_id: int, *, lock: bool = False) -> Row:
        found = next((c for c in self.t.consultations if c.id == consultation_id), None)
        if found is None:
            raise NotFoundError(f"unknown consultation {consultation_id}")
        if lock:
            self.locks.append(("consultation", (consultation_id,)))
        return found

    def add(
        self,
        *,
        title: str,
        area: str,
        workflow_id: int,
        created_by: int,
        auto_close: bool,
        genesis: str,
        now: datetime,
        chain_key_id: str | None = None,
    ) -> Row:
        return _row(
            self.t.consultations,
            title=title,
            area=area,
            workflow_id=workflow_id,
            created_by_id=created_by,
            auto_close=auto_close,
            chain_seq=0,
            chain_head=genesis,
            chain_key_id=chain_key_id,
            created_at=now,
        )

    def workflow(self, workflow_id: int) -> Row:
        return self.t.workflows[workflow_id - 1]

    def ids(self) -> list[int]:
        return [c.id for c in self.t.consultations]

    def open_rounds(self, consultation_ids: Sequence[int]) -> set[tuple[int, int]]:
        wanted = set(consultation_ids)
        return {
            (r.consultation_id, r.number) for r in self.t.rounds if r.status == "open" and r.consultation_id in wanted
        }

    def due_for_auto_close(self, now: datetime) -> list[int]:
        return [
            r.consultation_id
            for r in self.t.rounds
            if r.status == "open"
            and r.closes_at is not None
            and r.closes_at <= now
            and self.get(r.consultation_id).auto_close
        ]

    def listing(self) -> list[tuple[Row, str, int, int]]:
        out = []
        for c in self.t.consultations:
            wf = self.workflow(c.workflow_id)
            out.append((c, wf.name, wf.version, sum(1 for o in self.t.opinions if o.consultation_id == c.id)))
        return out

    def rounds(self, consultation_id: int) -> list[Row]:
        return [r for r in self.t.rounds if r.consultation_id == consultation_id]

    def workflow_as_stored(self, workflow_id: int) -> Row:
        return self.t.workflows[workflow_id - 1]

    def stored_workflow(self, name: str, version: int) -> Row | None:
        return next((w for w in self.t.workflows if (w.name, w.version) == (name, version)), None)

    def stored_workflows(self, name: str | None = None) -> list[Row]:
        return [w for w in self.t.workflows if name in (None, w.name)]

    def add_workflow(self, spec: WorkflowSpec, now: datetime) -> Row:
        return _row(
            self.t.workflows,
            name=spec.name,
            version=spec.version,
            digest=spec.digest,
            source=spec.source,
            registered_at=now,
        )

    def open_round(self, consultation_id: int) -> Row | None:
        return next((r for r in self.rounds(consultation_id) if r.status == "open"), None)

    def require_open_round(self, consultation_id: int) -> Row:
        found = self.open_round(consultation_id)
        if found is None:
            raise RoundStateError(f"consultation {consultation_id} has no open round")
        return found

    def last_round_number(self, consultation_id: int) -> int:
        return max((r.number for r in self.rounds(consultation_id)), default=0)

    def add_round(self, consultation_id: int, number: int, closes_at: datetime | None, now: datetime) -> Row:
        return _row(
            self.t.rounds,
            consultation_id=consultation_id,
            number=number,
            status="open",
            opened_at=now,
            closes_at=closes_at,
            closed_at=None,
        )


class FakeOpinions:
    """Opinions and their entries; row locks are written to `locks` as asked."""

    def __init__(self, t: Tables, locks: list[tuple[str, tuple[int, ...]]]) -> None:
        self.t = t
        self.locks = locks

    def get(self, opinion_id: int) -> Row:
        return self.get_many([opinion_id])[0]

    def get_many(self, opinion_ids: Sequence[int]) -> list[Row]:
        by_id = {o.id: o for o in self.t.opinions}
        missing = [i for i in opinion_ids if i not in by_id]
        if missing:
            raise NotFoundError(f"unknown opinion(s): {', '.join(map(str, missing))}")
        return [by_id[i] for i in opinion_ids]

    def lock_many(self, opinion_ids: Sequence[int]) -> list[Row]:
        self.locks.append(("opinions", tuple(opinion_ids)))
        return self.get_many(opinion_ids)

    def view_names(self, opinion_ids: Sequence[int]) -> dict[int, tuple[str, str, str | None, str]]:
        actors = FakeActors(self.t)
        out = {}
        for o in self.get_many(list(dict.fromkeys(opinion_ids))):
            p = actors.participant(o.participant_id)
            planner = actors.get(o.assigned_planner_id) if o.assigned_planner_id else None
            recorder = actors.get(o.recorded_by_id)
            assert recorder is not None
            out[o.id] = (p.name, p.village, planner.name if planner else None, recorder.name)
        return out

    def add_many(
        self,
        consultation: Any,
        rows: Sequence[NewOpinionRow],
        *,
        recorded_by: int,
        state: str,
        round_no: int,
        now: datetime,
    ) -> list[Row]:
        return [
            _row(
                self.t.opinions,
                consultation_id=consultation.id,
                workflow_id=consultation.workflow_id,
                participant_id=r.participant_id,
                recorded_by_id=recorded_by,
                assigned_planner_id=None,
                category=r.category,
                channel=r.channel,
                text=r.text,
                state=state,
                state_entered_at=now,
                current_round=round_no,
                rounds_count=0,
                outcome=None,
                plan_ref=None,
                merged_into_id=None,
                last_seq=1,
                submitted_at=now,
                intake_key=r.intake_key,
                receipt_hash=r.receipt_hash,
            )
            for r in rows
        ]

    def live_columns(self, consultation_id: int) -> Generator[LiveOpinion, None, None]:
        for o in sorted(self.t.opinions, key=lambda o: o.id):
            if o.consultation_id == consultation_id:
                yield LiveOpinion(
                    o.id,
                    o.state,
                    o.outcome,
                    o.rounds_count,
                    o.last_seq,
                    o.assigned_planner_id,
                    o.workflow_id,
                    o.participant_id,
                    o.category,
                    o.channel,
                    o.text,
                    o.plan_ref,
                    o.merged_into_id,
                )

    def live_entries(self, consultation_id: int) -> Generator[LiveEntry, None, None]:
        mine = {o.id for o in self.t.opinions if o.consultation_id == consultation_id}
        for e in sorted(self.t.entries, key=lambda e: (e.opinion_id, e.opinion_seq, e.id)):
            if e.opinion_id in mine:
                yield LiveEntry(e.opinion_id, e.opinion_seq, e.round_no, e.kind, e.stance, e.text)

    def by_receipt(self, receipt_hash: str) -> int | None:
        return next((o.id for o in self.t.opinions if o.receipt_hash == receipt_hash), None)

    def by_intake_key(self, consultation_id: int, intake_key: str) -> int | None:
        found = (o.id for o in self.t.opinions if o.consultation_id == consultation_id and o.intake_key == intake_key)
        return next(found, None)

    def add_entries(self, entries: Sequence[NewEntry]) -> None:
        for e in entries:
            _row(self.t.entries, **e._asdict())

    def lock_moving(self, opinion_ids: Sequence[int]) -> list[MovingOpinion]:
        return [MovingOpinion(*(getattr(o, name) for name in MOVING_COLUMNS)) for o in self.lock_many(opinion_ids)]

    def write_moves(self, moved: Sequence[MovingOpinion]) -> None:
        for m in moved:
            row = self.get(m.id)
            for name in MOVING_COLUMNS:
                setattr(row, name, getattr(m, name))

    def open_texts(self, consultation_id: int, category: str | None = None) -> Iterator[tuple[int, str, str]]:
        for o in self.t.opinions:
            if o.consultation_id == consultation_id and o.outcome is None and category in (None, o.category):
                yield o.id, o.category, o.text

    def open_categories(self, consultation_id: int) -> list[str]:
        return sorted({c for _i, c, _t in self.open_texts(consultation_id)})

    def merged_into(self, target_id: int) -> list[tuple[int, int]]:
        return [(o.id, o.participant_id) for o in self.t.opinions if o.merged_into_id == target_id]

    def search_streamed(self, criteria: OpinionFilter) -> Iterator[Row]:
        yield from self.search(criteria)

    def search(self, criteria: OpinionFilter) -> list[Row]:
        c = criteria
        wanted = {
            "consultation_id": c.consultation_id,
            "assigned_planner_id": c.assigned_planner_id,
            "state": c.state,
            "category": c.category,
            "channel": c.channel,
            "current_round": c.round_no,
            "outcome": c.outcome,
            "participant_id": c.participant_id,
        }
        found = [o for o in self.t.opinions if all(v is None or getattr(o, k) == v for k, v in wanted.items())]
        return found[: c.limit] if c.limit is not None else found

    def undecided(self) -> list[Row]:
        return [o for o in self.t.opinions if o.outcome is None]

    def entries(self, opinion_id: int) -> list[tuple[Row, str]]:
        actors = FakeActors(self.t)
        return [(e, actors.get(e.actor_id).name) for e in self.t.entries if e.opinion_id == opinion_id]  # type: ignore[union-attr]

    def count_by_state(self, consultation_id: int, *, open_only: bool = False) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.t.opinions:
            if o.consultation_id == consultation_id and not (open_only and o.outcome is not None):
                out[o.state] = out.get(o.state, 0) + 1
        return out

    def in_states(self, consultation_id: int, states: Sequence[str]) -> list[tuple[int, str, datetime, int]]:
        return [
            (o.id, o.state, o.state_entered_at, o.last_seq)
            for o in self.t.opinions
            if o.consultation_id == consultation_id and o.state in states
        ]

    def close_round(
        self, consultation_id: int, effects: Mapping[str, Entering | None], next_round: int, now: datetime
    ) -> None:
        for o in self.t.opinions:
            if o.consultation_id != consultation_id or o.state not in effects:
                continue
            effect = effects[o.state]
            if effect is not None:
                o.state, o.state_entered_at, o.outcome = effect.dest, now, effect.outcome
                o.rounds_count += effect.rounds_increment
            o.current_round, o.last_seq = next_round, o.last_seq + 1


class FakeAudit:
    """The hash-chained events, appended only."""

    def __init__(self, t: Tables) -> None:
        self.t = t

    def append(self, consultation: Any, drafts: Sequence[AuditContent], key: ChainKey | None = None) -> None:
        for draft in drafts:
            content = replace(draft, consultation_id=consultation.id, chain_seq=consultation.chain_seq + 1)
            digest = chain_hash(consultation.chain_head, content, key)
            fields = {k: v for k, v in vars(content).items() if k != "payload"}
            _row(
                self.t.events,
                **fields,
                payload=payload_text(content.payload),
                prev_hash=consultation.chain_head,
                hash=digest,
            )
            consultation.chain_seq, consultation.chain_head = content.chain_seq, digest

    def chain(self, consultation_id: int, after: int = 0) -> Generator[StoredEvent, None, None]:
        events = sorted(
            (e for e in self.t.events if e.consultation_id == consultation_id and e.chain_seq > after),
            key=lambda e: e.chain_seq,
        )
        for e in events:
            yield StoredEvent._make(utc_iso(e.at) if name == "at" else getattr(e, name) for name in StoredEvent._fields)

    def summaries(self, consultation_id: int) -> Generator[EventSummary, None, None]:
        """The events folded in chain order, one opinion at a time (what the store's GROUP BY gives)."""
        events = sorted((e for e in self.t.events if e.consultation_id == consultation_id), key=lambda e: e.chain_seq)
        for opinion_id in sorted({e.opinion_id for e in events if e.opinion_id is not None}):
            state, last_seq, cycles, assigned = None, 0, 0, None
            for e in (e for e in events if e.opinion_id == opinion_id):
                state = e.to_state or state
                last_seq = max(last_seq, e.opinion_seq or 0)
                cycles += bool(e.completes_cycle)
                if e.kind == EventKind.ASSIGNED and e.payload != "{}":
                    assigned = e.payload
            yield EventSummary(opinion_id, last_seq, cycles, state, assigned)

    def fact_events(self, consultation_id: int) -> Generator[FactEvent, None, None]:
        kinds = (EventKind.SUBMITTED, EventKind.CORRECTED, EventKind.TRANSITION)
        events = (
            e
            for e in self.t.events
            if e.consultation_id == consultation_id and e.opinion_id is not None and e.kind in kinds
        )
        for e in sorted(events, key=lambda e: (e.opinion_id, e.opinion_seq)):
            yield FactEvent(e.opinion_id, e.opinion_seq, e.kind, e.trigger, e.round_no, e.payload)

    def search(self, criteria: EventFilter) -> NoReturn:
        _no_aggregates(criteria)

    def last_events(self, moment: datetime, consultation_id: int | None = None) -> list[LastEvent]:
        _no_aggregates(moment, consultation_id)

    def for_opinion(self, opinion_id: int) -> list[Row]:
        return sorted((e for e in self.t.events if e.opinion_id == opinion_id), key=lambda e: e.opinion_seq)


class FakeReminders:
    """Reminder rows, keyed like the real table so planning twice adds nothing."""

    def __init__(self, t: Tables) -> None:
        self.t = t

    def plan(
        self, spec: WorkflowSpec, entries: Sequence[StateEntry], round_closes_at: datetime | None, now: datetime
    ) -> int:
        keys = {(r.opinion_id, r.rule, r.offset_minutes, r.round_no, r.due_at) for r in self.t.reminders}
        planned = 0
        for e in entries:
            for p in plan_reminders(spec, e.state, e.entered_at, round_closes_at):
                key = (e.opinion_id, p.rule, round(p.offset_days * 24 * 60), e.round_no, p.due_at)
                planned += 1
                if key in keys:
                    continue
                keys.add(key)
                _row(
                    self.t.reminders,
                    consultation_id=e.consultation_id,
                    opinion_id=e.opinion_id,
                    round_no=e.round_no,
                    rule=p.rule,
                    offset_minutes=key[2],
                    state=e.state,
                    state_entered_at=e.entered_at,
                    recipient_role=p.recipient_role.value,
                    escalation=p.escalation,
                    due_at=p.due_at,
                    send_at=p.send_at,
                    status="pending",
                    created_at=now,
                    closed_at=None,
                    cancel_reason=None,
                )
        return planned

    def _cancel(self, rows: Sequence[Row], reason: str, now: datetime) -> None:
        for r in rows:
            if r.status == "pending":
                r.status, r.closed_at, r.cancel_reason = "cancelled", now, reason

    def cancel_for_opinions(self, opinion_ids: Sequence[int], reason: str, now: datetime) -> None:
        self._cancel([r for r in self.t.reminders if r.opinion_id in set(opinion_ids)], reason, now)

    def cancel_for_round(self, consultation_id: int, states: Sequence[str], reason: str, now: datetime) -> None:
        rows = [r for r in self.t.reminders if r.consultation_id == consultation_id and r.state in states]
        self._cancel(rows, reason, now)

    def get_many(self, reminder_ids: Sequence[int]) -> list[Row]:
        found = [r for r in self.t.reminders if r.id in set(reminder_ids)]
        if len(found) != len(set(reminder_ids)):
            raise NotFoundError("unknown reminder(s)")
        return found

    def due(self, now: datetime, batch: int) -> list[Row]:
        return [r for r in self.t.reminders if r.status == "pending" and r.send_at <= now][:batch]

    def search(self, consultation_id: int | None, status: str | None, limit: int | None) -> list[Row]:
        found = [r for r in self.t.reminders if consultation_id in (None, r.consultation_id)]
        found = [r for r in found if status in (None, r.status)]
        return found[:limit] if limit is not None else found

    def deliveries(self, *, failed_only: bool = False, limit: int | None = None) -> NoReturn:
        _no_aggregates(failed_only, limit)

    def deliveries_of(self, reminder_id: int) -> NoReturn:
        _no_aggregates(reminder_id)

    def attempts_of(self, delivery_ids: Sequence[int]) -> NoReturn:
        _no_aggregates(delivery_ids)


class FakeOutbox:
    """The outbox is the worker's and runs against real databases only."""

    def queue(self, rows: Sequence[Mapping[str, object]]) -> NoReturn:
        _no_aggregates(rows)

    def dead_letter_abandoned(self, now: datetime, max_attempts: int) -> NoReturn:
        _no_aggregates(now, max_attempts)

    def requeue_dead(self, delivery_ids: Sequence[int] | None, now: datetime) -> NoReturn:
        _no_aggregates(delivery_ids, now)

    def claim(self, now: datetime, batch: int, lease: timedelta) -> NoReturn:
        _no_aggregates(now, batch, lease)

    def contacts(self, deliveries: Sequence[Any]) -> NoReturn:
        _no_aggregates(deliveries)

    def get(self, delivery_id: int) -> NoReturn:
        _no_aggregates(delivery_id)

    def add_attempt(self, delivery_id: int, attempt: int, at: datetime, error: str | None) -> NoReturn:
        _no_aggregates(delivery_id, attempt, at, error)


class FakeFigures:
    """The figures are database aggregates and run against real databases only."""

    def outcome_rounds(
        self, consultation_id: int, outcomes: Sequence[str], by: Literal["category", "channel"] | None
    ) -> NoReturn:
        _no_aggregates(consultation_id, outcomes, by)

    def outcome_counts(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)

    def account_rows(self, consultation_id: int, category: str, round_no: int | None) -> NoReturn:
        _no_aggregates(consultation_id, category, round_no)

    def account_participants(self, consultation_id: int, categories: Sequence[str], round_no: int | None) -> NoReturn:
        _no_aggregates(consultation_id, categories, round_no)

    def plan_sections(self, consultation_id: int, outcomes: Sequence[str]) -> NoReturn:
        _no_aggregates(consultation_id, outcomes)

    def plan_rows(self, consultation_id: int, plan_ref: str, outcomes: Sequence[str]) -> NoReturn:
        _no_aggregates(consultation_id, plan_ref, outcomes)

    def plan_participants(self, consultation_id: int, outcomes: Sequence[str]) -> NoReturn:
        _no_aggregates(consultation_id, outcomes)

    def participant_count(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)

    def opinion_rounds(self, consultation_id: int, outcomes: Sequence[str]) -> NoReturn:
        _no_aggregates(consultation_id, outcomes)

    def event_counts(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)

    def last_round(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)

    def event_summary(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)

    def last_events(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)


class FakePersonalData:
    """Access records as rows; erasure overwrites the participant row."""

    def __init__(self, t: Tables) -> None:
        self.t = t

    def record_access(
        self, *, actor_id: int, at: datetime, what: str, purpose: str, participant_ids: Iterable[int]
    ) -> int:
        row = _row(self.t.accesses, actor_id=actor_id, at=at, what=what, purpose=purpose, ids=sorted(participant_ids))
        return row.id

    def accesses(
        self, *, participant_id: int | None = None, actor: str | None = None, limit: int = 1000
    ) -> Sequence[AccessRecord]:
        names = {a.id: a.name for a in self.t.actors}
        found = [
            AccessRecord(r.id, r.at, names[r.actor_id], r.what, r.purpose, len(r.ids))
            for r in reversed(self.t.accesses)
            if participant_id in (None, *r.ids) and actor in (None, names[r.actor_id])
        ]
        return found[:limit]

    def same_person(self, participant_id: int, *, same_name_village: bool) -> list[tuple[int, str]]:
        me = self.t.participants[participant_id - 1]
        found = {participant_id: "asked"}
        for row in self.t.participants:
            if row.erased_at is None and me.contact and row.contact == me.contact:
                found.setdefault(row.id, "contact")
            if row.erased_at is None and same_name_village and (row.name, row.village) == (me.name, me.village):
                found.setdefault(row.id, "name and village")
        return sorted(found.items())

    def unsealed_texts(self, participant_ids: Iterable[int]) -> int:
        return 0  # the fake keeps texts as written; what stays unsealed is tested on real databases

    def erase_participant(self, participant_id: int, *, pseudonym: str, now: datetime) -> None:
        row = self.t.participants[participant_id - 1]
        row.name, row.contact, row.village, row.erased_at = pseudonym, None, "", now


class FakeLogins:
    """SQLite-like: no database logins, so `--as` names the actor."""

    def session_login(self) -> None:
        return None

    def binding(self, login: str) -> NoReturn:
        _no_aggregates(login)

    def bind(self, actor_id: int, login: str) -> NoReturn:
        _no_aggregates(actor_id, login)

    def exists(self, login: str) -> NoReturn:
        _no_aggregates(login)

    def is_member(self, login: str, group: str) -> NoReturn:
        _no_aggregates(login, group)

    def holds_database_role(self, login: str) -> NoReturn:
        _no_aggregates(login)

    def grant(self, group: str, login: str) -> NoReturn:
        _no_aggregates(group, login)


class FakeHeads:
    """Signed heads: no use case these tests run signs one."""

    def add(self, head: SignedHead) -> NoReturn:
        _no_aggregates(head)

    def last(self, consultation_id: int | None, key_id: str | None = None) -> None:
        return None

    def all_of(self, consultation_id: int | None = None, *, every: bool = True) -> Generator[SignedHead, None, None]:
        yield from ()

    def chain_hashes(self, consultation_id: int, seqs: Sequence[int]) -> NoReturn:
        _no_aggregates(consultation_id, seqs)

    def account_hashes(self, seqs: Sequence[int]) -> NoReturn:
        _no_aggregates(seqs)


class FakeTexts:
    """Participants' keys: the fake tables keep texts as written (sealing is tested on real databases)."""

    def create(self, participant_ids: Iterable[int], now: datetime) -> None:
        pass

    def destroy(self, participant_ids: Iterable[int]) -> int:
        return len(set(participant_ids))

    def seal(self, participant_id: int, value: str) -> str:
        return value

    def seal_many(self, texts: Sequence[tuple[int, str]]) -> list[str]:
        return [value for _, value in texts]

    def keyed(self, plain: str) -> str:
        return plain

    def open(self, value: str) -> str:
        return value


class FakePlans:
    """Plan drafts and reviews run against a real database (tests/integration/test_plan_review.py)."""

    def add_version(
        self, consultation_id: int, clauses: Sequence[Any], *, label: str | None, source: str | None,
        actor_id: int, now: datetime,
    ) -> NoReturn:  # fmt: skip
        _no_aggregates(consultation_id, clauses, label, source, actor_id, now)

    def clause_ids(self, consultation_id: int, numbers: Sequence[str]) -> NoReturn:
        _no_aggregates(consultation_id, numbers)

    def versions(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)

    def version(self, consultation_id: int, number: int | None) -> NoReturn:
        _no_aggregates(consultation_id, number)

    def clauses(self, version_id: int) -> NoReturn:
        _no_aggregates(version_id)

    def link(self, opinion_id: int, clause_ids: Sequence[int], actor_id: int, now: datetime) -> NoReturn:
        _no_aggregates(opinion_id, clause_ids, actor_id, now)

    def clauses_of_opinion(self, opinion_id: int) -> NoReturn:
        _no_aggregates(opinion_id)

    def linked_opinions(self, consultation_id: int, clause_ids: Sequence[int]) -> NoReturn:
        _no_aggregates(consultation_id, clause_ids)

    def add_review(
        self, consultation_id: int, round_no: int, version_id: int, category: str, now: datetime
    ) -> NoReturn:
        _no_aggregates(consultation_id, round_no, version_id, category, now)

    def reviews(self, consultation_id: int) -> NoReturn:
        _no_aggregates(consultation_id)

    def rated(self, consultation_id: int, round_no: int, participant_id: int) -> NoReturn:
        _no_aggregates(consultation_id, round_no, participant_id)

    def form_used(self, consultation_id: int, round_no: int, form_key: str) -> NoReturn:
        _no_aggregates(consultation_id, round_no, form_key)

    def add_ratings(
        self, consultation_id: int, round_no: int, ratings: Sequence[Any], actor_id: int, now: datetime
    ) -> NoReturn:
        _no_aggregates(consultation_id, round_no, ratings, actor_id, now)

    def rating_counts(self, consultation_id: int, version_id: int) -> NoReturn:
        _no_aggregates(consultation_id, version_id)

    def comment_states(self, consultation_id: int, version_id: int) -> NoReturn:
        _no_aggregates(consultation_id, version_id)


class FakeIntake:
    """Bulk intake runs against a real database (set-based SQL is the point)."""

    def existing_keys(self, consultation_id: int, keys: Sequence[str]) -> NoReturn:
        _no_aggregates(consultation_id, keys)

    def recorded(self, consultation_id: int, rows: Sequence[Any]) -> NoReturn:
        _no_aggregates(consultation_id, rows)

    def source_fields(self, opinion_id: int) -> None:  # fakes record no imports
        return None

    def participants(self, rows: Sequence[Any], *, created_by: int, now: datetime) -> NoReturn:
        _no_aggregates(rows, created_by, now)

    def add_opinions(self, *args: Any, **kwargs: Any) -> NoReturn:
        _no_aggregates(*args, **kwargs)


class FakeAccounts:
    """The account log as a list of drafts; accounts themselves are tested against real databases."""

    def __init__(self, t: Tables) -> None:
        self.t = t

    def append(self, drafts: Sequence[AccountDraft], key: ChainKey | None) -> None:
        self.t.account_events.extend(drafts)

    def __getattr__(self, name: str) -> Any:
        return _no_aggregates


class FakeParticipation:
    """Participation is counted set-based: tested against real databases."""

    def __getattr__(self, name: str) -> Any:
        return _no_aggregates


class FakeProgrammes:
    """Programmes of areas: tested against real databases."""

    def __getattr__(self, name: str) -> Any:
        return _no_aggregates


class FakeThemes:
    """Themes are coded and counted set-based: tested against real databases."""

    def __getattr__(self, name: str) -> Any:
        return _no_aggregates


class FakeUnitOfWork:
    """One transaction over the fake tables: changes are kept only when committed."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.committed = False

    def __enter__(self) -> FakeUnitOfWork:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self.tables = copy.deepcopy(self.db.tables)
        self.actors = FakeActors(self.tables)
        self.locks: list[tuple[str, tuple[int, ...]]] = []
        self.consultations = FakeConsultations(self.tables, self.locks)
        self.opinions = FakeOpinions(self.tables, self.locks)
        self.audit = FakeAudit(self.tables)
        self.reminders = FakeReminders(self.tables)
        self.figures = FakeFigures()
        self.outbox = FakeOutbox()
        self.personal_data = FakePersonalData(self.tables)
        self.logins = FakeLogins()
        self.intake = FakeIntake()
        self.accounts = FakeAccounts(self.tables)
        self.heads = FakeHeads()
        self.texts = FakeTexts()
        self.plans = FakePlans()
        self.themes = FakeThemes()
        self.participation = FakeParticipation()
        self.programmes = FakeProgrammes()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.db.lock_log.append(self.locks)

    def commit(self) -> None:
        if self.db.conflicts_to_raise:
            self.db.conflicts_to_raise -= 1
            raise RetryableConflictError("a deadlock with another transaction")
        self.db.tables = self.tables
        self.db.commits += 1

    def flush(self) -> None:
        """Ids are assigned at once; nothing to send."""

    def release(self) -> None:
        """Rows live in the fake tables; nothing to forget."""


class FakeDatabase:
    """The fake's `Database`: tables, the lock order each transaction used, conflicts to inject."""

    def __init__(self) -> None:
        self.tables = Tables()
        FakeActors(self.tables).add(
            name="system", lang="en", contact=None, roles=[Role.SYSTEM], now=datetime.min.replace(tzinfo=timezone.utc)
        )
        self.commits = 0
        self.conflicts_to_raise = 0
        self.lock_log: list[list[tuple[str, tuple[int, ...]]]] = []

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def reading(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def schema_revision(self) -> str | None:
        return "fake"

    def head_revision(self) -> str | None:
        return "fake"

    def upgrade(self) -> None:
        """Nothing to migrate."""

    def dispose(self) -> None:
        """Nothing to close."""

    def verify_chain(self, consultation_id: int) -> bool:
        """Recompute the consultation's chain from the stored fields."""
        head = GENESIS_HASH
        for e in sorted(
            (e for e in self.tables.events if e.consultation_id == consultation_id), key=lambda e: e.chain_seq
        ):
            fields = {k: v for k, v in e.attrs.items() if k not in ("prev_hash", "hash")}
            fields["payload"] = json.loads(fields["payload"])
            if e.prev_hash != head or chain_hash(head, AuditContent(**fields)) != e.hash:
                return False
            head = e.hash
        return True
