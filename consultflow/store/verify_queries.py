r"""Verify's reads: the chain as plain driver tuples, and the live rows compared with their events in SQL.

After the chain has proved the events intact, the database replays each opinion's events (grouped
by opinion, joined with its live row) and streams only the opinions it could not match; verify
then checks those in full, in Python. The SQL is a filter that never lets a disagreement through:
wherever it cannot be sure a fact agrees exactly as verify's replay would have it (a value of an
unexpected JSON type, a correction, a key it cannot place), it names the opinion.

Payloads are read with the database's JSON functions; verify uses this only when every payload of
the chain is plain JSON both databases read as Python does (no NaN, no \u0000, no lone surrogate).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from itertools import count
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from consultflow.domain.audit import EventKind
from consultflow.domain.model import Disagreement, ReplayRules
from consultflow.store.batches import STREAM_ROWS
from consultflow.store.bulk import table_of
from consultflow.store.models import (
    Actor,
    ActorRole,
    AuditEvent,
    Opinion,
    OpinionClause,
    OpinionEntry,
    Participant,
    PlanClause,
    PlanRating,
    PlanReview,
    PlanVersion,
    Round,
)

_cursor_names = count(1)


def stream_tuples(session: Session, stmt: Select[Any]) -> Generator[tuple[Any, ...], None, None]:
    """A statement's rows as the driver's own tuples, a batch at a time, on the session's connection.

    No SQLAlchemy row object is made per row: verify reads every event of a chain once. The
    statement's parameters are plain numbers and names, written into its text by SQLAlchemy. On
    PostgreSQL the rows come through a server-side cursor, in the session's transaction.
    """
    connection = session.connection()
    text = str(stmt.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    postgres = connection.dialect.name == "postgresql"
    if postgres:  # planned for reading every row, as verify does (not the first tenth); no JIT for small rows
        setting = dbapi.cursor()
        try:
            setting.execute("SET LOCAL cursor_tuple_fraction = 1; SET LOCAL jit = off")
        finally:
            setting.close()
    cursor = dbapi.cursor(name=f"consultflow_verify_{next(_cursor_names)}") if postgres else dbapi.cursor()
    try:
        cursor.execute(text, {} if postgres else ())  # psycopg reads %% as % only when given parameters
        while rows := cursor.fetchmany(STREAM_ROWS):
            yield from rows
    finally:
        cursor.close()


class _Payload:
    """An event payload's top-level members as the database reads them (SQLite's JSON1, PostgreSQL's jsonb)."""

    def __init__(self, session: Session, payload: Any, jsonb: Any = None) -> None:
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.payload = payload
        self.jsonb = (cast(payload, JSONB) if jsonb is None else jsonb) if self.postgres else None
        self.string = "string" if self.postgres else "text"

    def type_of(self, key: str) -> ColumnElement[Any]:
        """The JSON type of a member ('text'/'string', 'integer'/'number', 'null', ...); NULL when it is absent."""
        if self.jsonb is not None:
            return func.jsonb_typeof(self.jsonb[key])
        return func.json_type(self.payload, f"$.{key}")

    def has(self, key: str) -> ColumnElement[bool]:
        """The member is there, whatever its value (null too)."""
        if self.jsonb is not None:
            present: ColumnElement[bool] = self.jsonb.has_key(key)
            return present
        return self.type_of(key).is_not(None)

    def may_have(self, key: str) -> ColumnElement[bool]:
        r"""The member is there: parsed only when its name is in the text, or could be written with \u escapes."""
        if self.jsonb is not None:
            return self.has(key)
        return and_(or_(func.instr(self.payload, key) > 0, func.instr(self.payload, "\\u") > 0), self.has(key))

    def _value(self, key: str) -> ColumnElement[Any]:
        if self.jsonb is not None:
            text: ColumnElement[Any] = self.jsonb[key].astext
            return text
        return func.json_extract(self.payload, f"$.{key}")

    def is_string(self, key: str, other: Any) -> ColumnElement[bool]:
        """The member is a JSON string equal to `other` (false or NULL otherwise, never true by a conversion)."""
        return and_(self.type_of(key) == self.string, self._value(key) == other)

    def is_integer(self, key: str, other: Any) -> ColumnElement[bool]:
        """The member is a JSON integer equal to `other`, written as an integer is."""
        if self.jsonb is not None:
            return and_(self.type_of(key) == "number", self._value(key) == cast(other, String))
        return and_(self.type_of(key) == "integer", self._value(key) == other)

    def truthy_string(self, key: str) -> ColumnElement[bool]:
        """The member is a non-empty string (Python reads it as true)."""
        return and_(self.type_of(key) == self.string, self._value(key) != "")

    def falsy(self, key: str) -> ColumnElement[bool]:
        """The member is absent, null or the empty string (Python's `payload.get(key)` is false)."""
        kind = self.type_of(key)
        return or_(kind.is_(None), kind == "null", and_(kind == self.string, self._value(key) == ""))

    def entry(self, text: Any, stance: Any) -> ColumnElement[bool]:
        """A transition records this feedback or reply: its text (or, without one, its reason) and its stance.

        As verify reads it: the text is the payload's text if that is a non-empty string, else its
        reason if that is one; the stance is the payload's if it is a non-empty string, else none.
        A null member reads as an absent one.
        """
        if self.jsonb is not None:
            return and_(
                or_(
                    and_(stance.is_(None), self.falsy("stance")),
                    and_(stance != "", self.is_string("stance", stance)),
                ),
                case(
                    (self.truthy_string("text"), self.is_string("text", text)),
                    (self.falsy("text"), and_(text != "", self.is_string("reason", text))),
                    else_=false(),
                ),
            )
        # One parse: the members as written against the live values as SQLite writes them (null for none)
        plain = or_(stance.is_(None), stance != "")
        return and_(
            text != "",
            plain,
            or_(
                func.json_extract(self.payload, "$.text", "$.stance") == func.json_array(text, stance),
                func.json_extract(self.payload, "$.text", "$.reason", "$.stance")
                == func.json_array(null(), text, stance),
            ),
        )

    def submitted(self, category: Any, channel: Any, participant_id: Any, text: Any) -> ColumnElement[bool]:
        """A submitted event records these facts (its text too, unless it is older than the text being recorded)."""
        if self.jsonb is not None:
            return and_(
                self.is_string("category", category),
                self.is_string("channel", channel),
                self.is_integer("participant_id", participant_id),
                or_(self.is_string("text", text), not_(self.has("text"))),
            )
        # One parse: the members as written (the same tokens) against the live values as SQLite writes them
        found = func.json_extract(self.payload, "$.category", "$.channel", "$.participant_id", "$.text")
        legacy = func.json_extract(self.payload, "$.category", "$.channel", "$.participant_id")
        return or_(
            found == func.json_array(category, channel, participant_id, text),
            and_(not_(self.has("text")), legacy == func.json_array(category, channel, participant_id)),
        )


