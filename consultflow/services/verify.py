"""Checking the hash chains: recompute every event's hash and name the first that does not match."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime
from json.encoder import encode_basestring
from json.scanner import make_scanner
from typing import Any, Generic, Protocol, TypeVar, cast

from consultflow.domain.audit import (
    GENESIS_HASH,
    ChainKey,
    EventKind,
    canonical_text,
    chain_mode,
    payload_text,
    text_hash,
    utc_iso,
)
from consultflow.domain.errors import ValidationError
from consultflow.domain.model import (
    ConsultationRow,
    Disagreement,
    EventSummary,
    FactEvent,
    LiveEntry,
    LiveOpinion,
    ReplayRules,
    RoundRow,
    StoredEvent,
    WorkflowRow,
)
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import EntryKind, Field
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.ports import UnitOfWork, VerifyReads
from consultflow.services.themes import themes_problem


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
    head); an event whose payload repeats a key or has a field its kind never has is named too.
    Replaying the events catches what the chain cannot see: every live fact they account for,
    changed in the live rows. That is the consultation's title, area, settings and stored
    workflow; each round's status and times; each opinion's state, outcome, rounds count,
    sequence, planner, text, category, channel, participant, plan reference and merge target; and
    each feedback and reply. It also catches a tail cut off together with a rewound head.
    `expect_head` (sequence, hash), published earlier, proves that event is still part of today's
    chain. A keyed chain is checked with the configured key (refused without it); `require_keyed`
    fails an unkeyed chain, which anyone who can write the database could have recomputed (or
    turned into, by clearing the key id and rehashing).

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
        said = _ConsultationSaid()
        # closing: a server-side cursor on PostgreSQL, abandoned at the first problem
        reads = uow.audit if isinstance(uow.audit, VerifyReads) else None
        # plain tuples when the store gives them (StoredEvent is one too)
        rows = reads.chain_rows(consultation.id) if reads is not None else uow.audit.chain(consultation.id)
        with closing(rows) as events:
            report = replace(_walk(consultation, events, expect_head, key, said), mode=mode)
        if not report.intact:
            return report
        problem = _consultation_problem(consultation, uow.workflows.as_stored(consultation.workflow_id), said)
        problem = problem or _rounds_problem(uow.consultations.rounds(consultation.id), said.rounds)
        if problem is None:
            spec = spec_for(uow.workflows.get(consultation.workflow_id))
            planners = {a.id: a.name for a in uow.actors.with_role(Role.PLANNER)}
            if reads is not None and said.portable:
                problem = _compare_in_database(reads, uow, consultation, spec, planners, said.opinion_events)
            else:  # a payload the database may read otherwise than Python: every opinion is replayed here
                problem = _compare_streams(uow, consultation, spec, planners)
            problem = problem or themes_problem(uow, consultation.id)  # the themes opinions are coded with
            # imported here: plans and participation import verify's importers (heads, rounds) at import time
            from consultflow.services import participation, plans  # noqa: PLC0415

            problem = problem or plans.review_problem(uow, consultation.id)  # drafts, reviews, ratings, clause links
            if problem is None and reads is not None:
                problem = participation.groups_problem(reads, consultation.id)  # the participants' groups
    if problem is None:
        return report
    broken = BrokenEvent(report.events, None, None, None, None, None, None, problem)
    return replace(report, intact=False, broken=broken)


# The payload fields each kind of event is written with (see the services that write them). Every
# event may also say which channel a change came through ("via") and the token it was made with.
ANY_EVENT_FIELDS = frozenset({"via", "token"})
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    # programme, copied_from: the county programme it is an area of, the consultation its setup came from
    EventKind.CONSULTATION_CREATED: frozenset(
        {"title", "area", "workflow", "digest", "auto_close", "programme", "copied_from"}
    ),
    EventKind.ROUND_OPENED: frozenset({"number", "closes_at"}),
    EventKind.ROUND_CLOSED: frozenset({"number", "affected", "summary"}),
    EventKind.ROUND_RESCHEDULED: frozenset({"closes_at", "previous"}),
    EventKind.SETTINGS_CHANGED: frozenset({"auto_close", "programme"}),
    # source_fields: an imported row's other columns, sealed like the text (services.intake)
    EventKind.SUBMITTED: frozenset(
        {"category", "channel", "participant_id", "intake", "text", "source_fields", "group"}
    ),
    EventKind.ASSIGNED: frozenset({"planner"}),
    EventKind.TRANSITION: frozenset(f.value for f in Field),
    EventKind.CARRIED_OVER: frozenset({"round_close", "next_round"}),
    EventKind.PARTICIPANT_ERASED: frozenset({"participant_id", "reason"}),
    EventKind.CORRECTED: frozenset({"previous", "text", "reason"}),
    EventKind.RECEIPT_ISSUED: frozenset({"replaces_earlier_code"}),
    EventKind.PARTICIPANT_GROUP_CHANGED: frozenset({"participant_id", "group", "previous"}),
    EventKind.PLAN_IMPORTED: frozenset({"version", "label", "source", "clauses", "digest"}),
    EventKind.REVIEW_OPENED: frozenset({"version", "category"}),
    EventKind.CLAUSE_RATED: frozenset({"version", "clause", "rating", "participant_id", "comment", "opinion_id"}),
    EventKind.CLAUSES_LINKED: frozenset({"clauses"}),
    EventKind.THEME_ADDED: frozenset({"theme", "matching"}),
    EventKind.THEME_REMOVED: frozenset({"theme"}),
}
# Every kind consultflow writes; one added later without a KNOWN_FIELDS entry has its fields unchecked.
_KINDS = frozenset(v for k, v in vars(EventKind).items() if k.isupper() and isinstance(v, str))
_CHECKED_PAYLOADS = 4096  # payloads remembered as checked: a bulk change shares one payload


class _RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members as a dict, refusing a key given twice (which json.loads would let the last win)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _value in pairs:
            if name in seen:
                raise _RepeatedKeyError(name)
            seen.add(name)
    return found


class _NonStandardError(ValueError):
    """NaN or Infinity: Python reads them, JSON (and the databases' JSON functions) does not."""


def _non_standard(constant: str) -> float:
    raise _NonStandardError(constant)


_STRICT = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_non_standard)
_LENIENT = json.JSONDecoder(object_pairs_hook=_unique_keys)
_scan = cast("Any", make_scanner)(_STRICT)  # the decoder's own scanner (C), without its Python wrappers
_ALLOWED = {kind: known | ANY_EVENT_FIELDS for kind, known in KNOWN_FIELDS.items()}
# Escapes the databases' JSON functions refuse or read otherwise (NUL, halves of surrogate pairs)
_UNPORTABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def payload_problem(kind: str, payload: str) -> str | None:
    """What is wrong with an event's payload, in words: a key given twice, or a field its kind never has."""
    return _payload_check(kind, payload)[0]


