"""What the use cases need from storage, as protocols: the store implements them (store/uow.py builds them).

Services speak only to these. The rows they return are the protocols of `consultflow.domain.model`.
Each protocol names the test file that checks the store's implementation on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "AccountEventRow",
    "Accounts",
    "ActorRow",
    "AttemptRow",
    "AuditEventRow",
    "ChainHeadRow",
    "ConsultationRow",
    "CredentialRow",
    "Database",
    "DeliveryRow",
    "EntryRow",
    "EventFilter",
    "LastEvent",
    "MovingOpinion",
    "NewEntry",
    "NewOpinionRow",
    "OpinionFilter",
    "OpinionRow",
    "ParticipantRow",
    "ReminderRow",
    "RoundRow",
    "StateEntry",
    "StoredEvent",
    "TokenRow",
    "UnitOfWork",
    "WorkflowRow",
]

from consultflow.domain.accounts import AccountDraft, AccountEventRow, ChainHeadRow, CredentialRow, TokenRow
from consultflow.domain.audit import AuditContent, ChainKey
from consultflow.domain.entering import Entering
from consultflow.domain.heads import SignedHead
from consultflow.domain.intake import IntakeRow
from consultflow.domain.model import (
    AccessRecord,
    AccountRow,
    ActorRow,
    AttemptRow,
    AuditEventRow,
    ConsultationRow,
    DeliveryRow,
    Disagreement,
    EntryRow,
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
    OpinionReplay,
    OpinionRow,
    ParticipantRow,
    ReminderRow,
    ReplayRules,
    ReportRow,
    RoundRow,
    StoredEvent,
    WorkflowRow,
)
from consultflow.domain.reminders import StateEntry
from consultflow.domain.roles import Role
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services.plan_ports import PlanStore
from consultflow.services.programme_ports import Participation, Programmes


class ActorRepository(Protocol):
    """People who act, and their roles.

    Checked in tests/integration/test_use_cases.py (roles given and taken: test_accounts.py).
    """

    def by_name(self, name: str) -> ActorRow | None:
        """The actor called `name`."""

    def require(self, name: str | None) -> tuple[ActorRow, list[Role]]:
        """The acting person and their roles, or a refusal."""

    def system(self) -> ActorRow:
        """Consultflow's own actor."""

    def roles(self, actor_id: int) -> list[Role]:
        """An actor's roles in order."""

    def count_people(self) -> int:
        """Registered people, not counting the system actor."""

    def get(self, actor_id: int) -> ActorRow | None:
        """An actor by id, if there is one."""

    def with_role(self, role: Role) -> Sequence[ActorRow]:
        """Everyone who has `role`."""

    def with_roles(self) -> Sequence[tuple[ActorRow, Sequence[Role]]]:
        """Every actor with their roles, by id."""

    def add_role(self, actor_id: int, role: Role) -> None:
        """Give an actor one more role."""

    def remove_role(self, actor_id: int, role: Role) -> None:
        """Take one role from an actor."""

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
    ) -> ActorRow:
        """Register an actor with roles."""


class ParticipantRepository(Protocol):
    """People who give opinions (the participant aggregate; bulk intake registers them set-based).

    Checked in tests/integration/test_aggregates.py.
    """

    def add(
        self, *, name: str, village: str, contact: str | None, lang: str, created_by: int, now: datetime
    ) -> ParticipantRow:
        """Register a participant (and the key their texts are sealed with)."""

    def get(self, participant_id: int) -> ParticipantRow:
        """A participant by id, or a refusal."""

    def registered(self, name: str, village: str, contact: str) -> int | None:
        """The participant (not erased) registered with this name, village and contact, if any."""

    def many(self, participant_ids: Sequence[int]) -> Sequence[ParticipantRow]:
        """The participants with these ids."""

    def missing(self, participant_ids: Sequence[int]) -> list[int]:
        """Those of the ids that name no participant."""

    def listing(self, village: str | None = None) -> Iterable[ParticipantRow]:
        """Participants by id, of one village when given, streamed."""