def _consultation_is(column: ColumnElement[int], consultation_id: int) -> ColumnElement[bool]:
    """`column = consultation_id`, written so that the database looks an opinion's rows up by opinion.

    Through this column's index instead, SQLite (which keeps no statistics) and PostgreSQL
    (before it has analysed a table grown since) would read the whole consultation's events for
    each opinion.
    """
    return (column + literal_column("0")) == consultation_id


def _lookup(column: Any, pairs: tuple[tuple[str, str], ...]) -> ColumnElement[Any]:
    """`CASE column WHEN key THEN value ... ELSE NULL END`, its names written into the statement."""
    if not pairs:
        return null()
    return case(*((column == literal(k, String), literal(v, String)) for k, v in pairs), else_=null())


def _either(latest: ColumnElement[Any], otherwise: ColumnElement[Any]) -> ColumnElement[bool]:
    """`latest` when some event was picked, else `otherwise`."""
    return func.coalesce(latest, otherwise, type_=Boolean)


def _latest_agrees(selected: ColumnElement[bool], agrees: ColumnElement[bool], seq: Any) -> ColumnElement[Any]:
    """Whether the latest of an opinion's events that `selected` picks agrees: NULL when none is picked.

    The largest of sequence * 2 + (1 if it agrees) is that of the latest event, its last bit whether it agrees.
    """
    latest = func.max(case((selected, seq * 2 + case((agrees, 1), else_=0)), else_=null()))
    return latest % 2 == 1


