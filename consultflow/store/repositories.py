"""Repositories: the queries the use cases need, and the only writer of the audit chain."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, and_, case, cast, delete, func, select, type_coerce
from sqlalchemy.orm import Session

from consultflow.domain.audit import AuditContent, ChainKey, EventKind, payload_text, text_hash, utc_iso
from consultflow.domain.errors import NotFoundError, RoundStateError
from consultflow.domain.identity import PORTAL_ACTOR
from consultflow.domain.model import (
    ConsultationRow,
    Disagreement,
    EventFilter,
    EventSummary,
    FactEvent,
    LastEvent,
    OpinionReplay,
    ReplayRules,
    StoredEvent,
)
from consultflow.domain.roles import Role
from consultflow.store import verify_queries
from consultflow.store.batches import BATCH_SIZE, STREAM_ROWS, chunked
from consultflow.store.bulk import insert_plain, table_of
from consultflow.store.filters import equal_where_given
from consultflow.store.models import (
    Actor,
    ActorRole,
    AuditEvent,
    Consultation,
    Opinion,
    Round,
    Workflow,
)
from consultflow.store.opinions import OpinionRepository
from consultflow.store.texts import TextKeys
from consultflow.store.types import stored
from consultflow.store.verify_queries import by_opinion, stream_tuples


class ActorRepository:
    """People who act, and their roles."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_name(self, name: str) -> Actor | None:
        """The actor called `name`, if registered."""
        return self.session.scalar(select(Actor).where(Actor.name == name))

    def require(self, name: str | None) -> tuple[Actor, list[Role]]:
        """The acting person and their roles; refuses an anonymous or unknown one."""
        if not name:
            msg = "this command changes data: say who you are with --as NAME (or CONSULTFLOW_ACTOR)"
            raise NotFoundError(msg)
        stmt = (  # the actor and their roles in one statement: every change starts here
            select(Actor, ActorRole.role)
            .outerjoin(ActorRole, ActorRole.actor_id == Actor.id)
            .where(Actor.name == name)
            .order_by(ActorRole.position)
        )
        found = self.session.execute(stmt).all()
        if not found:
            msg = f"unknown actor {name!r}; register people with 'consultflow actor add'"
            raise NotFoundError(msg)
        return found[0][0], [Role(role) for _actor, role in found if role is not None]

    def roles(self, actor_id: int) -> list[Role]:
        """An actor's roles in the order they were given."""
        rows = self.session.scalars(
            select(ActorRole.role).where(ActorRole.actor_id == actor_id).order_by(ActorRole.position)
        )
        return [Role(r) for r in rows]

    def system(self) -> Actor:
        """Consultflow's own actor (seeded by the first migration)."""
        stmt = select(Actor).join(ActorRole, ActorRole.actor_id == Actor.id).where(ActorRole.role == Role.SYSTEM.value)
        found = self.session.scalar(stmt.limit(1))
        assert found is not None, "the first migration seeds the system actor"
        return found

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
    ) -> Actor:
        """Register an actor with roles in the order given."""
        row = Actor(name=name, lang=lang, contact=contact, created_at=now, participant_id=participant_id, login=login)
        self.session.add(row)
        self.session.flush()
        self.session.add_all(ActorRole(actor_id=row.id, role=r.value, position=i) for i, r in enumerate(roles))
        return row

    def add_role(self, actor_id: int, role: Role) -> None:
        """Give an actor one more role, after the ones they have."""
        last = self.session.scalar(select(func.max(ActorRole.position)).where(ActorRole.actor_id == actor_id))
        self.session.add(ActorRole(actor_id=actor_id, role=role.value, position=0 if last is None else last + 1))
        self.session.flush()

    def remove_role(self, actor_id: int, role: Role) -> None:
        """Take one role from an actor."""
        self.session.execute(delete(ActorRole).where(ActorRole.actor_id == actor_id, ActorRole.role == role.value))

    def get(self, actor_id: int) -> Actor | None:
        """An actor by id, if there is one."""
        return self.session.get(Actor, actor_id)

    def with_role(self, role: Role) -> list[Actor]:
        """Everyone who has `role`, by id."""
        stmt = (
            select(Actor)
            .join(ActorRole, ActorRole.actor_id == Actor.id)
            .where(ActorRole.role == role.value)
            .order_by(Actor.id)
        )
        return list(self.session.scalars(stmt))

    def with_roles(self) -> list[tuple[Actor, list[Role]]]:
        """Every actor with their roles in the order given, by id."""
        roles: dict[int, list[Role]] = {}
        stmt = select(ActorRole.actor_id, ActorRole.role).order_by(ActorRole.actor_id, ActorRole.position)
        for actor_id, role in self.session.execute(stmt):
            roles.setdefault(actor_id, []).append(Role(role))
        return [(a, roles.get(a.id, [])) for a in self.session.scalars(select(Actor).order_by(Actor.id))]

    def count_people(self) -> int:
        """Registered people, not counting consultflow's own system actor and web portal."""
        stmt = (
            select(func.count())
            .select_from(ActorRole)
            .join(Actor, Actor.id == ActorRole.actor_id)
            .where(ActorRole.role != Role.SYSTEM.value, Actor.name != PORTAL_ACTOR)
        )
        return int(self.session.scalar(stmt) or 0)