class WorkflowRepository(Protocol):
    """The workflow versions consultations run on: stored once, never changed.

    Checked in tests/integration/test_aggregates.py.
    """

    def get(self, workflow_id: int) -> WorkflowRow:
        """A stored workflow version (from memory once a committed transaction read it)."""

    def as_stored(self, workflow_id: int) -> WorkflowRow:
        """A workflow version's row as the table holds it now (never from memory: verify checks it)."""

    def version(self, name: str, version: int) -> WorkflowRow | None:
        """The stored copy of a workflow version."""

    def versions(self, name: str | None = None) -> Sequence[WorkflowRow]:
        """Stored workflow versions, of one name or all."""

    def add(self, spec: WorkflowSpec, now: datetime) -> WorkflowRow:
        """Store a workflow version's text."""


class ConsultationRepository(Protocol):
    """Consultations and their rounds.

    Checked in tests/integration/test_loop.py.
    """

    def lock_of_opinions(self, opinion_ids: Sequence[int]) -> Sequence[ConsultationRow]:
        """The consultations of opinions, locked in id order."""

    def get(self, consultation_id: int, *, lock: bool = False) -> ConsultationRow:
        """A consultation, locked when asked."""

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
    ) -> ConsultationRow:
        """Start a consultation."""

    def ids(self) -> list[int]:
        """Every consultation's id."""

    def open_rounds(self, consultation_ids: Sequence[int]) -> set[tuple[int, int]]:
        """(consultation, number) of each one's open round."""

    def due_for_auto_close(self, now: datetime) -> list[int]:
        """Consultations whose open round should close automatically by now."""

    def listing(self) -> Sequence[tuple[ConsultationRow, str, int, int]]:
        """Every consultation with its workflow name, version and number of opinions."""

    def rounds(self, consultation_id: int) -> Sequence[RoundRow]:
        """A consultation's rounds, oldest first."""

    def open_round(self, consultation_id: int) -> RoundRow | None:
        """The round now open."""

    def require_open_round(self, consultation_id: int) -> RoundRow:
        """The open round, or a refusal."""

    def last_round_number(self, consultation_id: int) -> int:
        """The highest round number so far (0 before the first)."""

    def add_round(self, consultation_id: int, number: int, closes_at: datetime | None, now: datetime) -> RoundRow:
        """Open a round."""