def disagreements(session: Session, consultation_id: int, rules: ReplayRules) -> Generator[Disagreement, None, None]:
    """The consultation's live opinions that the database could not match with their events, by id, streamed.

    An opinion matches when its sequence number is its events' highest and their count (none
    missing, none repeated), its rounds count their completed cycles, its state the latest event's
    destination, its outcome that state's, its workflow the consultation's, its planner the
    latest assignment's, its category, channel, participant and text the latest submitted
    event's, its plan reference and merge target the latest transition's that set them, and its
    feedback and replies as many as the transitions that write one. An opinion with a correction
    is always named (verify replays the corrections itself).
    """
    o, events = table_of(Opinion), table_of(AuditEvent)
    planner = table_of(Actor).alias("planner")
    roles, entries = table_of(ActorRole), table_of(OpinionEntry)
    postgres = session.get_bind().dialect.name == "postgresql"
    events_of = and_(events.c.opinion_id == o.c.id, _consultation_is(events.c.consultation_id, consultation_id))
    if postgres:  # each payload read into jsonb once (OFFSET 0 keeps the planner from copying the cast everywhere)
        parsed = case((events.c.payload != "{}", cast(events.c.payload, JSONB)), else_=null())
        read = ("id", "opinion_seq", "kind", "trigger", "to_state", "completes_cycle", "payload")
        e: Any = (
            select(*(events.c[name] for name in read), parsed.label("j"))
            .where(events_of)
            .correlate(o)
            .offset(0)
            .lateral("event")
        )
        payload = _Payload(session, e.c.payload, e.c.j)
    else:
        e = events
        payload = _Payload(session, e.c.payload)
    seq = e.c.opinion_seq
    transition = and_(e.c.kind == EventKind.TRANSITION, e.c.payload != "{}")
    assigned = and_(e.c.kind == EventKind.ASSIGNED, e.c.payload != "{}")
    outcome = _lookup(o.c.state, rules.outcomes)
    triggers: list[Any] = [literal(t, String) for t, _ in rules.entries] or [null()]
    writes_entry = and_(e.c.kind == EventKind.TRANSITION, e.c.trigger.in_(triggers))
    live_entries = (
        select(func.count()).where(entries.c.opinion_id == o.c.id).correlate_except(entries).scalar_subquery()
    )
    planners = select(roles.c.actor_id).where(roles.c.role == rules.planner_role)
    agrees = and_(
        func.max(seq) == o.c.last_seq,
        func.count(e.c.id) == o.c.last_seq,
        func.count(case((e.c.completes_cycle, 1), else_=null())) == o.c.rounds_count,
        _latest_agrees(and_(e.c.to_state.is_not(None), e.c.to_state != ""), e.c.to_state == o.c.state, seq),
        or_(and_(o.c.outcome.is_(None), outcome.is_(None)), o.c.outcome == outcome),  # NULL: not the same
        o.c.workflow_id == rules.workflow_id,
        _either(
            _latest_agrees(assigned, payload.is_string("planner", planner.c.name), seq),
            o.c.assigned_planner_id.is_(None),
        ),
        _either(
            _latest_agrees(
                e.c.kind == EventKind.SUBMITTED,
                payload.submitted(o.c.category, o.c.channel, o.c.participant_id, o.c.text),
                seq,
            ),
            true(),
        ),
        func.count(case((e.c.kind == EventKind.CORRECTED, 1), else_=null())) == 0,
        _either(
            _latest_agrees(
                and_(transition, payload.may_have("plan_ref")), payload.is_string("plan_ref", o.c.plan_ref), seq
            ),
            o.c.plan_ref.is_(None),
        ),
        _either(
            _latest_agrees(
                and_(transition, payload.may_have("merge_target")),
                payload.is_integer("merge_target", o.c.merged_into_id),
                seq,
            ),
            o.c.merged_into_id.is_(None),
        ),
        func.count(case((writes_entry, 1), else_=null())) == live_entries,
    )
    planner_join = and_(
        planner.c.id == o.c.assigned_planner_id, o.c.assigned_planner_id != 0, planner.c.id.in_(planners)
    )
    if postgres:
        # Each opinion's few events through the (opinion, sequence) index, in id order: nothing sorted or spilled
        replay = select(func.count(e.c.id).label("events"), agrees.label("agrees")).select_from(e).lateral("replay")
        stmt = (
            select(o.c.id, replay.c.events, o.c.last_seq)
            .select_from(o)
            .outerjoin(planner, planner_join)
            .join(replay, true())
            .where(o.c.consultation_id == consultation_id, case((replay.c.agrees, 0), else_=1) == 1)
            .order_by(o.c.id)
        )
    else:
        stmt = (
            select(o.c.id, func.count(e.c.id), o.c.last_seq)
            .select_from(o)
            .outerjoin(e, events_of)
            .outerjoin(planner, planner_join)
            .where(_consultation_is(o.c.consultation_id, consultation_id))
            .group_by(o.c.id)  # the opinion's other columns depend on its id; the planner's are read in aggregates
            .having(case((agrees, 0), else_=1) == 1)  # NULL anywhere (a fact it cannot read) names the opinion too
            .order_by(o.c.id)
        )
    for opinion_id, events, last_seq in stream_tuples(session, stmt):
        yield Disagreement(int(opinion_id), int(events), int(last_seq))


