"""Registered commands: the auditors' reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from consultflow.domain.errors import ConfigurationError, ValidationError
from consultflow.domain.heads import SignedHead, chain_name, checked
from consultflow.domain.model import AccessRecord, EventFilter
from consultflow.domain.roles import Role
from consultflow.services import (
    audit,
    heads,
    personal_data,
    statistics,
    verify,
)
from consultflow.services.audit import HistoryEvent, OpinionAsOf
from consultflow.services.commands.core import (
    STAFF,
    OfConsultation,
    OfOpinion,
    command,
)
from consultflow.services.context import ServiceContext
from consultflow.services.heads import SignOutcome
from consultflow.services.opinion_views import OpinionView
from consultflow.services.statistics import FunnelRow, OpinionRounds, OutcomeRounds
from consultflow.services.verify import ChainReport

__all__ = [
    "AccessOf",
    "AccessRecords",
    "AsOf",
    "ChainHead",
    "ChainReports",
    "Funnel",
    "HeadsOf",
    "OpinionHistory",
    "PublishedHeads",
    "RoundsFigures",
    "RoundsOf",
    "SignHeads",
    "SignOutcomes",
    "StatesAsOf",
    "Verify",
]

T = TypeVar("T")


@dataclass(frozen=True)
class OpinionHistory:
    """An opinion's timeline, from its audit events."""

    opinion: OpinionView
    events: tuple[HistoryEvent, ...]


@command("audit.history", "An opinion's timeline, from its audit events.", input=OfOpinion, output=OpinionHistory,
         roles=STAFF, writes=False)  # fmt: skip
def _history(ctx: ServiceContext, _acting: str | None, given: OfOpinion) -> OpinionHistory:
    view, events = audit.history(ctx, given.opinion_id)
    return OpinionHistory(view, tuple(events))


@dataclass(frozen=True)
class RoundsOf:
    """How many rounds decided opinions took."""

    consultation_id: int
    by: str | None = None


@dataclass(frozen=True)
class RoundsFigures:
    """Rounds per outcome (and per group, with `by`)."""

    consultation_id: int
    outcomes: tuple[OutcomeRounds, ...]
    by: str | None = None


@command("audit.rounds", "How many rounds adopted, partly adopted and rejected opinions took.", input=RoundsOf,
         output=RoundsFigures, roles=STAFF, writes=False)  # fmt: skip
def _rounds(ctx: ServiceContext, _acting: str | None, given: RoundsOf) -> RoundsFigures:
    by = given.by
    report = statistics.rounds_report(ctx, given.consultation_id, by=by)  # type: ignore[arg-type]  # checked inside
    return RoundsFigures(report.consultation_id, tuple(report.outcomes), report.by)