class OpinionRepository(Protocol):
    """Opinions and what was exchanged about them.

    Checked in tests/integration/test_loop.py.
    """

    def open_texts(self, consultation_id: int, category: str | None = None) -> Iterator[tuple[int, str, str]]:
        """(id, category, text) of the undecided opinions (of one category, if given), streamed."""

    def open_categories(self, consultation_id: int) -> Sequence[str]:
        """The categories of the undecided opinions."""

    def live_columns(self, consultation_id: int) -> Generator[LiveOpinion, None, None]:
        """The live columns of each opinion that its events account for, by id, streamed."""

    def live_entries(self, consultation_id: int) -> Generator[LiveEntry, None, None]:
        """The feedback and replies of the consultation's opinions, by opinion and sequence, streamed."""

    def merged_into(self, target_id: int) -> list[tuple[int, int]]:
        """(opinion, its participant) of each opinion merged into `target_id`."""

    def get(self, opinion_id: int) -> OpinionRow:
        """An opinion, or a refusal."""

    def by_receipt(self, receipt_hash: str) -> int | None:
        """The opinion whose receipt code hashes to `receipt_hash`."""

    def by_intake_key(self, consultation_id: int, intake_key: str) -> int | None:
        """The opinion recorded under `intake_key` in the consultation, if any."""

    def view_names(self, opinion_ids: Sequence[int]) -> dict[int, tuple[str, str, str | None, str]]:
        """For each opinion: (participant, village, assigned planner, recorded by)."""

    def lock_many(self, opinion_ids: Sequence[int]) -> Sequence[OpinionRow]:
        """Lock opinions in id order; returns them in the order asked."""

    def add_many(
        self,
        consultation: ConsultationRow,
        rows: Sequence[NewOpinionRow],
        *,
        recorded_by: int,
        state: str,
        round_no: int,
        now: datetime,
    ) -> Sequence[OpinionRow]:
        """Record opinions (seq 1, their submission event) and return them with ids."""

    def add_entries(self, entries: Sequence[NewEntry]) -> None:
        """The feedback and replies a batch of transitions carries."""

    def lock_moving(self, opinion_ids: Sequence[int]) -> Sequence[MovingOpinion]:
        """Opinions as plain rows for transitions, row-locked in id order, in the order asked."""

    def write_moves(self, moved: Sequence[MovingOpinion]) -> None:
        """Write what transitions changed in the rows `lock_moving` gave."""

    def get_many(self, opinion_ids: Sequence[int]) -> Sequence[OpinionRow]:
        """Opinions by id, in the order asked; refuses unknown ids."""

    def search(self, criteria: OpinionFilter) -> Sequence[OpinionRow]:
        """Opinions matching every value the filter gives, oldest first."""

    def search_streamed(self, criteria: OpinionFilter) -> Iterator[OpinionRow]:
        """As `search`, streamed."""

    def undecided(self) -> Sequence[OpinionRow]:
        """Every opinion without an outcome."""

    def entries(self, opinion_id: int) -> Sequence[tuple[EntryRow, str]]:
        """What was exchanged about an opinion, with who wrote each."""

    def count_by_state(self, consultation_id: int, *, open_only: bool = False) -> dict[str, int]:
        """Opinions per state."""

    def in_states(self, consultation_id: int, states: Sequence[str]) -> Iterable[tuple[int, str, datetime, int]]:
        """(id, state, state_entered_at, last_seq) of the consultation's opinions in `states`, by id, streamed."""

    def close_round(
        self, consultation_id: int, effects: Mapping[str, Entering | None], next_round: int, now: datetime
    ) -> None:
        """Apply a round close set-based: each state's effect (None = carry over) in one UPDATE."""


class AuditLog(Protocol):
    """The append-only, hash-chained audit events.

    Checked in tests/integration/test_audit_trail.py.
    """

    def append(
        self, consultation: ConsultationRow, drafts: Sequence[AuditContent], key: ChainKey | None = None
    ) -> None:
        """Chain and insert events after the consultation's head (HMAC-keyed when `key` is given)."""

    def chain(self, consultation_id: int, after: int = 0) -> Generator[StoredEvent, None, None]:
        """A consultation's events in chain order (those after sequence number `after`), streamed."""

    def summaries(self, consultation_id: int) -> Generator[EventSummary, None, None]:
        """Per opinion with events, by id: what they say of it (aggregated, streamed)."""

    def fact_events(self, consultation_id: int) -> Generator[FactEvent, None, None]:
        """The submitted, corrected and transition events of its opinions, by opinion and sequence, streamed."""

    def search(self, criteria: EventFilter) -> Iterable[AuditEventRow]:
        """Opinion events matching every filter, in order, streamed."""

    def last_events(self, moment: datetime, consultation_id: int | None = None) -> Iterable[LastEvent]:
        """Each opinion's last event at or before `moment`, by id, streamed."""

    def for_opinion(self, opinion_id: int) -> Sequence[AuditEventRow]:
        """An opinion's events in order."""