def entry_disagreements(session: Session, consultation_id: int, rules: ReplayRules) -> Generator[int, None, None]:
    """Opinions (by id, each once) with a feedback or reply row no transition records exactly, streamed.

    A row is recorded by the transition at its sequence number that writes one, with its kind,
    round, stance and text; a row that shares its sequence number with another is named too.

    With `disagreements` (as many such transitions as rows), what is left agrees one to one.
    """
    x, o, events = table_of(OpinionEntry), table_of(Opinion), table_of(AuditEvent)
    other = table_of(OpinionEntry).alias("other")
    at_its_seq = and_(
        events.c.opinion_id == x.c.opinion_id,
        events.c.opinion_seq == x.c.opinion_seq,
        _consultation_is(events.c.consultation_id, consultation_id),
        events.c.kind == EventKind.TRANSITION,
    )
    if session.get_bind().dialect.name == "postgresql":  # its payload read into jsonb once
        read = (events.c.trigger, events.c.round_no, events.c.payload, cast(events.c.payload, JSONB).label("j"))
        e: Any = select(*read).where(at_its_seq).correlate(x).offset(0).subquery("event")
        payload = _Payload(session, e.c.payload, e.c.j)
        found = select(literal(1)).select_from(e)
    else:
        e = events
        payload = _Payload(session, e.c.payload)
        found = select(literal(1)).where(at_its_seq)
    kind = _lookup(e.c.trigger, rules.entries)
    recorded = found.where(kind == x.c.kind, e.c.round_no == x.c.round_no, payload.entry(x.c.text, x.c.stance)).exists()
    repeated = (
        select(literal(1))
        .where(other.c.opinion_id == x.c.opinion_id, other.c.opinion_seq == x.c.opinion_seq, other.c.id != x.c.id)
        .exists()
    )
    stmt = (
        select(x.c.opinion_id)
        .join(o, o.c.id == x.c.opinion_id)
        .where(o.c.consultation_id == consultation_id, or_(not_(recorded), repeated))
        .distinct()
        .order_by(x.c.opinion_id)
    )
    for (opinion_id,) in stream_tuples(session, stmt):
        yield int(opinion_id)


def live_seq_total(session: Session, consultation_id: int) -> int:
    """The sum of the consultation's opinions' sequence numbers: their events' count, when every one matched."""
    o = table_of(Opinion)
    total = session.scalar(
        select(func.coalesce(func.sum(o.c.last_seq), 0)).where(o.c.consultation_id == consultation_id)
    )
    return int(total or 0)


def first_orphan(session: Session, consultation_id: int) -> int | None:
    """The lowest opinion id that events of the chain name and that is not one of the consultation's opinions."""
    e, o = table_of(AuditEvent), table_of(Opinion)
    mine = select(o.c.id).where(o.c.consultation_id == consultation_id)
    found = session.scalar(
        select(func.min(e.c.opinion_id)).where(
            e.c.consultation_id == consultation_id, e.c.opinion_id.is_not(None), e.c.opinion_id.not_in(mine)
        )
    )
    return int(found) if found is not None else None