def _payload_check(kind: str, payload: str) -> tuple[str | None, bool]:
    """The payload's problem (None if it has none), and whether the databases' JSON functions read it as Python does."""
    if payload == "{}":
        return None, True
    portable = "\\u" not in payload or _UNPORTABLE_ESCAPE.search(payload) is None
    try:
        parsed, end = _scan(payload, 0)  # the decoder's own scanner: a payload as stored has no spaces around it
    except (StopIteration, ValueError):
        end = -1
    if end != len(payload):
        return _payload_check_slowly(kind, payload, portable)
    allowed = _ALLOWED.get(kind)
    if allowed is not None and isinstance(parsed, dict) and parsed.keys() <= allowed:
        return None, portable
    return _payload_check_slowly(kind, payload, portable)


def _payload_check_slowly(kind: str, payload: str, portable: bool) -> tuple[str | None, bool]:
    """`_payload_check` for a payload that is not plainly fine: read again, saying what is wrong."""
    try:
        try:
            parsed = _STRICT.decode(payload)
        except _NonStandardError:
            parsed, portable = _LENIENT.decode(payload), False
    except _RepeatedKeyError as exc:
        return f"its payload repeats the key {exc.key!r}", portable
    except ValueError as exc:
        return f"its payload is not readable JSON ({exc})", portable
    if not isinstance(parsed, dict):
        return "its payload is not a JSON object", portable
    known = KNOWN_FIELDS.get(kind)
    if known is None:
        return (None if kind in _KINDS else f"its kind {kind!r} is not one consultflow writes"), portable
    unknown = sorted(parsed.keys() - known - ANY_EVENT_FIELDS)
    if unknown:
        return f"its payload has an unknown field {unknown[0]!r} (a {kind} event has no such field)", portable
    return None, portable