@command("audit.decided", "Every decided opinion with its outcome and the rounds it took, as read.",
         input=OfConsultation, output=OpinionRounds, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _decided(ctx: ServiceContext, _acting: str | None, given: OfConsultation, use: Callable[[Iterable[Any]], T]) -> T:
    return statistics.use_rounds_report(ctx, given.consultation_id, lambda r: use(r.opinions), per_opinion=True)


@dataclass(frozen=True)
class Verify:
    """Check hash chains and live rows (and against signed heads published earlier)."""

    consultation_id: int | None = None
    expect_head: str | None = None
    require_keyed: bool = False
    heads: tuple[SignedHead, ...] = ()


@dataclass(frozen=True)
class ChainReports:
    """One report per consultation checked."""

    reports: tuple[ChainReport, ...]


@command("audit.verify", "Recompute audit chains and compare live rows with what the events say.", input=Verify,
         output=ChainReports, roles=STAFF, writes=False)  # fmt: skip
def _verify(ctx: ServiceContext, _acting: str | None, given: Verify) -> ChainReports:
    expected = verify.parse_head(given.expect_head) if given.expect_head is not None else None
    published = [
        checked(h.record(), f"the published head #{h.seq} of {chain_name(h.consultation_id)}")
        for h in given.heads
        if h.consultation_id is not None  # the account log's are for audit verify-accounts
    ]
    if given.consultation_id is not None and published:
        published = [h for h in published if h.consultation_id == given.consultation_id]
        if not published:
            msg = f"none of the published heads is of consultation {given.consultation_id}"
            raise ValidationError(msg)
    reports = verify.verify_all(ctx, given.consultation_id, expected, require_keyed=given.require_keyed)
    known = {r.consultation_id for r in reports}
    strangers = sorted({h.consultation_id for h in published if h.consultation_id is not None} - known)
    if strangers:
        msg = f"published heads name consultation {strangers[0]}, which this database does not have (was it removed?)"
        raise ValidationError(msg)
    out = []
    for report in reports:
        problem = heads.against_published(ctx, report.consultation_id, published) if report.intact else None
        if problem is not None:
            seq, why = problem
            broken = verify.BrokenEvent(seq, None, None, None, None, None, None, why)
            report = replace(report, intact=False, broken=broken)  # noqa: PLW2901 - the report, with what broke it
        out.append(report)
    return ChainReports(tuple(out))


@dataclass(frozen=True)
class SignHeads:
    """Sign the chain head of one consultation, or of every one that grew."""

    consultation_id: int | None = None


@dataclass(frozen=True)
class SignOutcomes:
    """What signing did, per consultation."""

    outcomes: tuple[SignOutcome, ...]


@command("audit.sign", "Sign and publish chain heads now (the server holds the key; it also signs on a schedule).",
         input=SignHeads, output=SignOutcomes, roles={Role.COORDINATOR, Role.AUDITOR}, writes=True)  # fmt: skip
def _sign(ctx: ServiceContext, _acting: str | None, given: SignHeads) -> SignOutcomes:
    if ctx.heads is None and ctx.token_id is not None:  # asked through a server: "run this through the server" misleads
        msg = (
            "this server holds no head signing key: its administrator makes one with "
            "'consultflow audit keygen FILE' and starts the server with CONSULTFLOW_SIGNING_KEY_FILE set to it"
        )
        raise ConfigurationError(msg)
    return SignOutcomes(tuple(heads.sign_heads(ctx, given.consultation_id)))


@dataclass(frozen=True)
class HeadsOf:
    """The signed heads of one consultation, or of all."""

    consultation_id: int | None = None


@dataclass(frozen=True)
class PublishedHeads:
    """Signed heads, oldest first, as they were published."""

    heads: tuple[SignedHead, ...]


@command("audit.heads", "Every chain head the server signed, oldest first, as published.", input=HeadsOf,
         output=PublishedHeads, roles=STAFF, writes=False)  # fmt: skip
def _heads(ctx: ServiceContext, _acting: str | None, given: HeadsOf) -> PublishedHeads:
    return PublishedHeads(tuple(heads.signed_heads(ctx, given.consultation_id)))


@dataclass(frozen=True)
class ChainHead:
    """A consultation's chain head, to publish."""

    consultation_id: int
    seq: int
    hash: str


@command("audit.head", "A consultation's chain head (SEQ:HASH), to publish.", input=OfConsultation,
         output=ChainHead, roles=STAFF, writes=False)  # fmt: skip
def _head(ctx: ServiceContext, _acting: str | None, given: OfConsultation) -> ChainHead:
    seq, digest = verify.head(ctx, given.consultation_id)
    return ChainHead(given.consultation_id, seq, digest)


@command("audit.events", "Opinion events matching every filter, in the order they happened, as read.",
         input=EventFilter, output=HistoryEvent, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _events(ctx: ServiceContext, _acting: str | None, given: EventFilter, use: Callable[[Iterable[Any]], T]) -> T:
    return audit.use_event_search(ctx, given, use)


@dataclass(frozen=True)
class AsOf:
    """A past moment (of one consultation, or of all)."""

    moment: datetime
    consultation_id: int | None = None


@command("audit.as-of", "Every opinion's state at a moment, rebuilt from the audit events alone, as read.",
         input=AsOf, output=OpinionAsOf, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _as_of(ctx: ServiceContext, _acting: str | None, given: AsOf, use: Callable[[Iterable[Any]], T]) -> T:
    return audit.use_as_of(ctx, given.moment, given.consultation_id, use)


@dataclass(frozen=True)
class StatesAsOf:
    """How many opinions stood in each state at the moment (states in the order first met, by opinion id)."""

    counts: dict[str, int]


@command("audit.as-of-states", "How many opinions stood in each state at a moment, from the audit events.",
         input=AsOf, output=StatesAsOf, roles=STAFF, writes=False)  # fmt: skip
def _states_as_of(ctx: ServiceContext, _acting: str | None, given: AsOf) -> StatesAsOf:
    counts = audit.use_as_of(ctx, given.moment, given.consultation_id, lambda rows: Counter(r.state for r in rows))
    return StatesAsOf(dict(counts))


@dataclass(frozen=True)
class Funnel:
    """Per round: opinions that entered, got feedback, re-participated, were decided, carried over."""

    rounds: tuple[FunnelRow, ...]


@command("audit.funnel", "Per round: entered, got feedback, re-participated, decided, carried over.",
         input=OfConsultation, output=Funnel, roles=STAFF, writes=False)  # fmt: skip
def _funnel(ctx: ServiceContext, _acting: str | None, given: OfConsultation) -> Funnel:
    return Funnel(tuple(statistics.funnel(ctx, given.consultation_id)))


@dataclass(frozen=True)
class AccessOf:
    """Reads of personal information (that showed one participant, or by one person), newest first."""

    participant_id: int | None = None
    actor: str | None = None
    limit: int = 1000


@dataclass(frozen=True)
class AccessRecords:
    """Reads of personal information on record."""

    records: tuple[AccessRecord, ...]


@command("audit.access", "Who read personal information (full names, contacts), when, what and why.",
         input=AccessOf, output=AccessRecords, roles=STAFF, writes=False)  # fmt: skip
def _access(ctx: ServiceContext, _acting: str | None, given: AccessOf) -> AccessRecords:
    found = personal_data.access_records(ctx, participant_id=given.participant_id, actor=given.actor, limit=given.limit)
    return AccessRecords(tuple(found))
