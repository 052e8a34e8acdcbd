"""SQLAlchemy 2 models. Migrations create the schema; a test proves the two agree."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from consultflow.store.types import SealedPayload, SealedText, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with one naming convention, so migrations can name every constraint."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Workflow(Base):
    """A workflow version as it was when first used: opinions keep running on this text."""

    __tablename__ = "workflow"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Actor(Base):
    """A person who acts through consultflow (coordinator, planner, expert, ...)."""

    __tablename__ = "actor"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    contact: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The PostgreSQL login that proves this person is acting (see consultflow.store.identity).
    login: Mapped[str | None] = mapped_column(String(63), index=True, unique=True)
    # For a participant-role actor: the participant record they are (their own opinions).
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", use_alter=True, name="fk_actor_participant_id_participant")
    )


class ActorRole(Base):
    """One role of an actor; `position` keeps the order roles were given in."""

    __tablename__ = "actor_role"

    actor_id: Mapped[int] = mapped_column(ForeignKey("actor.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Participant(Base):
    """A villager or group whose opinions are recorded; not necessarily a user of the tool."""

    __tablename__ = "participant"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    village: Mapped[str] = mapped_column(String(120))
    contact: Mapped[str | None] = mapped_column(String(255), deferred=True)  # readable by few logins
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    # Set when the participant's name, contact and village were erased on request (the name is then
    # the pseudonym, the contact NULL and the village empty).
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # consultflow.domain.intake.participant_key: how bulk intake recognises the same person.
    match_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # The kind of person (an id of the workflow's `groups:`, e.g. residents); not personal data (0017).
    group_id: Mapped[str | None] = mapped_column(String(40))


class ParticipantKey(Base):
    """The key a participant's free text is sealed with; erasure deletes it, and the text is gone."""

    __tablename__ = "participant_key"

    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))  # hex; only the server's login may read it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PrivacySecret(Base):
    """Secrets the server holds in its database (only its login may read them): the match-key secret."""

    __tablename__ = "privacy_secret"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))  # hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Consultation(Base):
    """One consultation (one area plan), with the head of its audit hash chain."""

    __tablename__ = "consultation"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    area: Mapped[str] = mapped_column(String(200))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    chain_seq: Mapped[int] = mapped_column(Integer, default=0)
    chain_head: Mapped[str] = mapped_column(String(64))
    auto_close: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The id (not the secret) of the key its chain is HMAC-keyed with; NULL: plain SHA-256.
    chain_key_id: Mapped[str | None] = mapped_column(String(16))
    # The county programme it is an area (片区) of, if any (0017).
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programme.id"), index=True)


class Programme(Base):
    """A county programme of areas (片区): several consultations, one per area, side by side (0017)."""

    __tablename__ = "programme"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))


