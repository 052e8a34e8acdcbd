"""Opinions: reads, row locks in id order, recording, and the set-based round close."""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterator, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Select, case, func, insert, literal, select, update
from sqlalchemy.orm import Session, aliased

from consultflow.domain.entering import Entering
from consultflow.domain.errors import NotFoundError, RetryableConflictError
from consultflow.domain.model import (
    MOVING_COLUMNS,
    ConsultationRow,
    LiveEntry,
    LiveOpinion,
    MovingOpinion,
    NewEntry,
    NewOpinionRow,
    OpinionFilter,
)
from consultflow.store.batches import STREAM_ROWS, chunked
from consultflow.store.bulk import table_of
from consultflow.store.filters import equal_where_given
from consultflow.store.models import Actor, Opinion, OpinionEntry, Participant
from consultflow.store.texts import TextKeys
from consultflow.store.types import stored
from consultflow.store.verify_queries import by_opinion


class OpinionRepository:
    """Opinions and what was exchanged about them."""

    def __init__(self, session: Session, texts: TextKeys) -> None:
        self.session = session
        self.texts = texts

    def get(self, opinion_id: int) -> Opinion:
        """An opinion by id."""
        found = self.session.get(Opinion, opinion_id)
        if found is None:
            msg = f"unknown opinion {opinion_id}; list them with 'consultflow opinion list'"
            raise NotFoundError(msg)
        return found

    def get_many(self, opinion_ids: Sequence[int]) -> list[Opinion]:
        """Opinions by id, in the order asked; refuses if any id is unknown."""
        return self._many(opinion_ids, lock=False)

    def lock_many(self, opinion_ids: Sequence[int]) -> list[Opinion]:
        """Opinions by id, row-locked in id order (PostgreSQL), returned in the order asked."""
        return self._many(opinion_ids, lock=True)

    def _many(self, opinion_ids: Sequence[int], *, lock: bool) -> list[Opinion]:
        rows: dict[int, Opinion] = {}
        for batch in chunked(sorted(set(opinion_ids))):
            stmt = select(Opinion).where(Opinion.id.in_(batch)).order_by(Opinion.id)
            if lock:
                stmt = stmt.with_for_update()
            rows.update((o.id, o) for o in self.session.scalars(stmt))
        _refuse_missing(opinion_ids, rows.keys())
        return [rows[i] for i in opinion_ids]

    def lock_moving(self, opinion_ids: Sequence[int]) -> list[MovingOpinion]:
        """Opinions by id as plain rows, row-locked in id order (PostgreSQL), in the order asked."""
        self.session.flush()
        table = table_of(Opinion)
        columns = [table.c[name] for name in MOVING_COLUMNS]
        rows: dict[int, MovingOpinion] = {}
        for batch in chunked(sorted(set(opinion_ids))):
            stmt = select(*columns).where(table.c.id.in_(batch)).order_by(table.c.id).with_for_update()
            rows.update((row[0], MovingOpinion(*row)) for row in self.session.execute(stmt))
        _refuse_missing(opinion_ids, rows.keys())
        return [rows[i] for i in opinion_ids]

    def write_moves(self, moved: Sequence[MovingOpinion]) -> None:
        """Write what transitions (or an assignment) changed: one UPDATE per group of opinions changed alike.

        Opinions moved by the same trigger from the same state get the same new values, and their
        sequence and rounds count the same steps, so a bulk fire is a few set-based statements a
        batch. The caller holds the rows' locks; a count that does not match means someone wrote
        them outside consultflow, and the change is retried.
        """
        table = table_of(Opinion)
        groups: dict[_Change, list[int]] = {}
        for o in moved:
            change = (
                o.state,
                o.state_entered_at,
                o.current_round,
                o.outcome,
                o.plan_ref,
                o.merged_into_id,
                o.assigned_planner_id,
                o.last_seq - o.loaded_seq,
                o.rounds_count - o.loaded_rounds,
            )
            groups.setdefault(change, []).append(o.id)
        for (
            state,
            entered_at,
            round_no,
            outcome,
            plan_ref,
            merged_into,
            planner,
            seq_step,
            rounds_step,
        ), ids in groups.items():
            for batch in chunked(ids):
                stmt = (
                    update(table)
                    .where(table.c.id.in_(batch))
                    .values(
                        state=state,
                        state_entered_at=entered_at,
                        current_round=round_no,
                        outcome=outcome,
                        plan_ref=plan_ref,
                        merged_into_id=merged_into,
                        assigned_planner_id=planner,
                        last_seq=table.c.last_seq + seq_step,
                        rounds_count=table.c.rounds_count + rounds_step,
                        version=table.c.version + 1,
                    )
                )
                written = self.session.execute(stmt).rowcount  # type: ignore[attr-defined]
                if written != len(batch):
                    msg = f"{len(batch) - written} locked opinion(s) changed under a transition"
                    raise RetryableConflictError(msg)
        for o in moved:
            o.loaded_seq, o.loaded_rounds = o.last_seq, o.rounds_count
            held = self.session.identity_map.get(Session.identity_key(Opinion, o.id))
            if held is not None:  # an ORM copy read earlier in the change is now stale
                self.session.expire(held)

    def add_entries(self, entries: Sequence[NewEntry]) -> None:
        """The feedback and replies that a batch of transitions carry, in one executemany."""
        if not entries:
            return
        self.session.execute(insert(table_of(OpinionEntry)), [e._asdict() for e in entries])

    def view_names(self, opinion_ids: Sequence[int]) -> dict[int, tuple[str, str, str | None, str]]:
        """For each opinion: (participant, village, assigned planner, recorded by), in one query per batch."""
        planner, recorder = aliased(Actor), aliased(Actor)
        out: dict[int, tuple[str, str, str | None, str]] = {}
        for batch in chunked(sorted(set(opinion_ids))):
            stmt = (
                select(Opinion.id, Participant.name, Participant.village, planner.name, recorder.name)
                .join(Participant, Participant.id == Opinion.participant_id)
                .join(recorder, recorder.id == Opinion.recorded_by_id)
                .outerjoin(planner, planner.id == Opinion.assigned_planner_id)
                .where(Opinion.id.in_(batch))
            )
            out.update((i, (name, village, pl, rec)) for i, name, village, pl, rec in self.session.execute(stmt))
        return out

    def open_texts(self, consultation_id: int, category: str | None = None) -> Iterator[tuple[int, str, str]]:
        """(id, category, text) of the consultation's undecided opinions (of one category, if given), streamed."""
        stmt = (
            select(Opinion.id, Opinion.category, Opinion.text)
            .where(Opinion.consultation_id == consultation_id, Opinion.outcome.is_(None))
            .order_by(Opinion.id)
            .execution_options(yield_per=1000)
        )
        if category is not None:
            stmt = stmt.where(Opinion.category == category)
        for oid, found, text in self.session.execute(stmt):
            yield int(oid), str(found), str(text)

    def open_categories(self, consultation_id: int) -> list[str]:
        """The categories of the consultation's undecided opinions (read from an index)."""
        stmt = (
            select(Opinion.category)
            .where(Opinion.consultation_id == consultation_id, Opinion.outcome.is_(None))
            .distinct()
            .order_by(Opinion.category)
        )
        return [str(c) for c in self.session.scalars(stmt)]

    def live_columns(self, consultation_id: int, opinion_id: int | None = None) -> Generator[LiveOpinion, None, None]:
        """The live columns of each opinion (or one) that its events account for, by id, streamed (for verify)."""
        table = table_of(Opinion)
        stmt = (  # plain tuples, in LiveOpinion's order
            select(*(stored(table.c[name]) if name == "text" else table.c[name] for name in _LIVE_COLUMNS))
            .where(*by_opinion(table.c.id, table.c.consultation_id, consultation_id, opinion_id))
            .order_by(table.c.id)
            .execution_options(yield_per=STREAM_ROWS)
        )
        rows = self.session.execute(stmt)
        try:
            yield from map(LiveOpinion._make, rows)
        finally:
            rows.close()  # a server-side cursor on PostgreSQL, when verify stops at the first problem

    def live_entries(self, consultation_id: int, opinion_id: int | None = None) -> Generator[LiveEntry, None, None]:
        """The feedback and replies of the consultation's opinions (or of one), by opinion and sequence (for verify)."""
        e, o = table_of(OpinionEntry), table_of(Opinion)
        stmt = (
            select(e.c.opinion_id, e.c.opinion_seq, e.c.round_no, e.c.kind, e.c.stance, stored(e.c.text))
            .join(o, o.c.id == e.c.opinion_id)
            .where(*by_opinion(e.c.opinion_id, o.c.consultation_id, consultation_id, opinion_id))
            .order_by(e.c.opinion_id, e.c.opinion_seq, e.c.id)
            .execution_options(yield_per=STREAM_ROWS)
        )
        rows = self.session.execute(stmt)
        try:
            yield from map(LiveEntry._make, rows)
        finally:
            rows.close()

    def merged_into(self, target_id: int) -> list[tuple[int, int]]:
        """(opinion, its participant) of each opinion merged into `target_id` (its lineage), by id."""
        stmt = (
            select(Opinion.id, Opinion.participant_id).where(Opinion.merged_into_id == target_id).order_by(Opinion.id)
        )
        return [(int(i), int(p)) for i, p in self.session.execute(stmt)]

    def by_receipt(self, receipt_hash: str) -> int | None:
        """The opinion whose receipt code hashes to `receipt_hash` (unique index)."""
        found = self.session.scalar(select(Opinion.id).where(Opinion.receipt_hash == receipt_hash))
        return int(found) if found is not None else None

    def by_intake_key(self, consultation_id: int, intake_key: str) -> int | None:
        """The opinion recorded under `intake_key` in the consultation, if any (unique index)."""
        keyed = self.texts.keyed(intake_key)
        stmt = select(Opinion.id).where(Opinion.consultation_id == consultation_id, Opinion.intake_key == keyed)
        found = self.session.scalar(stmt)
        return int(found) if found is not None else None

    def add_many(
        self,
        consultation: ConsultationRow,
        rows: Sequence[NewOpinionRow],
        *,
        recorded_by: int,
        state: str,
        round_no: int,
        now: datetime,
    ) -> list[Opinion]:
        """Record opinions at sequence 1 in `state`; returns them with their ids."""
        added = [
            Opinion(
                consultation_id=consultation.id,
                workflow_id=consultation.workflow_id,
                participant_id=row.participant_id,
                recorded_by_id=recorded_by,
                category=row.category,
                channel=row.channel,
                text=row.text,
                state=state,
                state_entered_at=now,
                current_round=round_no,
                rounds_count=0,
                last_seq=1,
                submitted_at=now,
                intake_key=None if row.intake_key is None else self.texts.keyed(row.intake_key),
                receipt_hash=row.receipt_hash,
            )
            for row in rows
        ]
        self.session.add_all(added)
        self.session.flush()
        return added

    def search(self, criteria: OpinionFilter) -> list[Opinion]:
        """Opinions matching every value the filter gives, oldest first."""
        return list(self.session.scalars(self._matching(criteria)))

    def search_streamed(self, criteria: OpinionFilter) -> Iterator[Opinion]:
        """As `search`, streamed: a list of a million opinions is read a batch at a time."""
        yield from self.session.scalars(self._matching(criteria).execution_options(yield_per=STREAM_ROWS))

    def _matching(self, criteria: OpinionFilter) -> Select[Opinion]:
        stmt = select(Opinion).order_by(Opinion.id)
        stmt = stmt.where(
            *equal_where_given(
                [
                    (Opinion.consultation_id, criteria.consultation_id),
                    (Opinion.assigned_planner_id, criteria.assigned_planner_id),
                    (Opinion.state, criteria.state),
                    (Opinion.category, criteria.category),
                    (Opinion.channel, criteria.channel),
                    (Opinion.current_round, criteria.round_no),
                    (Opinion.outcome, criteria.outcome),
                    (Opinion.participant_id, criteria.participant_id),
                ]
            )
        )
        if criteria.limit is not None:
            stmt = stmt.limit(criteria.limit)
        return stmt

    def undecided(self) -> list[Opinion]:
        """Every opinion without an outcome, in every consultation, by id."""
        return list(self.session.scalars(select(Opinion).where(Opinion.outcome.is_(None)).order_by(Opinion.id)))

    def entries(self, opinion_id: int) -> list[tuple[OpinionEntry, str]]:
        """What was exchanged about an opinion, in order, with who wrote each."""
        stmt = (
            select(OpinionEntry, Actor.name)
            .join(Actor, Actor.id == OpinionEntry.actor_id)
            .where(OpinionEntry.opinion_id == opinion_id)
            .order_by(OpinionEntry.opinion_seq)
        )
        return [(entry, name) for entry, name in self.session.execute(stmt)]

    def count_by_state(self, consultation_id: int, *, open_only: bool = False) -> dict[str, int]:
        """How many of the consultation's opinions are in each state (undecided ones only, if asked)."""
        stmt = select(Opinion.state, func.count()).where(Opinion.consultation_id == consultation_id)
        if open_only:
            stmt = stmt.where(Opinion.outcome.is_(None))
        return dict(self.session.execute(stmt.group_by(Opinion.state)).all())

    def in_states(self, consultation_id: int, states: Sequence[str]) -> Iterator[tuple[int, str, datetime, int]]:
        """(id, state, state_entered_at, last_seq) of the consultation's opinions in `states`, by id, streamed.

        Read it through before changing those opinions: the rows come from an open cursor.
        """
        if not states:
            return
        stmt = (
            select(Opinion.id, Opinion.state, Opinion.state_entered_at, Opinion.last_seq)
            .where(Opinion.consultation_id == consultation_id, Opinion.state.in_(states))
            .order_by(Opinion.id)
            .execution_options(yield_per=STREAM_ROWS)
        )
        yield from self.session.execute(stmt)

    def close_round(
        self, consultation_id: int, effects: Mapping[str, Entering | None], next_round: int, now: datetime
    ) -> None:
        """One UPDATE compiled from the same `Entering` values a single transition applies.

        Its SET clauses read the pre-update row, so an opinion moved by one rule is never caught by
        another. States mapped to None are carried over: only their round and sequence move.
        """
        if not effects:
            return
        fired = {state: e for state, e in effects.items() if e is not None}
        values: dict[str, object] = {
            "current_round": next_round,
            "last_seq": Opinion.last_seq + 1,
            "version": Opinion.version + 1,
        }
        if fired:
            values |= {
                "state": case({s: e.dest for s, e in fired.items()}, value=Opinion.state, else_=Opinion.state),
                "state_entered_at": case(
                    {s: literal(now, Opinion.state_entered_at.type) for s in fired},
                    value=Opinion.state,
                    else_=Opinion.state_entered_at,
                ),
                "rounds_count": Opinion.rounds_count
                + case({s: e.rounds_increment for s, e in fired.items()}, value=Opinion.state, else_=0),
                "outcome": case(
                    {s: literal(e.outcome) for s, e in fired.items()}, value=Opinion.state, else_=Opinion.outcome
                ),
            }
        self.session.flush()
        self.session.execute(
            update(Opinion)
            .where(Opinion.consultation_id == consultation_id, Opinion.state.in_(list(effects)))
            .values(values)
            .execution_options(synchronize_session=False)
        )


# What verify compares of each opinion, in LiveOpinion's order (the column names it has in the table).
_LIVE_COLUMNS = (
    "id",
    "state",
    "outcome",
    "rounds_count",
    "last_seq",
    "assigned_planner_id",
    "workflow_id",
    "participant_id",
    "category",
    "channel",
    "text",
    "plan_ref",
    "merged_into_id",
)

# What an UPDATE of write_moves sets: the new values, then the steps of the sequence and rounds count.
_Change = tuple[str, datetime, int, str | None, str | None, int | None, int | None, int, int]


def _refuse_missing(asked: Sequence[int], found: Collection[int]) -> None:
    missing = [i for i in dict.fromkeys(asked) if i not in found]
    if missing:
        msg = f"unknown opinion(s): {', '.join(map(str, missing))}"
        raise NotFoundError(msg)
