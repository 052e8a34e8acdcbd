"""What consultflow's records are, as the use cases see them: protocols over attributes.

The store's mapped classes satisfy these structurally, and so do a fake unit of work's plain
objects, so neither services nor tests depend on how rows are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from consultflow.domain.machine import WorkflowEngine
    from consultflow.domain.opinion import Firing, Move
    from consultflow.domain.vocabulary import Field

MAX_ID = 2**31 - 1  # ids are INTEGER columns on PostgreSQL; larger numbers name nothing


@dataclass(frozen=True)
class NewOpinionRow:
    """The columns of an opinion being recorded."""

    participant_id: int
    category: str
    channel: str
    text: str
    intake_key: str | None = None  # what makes a repeated submission (a form posted twice) the same one
    receipt_hash: str | None = None  # consultflow.domain.receipts


class ReportRow(NamedTuple):
    """What the plan table shows of one opinion (read as plain rows, not objects)."""

    id: int
    participant_id: int
    category: str
    text: str
    state: str
    outcome: str | None
    plan_ref: str | None
    merged_into_id: int | None
    name: str  # the participant's, for display_name; never a contact
    village: str


class AccountRow(NamedTuple):
    """What the published account shows of one opinion: the plan table's row, its feedback and last event."""

    opinion: ReportRow
    feedback: str | None  # the latest feedback (of the round asked for), if any
    last_payload: str | None  # the last event's payload JSON
    last_round: int | None  # the round of the last event


class ActorRow(Protocol):
    """A person who acts."""

    id: int
    name: str
    lang: str
    contact: str | None
    created_at: datetime
    login: str | None
    participant_id: int | None


class ParticipantRow(Protocol):
    """A villager or group whose opinions are recorded."""

    id: int
    name: str
    village: str
    contact: str | None
    lang: str
    created_at: datetime
    created_by_id: int
    erased_at: datetime | None
    group_id: str | None  # the kind of person (an id of the workflow's groups), if given


class WorkflowRow(Protocol):
    """A stored workflow version."""

    id: int
    name: str
    version: int
    digest: str
    source: str


class ConsultationRow(Protocol):
    """A consultation and the head of its audit chain."""

    id: int
    title: str
    area: str
    workflow_id: int
    created_at: datetime
    chain_seq: int
    chain_head: str
    auto_close: bool
    chain_key_id: str | None
    programme_id: int | None  # the county programme it is an area of, if any


class RoundRow(Protocol):
    """A numbered round."""

    consultation_id: int
    number: int
    status: str
    opened_at: datetime
    closes_at: datetime | None
    closed_at: datetime | None


class OpinionRow(Protocol):
    """An opinion's maintained columns."""

    id: int
    consultation_id: int
    workflow_id: int
    participant_id: int
    recorded_by_id: int
    assigned_planner_id: int | None
    category: str
    channel: str
    text: str
    state: str
    state_entered_at: datetime
    current_round: int
    rounds_count: int
    outcome: str | None
    plan_ref: str | None
    merged_into_id: int | None
    last_seq: int
    submitted_at: datetime
    receipt_hash: str | None


@dataclass(slots=True)
class MovingOpinion:
    """An opinion as a transition sees it: a plain locked row, not an ORM object.

    `fire` changes it in memory (the machine sets `state`, its callback on entering the rest); the
    store then writes a batch of them as a set, relative to the sequence and rounds count it read
    (`loaded_seq`, `loaded_rounds`), so bulk work costs statements per batch, not per opinion.
    """

    id: int
    consultation_id: int
    participant_id: int
    recorded_by_id: int
    assigned_planner_id: int | None
    state: str
    state_entered_at: datetime
    current_round: int
    rounds_count: int
    outcome: str | None
    plan_ref: str | None
    merged_into_id: int | None
    last_seq: int
    loaded_seq: int = 0
    loaded_rounds: int = 0

    def __post_init__(self) -> None:
        self.loaded_seq, self.loaded_rounds = self.last_seq, self.rounds_count

    def fire(self, engine: WorkflowEngine, trigger: str, fields: Mapping[Field, object], firing: Firing) -> Move:
        """Move along `trigger` through the workflow's machine, and say what happened.

        The machine refuses a trigger this state does not allow; its guards refuse the actor's role,
        the fields, and what `firing`'s hooks refuse, leaving this opinion as it was; its callback
        on entering the new state sets the entering columns (consultflow.domain.machine).
        """
        return engine.fire(self, trigger, fields, firing)


# The opinion columns a MovingOpinion holds, in its constructor's order.
MOVING_COLUMNS = tuple(f for f in MovingOpinion.__dataclass_fields__ if not f.startswith("loaded_"))


class NewEntry(NamedTuple):
    """Feedback or a reply that a transition carries, to be written with its batch."""

    opinion_id: int
    opinion_seq: int
    round_no: int
    kind: str
    stance: str | None
    text: str
    actor_id: int
    created_at: datetime