class ReminderStore(Protocol):
    """Reminder records, planned and cancelled in the transaction that causes them.

    Checked in tests/integration/test_reminders.py.
    """

    def plan(
        self, spec: WorkflowSpec, entries: Sequence[StateEntry], round_closes_at: datetime | None, now: datetime
    ) -> int:
        """Write the reminders the entries' states call for; existing ones stay."""

    def cancel_for_opinions(self, opinion_ids: Sequence[int], reason: str, now: datetime) -> None:
        """Cancel pending reminders of opinions that left their state."""

    def cancel_for_round(self, consultation_id: int, states: Sequence[str], reason: str, now: datetime) -> None:
        """Cancel pending reminders due at a round's close."""

    def get_many(self, reminder_ids: Sequence[int]) -> Sequence[ReminderRow]:
        """Reminders by id; refuses unknown ids."""

    def due(self, now: datetime, batch: int) -> Sequence[ReminderRow]:
        """Pending reminders due by `now`, locked for this worker."""

    def search(self, consultation_id: int | None, status: str | None, limit: int | None) -> Iterable[ReminderRow]:
        """Reminders, soonest first, streamed."""

    def deliveries(self, *, failed_only: bool = False, limit: int | None = None) -> Sequence[DeliveryRow]:
        """The outbox by id."""

    def deliveries_of(self, reminder_id: int) -> Sequence[DeliveryRow]:
        """A reminder's deliveries."""

    def attempts_of(self, delivery_ids: Sequence[int]) -> Sequence[AttemptRow]:
        """Every attempt at these deliveries, in order."""