class ConsultationRepository:
    """Consultations and their rounds."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, consultation_id: int, *, lock: bool = False) -> Consultation:
        """A consultation; `lock` serialises writers of its audit chain (PostgreSQL row lock)."""
        found = self.session.get(Consultation, consultation_id, with_for_update=lock or None)
        if found is None:
            msg = f"unknown consultation {consultation_id}; list them with 'consultflow consultation list'"
            raise NotFoundError(msg)
        return found

    def lock_of_opinions(self, opinion_ids: Sequence[int]) -> list[Consultation]:
        """The consultations of opinions, locked in id order: one statement for up to 1,000 opinions."""
        if len(opinion_ids) <= BATCH_SIZE:
            owners: Any = select(Opinion.consultation_id).where(Opinion.id.in_(list(opinion_ids)))
        else:
            found: set[int] = set()
            for batch in chunked(sorted(set(opinion_ids))):
                found.update(self.session.scalars(select(Opinion.consultation_id).where(Opinion.id.in_(batch))))
            owners = sorted(found)  # a consultation per county at most: a short list
        stmt = select(Consultation).where(Consultation.id.in_(owners)).order_by(Consultation.id).with_for_update()
        return list(self.session.scalars(stmt))

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
    ) -> Consultation:
        """Start a consultation with an empty audit chain."""
        row = Consultation(
            title=title,
            area=area,
            workflow_id=workflow_id,
            created_at=now,
            created_by_id=created_by,
            chain_seq=0,
            chain_head=genesis,
            chain_key_id=chain_key_id,
            auto_close=auto_close,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def listing(self) -> list[tuple[Consultation, str, int, int]]:
        """Every consultation with its workflow's name and version and its number of opinions."""
        per_consultation = select(Opinion.consultation_id, func.count()).group_by(Opinion.consultation_id)
        counts = dict(self.session.execute(per_consultation).all())
        stmt = (
            select(Consultation, Workflow.name, Workflow.version)
            .join(Workflow, Workflow.id == Consultation.workflow_id)
            .order_by(Consultation.id)
        )
        return [(c, name, version, counts.get(c.id, 0)) for c, name, version in self.session.execute(stmt)]

    def open_rounds(self, consultation_ids: Sequence[int]) -> set[tuple[int, int]]:
        """(consultation, round number) of the open round of each of these consultations."""
        found: set[tuple[int, int]] = set()
        for batch in chunked(sorted(set(consultation_ids))):
            stmt = select(Round.consultation_id, Round.number).where(
                Round.consultation_id.in_(batch), Round.status == "open"
            )
            found.update((c, n) for c, n in self.session.execute(stmt))
        return found

    def due_for_auto_close(self, now: datetime) -> list[int]:
        """Consultations with automatic closing whose open round's closing time has passed."""
        stmt = (
            select(Round.consultation_id)
            .join(Consultation, Consultation.id == Round.consultation_id)
            .where(Consultation.auto_close.is_(True), Round.status == "open", Round.closes_at <= now)
            .order_by(Round.consultation_id)
        )
        return list(self.session.scalars(stmt))

    def ids(self) -> list[int]:
        """Every consultation's id, in order."""
        return list(self.session.scalars(select(Consultation.id).order_by(Consultation.id)))

    def last_round_number(self, consultation_id: int) -> int:
        """The highest round number so far (0 before the first round)."""
        stmt = select(func.max(Round.number)).where(Round.consultation_id == consultation_id)
        return int(self.session.scalar(stmt) or 0)

    def add_round(self, consultation_id: int, number: int, closes_at: datetime | None, now: datetime) -> Round:
        """Open a round."""
        row = Round(consultation_id=consultation_id, number=number, status="open", opened_at=now, closes_at=closes_at)
        self.session.add(row)
        self.session.flush()
        return row

    def rounds(self, consultation_id: int) -> list[Round]:
        """All rounds of a consultation, oldest first."""
        stmt = select(Round).where(Round.consultation_id == consultation_id).order_by(Round.number)
        return list(self.session.scalars(stmt))

    def open_round(self, consultation_id: int) -> Round | None:
        """The round now open, if any."""
        stmt = select(Round).where(Round.consultation_id == consultation_id, Round.status == "open")
        return self.session.scalar(stmt)

    def require_open_round(self, consultation_id: int) -> Round:
        """The open round, or a refusal that says how to open one."""
        found = self.open_round(consultation_id)
        if found is None:
            msg = (
                f"consultation {consultation_id} has no open round; "
                f"open one with 'consultflow round open {consultation_id}'"
            )
            raise RoundStateError(msg)
        return found