@dataclass
class _RoundSaid:
    """What a round's events say: when it opened, its closing time, when it closed (as the chain has them)."""

    opened_at: str | None = None
    closes_at: str | None = None
    closed_at: str | None = None


@dataclass
class _ConsultationSaid:
    """What the events that belong to no opinion say, gathered while the chain is walked (a few per round)."""

    created: dict[str, Any] | None = None
    auto_close: object = None
    programme: object = None  # the county programme it is an area of (issue 26), as its events say
    rounds: dict[int, _RoundSaid] = field(default_factory=dict)
    opinion_events: int = 0  # the chain's events that belong to an opinion
    portable: bool = True  # every payload reads the same in the database's JSON functions as in Python

    def see(self, e: StoredEvent) -> None:
        """Take in one such event (its payload already checked)."""
        kind = e.kind
        if kind not in _CONSULTATION_KINDS:
            return
        payload = json.loads(e.payload)
        if kind == EventKind.CONSULTATION_CREATED:
            if self.created is None:
                self.created, self.auto_close = payload, payload.get("auto_close")
                self.programme = payload.get("programme")
            return
        if kind == EventKind.SETTINGS_CHANGED:
            self.auto_close = payload.get("auto_close", self.auto_close)
            self.programme = payload.get("programme", self.programme)
            return
        number = e.round_no if e.round_no is not None else payload.get("number")
        if not isinstance(number, int):
            return
        said = self.rounds.setdefault(number, _RoundSaid())
        if kind == EventKind.ROUND_OPENED:
            said.opened_at, said.closes_at = e.at, payload.get("closes_at")
        elif kind == EventKind.ROUND_RESCHEDULED:
            said.closes_at = payload.get("closes_at")
        else:
            said.closed_at = e.at


_CONSULTATION_KINDS = frozenset(
    {
        EventKind.CONSULTATION_CREATED,
        EventKind.SETTINGS_CHANGED,
        EventKind.ROUND_OPENED,
        EventKind.ROUND_RESCHEDULED,
        EventKind.ROUND_CLOSED,
    }
)
_SHOWN_CHARS = 40


def _shown(value: object) -> str:
    """A value as a mismatch names it: a long text shortened."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        value = value[: _SHOWN_CHARS - 1] + "…"
    return repr(value)


def _edited(subject: str, what: str, now: object, recorded: object) -> str:
    return f"{subject}: the live {what} is {_shown(now)} but its events say {_shown(recorded)} (a live row was edited)"


def _consultation_problem(consultation: ConsultationRow, workflow: WorkflowRow, said: _ConsultationSaid) -> str | None:
    """The consultation's own facts and its stored workflow, against its `consultation_created` event."""
    key = f"{workflow.name}@{workflow.version}"
    if hashlib.sha256(workflow.source.encode("utf-8")).hexdigest() != workflow.digest:
        return (
            f"workflow {key} (id {workflow.id}): its stored text no longer has its digest "
            f"{workflow.digest[:12]}… (the stored workflow was edited)"
        )
    created = said.created
    if created is None:
        return "no event records the consultation's creation"
    subject = f"consultation {consultation.id}"
    checks = (
        (subject, "workflow", key, created.get("workflow", key)),
        (f"workflow {key} (id {workflow.id})", "digest", workflow.digest, created.get("digest", workflow.digest)),
        (subject, "title", consultation.title, created.get("title", consultation.title)),
        (subject, "area", consultation.area, created.get("area", consultation.area)),
        (subject, "automatic closing", bool(consultation.auto_close), bool(said.auto_close)),
        (subject, "programme", consultation.programme_id, said.programme),
    )
    for where, what, now, recorded in checks:
        if now != recorded:
            return _edited(where, what, now, recorded)
    return None