def by_opinion(column: Any, consultation_column: Any, consultation_id: int, opinion_id: int | None) -> Iterable[Any]:
    """The WHERE terms of a verify stream: the consultation's rows, or one opinion's (looked up by opinion)."""
    if opinion_id is None:
        return (consultation_column == consultation_id,)
    return (column == opinion_id, _consultation_is(consultation_column, consultation_id))


# --- reviews, draft plans, clause links and groups: their events against their live rows ----------


def _jsonb(payload: Any) -> Any:
    """A payload as PostgreSQL's jsonb, or NULL where jsonb would refuse it (see `_member`)."""
    refused = payload.op("~")(literal_column(r"'\\u(0000|[dD][89a-fA-F])'"))
    return cast(case((refused, null()), else_=payload), JSONB)


def _member(session: Session, payload: Any, key: str, *, integer: bool) -> ColumnElement[Any]:
    r"""A payload's top-level member as the database reads it (NULL when absent): an integer or a text.

    On PostgreSQL a payload jsonb refuses (a \u0000 or a lone surrogate, which no event of these
    kinds is written with) reads as NULL instead of failing the whole statement.
    """
    if session.get_bind().dialect.name == "postgresql":
        text: ColumnElement[Any] = _jsonb(payload)[key].astext
        return cast(text, BigInteger) if integer else text
    return func.json_extract(payload, f"$.{key}")