def utc_text(session: Session, column: ColumnElement[datetime]) -> ColumnElement[str]:
    """A stored time as the chain's canonical text (`utc_iso`), formatted by the database.

    Formatting in SQL spares verify a datetime per event. SQLite holds UTC as text with six
    fractional digits (SQLAlchemy's storage format), PostgreSQL a timestamptz. A value stored in
    another form by hand no longer matches its hash, as any other edit.
    """
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"').label("at")
    return (func.replace(type_coerce(column, String), " ", "T") + "Z").label("at")


class AuditLog:
    """Appends hash-chained events; there is no update or delete here, nor in the database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(
        self, consultation: ConsultationRow, drafts: Sequence[AuditContent], key: ChainKey | None = None
    ) -> None:
        """Chain `drafts` after the consultation's head and insert them in one statement.

        The caller holds the consultation row (locked on PostgreSQL, BEGIN IMMEDIATE on SQLite),
        so chain sequence numbers never collide; the unique key catches it if they ever would.
        """
        if not drafts:
            return
        self.session.flush()
        rows: list[dict[str, object]] = []
        consultation_id, seq, head = consultation.id, consultation.chain_seq, consultation.chain_head
        # The events of one change share their moment, and bulk work their payload: each is written
        # out once. Keyed by identity, which the drafts keep alive until the end of this call.
        payloads: dict[int, str] = {}
        moments: dict[int, str] = {}
        for draft in drafts:
            seq += 1
            payload = payloads.get(id(draft.payload))
            if payload is None:  # stored as the hash sees it: verify reuses the text
                payload = payloads[id(draft.payload)] = payload_text(draft.payload)
            at = moments.get(id(draft.at))
            if at is None:
                at = moments[id(draft.at)] = utc_iso(draft.at)
            canonical = draft.canonical(payload, at=at, consultation_id=consultation_id, chain_seq=seq)
            digest = text_hash(head, canonical, key)
            rows.append(
                {
                    "consultation_id": consultation_id,
                    "chain_seq": seq,
                    "kind": draft.kind,
                    "opinion_id": draft.opinion_id,
                    "opinion_seq": draft.opinion_seq,
                    "trigger": draft.trigger,
                    "from_state": draft.from_state,
                    "to_state": draft.to_state,
                    "round_no": draft.round_no,
                    "completes_cycle": draft.completes_cycle,
                    "actor": draft.actor,
                    "role": draft.role,
                    "at": draft.at,
                    "payload": payload,
                    "prev_hash": head,
                    "hash": digest,
                }
            )
            head = digest
        insert_plain(self.session, table_of(AuditEvent), rows)  # the driver's executemany or COPY: no binding per value
        consultation.chain_seq, consultation.chain_head = seq, head

    def chain(self, consultation_id: int, after: int = 0) -> Generator[StoredEvent, None, None]:
        """A consultation's events in chain order, streamed in batches (a server-side cursor on PostgreSQL).

        Close the iterator when stopping early (`contextlib.closing`), so the cursor is released.
        """
        table = table_of(AuditEvent)
        columns = [
            utc_text(self.session, table.c.at) if name == "at" else table.c[name] for name in StoredEvent._fields
        ]
        stmt = (  # the driver's tuples, not ORM objects nor Rows: verify reads each event once and keeps none
            select(*columns)
            .where(table.c.consultation_id == consultation_id, table.c.chain_seq > after)
            .order_by(table.c.chain_seq)
        )
        rows = stream_tuples(self.session, stmt)
        try:
            yield from map(StoredEvent._make, rows)
        finally:
            rows.close()

    def chain_rows(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """A consultation's events in chain order as the driver's plain tuples, in StoredEvent's order, streamed.

        What `chain` gives without making a StoredEvent of each row (verify reads each once).
        Close the iterator when stopping early (`contextlib.closing`), so the cursor is released.
        """
        table = table_of(AuditEvent)
        columns = [
            utc_text(self.session, table.c.at) if name == "at" else table.c[name] for name in StoredEvent._fields
        ]
        stmt = select(*columns).where(table.c.consultation_id == consultation_id).order_by(table.c.chain_seq)
        return stream_tuples(self.session, stmt)

    def summaries(self, consultation_id: int, opinion_id: int | None = None) -> Generator[EventSummary, None, None]:
        """Per opinion with events (or only `opinion_id`), by id: what they say of it, grouped by the database.

        Verify compares these with the live rows after the chain has proved the events intact, so
        nothing is kept per opinion in memory. Within an opinion, the chain order and the sequence
        order agree (the chain proves both).
        """
        e, later = table_of(AuditEvent), table_of(AuditEvent).alias("later")

        def latest(column: Any, *where: ColumnElement[bool]) -> Any:
            return (
                select(column)
                .where(later.c.opinion_id == e.c.opinion_id, *where)
                .order_by(later.c.opinion_seq.desc())
                .limit(1)
                .scalar_subquery()
            )

        stmt = (
            select(
                e.c.opinion_id,
                func.coalesce(func.max(e.c.opinion_seq), 0),
                func.sum(case((e.c.completes_cycle, 1), else_=0)),
                latest(later.c.to_state, later.c.to_state.is_not(None), later.c.to_state != ""),
                latest(stored(later.c.payload), later.c.kind == EventKind.ASSIGNED, later.c.payload != "{}"),
            )
            .where(*by_opinion(e.c.opinion_id, e.c.consultation_id, consultation_id, opinion_id))
            .where(e.c.opinion_id.is_not(None))
            .group_by(e.c.opinion_id)
            .order_by(e.c.opinion_id)
            .execution_options(yield_per=STREAM_ROWS)
        )
        rows = self.session.execute(stmt)
        try:
            for found, last_seq, cycles, state, assigned in rows:
                yield EventSummary(int(found), int(last_seq), int(cycles or 0), state, assigned)
        finally:
            rows.close()  # a server-side cursor on PostgreSQL, when verify stops at the first problem

    def fact_events(self, consultation_id: int, opinion_id: int | None = None) -> Generator[FactEvent, None, None]:
        """The submitted, corrected and transition events of its opinions (or of one), by opinion and sequence.

        Verify folds them an opinion at a time (its text, category, plan reference, merge target,
        feedback and replies) and compares that with the live rows, after the chain has proved them.
        """
        e = table_of(AuditEvent)
        kinds = (EventKind.SUBMITTED, EventKind.CORRECTED, EventKind.TRANSITION)
        stmt = (
            select(e.c.opinion_id, e.c.opinion_seq, e.c.kind, e.c.trigger, e.c.round_no, stored(e.c.payload))
            .where(*by_opinion(e.c.opinion_id, e.c.consultation_id, consultation_id, opinion_id))
            .where(e.c.opinion_id.is_not(None), e.c.kind.in_(kinds))
            .order_by(e.c.opinion_id, e.c.opinion_seq)
            .execution_options(yield_per=STREAM_ROWS)
        )
        rows = self.session.execute(stmt)
        try:
            yield from map(FactEvent._make, rows)
        finally:
            rows.close()  # a server-side cursor on PostgreSQL, when verify stops at the first problem

    def disagreements(self, consultation_id: int, rules: ReplayRules) -> Generator[Disagreement, None, None]:
        """The live opinions the database could not match with their events, by id, streamed (for verify)."""
        return verify_queries.disagreements(self.session, consultation_id, rules)

    def entry_disagreements(self, consultation_id: int, rules: ReplayRules) -> Generator[int, None, None]:
        """Opinions whose feedback or reply rows no transition records one to one, by id, streamed (for verify)."""
        return verify_queries.entry_disagreements(self.session, consultation_id, rules)

    def opinion_replay(self, consultation_id: int, opinion_id: int) -> OpinionReplay:
        """One opinion's live row, the summary of its events, its fact events and its feedback and replies."""
        opinions = OpinionRepository(self.session, TextKeys(self.session))
        return OpinionReplay(
            list(opinions.live_columns(consultation_id, opinion_id)),
            list(self.summaries(consultation_id, opinion_id)),
            list(self.fact_events(consultation_id, opinion_id)),
            list(opinions.live_entries(consultation_id, opinion_id)),
        )

    def live_seq_total(self, consultation_id: int) -> int:
        """The sum of the consultation's opinions' live sequence numbers."""
        return verify_queries.live_seq_total(self.session, consultation_id)

    def first_orphan(self, consultation_id: int) -> int | None:
        """The lowest opinion id the chain's events name that is not one of the consultation's opinions."""
        return verify_queries.first_orphan(self.session, consultation_id)

    def group_events(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """Every chain's events setting a group of this consultation's participants, by participant, streamed."""
        return verify_queries.group_events(self.session, consultation_id)

    def live_groups(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """(participant, group) of each participant with opinions in the consultation, by id, streamed."""
        return verify_queries.live_groups(self.session, consultation_id)

    def search(self, criteria: EventFilter) -> Iterator[AuditEvent]:
        """Opinion events matching every filter, in the order they happened, streamed."""
        c = criteria
        where: list[ColumnElement[bool]] = [AuditEvent.opinion_id.is_not(None)]
        where += equal_where_given(
            [
                (Opinion.consultation_id, c.consultation_id),
                (Opinion.participant_id, c.participant_id),
                (Opinion.category, c.category),
                (Opinion.channel, c.channel),
                (Opinion.outcome, c.outcome),
                (AuditEvent.to_state, c.state),
                (AuditEvent.round_no, c.round_no),
            ]
        )
        if c.since is not None:
            where.append(AuditEvent.at >= c.since)
        if c.until is not None:
            where.append(AuditEvent.at < c.until)
        stmt = (
            select(AuditEvent)
            .join(Opinion, Opinion.id == AuditEvent.opinion_id)
            .where(*where)
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        if c.limit is not None:
            stmt = stmt.limit(c.limit)
        yield from self.session.scalars(stmt.execution_options(yield_per=STREAM_ROWS))

    def last_events(self, moment: datetime, consultation_id: int | None = None) -> Iterator[LastEvent]:
        """For each opinion by id, its last event at or before `moment` and the cycles completed by then, streamed."""
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
        stmt = (
            select(
                AuditEvent.opinion_id,
                AuditEvent.consultation_id,
                Opinion.workflow_id,
                AuditEvent.to_state,
                AuditEvent.round_no,
                last.c.cycles,
                AuditEvent.at,
            )
            .join(last, and_(last.c.opinion_id == AuditEvent.opinion_id, last.c.seq == AuditEvent.opinion_seq))
            .join(Opinion, Opinion.id == AuditEvent.opinion_id)
            .order_by(AuditEvent.opinion_id)
        )
        for o, cid, wf, state, round_no, cycles, at in self.session.execute(
            stmt.execution_options(yield_per=STREAM_ROWS)
        ):
            yield LastEvent(int(o), cid, wf, str(state), int(round_no or 0), int(cycles or 0), at)

    def for_opinion(self, opinion_id: int) -> list[AuditEvent]:
        """An opinion's events in order."""
        stmt = select(AuditEvent).where(AuditEvent.opinion_id == opinion_id).order_by(AuditEvent.opinion_seq)
        return list(self.session.scalars(stmt))