class ReminderRow(Protocol):
    """A reminder owed about an opinion's deadline."""

    id: int
    consultation_id: int
    opinion_id: int
    round_no: int
    rule: str
    state: str
    state_entered_at: datetime
    recipient_role: str
    escalation: bool
    due_at: datetime
    send_at: datetime
    status: str
    closed_at: datetime | None
    cancel_reason: str | None


class EntryRow(Protocol):
    """Feedback or a reply given in a round."""

    opinion_id: int
    round_no: int
    kind: str
    stance: str | None
    text: str
    created_at: datetime


class DeliveryRow(Protocol):
    """A message in the outbox."""

    id: int
    idempotency_key: str
    kind: str
    reminder_id: int | None
    recipient_kind: str
    recipient_id: int
    recipient_name: str
    channel: str
    lang: str
    subject: str
    body: str
    status: str
    attempts: int
    next_attempt_at: datetime
    locked_until: datetime | None
    last_error: str | None
    sent_at: datetime | None


class AttemptRow(Protocol):
    """One try at sending a delivery."""

    delivery_id: int
    attempt: int
    at: datetime
    ok: bool
    error: str | None


@dataclass(frozen=True, kw_only=True)  # keywords only: a positional --limit once became a participant id
class OpinionFilter:
    """Which opinions to list; every value given must match."""

    consultation_id: int | None = None
    state: str | None = None
    assigned_planner_id: int | None = None
    category: str | None = None
    channel: str | None = None
    round_no: int | None = None
    outcome: str | None = None
    participant_id: int | None = None
    limit: int | None = None


class StoredEvent(NamedTuple):
    """One stored audit event as a plain tuple, as verify streams them (fields read at C speed)."""

    id: int
    consultation_id: int
    chain_seq: int
    kind: str
    opinion_id: int | None
    opinion_seq: int | None
    trigger: str | None
    from_state: str | None
    to_state: str | None
    round_no: int | None
    completes_cycle: bool
    actor: str
    role: str
    at: str  # as the chain hashes it (`utc_iso`)
    payload: str
    prev_hash: str
    hash: str


class EventSummary(NamedTuple):
    """What an opinion's events say of it, aggregated by the database for verify's replay check."""

    opinion_id: int
    last_seq: int  # the highest sequence number
    cycles: int  # events that complete a cycle
    state: str | None  # the destination of the latest event that has one
    assigned: str | None  # the payload of the latest assignment, naming the planner


class LiveOpinion(NamedTuple):
    """An opinion's live columns that its events account for, as verify streams them by id."""

    id: int
    state: str
    outcome: str | None
    rounds_count: int
    last_seq: int
    planner_id: int | None
    workflow_id: int
    participant_id: int
    category: str
    channel: str
    text: str
    plan_ref: str | None
    merged_into_id: int | None


class LiveEntry(NamedTuple):
    """A live feedback or reply row (opinion_entry), as verify streams them by opinion and sequence."""

    opinion_id: int
    opinion_seq: int
    round_no: int
    kind: str
    stance: str | None
    text: str


class FactEvent(NamedTuple):
    """An event that records an opinion's facts (submitted, corrected, a transition), by opinion and sequence."""

    opinion_id: int
    opinion_seq: int
    kind: str
    trigger: str | None
    round_no: int | None
    payload: str


class ReplayRules(NamedTuple):
    """What the database needs to replay an opinion's events as verify does, from the workflow and roles."""

    workflow_id: int  # the consultation's workflow: every opinion's
    outcomes: tuple[tuple[str, str], ...]  # (state, outcome) for each state that has an outcome
    entries: tuple[tuple[str, str], ...]  # (trigger, entry kind) for each trigger that writes feedback or a reply
    planner_role: str  # the role an assigned planner holds


class Disagreement(NamedTuple):
    """An opinion whose live row the database could not match with its events: verify checks it in full."""

    opinion_id: int
    events: int  # its events in the consultation's chain
    last_seq: int  # its live sequence number


class OpinionReplay(NamedTuple):
    """What verify replays of one opinion the database named: its rows as the streams give them."""

    live: list[LiveOpinion]
    summaries: list[EventSummary]
    facts: list[FactEvent]
    entries: list[LiveEntry]


class AuditEventRow(Protocol):
    """One stored audit event."""

    id: int
    consultation_id: int
    chain_seq: int
    kind: str
    opinion_id: int | None
    opinion_seq: int | None
    trigger: str | None
    from_state: str | None
    to_state: str | None
    round_no: int | None
    completes_cycle: bool
    actor: str
    role: str
    at: datetime
    payload: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class EventFilter:
    """Which opinion events to find; every filter given must hold.

    Participant, category, channel and outcome are the opinion's; state is where the event led;
    round and time range are the event's.
    """

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


@dataclass(frozen=True)
class LastEvent:
    """Where an opinion's events had taken it at some moment."""

    opinion_id: int
    consultation_id: int
    workflow_id: int
    state: str
    round_no: int
    cycles: int
    at: datetime


@dataclass(frozen=True)
class AccessRecord:
    """One read of personal information (full names, contacts), as listed for auditors."""

    id: int
    at: datetime
    actor: str
    what: str
    purpose: str
    participants: int