class Outbox(Protocol):
    """Deliveries and their attempts.

    Checked in tests/integration/test_reminders.py.
    """

    def queue(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Add messages, skipping known idempotency keys."""

    def dead_letter_abandoned(self, now: datetime, max_attempts: int) -> int:
        """Dead-letter deliveries a worker died sending `max_attempts` times."""

    def requeue_dead(self, delivery_ids: Sequence[int] | None, now: datetime) -> list[int]:
        """Give dead letters one more try."""

    def claim(self, now: datetime, batch: int, lease: timedelta) -> Sequence[DeliveryRow]:
        """Lease due deliveries to this worker."""

    def contacts(self, deliveries: Sequence[DeliveryRow]) -> dict[int, str | None]:
        """Each delivery's recipient contact, read now."""

    def get(self, delivery_id: int) -> DeliveryRow:
        """One claimed delivery."""

    def add_attempt(self, delivery_id: int, attempt: int, at: datetime, error: str | None) -> None:
        """Record one try at sending."""


class Figures(Protocol):
    """Aggregates over a consultation's opinions and events (see store.figures).

    Checked in tests/integration/test_audit_trail.py.
    """

    def outcome_counts(self, consultation_id: int) -> Sequence[tuple[str, str, str | None, int]]:
        """(category, channel, outcome or None, opinions), grouped by the database."""

    def account_rows(self, consultation_id: int, category: str, round_no: int | None) -> Iterator[AccountRow]:
        """The published account's rows of one category (of one round's answers, if given), by id, streamed."""

    def account_participants(
        self, consultation_id: int, categories: Sequence[str], round_no: int | None
    ) -> Iterator[int]:
        """The participants whose opinions the published account shows, streamed."""

    def plan_sections(self, consultation_id: int, outcomes: Sequence[str]) -> Sequence[tuple[str, int, int]]:
        """(plan section, opinions, adopted outright) for the sections that decided opinions name."""

    def plan_rows(self, consultation_id: int, plan_ref: str, outcomes: Sequence[str]) -> Iterator[ReportRow]:
        """The opinions of one plan section, by id, streamed."""

    def plan_participants(self, consultation_id: int, outcomes: Sequence[str]) -> Iterator[int]:
        """The participants whose opinions the plan table shows, streamed."""

    def participant_count(self, consultation_id: int) -> int:
        """How many participants gave the consultation's opinions."""

    def outcome_rounds(
        self, consultation_id: int, outcomes: Sequence[str], by: Literal["category", "channel"] | None
    ) -> Sequence[tuple[str, int, str | None, int]]:
        """(outcome, rounds count, group, opinions) for decided opinions."""

    def opinion_rounds(self, consultation_id: int, outcomes: Sequence[str]) -> Iterable[tuple[int, str, int, str, str]]:
        """(id, outcome, rounds count, category, channel) of each decided opinion, by id, streamed."""

    def event_counts(self, consultation_id: int) -> Sequence[tuple[int, str, str | None, str | None, int]]:
        """(round, kind, trigger, destination, distinct opinions)."""

    def last_round(self, consultation_id: int) -> int:
        """The highest round of the consultation's events."""


class PersonalData(Protocol):
    """Records of reads of personal information, and erasure.

    Checked in tests/integration/test_personal_data.py.
    """

    def record_access(
        self, *, actor_id: int, at: datetime, what: str, purpose: str, participant_ids: Iterable[int]
    ) -> int:
        """Record one read and the participants it showed."""

    def accesses(
        self, *, participant_id: int | None = None, actor: str | None = None, limit: int = 1000
    ) -> Sequence[AccessRecord]:
        """Access records, newest first."""

    def same_person(self, participant_id: int, *, same_name_village: bool) -> list[tuple[int, str]]:
        """(id, why) of each living record of the person `participant_id` is (itself included), by id.

        Why: "asked", "contact" (the same contact, a phone's digits or an e-mail lower-cased), or
        "name and village" (only when `same_name_village`).
        """

    def unsealed_texts(self, participant_ids: Iterable[int]) -> int:
        """How many texts of these participants' opinions were recorded before sealing (they cannot be forgotten)."""

    def erase_participant(self, participant_id: int, *, pseudonym: str, now: datetime) -> None:
        """Overwrite a participant's name, contact, village and keyed hashes wherever they are kept.

        Also every message, stored delivery error and attempt that names them, gives their contact
        or quotes their opinion (outside the audit chain, which holds none of them).
        """


class Logins(Protocol):
    """Database logins (PostgreSQL): the connected one, bindings to actors, group roles.

    Checked in tests/integration/test_pg_logins.py (PostgreSQL only: SQLite has no logins).
    """

    def session_login(self) -> str | None:
        """The login this connection authenticated as (None on SQLite)."""

    def binding(self, login: str) -> tuple[bool, ActorRow | None]:
        """(whether any actor is bound to a login, the actor bound to `login`)."""

    def bind(self, actor_id: int, login: str) -> None:
        """Record that `login` proves this actor."""

    def exists(self, login: str) -> bool:
        """Whether the cluster has a login of this name."""

    def is_member(self, login: str, group: str) -> bool:
        """Whether `login` belongs to `group`."""

    def holds_database_role(self, login: str) -> bool:
        """Whether `login` holds one of this database's roles (server, worker, reader)."""

    def grant(self, group: str, login: str) -> None:
        """Make `login` a member of `group`."""


class Intake(Protocol):
    """Bulk intake in set-based batches.

    Checked in tests/integration/test_sealed_texts.py.
    """

    def existing_keys(self, consultation_id: int, keys: Sequence[str]) -> set[str]:
        """Those of `keys` already imported into the consultation."""

    def recorded(self, consultation_id: int, rows: Sequence[IntakeRow]) -> dict[str, tuple[int, bool]]:
        """For each row whose key is already recorded: (the opinion, whether it said the same)."""

    def source_fields(self, opinion_id: int) -> dict[str, str] | None:
        """The file's other columns an opinion was imported with (opened), if any."""

    def participants(self, rows: Sequence[IntakeRow], *, created_by: int, now: datetime) -> dict[str, int]:
        """Participant ids by key, creating the ones not registered yet."""

    def add_opinions(
        self,
        consultation: ConsultationRow,
        rows: Sequence[IntakeRow],
        participant_ids: dict[str, int],
        texts: Sequence[str],
        fields: Sequence[str | None] | None = None,
        *,
        recorded_by: int,
        state: str,
        round_no: int,
        now: datetime,
    ) -> list[int]:
        """Insert a batch of opinions with their (sealed) texts and source fields; their ids in order."""


class Accounts(Protocol):
    """Staff accounts: each person's credential (password hash, two-step secret, disabled or not).

    Checked in tests/integration/test_accounts.py.
    """

    def credential(self, actor_id: int) -> CredentialRow | None:
        """A person's credential row, read afresh, if they have one."""

    def save_password(self, actor_id: int, password_hash: str, now: datetime) -> None:
        """Set a person's password hash."""

    def replace_password_hash(self, actor_id: int, old: str, new: str) -> bool:
        """Replace the hash with a stronger one, unless the password changed meanwhile."""

    def set_totp(
        self, actor_id: int, *, secret: str | None, confirmed_at: datetime | None, last_step: int | None
    ) -> None:
        """Store (or clear) a person's two-step secret."""

    def use_totp_step(self, actor_id: int, step: int) -> bool:
        """Mark a time step's code used, atomically; False if it (or a later one) was used already."""

    def set_disabled(self, actor_id: int, at: datetime | None) -> None:
        """Disable (at a moment) or enable (None) a person's account."""

    def enabled_with_role(self, role: Role) -> Sequence[int]:
        """Actors holding `role` whose account is not disabled."""


class Throttle(Protocol):
    """Failed sign-ins counted under a key (a name, a client), shared by every server process.

    Checked in tests/integration/test_accounts.py.
    """

    def locked_until(self, keys: Sequence[str], now: datetime) -> datetime | None:
        """The latest moment any of the throttle keys is locked until, if one is locked now."""

    def count_failure(
        self, key: str, now: datetime, *, limit: int, window: timedelta, lock_for: timedelta
    ) -> tuple[int, datetime | None]:
        """Count one failed sign-in under a key, atomically: (failures in the window, locked until)."""

    def clear(self, key: str) -> None:
        """Forget the failed sign-ins counted under a key."""


class Tokens(Protocol):
    """Personal access tokens, by their hash.

    Checked in tests/integration/test_accounts.py.
    """

    def add(
        self,
        *,
        actor_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        scope: str,
        now: datetime,
        expires_at: datetime,
    ) -> TokenRow:
        """Record a new token by its hash."""

    def get(self, token_id: int) -> TokenRow | None:
        """A token by id."""

    def bearer(self, token_hash: str) -> tuple[TokenRow, str, datetime | None] | None:
        """The token with this hash, its owner's name and when their account was disabled."""

    def touch(self, token_id: int, now: datetime, every: timedelta) -> bool:
        """Set last_used_at unless set less than `every` ago; whether it was set."""

    def revoke(self, token_id: int, *, by: int, now: datetime) -> bool:
        """Revoke a token not yet revoked; whether it was."""

    def revoke_all_of(self, actor_id: int, *, by: int, now: datetime) -> Sequence[int]:
        """Revoke every live token of an actor; their ids."""

    def listing(self, actor_id: int | None) -> Sequence[tuple[TokenRow, str, str | None]]:
        """Tokens (of one actor, or all) with their owner and who revoked them, newest first."""


class AccountLog(Protocol):
    """The account log: a hash chain of what was done to accounts.

    Checked in tests/integration/test_accounts.py.
    """

    def head(self, *, lock: bool = False) -> ChainHeadRow:
        """The account log's head (locked when asked)."""

    def append(self, drafts: Sequence[AccountDraft], key: ChainKey | None) -> None:
        """Chain and insert account events after the head (HMAC-keyed when a key is given)."""

    def events(
        self, *, subject: str | None = None, involving: str | None = None, kind: str | None = None, limit: int = 100
    ) -> Sequence[AccountEventRow]:
        """Account events, newest first, filtered."""

    def chain(self) -> Generator[AccountEventRow, None, None]:
        """Every account event in chain order, streamed."""


@runtime_checkable
class VerifyReads(Protocol):
    """What the store's audit log offers verify beyond `AuditLog`; without it verify replays every opinion itself.

    Checked in tests/integration/test_verify_facts.py.
    """

    def chain_rows(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """A consultation's events in chain order as plain tuples in StoredEvent's order, streamed."""

    def disagreements(self, consultation_id: int, rules: ReplayRules) -> Generator[Disagreement, None, None]:
        """The live opinions the database could not match with their events (never one that does), by id."""

    def entry_disagreements(self, consultation_id: int, rules: ReplayRules) -> Generator[int, None, None]:
        """Opinions whose feedback or reply rows no transition records one to one, by id, each once."""

    def live_seq_total(self, consultation_id: int) -> int:
        """The sum of the consultation's opinions' live sequence numbers."""

    def first_orphan(self, consultation_id: int) -> int | None:
        """The lowest opinion id the chain's events name that is not one of the consultation's opinions."""

    def opinion_replay(self, consultation_id: int, opinion_id: int) -> OpinionReplay:
        """One opinion's live row, the summary of its events, its fact events and its feedback and replies."""

    def group_events(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """Every chain's events setting a group of this consultation's participants, streamed.

        Each is (participant, consultation, chain sequence, kind, payload), by participant, then as they happened.
        """

    def live_groups(self, consultation_id: int) -> Generator[tuple[Any, ...], None, None]:
        """(participant, group) of each participant with opinions in the consultation, by id."""


class SignedHeads(Protocol):
    """Chain heads the server signed and published: added once, never changed.

    Checked in tests/integration/test_signed_heads.py.
    """

    def add(self, head: SignedHead) -> bool:
        """Store a signed head; False when this key had already signed it (another server process did)."""

    def last(self, consultation_id: int | None, key_id: str | None = None) -> SignedHead | None:
        """The chain's latest signed head (by this key, if given); None: the account log's."""

    def all_of(self, consultation_id: int | None = None, *, every: bool = True) -> Generator[SignedHead, None, None]:
        """Signed heads in the order they were signed, streamed: of every chain, or of one."""

    def account_hashes(self, seqs: Sequence[int]) -> dict[int, str]:
        """The hashes the account log has at these sequence numbers."""

    def chain_hashes(self, consultation_id: int, seqs: Sequence[int]) -> dict[int, str]:
        """The hashes the chain has at these sequence numbers (those it has)."""


class TextKeys(Protocol):
    """Participants' keys: their free text sealed with them, forgotten when a key is destroyed.

    Checked in tests/integration/test_sealed_texts.py.
    """

    def create(self, participant_ids: Iterable[int], now: datetime) -> None:
        """A new key for each of these new participants."""

    def destroy(self, participant_ids: Iterable[int]) -> int:
        """Delete these participants' keys (their sealed texts are gone for good); how many there were."""

    def seal(self, participant_id: int, value: str) -> str:
        """`value` sealed with the participant's key (erased: with a key not kept, forgotten at once)."""

    def seal_many(self, texts: Sequence[tuple[int, str]]) -> list[str]:
        """Each (participant, text) sealed with that participant's key, in order."""

    def keyed(self, plain: str) -> str:
        """A match or intake key as stored: keyed with the server's secret."""

    def open(self, value: str) -> str:
        """The text a stored value holds (opened, or FORGOTTEN / UNREADABLE / DAMAGED)."""


class Themes(Protocol):
    """Themes opinions are coded with (issue 26), and the read models around them.

    Checked in tests/integration/test_themes.py.
    """

    def of_opinions(self, opinion_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each opinion's themes (sorted), for those that have any."""

    def add(self, rows: Sequence[tuple[int, int, str]], *, actor_id: int, now: datetime) -> None:
        """(consultation, opinion, theme) rows added (none may exist yet)."""

    def remove(self, pairs: Sequence[tuple[int, str]]) -> None:
        """(opinion, theme) pairs removed."""

    def counts(self, consultation_id: int) -> Sequence[tuple[str, str, str | None, int]]:
        """(category, theme, outcome, opinions) for every theme used in the consultation."""

    def coded_per_round(self, consultation_id: int) -> Sequence[tuple[int, int, int]]:
        """(round, opinions in it, of which coded with a theme) per round."""

    def texts(self, consultation_id: int, category: str | None = None) -> Iterator[tuple[int, str, str]]:
        """(id, category, text) of every opinion of the consultation (of one category), streamed."""

    def id_range(self, consultation_id: int) -> tuple[int, int] | None:
        """The lowest and highest opinion id with a theme or a theme event, if any."""

    def replay_window(
        self, consultation_id: int, low: int, high: int
    ) -> tuple[Sequence[tuple[int, str, str]], Sequence[tuple[int, str]]]:
        """For opinions low..high: their theme events (opinion, kind, payload) in chain order, and live themes."""


class UnitOfWork(Protocol):
    """One transaction and the repositories inside it.

    A repository is one read-only property here; the store builds it when a use case first asks for
    it in a transaction (store/uow.py).
    """

    @property
    def actors(self) -> ActorRepository:
        """People who act, and their roles."""

    @property
    def participants(self) -> ParticipantRepository:
        """People who give opinions."""

    @property
    def workflows(self) -> WorkflowRepository:
        """The workflow versions consultations run on."""

    @property
    def consultations(self) -> ConsultationRepository:
        """Consultations and their rounds."""

    @property
    def opinions(self) -> OpinionRepository:
        """Opinions."""

    @property
    def audit(self) -> AuditLog:
        """The audit chain."""

    @property
    def reminders(self) -> ReminderStore:
        """Reminder records."""

    @property
    def figures(self) -> Figures:
        """Aggregates for the auditors' figures."""

    @property
    def outbox(self) -> Outbox:
        """Messages to send."""

    @property
    def personal_data(self) -> PersonalData:
        """Access records and erasure."""

    @property
    def logins(self) -> Logins:
        """Database logins and their bindings."""

    @property
    def intake(self) -> Intake:
        """Bulk intake."""

    @property
    def accounts(self) -> Accounts:
        """Staff accounts' credentials."""

    @property
    def tokens(self) -> Tokens:
        """Personal access tokens."""

    @property
    def throttle(self) -> Throttle:
        """Failed sign-ins, counted."""

    @property
    def account_log(self) -> AccountLog:
        """The account log's chain."""

    @property
    def heads(self) -> SignedHeads:
        """Chain heads the server signed."""

    @property
    def participation(self) -> Participation:
        """Who took part and how often; participants' groups."""

    @property
    def programmes(self) -> Programmes:
        """County programmes of areas."""

    @property
    def texts(self) -> TextKeys:
        """Participants' keys, for their free text."""

    @property
    def plans(self) -> PlanStore:
        """The draft plan's versions and clauses, review rounds and ratings."""

    @property
    def themes(self) -> Themes:
        """Themes opinions are coded with."""

    def __enter__(self) -> UnitOfWork:  # noqa: PYI034 - Python 3.10 has no typing.Self
        """Begin the transaction."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Roll back what was not committed; translate driver errors."""

    def commit(self) -> None:
        """Make the changes permanent."""

    def flush(self) -> None:
        """Send pending changes so generated ids are known."""

    def release(self) -> None:
        """Send pending changes, then forget the opinions loaded so far (bulk work keeps memory flat).

        Their row locks stay held until the transaction ends.
        """


class Database(Protocol):
    """One database: units of work on it, and its schema."""

    def unit_of_work(self) -> UnitOfWork:
        """A fresh unit of work, used as a context manager."""

    def reading(self) -> UnitOfWork:
        """A unit of work that only reads, on one snapshot, without blocking writers."""

    def schema_revision(self) -> str | None:
        """The revision the database is at (None: never migrated)."""

    def head_revision(self) -> str | None:
        """The newest revision consultflow ships."""

    def upgrade(self) -> None:
        """Bring the schema to the newest revision."""

    def dispose(self) -> None:
        """Close pooled connections."""