def _moment(value: datetime | None) -> str | None:
    return utc_iso(value) if value is not None else None


def _said_moment(value: object) -> str | None:
    """A time a payload gives (ISO 8601, any offset) as the chain writes times; unreadable stays as given."""
    if not isinstance(value, str):
        return None
    try:
        return utc_iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return value


def _rounds_problem(live: Sequence[RoundRow], said: Mapping[int, _RoundSaid]) -> str | None:
    """Each round's status and times against its round_opened, round_rescheduled and round_closed events."""
    for row in live:
        events = said.get(row.number)
        if events is None or events.opened_at is None:
            return f"the live tables have round {row.number}, which no event records opening"
        checks = (
            ("status", row.status, "closed" if events.closed_at is not None else "open"),
            ("opening time", _moment(row.opened_at), events.opened_at),
            ("closing time", _moment(row.closes_at), _said_moment(events.closes_at)),
            ("time it closed", _moment(row.closed_at), events.closed_at),
        )
        for what, now, recorded in checks:
            if now != recorded:
                return _edited(f"round {row.number}", what, now, recorded)
    missing = sorted(said.keys() - {row.number for row in live})
    if missing:
        return f"events record round {missing[0]}, which the live tables no longer have"
    return None


class _Keyed(Protocol):
    def __getitem__(self, index: int, /) -> Any: ...


T = TypeVar("T", bound=_Keyed)


class _ByOpinion(Generic[T]):
    """The rows of a stream ordered by opinion id (their first field), taken one opinion at a time."""

    def __init__(self, rows: Iterable[T]) -> None:
        self._rows: Iterator[T] = iter(rows)
        self._next: T | None = next(self._rows, None)
        self.skipped: int | None = None  # the first opinion id passed over without being asked for

    def take(self, opinion_id: int) -> list[T]:
        """The rows of `opinion_id`; rows of lower ids (no live opinion asked for them) are passed over."""
        while self._next is not None and self._next[0] < opinion_id:
            self.skipped = self._next[0] if self.skipped is None else self.skipped
            self._next = next(self._rows, None)
        taken = []
        while self._next is not None and self._next[0] == opinion_id:
            taken.append(self._next)
            self._next = next(self._rows, None)
        return taken

    def rest(self) -> int | None:
        """The first opinion id passed over or never asked for, if any."""
        return self.skipped if self.skipped is not None or self._next is None else self._next[0]


@dataclass
class _Replayed:
    """The events' side of the comparison: id-ordered streams, read along with the live rows."""

    summaries: Iterable[EventSummary]
    facts: Iterable[FactEvent]
    entries: Iterable[LiveEntry]
    spec: WorkflowSpec
    planners: Mapping[int, str]
    workflow_id: int
    opened: Callable[[str], str]  # a sealed text as a mismatch names it (opened where the login may)


_UNRECORDED: Any = object()  # a fact the opinion's events (written before they recorded it) do not hold
_ENTRY_NAMES = {EntryKind.FEEDBACK.value: "feedback", EntryKind.REPARTICIPATION.value: "reply"}