def rating_events(session: Session, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
    """The chain's clause_rated events as (participant id, round, chain sequence, payload as stored).

    Ordered by participant and round (numbers only: no collation decides the order), streamed.
    """
    e = table_of(AuditEvent)
    participant = _member(session, e.c.payload, "participant_id", integer=True)
    stmt = (
        select(participant, e.c.round_no, e.c.chain_seq, e.c.payload)
        .where(e.c.consultation_id == consultation_id, e.c.kind == EventKind.CLAUSE_RATED)
        .order_by(participant, e.c.round_no, e.c.chain_seq)
    )
    return stream_tuples(session, stmt)


def live_ratings(session: Session, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
    """The consultation's plan_rating rows, ordered by participant and round, streamed.

    Each is (participant, round, clause number, the clause's consultation, rating, comment as
    stored, the comment's opinion).
    """
    r, rounds, clause = table_of(PlanRating), table_of(Round), table_of(PlanClause)
    stmt = (
        select(
            r.c.participant_id,
            rounds.c.number,
            clause.c.number,
            clause.c.consultation_id,
            r.c.rating,
            r.c.comment,
            r.c.opinion_id,
        )
        .join(rounds, rounds.c.id == r.c.round_id)
        .join(clause, clause.c.id == r.c.clause_id)
        .where(rounds.c.consultation_id == consultation_id)
        .order_by(r.c.participant_id, rounds.c.number, r.c.id)
    )
    return stream_tuples(session, stmt)


def link_events(session: Session, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
    """The chain's events that link an opinion to clauses, as (opinion id, chain sequence, kind, payload).

    clauses_linked (the opinion's own event) and clause_rated with a comment (the comment's
    opinion, named in the payload); ordered by opinion, streamed.
    """
    e = table_of(AuditEvent)
    named = _member(session, e.c.payload, "opinion_id", integer=True)
    rated = and_(
        e.c.kind == EventKind.CLAUSE_RATED, _member(session, e.c.payload, "opinion_id", integer=False).is_not(None)
    )
    opinion = case((e.c.kind == EventKind.CLAUSE_RATED, named), else_=e.c.opinion_id)
    stmt = (
        select(opinion, e.c.chain_seq, e.c.kind, e.c.payload)
        .where(
            e.c.consultation_id == consultation_id,
            or_(e.c.kind == EventKind.CLAUSES_LINKED, rated),
        )
        .order_by(opinion, e.c.chain_seq)
    )
    return stream_tuples(session, stmt)


def live_links(session: Session, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
    """The consultation's opinions' opinion_clause rows as (opinion id, clause number, the clause's consultation)."""
    link, o, clause = table_of(OpinionClause), table_of(Opinion), table_of(PlanClause)
    stmt = (
        select(link.c.opinion_id, clause.c.number, clause.c.consultation_id)
        .join(o, o.c.id == link.c.opinion_id)
        .join(clause, clause.c.id == link.c.clause_id)
        .where(o.c.consultation_id == consultation_id)
        .order_by(link.c.opinion_id)
    )
    return stream_tuples(session, stmt)


def plan_events(session: Session, consultation_id: int) -> list[tuple[Any, ...]]:
    """The chain's plan_imported and review_opened events as (kind, round, chain sequence, payload), in chain order."""
    e = table_of(AuditEvent)
    stmt = (
        select(e.c.kind, e.c.round_no, e.c.chain_seq, e.c.payload)
        .where(
            e.c.consultation_id == consultation_id,
            e.c.kind.in_([EventKind.PLAN_IMPORTED, EventKind.REVIEW_OPENED]),
        )
        .order_by(e.c.chain_seq)
    )
    return list(stream_tuples(session, stmt))


def live_plan(session: Session, consultation_id: int) -> tuple[list[tuple[Any, ...]], list[str], list[tuple[Any, ...]]]:
    """The consultation's plan_version rows, its plan_clause numbers, and its plan_review rows.

    Versions are (id, number, label, source, clauses); reviews (round number, the rated version's
    number and consultation, category, the round's consultation).
    """
    v, clause, review, rounds = table_of(PlanVersion), table_of(PlanClause), table_of(PlanReview), table_of(Round)
    versions = select(v.c.id, v.c.number, v.c.label, v.c.source, v.c.clauses).where(
        v.c.consultation_id == consultation_id
    )
    numbers = select(clause.c.number).where(clause.c.consultation_id == consultation_id)
    reviews = (
        select(rounds.c.number, v.c.number, v.c.consultation_id, review.c.category, rounds.c.consultation_id)
        .select_from(review)
        .join(rounds, rounds.c.id == review.c.round_id)
        .join(v, v.c.id == review.c.version_id)
        .where(or_(review.c.consultation_id == consultation_id, rounds.c.consultation_id == consultation_id))
    )
    return (
        [tuple(row) for row in session.execute(versions.order_by(v.c.number, v.c.id))],
        [str(n) for (n,) in session.execute(numbers)],
        [tuple(row) for row in session.execute(reviews.order_by(rounds.c.number))],
    )


def group_events(session: Session, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
    """Every chain's events that set a group of a participant with opinions in this consultation.

    participant_group_changed, and submitted with a group (a file's 群体 column), as (participant
    id, consultation, chain sequence, kind, payload), ordered by participant, then as they
    happened (time, consultation, sequence), streamed.
    """
    e, o = table_of(AuditEvent), table_of(Opinion)
    participant = _member(session, e.c.payload, "participant_id", integer=True)
    if session.get_bind().dialect.name == "postgresql":
        with_group = and_(e.c.payload.contains('"group"'), _jsonb(e.c.payload).has_key("group"))
    else:
        with_group = and_(func.instr(e.c.payload, '"group"') > 0, func.json_type(e.c.payload, "$.group").is_not(None))
    theirs = select(o.c.participant_id).where(o.c.consultation_id == consultation_id)
    stmt = (
        select(participant, e.c.consultation_id, e.c.chain_seq, e.c.kind, e.c.payload)
        .where(
            or_(
                e.c.kind == EventKind.PARTICIPANT_GROUP_CHANGED,
                and_(e.c.kind == EventKind.SUBMITTED, with_group),
            ),
            participant.in_(theirs),
        )
        .order_by(participant, e.c.at, e.c.consultation_id, e.c.chain_seq)
    )
    return stream_tuples(session, stmt)


def live_groups(session: Session, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
    """(participant id, group) of each participant with opinions in this consultation, by id, streamed."""
    p, o = table_of(Participant), table_of(Opinion)
    theirs = select(o.c.participant_id).where(o.c.consultation_id == consultation_id)
    stmt = select(p.c.id, p.c.group_id).where(p.c.id.in_(theirs)).order_by(p.c.id)
    return stream_tuples(session, stmt)