class Round(Base):
    """A numbered round of a consultation; at most one is open at a time."""

    __tablename__ = "consultation_round"
    __table_args__ = (
        UniqueConstraint("consultation_id", "number"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Opinion(Base):
    """One opinion; `state` changes only through the workflow machine and with an audit event."""

    __tablename__ = "opinion"
    __table_args__ = (
        Index(None, "consultation_id", "state"),
        Index(None, "assigned_planner_id", "state"),
        Index(None, "consultation_id", "outcome", "rounds_count"),
        Index(None, "consultation_id", "category", "channel", "outcome"),  # report adoption, index only
        Index(None, "consultation_id", "participant_id"),  # its participant count
        Index(None, "consultation_id", "plan_ref"),  # report plan, a section at a time
        Index(None, "consultation_id", "intake_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    assigned_planner_id: Mapped[int | None] = mapped_column(ForeignKey("actor.id"))
    category: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(SealedText())  # sealed with its participant's key (domain.sealing)
    state: Mapped[str] = mapped_column(String(60))
    state_entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    current_round: Mapped[int] = mapped_column(Integer)
    rounds_count: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(20))
    plan_ref: Mapped[str | None] = mapped_column(String(200))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("opinion.id"))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The file row it came from (consultflow.domain.intake): a re-import adds nothing twice.
    intake_key: Mapped[str | None] = mapped_column(String(64))
    # What that row said (keyed like intake_key): the same key with other content is refused (0016).
    content_key: Mapped[str | None] = mapped_column(String(64))
    # The file's other columns (JSON), sealed with the participant's key like the text (0016).
    source_fields: Mapped[str | None] = mapped_column(SealedText())
    # SHA-256 of its receipt code (consultflow.domain.receipts); the code itself is never stored.
    receipt_hash: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own API


class OpinionEntry(Base):
    """The text exchanged in a round: the planning team's feedback, the participant's reply."""

    __tablename__ = "opinion_entry"
    __table_args__ = (Index(None, "opinion_id", "round_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opinion_id: Mapped[int] = mapped_column(ForeignKey("opinion.id"))
    opinion_seq: Mapped[int] = mapped_column(Integer)
    round_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    stance: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(SealedText())  # sealed with the opinion's participant's key
    actor_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OpinionTheme(Base):
    """A theme a planner coded an opinion with (0018); adding and removing one are audit events."""

    __tablename__ = "opinion_theme"
    __table_args__ = (
        UniqueConstraint("opinion_id", "theme"),
        Index(None, "consultation_id", "theme"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    opinion_id: Mapped[int] = mapped_column(ForeignKey("opinion.id"))
    theme: Mapped[str] = mapped_column(String(60))
    added_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Append-only and hash-chained per consultation; the database refuses UPDATE and DELETE."""

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("consultation_id", "chain_seq"),
        UniqueConstraint("opinion_id", "opinion_seq"),
        Index(None, "consultation_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    chain_seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    opinion_id: Mapped[int | None] = mapped_column(ForeignKey("opinion.id"))
    opinion_seq: Mapped[int | None] = mapped_column(Integer)
    trigger: Mapped[str | None] = mapped_column(String(60))
    from_state: Mapped[str | None] = mapped_column(String(60))
    to_state: Mapped[str | None] = mapped_column(String(60))
    round_no: Mapped[int | None] = mapped_column(Integer)
    completes_cycle: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[str] = mapped_column(SealedPayload(), default="{}")  # participants' texts sealed in it
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class SignedHead(Base):
    """A chain head the server signed (Ed25519) and published; append-only like the events."""

    __tablename__ = "signed_head"
    __table_args__ = (UniqueConstraint("consultation_id", "seq", "key_id", postgresql_nulls_not_distinct=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultation.id"))  # NULL: the account log
    seq: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(44))
    statement: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))


class Reminder(Base):
    """A reminder owed about an opinion's deadline; written with the change that causes it.

    The unique key (opinion, rule, offset, round, due time) makes a duplicate impossible, so
    planning the same reminders twice is harmless.
    """

    __tablename__ = "reminder"
    __table_args__ = (
        UniqueConstraint("opinion_id", "rule", "offset_minutes", "round_no", "due_at"),
        Index(None, "status", "send_at"),
        Index(None, "opinion_id", "status"),  # an opinion's pending reminders, cancelled when it moves
        Index(None, "consultation_id", "status"),  # a round's, cancelled when it closes
        CheckConstraint("status IN ('pending', 'dispatched', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    opinion_id: Mapped[int] = mapped_column(ForeignKey("opinion.id"))
    round_no: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(60))
    offset_minutes: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(60))
    state_entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recipient_role: Mapped[str] = mapped_column(String(20))
    escalation: Mapped[bool] = mapped_column(Boolean, default=False)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    send_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(200))


class Delivery(Base):
    """One message in the outbox: to one recipient, through one channel, sent at least once.

    The idempotency key travels with the message so a receiver can drop a repeat after a crash.
    """

    __tablename__ = "delivery"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'dead')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminder.id"))
    recipient_kind: Mapped[str] = mapped_column(String(12))
    recipient_id: Mapped[int] = mapped_column(Integer)
    recipient_name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(12))
    lang: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryAttempt(Base):
    """Every try at sending a delivery, successful or not."""

    __tablename__ = "delivery_attempt"

    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class PersonalDataAccess(Base):
    """A read of personal information (full names, contacts): who, when, what, why, how many."""

    __tablename__ = "personal_data_access"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    what: Mapped[str] = mapped_column(String(60))
    purpose: Mapped[str] = mapped_column(Text)
    participants: Mapped[int] = mapped_column(Integer)


class PersonalDataAccessItem(Base):
    """One participant whose personal information an access read."""

    __tablename__ = "personal_data_access_item"
    __table_args__ = (Index(None, "participant_id"),)

    access_id: Mapped[int] = mapped_column(BigId, ForeignKey("personal_data_access.id"), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), primary_key=True)


class StaffCredential(Base):
    """How a person signs in to the server: an argon2id hash, a two-step secret, and whether the account is disabled.

    Only the schema's owner (the server's login) reads or writes it: no group role is granted it.
    """

    __tablename__ = "staff_credential"

    actor_id: Mapped[int] = mapped_column(ForeignKey("actor.id"), primary_key=True, autoincrement=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # NULL: no password set, sign-in refused
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Base32 (consultflow.domain.accounts.new_totp_secret); used only once confirmed with a code.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # each time step's code is accepted once
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AccessToken(Base):
    """A personal access token: only its SHA-256 and its first characters are kept."""

    __tablename__ = "access_token"
    __table_args__ = (
        Index(None, "token_hash", unique=True),
        Index(None, "actor_id"),
        CheckConstraint("scope IN ('read', 'write')", name="scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(8))
    scope: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("actor.id"))


class SigninThrottle(Base):
    """Failed sign-ins counted per account name or per client, shared by every server process."""

    __tablename__ = "signin_throttle"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AccountEvent(Base):
    """The account log: append-only and hash-chained like the audit trail; the database refuses UPDATE and DELETE."""

    __tablename__ = "account_event"
    __table_args__ = (Index(None, "subject"),)

    chain_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str | None] = mapped_column(String(120))
    subject: Mapped[str | None] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[str] = mapped_column(Text, default="{}")
    key_id: Mapped[str | None] = mapped_column(String(16))  # the chain key's id, NULL: plain SHA-256
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AccountChain(Base):
    """The account log's head, one row: verify compares it with the last event, so a cut-off tail shows."""

    __tablename__ = "account_chain"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16))


class PlanVersion(Base):
    """One imported draft of a consultation's plan; numbered 1, 2, … per consultation (issue 26)."""

    __tablename__ = "plan_version"
    __table_args__ = (UniqueConstraint("consultation_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200))  # the file's name, never its folder
    clauses: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imported_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))


class PlanClause(Base):
    """A clause's identity: the same number in a later version is the same clause."""

    __tablename__ = "plan_clause"
    __table_args__ = (UniqueConstraint("consultation_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"))
    number: Mapped[str] = mapped_column(String(40))


class PlanClauseText(Base):
    """What a clause says in one version, with its section (the planners' text, no personal data)."""

    __tablename__ = "plan_clause_text"

    version_id: Mapped[int] = mapped_column(ForeignKey("plan_version.id"), primary_key=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("plan_clause.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    section_no: Mapped[str] = mapped_column(String(40))
    section_title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


class PlanReview(Base):
    """A review round (成果评审 / 大众点评): the round it is and the plan version it rates."""

    __tablename__ = "plan_review"

    round_id: Mapped[int] = mapped_column(ForeignKey("consultation_round.id"), primary_key=True, autoincrement=False)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("plan_version.id"))
    category: Mapped[str] = mapped_column(String(60))  # the category its comments are recorded under
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PlanRating(Base):
    """One participant's rating of one clause in a review; a comment is sealed and is also an opinion."""

    __tablename__ = "plan_rating"
    __table_args__ = (
        UniqueConstraint("round_id", "clause_id", "participant_id"),
        CheckConstraint("rating IN ('satisfied', 'mostly', 'not_satisfied')", name="rating"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("plan_review.round_id"))
    clause_id: Mapped[int] = mapped_column(ForeignKey("plan_clause.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    rating: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(SealedText())  # sealed with the participant's key
    opinion_id: Mapped[int | None] = mapped_column(ForeignKey("opinion.id"))  # the comment's opinion
    form_key: Mapped[str | None] = mapped_column(String(64), index=True)  # a portal form posted twice
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class OpinionClause(Base):
    """An opinion linked to a plan clause (its review comment, or a planner's link)."""

    __tablename__ = "opinion_clause"

    opinion_id: Mapped[int] = mapped_column(ForeignKey("opinion.id"), primary_key=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("plan_clause.id"), primary_key=True, index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    linked_by_id: Mapped[int] = mapped_column(ForeignKey("actor.id"))