def _compare(live: Iterable[LiveOpinion], replayed: _Replayed) -> str | None:
    """The first live row that disagrees with its events, in words; all come by id and are merged.

    An opinion that only the events record is named after every live row has agreed; so is a
    feedback or reply row of an opinion no live row was read for.
    """
    summaries = _ByOpinion(replayed.summaries)
    facts = _ByOpinion(replayed.facts)
    entries = _ByOpinion(replayed.entries)
    states = replayed.spec.states
    for row in live:
        opinion_id = row.id
        found = summaries.take(opinion_id)
        if not found:
            return f"the live tables have opinion {opinion_id}, which no event records"
        events = found[0]
        outcome = states[events.state].outcome if events.state is not None and events.state in states else None
        planner = row.planner_id
        checks = (
            ("state", row.state, events.state),
            ("outcome", row.outcome, outcome.value if outcome else None),
            ("rounds count", row.rounds_count, events.cycles),
            ("last sequence number", row.last_seq, events.last_seq),
            ("assigned planner", replayed.planners.get(planner) if planner else None, _planner(events.assigned)),
            ("workflow", row.workflow_id, replayed.workflow_id),
        )
        for what, now, recorded in checks:
            if now != recorded:
                return _edited(f"opinion {opinion_id}", what, now, recorded)
        problem = _facts_problem(row, facts.take(opinion_id), entries.take(opinion_id), replayed.spec, replayed.opened)
        if problem is not None:
            return problem
    only_in_events = summaries.rest()
    if only_in_events is not None:
        return f"events record opinion {only_in_events}, which the live tables no longer have"
    stray = entries.rest()
    if stray is not None:
        return f"the live tables have feedback or replies of opinion {stray}, which is not among its opinions"
    return None


def _compare_streams(
    uow: UnitOfWork, consultation: ConsultationRow, spec: WorkflowSpec, planners: Mapping[int, str]
) -> str | None:
    """Every opinion's live row against its events, replayed here: the streams merged by id."""
    cid = consultation.id
    with (
        closing(uow.opinions.live_columns(cid)) as live,
        closing(uow.audit.summaries(cid)) as summaries,
        closing(uow.audit.fact_events(cid)) as facts,
        closing(uow.opinions.live_entries(cid)) as entries,
    ):
        return _compare(
            live, _Replayed(summaries, facts, entries, spec, planners, consultation.workflow_id, uow.texts.open)
        )


def _compare_in_database(
    reads: VerifyReads,
    uow: UnitOfWork,
    consultation: ConsultationRow,
    spec: WorkflowSpec,
    planners: Mapping[int, str],
    opinion_events: int,
) -> str | None:
    """The live rows against their events, the database matching them all and naming those it could not.

    Each opinion it names is replayed here as `_compare_streams` would (most are the first
    problem; the rest, a correction for instance, agree). Those it matched have as many events as
    their sequence number, so the chain's opinion events add up to the live sequence numbers
    unless an event names an opinion the consultation no longer has.
    """
    cid = consultation.id
    rules = ReplayRules(
        workflow_id=consultation.workflow_id,
        outcomes=tuple((name, s.outcome.value) for name, s in spec.states.items() if s.outcome is not None),
        entries=tuple((trigger, t.entry.value) for trigger, t in spec.transitions.items() if t.entry is not None),
        planner_role=Role.PLANNER.value,
    )
    counted = 0  # the events of the opinions named, less their sequence numbers
    with (
        closing(reads.disagreements(cid, rules)) as named,
        closing(reads.entry_disagreements(cid, rules)) as entries_named,
    ):
        for opinion_id, disagreement in _by_id(named, entries_named):
            if disagreement is not None:
                counted += disagreement.events - disagreement.last_seq
            one = reads.opinion_replay(cid, opinion_id)
            replayed = _Replayed(
                one.summaries, one.facts, one.entries, spec, planners, consultation.workflow_id, uow.texts.open
            )
            problem = _compare(one.live, replayed)
            if problem is not None:
                return problem
    if reads.live_seq_total(cid) + counted == opinion_events:
        return None
    orphan = reads.first_orphan(cid)
    if orphan is not None:
        return f"events record opinion {orphan}, which the live tables no longer have"
    return _compare_streams(uow, consultation, spec, planners)  # unaccounted for: the full replay decides


def _by_id(named: Iterable[Disagreement], entries_named: Iterable[int]) -> Iterator[tuple[int, Disagreement | None]]:
    """The opinions either stream names, by id, each once (with what `disagreements` said of it, if it named it)."""
    merged = heapq.merge(((d.opinion_id, 0, d) for d in named), ((opinion_id, 1, None) for opinion_id in entries_named))
    last: int | None = None
    for opinion_id, _order, disagreement in merged:
        if opinion_id != last:
            last = opinion_id
            yield opinion_id, disagreement


def _facts_problem(
    row: LiveOpinion,
    events: Sequence[FactEvent],
    entries: Sequence[LiveEntry],
    spec: WorkflowSpec,
    opened: Callable[[str], str],
) -> str | None:
    """One opinion's facts (and its feedback and replies) replayed from its events, against its live row."""
    text = category = channel = participant = _UNRECORDED
    plan_ref: str | None = None
    merged_into: int | None = None
    recorded: dict[int, tuple[str, int | None, str | None, str]] = {}  # by sequence: kind, round, stance, text
    for e in events:
        payload = json.loads(e.payload)
        if e.kind == EventKind.SUBMITTED:
            text = payload.get("text", _UNRECORDED)
            category = payload.get("category", _UNRECORDED)
            channel = payload.get("channel", _UNRECORDED)
            participant = payload.get("participant_id", _UNRECORDED)
        elif e.kind == EventKind.CORRECTED:
            text = payload.get("text", text)
        else:
            if Field.PLAN_REF.value in payload:
                plan_ref = str(payload[Field.PLAN_REF.value])
            if Field.MERGE_TARGET.value in payload:
                merged_into = int(payload[Field.MERGE_TARGET.value])
            transition = spec.transitions.get(e.trigger or "")
            if transition is not None and transition.entry is not None:
                stance = payload.get(Field.STANCE.value)
                said = payload.get(Field.TEXT.value) or payload.get(Field.REASON.value) or ""
                recorded[e.opinion_seq] = (
                    transition.entry.value,
                    e.round_no,
                    str(stance) if stance else None,
                    str(said),
                )
    subject = f"opinion {row.id}"
    checks = (
        ("text", row.text, text),
        ("category", row.category, category),
        ("channel", row.channel, channel),
        ("participant id", row.participant_id, participant),
        ("plan reference", row.plan_ref, plan_ref),
        ("merge target", row.merged_into_id, merged_into),
    )
    for what, now, said_of_it in checks:
        if said_of_it is not _UNRECORDED and now != said_of_it:
            return _edited(subject, what, _open(opened, now), _open(opened, said_of_it))
    for entry in entries:
        expected = recorded.pop(entry.opinion_seq, None)
        name = _ENTRY_NAMES.get(entry.kind, entry.kind)
        if expected is None:
            return (
                f"{subject}: the live tables have a {name} at #{entry.opinion_seq} that no event records "
                "(a live row was added)"
            )
        kind, round_no, stance, said_text = expected
        entry_checks = (
            ("kind", entry.kind, kind),
            ("round", entry.round_no, round_no),
            ("stance", entry.stance, stance),
            ("text", entry.text, said_text),
        )
        for what, now, said_of_it in entry_checks:
            if now != said_of_it:
                return _edited(
                    f"{subject}",
                    f"{what} of its {_ENTRY_NAMES.get(kind, kind)} #{entry.opinion_seq}",
                    _open(opened, now),
                    _open(opened, said_of_it),
                )
    if recorded:
        seq = min(recorded)
        name = _ENTRY_NAMES.get(recorded[seq][0], recorded[seq][0])
        return (
            f"{subject}: its events record a {name} at #{seq}, which the live tables no longer have "
            "(a live row was deleted)"
        )
    return None


def _open(opened: Callable[[str], str], value: object) -> object:
    """A value as a mismatch names it: a sealed text opened (where the login may read its key)."""
    return opened(value) if isinstance(value, str) else value


def _planner(assigned: str | None) -> str | None:
    """The planner an assignment event names."""
    if assigned is None:
        return None
    payload = json.loads(assigned)
    return str(payload.get("planner")) if isinstance(payload, dict) and payload else None


class _Quoted(dict[Any, str]):
    """Names (actors, kinds, states, ...) as the canonical text writes them, each quoted once.

    A nullable field's None is JSON null; for the others, quoting None fails as it does in
    `canonical_text`. Kept small: cleared when it grows past a few thousand names.
    """

    def __init__(self, *, null: bool) -> None:
        super().__init__()
        self.null = null

    def __missing__(self, name: Any) -> str:
        if len(self) >= _CHECKED_PAYLOADS:
            self.clear()
        quoted = self[name] = "null" if name is None and self.null else encode_basestring(name)
        return quoted


def _walk(
    consultation: ConsultationRow,
    events: Iterable[tuple[Any, ...]],
    expect_head: tuple[int, str] | None,
    key: ChainKey | None,
    said: _ConsultationSaid,
) -> ChainReport:
    """Recompute the chain (plain tuples in StoredEvent's order); take in the events of no opinion, count the others.

    Each event's canonical text is written here as `canonical_text` writes it (names quoted once
    per walk); an event whose hash does not match that text is checked again the slow way, which
    also reads a payload stored before payloads were canonical.
    """
    prev, expected, count = GENESIS_HASH, 1, 0
    published_seq, published_hash = expect_head or (0, "")
    checked: dict[tuple[str, str], tuple[str | None, bool]] = {}
    names, nullable = _Quoted(null=False), _Quoted(null=True)
    integer, sha256 = int.__repr__, hashlib.sha256
    secret = key.secret if key is not None else None
    opinion_events, portable = 0, True
    for event in events:
        count += 1
        problem = None
        (
            _,
            cid,
            seq,
            kind,
            oid,
            oseq,
            trigger,
            from_state,
            to_state,
            round_no,
            cycle,
            actor,
            role,
            at,
            payload,
            linked,
            h,
        ) = event
        if seq != expected:
            problem = f"event #{expected} is missing (the next one found is #{seq})"
        elif linked != prev:
            problem = "does not link to the event before it (an event was removed or replaced)"
        else:
            try:
                text = (  # the sequence number is the int it was compared with, the consultation the one asked for
                    f'{prev}{{"actor":{names[actor]},"at":"{at}","chain_seq":{seq},'
                    f'"completes_cycle":{"true" if cycle else "false"},"consultation_id":{cid},'
                    f'"from_state":{nullable[from_state]},"kind":{names[kind]},'
                    f'"opinion_id":{"null" if oid is None else integer(oid)},'
                    f'"opinion_seq":{"null" if oseq is None else integer(oseq)},"payload":{payload},'
                    f'"role":{names[role]},"round_no":{"null" if round_no is None else integer(round_no)},'
                    f'"to_state":{nullable[to_state]},"trigger":{nullable[trigger]}}}'
                ).encode()
                digest = sha256(text) if secret is None else hmac.new(secret, text, hashlib.sha256)
                if digest.hexdigest() != h and not _recomputed(StoredEvent._make(event), prev, key):
                    problem = "its content does not match its hash (the event was edited)"
            except (ValueError, TypeError, AttributeError, OverflowError) as exc:
                problem = f"unreadable ({type(exc).__name__}: {exc})"
        if problem is None and seq == published_seq and h != published_hash:
            problem = f"the published head #{published_seq} was {published_hash[:12]}…; this chain has {h[:12]}… there"
        if problem is None and payload != "{}":
            found: tuple[str | None, bool] | None
            if kind == EventKind.SUBMITTED:  # each its own (its text): nothing to remember
                found = _payload_check(kind, payload)
            else:
                content = (kind, payload)
                found = checked.get(content)
                if found is None:
                    if len(checked) >= _CHECKED_PAYLOADS:
                        checked.clear()
                    found = checked[content] = _payload_check(kind, payload)
            problem, readable = found
            portable = portable and readable
        if problem is not None:
            return ChainReport(
                consultation.id, count, prev, intact=False, broken=_broken(StoredEvent._make(event), problem)
            )
        if oid is None:
            said.see(StoredEvent._make(event))
        else:
            opinion_events += 1
        prev, expected = h, expected + 1
    said.opinion_events, said.portable = opinion_events, portable
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


def event_intact(e: StoredEvent, prev: str, key: ChainKey | None) -> bool:
    """Whether a stored event hashes to its stored hash after `prev` (the server checks new events before signing)."""
    return _recomputed(e, prev, key)
