"""Every use case as data: one typed command (its fields, who may call it, its handler) in one registry.

The server's API routes and their OpenAPI document, the CLI's local and remote calls, and the
first role check all come from `REGISTRY`, so a use case is written once and the local and remote
CLI cannot drift:

- `Command.input` is a frozen dataclass: the request body on the server, the keyword arguments in
  the CLI.
- `Command.output` is the result's type (a dataclass of the views the CLI renders). A streamed
  command (`Command.item`) hands its items, as they are read, to a `use` callback instead: the CLI
  renders them, the server writes them out as JSON lines.
- `Command.roles` says who may call it at all; the pipeline then applies the fine rules (the
  workflow's roles per trigger, ownership of opinions) inside the transaction.
- `Command.writes` says whether it changes anything: reads run on a read-only unit, and a token
  with the `read` scope can call only those.

Handlers take the wiring, the name of the person acting (proven by the server's sign-in, or
`--as` in local mode) and the input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from consultflow.domain.accounts import TOKEN_DAYS
from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.labels import Label
from consultflow.domain.model import AccessRecord, EventFilter, OpinionFilter
from consultflow.domain.roles import ACTION_ROLES, ASSIGNABLE_ROLES, Action, Role
from consultflow.domain.vocabulary import Field
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services import (
    accounts,
    audit,
    consultations,
    opinion_views,
    opinions,
    people,
    personal_data,
    receipts,
    reminders,
    rounds,
    statistics,
    verify,
    workflows,
)
from consultflow.services.audit import HistoryEvent, OpinionAsOf
from consultflow.services.consultations import ConsultationView, RoundView
from consultflow.services.context import ServiceContext
from consultflow.services.opinion_views import EntryView, OpinionView
from consultflow.services.opinions import Assignment, TransitionResult
from consultflow.services.people import ActorView, ParticipantView
from consultflow.services.reminders import DeliveryView, ReminderView
from consultflow.services.rounds import ClosePlan, RoundStatus
from consultflow.services.statistics import FunnelRow, OpinionRounds, OutcomeRounds
from consultflow.services.verify import ChainReport
from consultflow.services.workflows import WorkflowListing

I = TypeVar("I")  # noqa: E741 - the input type, as in Command[I, R]
R = TypeVar("R")
T = TypeVar("T")

#: Everyone who signs in as staff (participants who use consultflow themselves included).
STAFF: frozenset[Role] = frozenset(ASSIGNABLE_ROLES)


@dataclass(frozen=True)
class Command(Generic[I, R]):
    """One use case: its name, fields, who may call it, what it returns, and its handler."""

    name: str  # "round.open": the CLI's words, and the API path /api/v1/commands/round.open
    summary: str
    input: type[I]
    output: Any  # the result's type (for streamed commands: the item's type)
    roles: frozenset[Role]
    writes: bool
    handler: Callable[..., Any] = field(repr=False)
    streamed: bool = False

    def run(self, ctx: ServiceContext, acting: str | None, given: I, **hooks: Any) -> R:
        """Run a held command; `hooks` are local-only extras a handler may take (a progress bar)."""
        assert not self.streamed, f"{self.name} streams: use run_streamed"
        result: R = self.handler(ctx if self.writes else ctx.for_reading(), acting, given, **hooks)
        return result

    def run_streamed(self, ctx: ServiceContext, acting: str | None, given: I, use: Callable[[Iterable[Any]], T]) -> T:
        """Run a streamed command: `use` reads its items (once, or again for a `Reread`) while they stream."""
        assert self.streamed, f"{self.name} is held: use run"
        result: T = self.handler(ctx if self.writes else ctx.for_reading(), acting, given, use)
        return result


REGISTRY: dict[str, Command[Any, Any]] = {}


def command(
    name: str,
    summary: str,
    *,
    input: type[I],  # noqa: A002 - the command's input, as the registry names it
    output: Any,
    roles: Iterable[Role],
    writes: bool,
    streamed: bool = False,
) -> Callable[[Callable[..., Any]], Command[I, Any]]:
    """Register a handler as the command `name` (a decorator)."""

    def register(handler: Callable[..., Any]) -> Command[I, Any]:
        if name in REGISTRY:
            msg = f"command {name!r} is registered twice"
            raise RuntimeError(msg)
        made: Command[I, Any] = Command(name, summary, input, output, frozenset(roles), writes, handler, streamed)
        REGISTRY[name] = made
        return made

    return register


def lookup(name: str) -> Command[Any, Any]:
    """The command called `name`, or one line naming the known ones.

    Raises:
        NotFoundError: no command has that name.
    """
    found = REGISTRY.get(name)
    if found is None:
        msg = f"no command {name!r}; known commands: {', '.join(sorted(REGISTRY))}"
        raise NotFoundError(msg)
    return found


def _roles(action: Action) -> frozenset[Role]:
    return ACTION_ROLES[action] - {Role.SYSTEM}


# --- people ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddActor:
    """Register a person who acts."""

    name: str
    roles: tuple[str, ...]
    lang: str = "zh"
    contact: str | None = None
    participant_id: int | None = None
    login: str | None = None  # a PostgreSQL login that proves them (the per-person model before the server)


@command("actor.add", "Register a person who acts, with their roles.", input=AddActor, output=ActorView,
         roles=_roles(Action.ADD_ACTOR), writes=True)  # fmt: skip
def _add_actor(ctx: ServiceContext, acting: str | None, given: AddActor) -> ActorView:
    return people.add_actor(
        ctx,
        acting=acting,
        name=given.name,
        roles=given.roles,
        lang=given.lang,
        contact=given.contact,
        participant_id=given.participant_id,
        login=given.login,
    )


@dataclass(frozen=True)
class Nothing:
    """A command that takes no fields."""


@dataclass(frozen=True)
class Actors:
    """Everyone registered."""

    actors: tuple[ActorView, ...]


@command("actor.list", "People who act, with their roles.", input=Nothing, output=Actors, roles=STAFF, writes=False)
def _list_actors(ctx: ServiceContext, _acting: str | None, _given: Nothing) -> Actors:
    return Actors(tuple(people.list_actors(ctx)))


@dataclass(frozen=True)
class AddParticipant:
    """Register a villager (or a group) whose opinions are recorded."""

    name: str
    village: str
    contact: str | None = None
    lang: str = "zh"


@command("participant.add", "Register a participant.", input=AddParticipant, output=ParticipantView,
         roles=_roles(Action.ADD_PARTICIPANT), writes=True)  # fmt: skip
def _add_participant(ctx: ServiceContext, acting: str | None, given: AddParticipant) -> ParticipantView:
    return people.add_participant(
        ctx, acting=acting, name=given.name, village=given.village, contact=given.contact, lang=given.lang
    )


@dataclass(frozen=True)
class BindLogin:
    """Bind a person to the PostgreSQL login that proves them (the per-person model before the server)."""

    name: str
    login: str


@dataclass(frozen=True)
class LoginBound:
    """The login bound, and the group role it was granted."""

    actor: str
    login: str
    group: str


@command("actor.bind", "Bind a person to a PostgreSQL login, granted the group role that fits.", input=BindLogin,
         output=LoginBound, roles=_roles(Action.ADD_ACTOR), writes=True)  # fmt: skip
def _bind_login(ctx: ServiceContext, acting: str | None, given: BindLogin) -> LoginBound:
    group = people.bind_login(ctx, acting=acting, name=given.name, login=given.login)
    return LoginBound(given.name, given.login, group)


@dataclass(frozen=True)
class ListParticipants:
    """Participants (of one village), under pseudonyms unless a coordinator states why they read more."""

    village: str | None = None
    full_names: bool = False
    with_contact: bool = False
    purpose: str | None = None


@command("participant.list", "Participants under pseudonyms; full names and contacts on record (coordinators).",
         input=ListParticipants, output=ParticipantView, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _list_participants(
    ctx: ServiceContext, acting: str | None, given: ListParticipants, use: Callable[[Iterable[Any]], T]
) -> T:
    # A read of full names or contacts is put on record in the transaction that reads; the items
    # reach the person only once it has committed (the server's end line comes after the handler).
    return people.use_participant_list(
        ctx,
        use,
        acting=acting,
        village=given.village,
        with_contact=given.with_contact,
        full_names=given.full_names,
        purpose=given.purpose,
    )


@dataclass(frozen=True)
class EraseParticipant:
    """Erase a participant's personal information on request."""

    participant_id: int
    reason: str


@dataclass(frozen=True)
class Erased:
    """The participant erased, and the pseudonym their opinions stay under."""

    participant_id: int
    pseudonym: str


@command("participant.erase", "Erase a participant's name, contact and village; opinions stay under a pseudonym.",
         input=EraseParticipant, output=Erased, roles=_roles(Action.ERASE_PERSONAL_DATA), writes=True)  # fmt: skip
def _erase_participant(ctx: ServiceContext, acting: str | None, given: EraseParticipant) -> Erased:
    pseudonym = personal_data.erase_participant(
        ctx, acting=acting, participant_id=given.participant_id, reason=given.reason
    )
    return Erased(given.participant_id, pseudonym)


# --- consultations and rounds ---------------------------------------------------------------------


@dataclass(frozen=True)
class CreateConsultation:
    """A consultation pinned to a workflow version."""

    title: str
    area: str
    workflow: str = consultations.DEFAULT_WORKFLOW
    auto_close: bool = False


@command("consultation.create", "Create a consultation.", input=CreateConsultation, output=ConsultationView,
         roles=_roles(Action.CREATE_CONSULTATION), writes=True)  # fmt: skip
def _create_consultation(ctx: ServiceContext, acting: str | None, given: CreateConsultation) -> ConsultationView:
    return consultations.create_consultation(
        ctx, acting=acting, title=given.title, area=given.area, workflow=given.workflow, auto_close=given.auto_close
    )


@dataclass(frozen=True)
class Consultations:
    """Every consultation."""

    consultations: tuple[ConsultationView, ...]


@command("consultation.list", "All consultations.", input=Nothing, output=Consultations, roles=STAFF, writes=False)
def _list_consultations(ctx: ServiceContext, _acting: str | None, _given: Nothing) -> Consultations:
    return Consultations(tuple(consultations.list_consultations(ctx)))


@dataclass(frozen=True)
class OfConsultation:
    """One consultation, by id."""

    consultation_id: int


@dataclass(frozen=True)
class ConsultationDetail:
    """One consultation, and the labels of its workflow's states (to show its opinions by state)."""

    consultation: ConsultationView
    state_labels: dict[str, Label]


@command("consultation.show", "One consultation: rounds and opinions by state.", input=OfConsultation,
         output=ConsultationDetail, roles=STAFF, writes=False)  # fmt: skip
def _show_consultation(ctx: ServiceContext, _acting: str | None, given: OfConsultation) -> ConsultationDetail:
    view = consultations.show_consultation(ctx, given.consultation_id)
    spec = workflows.find_spec(ctx, view.workflow)
    return ConsultationDetail(view, {name: s.label for name, s in spec.states.items()})


@dataclass(frozen=True)
class OpenRound:
    """Open a consultation's next round."""

    consultation_id: int
    closes_at: datetime | None = None


@command("round.open", "Open the next round.", input=OpenRound, output=RoundView, roles=_roles(Action.OPEN_ROUND),
         writes=True)  # fmt: skip
def _open_round(ctx: ServiceContext, acting: str | None, given: OpenRound) -> RoundView:
    return rounds.open_round(ctx, acting=acting, consultation_id=given.consultation_id, closes_at=given.closes_at)


@dataclass(frozen=True)
class RescheduleRound:
    """Set or move the open round's closing time."""

    consultation_id: int
    closes_at: datetime


@command("round.reschedule", "Set or move the open round's closing time.", input=RescheduleRound,
         output=RoundView, roles=_roles(Action.OPEN_ROUND), writes=True)  # fmt: skip
def _reschedule_round(ctx: ServiceContext, acting: str | None, given: RescheduleRound) -> RoundView:
    return rounds.reschedule_round(ctx, acting=acting, consultation_id=given.consultation_id, closes_at=given.closes_at)


@dataclass(frozen=True)
class CloseRound:
    """Close the open round (or only say what closing would do)."""

    consultation_id: int
    dry_run: bool = False


@command("round.close", "Close the open round, applying the workflow's round-close rules.", input=CloseRound,
         output=ClosePlan, roles=_roles(Action.CLOSE_ROUND), writes=True)  # fmt: skip
def _close_round(ctx: ServiceContext, acting: str | None, given: CloseRound) -> ClosePlan:
    return rounds.close_round(ctx, acting=acting, consultation_id=given.consultation_id, dry_run=given.dry_run)


@command("round.status", "The open round and the opinions still waiting, by state.", input=OfConsultation,
         output=RoundStatus, roles=STAFF, writes=False)  # fmt: skip
def _round_status(ctx: ServiceContext, _acting: str | None, given: OfConsultation) -> RoundStatus:
    return rounds.round_status(ctx, given.consultation_id)


@dataclass(frozen=True)
class SetAutoClose:
    """Whether the worker closes the consultation's rounds at their closing time."""

    consultation_id: int
    enabled: bool


@command("consultation.auto-close", "Turn automatic round closing on or off.", input=SetAutoClose,
         output=ConsultationView, roles=_roles(Action.CREATE_CONSULTATION), writes=True)  # fmt: skip
def _auto_close(ctx: ServiceContext, acting: str | None, given: SetAutoClose) -> ConsultationView:
    return consultations.set_auto_close(
        ctx, acting=acting, consultation_id=given.consultation_id, enabled=given.enabled
    )


# --- opinions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitOpinion:
    """Record an opinion in the consultation's open round."""

    consultation_id: int
    participant_id: int
    category: str
    channel: str
    text: str


@command("opinion.submit", "Record an opinion in the open round.", input=SubmitOpinion, output=OpinionView,
         roles=_roles(Action.SUBMIT_OPINION), writes=True)  # fmt: skip
def _submit(ctx: ServiceContext, acting: str | None, given: SubmitOpinion) -> OpinionView:
    return opinions.submit_opinion(
        ctx,
        acting=acting,
        consultation_id=given.consultation_id,
        participant_id=given.participant_id,
        category=given.category,
        channel=given.channel,
        text=given.text,
    )


@dataclass(frozen=True)
class FireTrigger:
    """Fire a workflow trigger on one opinion or many (all move, or none does)."""

    opinion_ids: list[int]
    trigger: str
    text: str | None = None
    reason: str | None = None
    plan_ref: str | None = None
    merge_target: str | None = None
    stance: str | None = None

    def fields(self) -> Mapping[Field, object]:
        """The trigger's fields as the workflow names them."""
        return {
            Field.TEXT: self.text,
            Field.REASON: self.reason,
            Field.PLAN_REF: self.plan_ref,
            Field.MERGE_TARGET: self.merge_target,
            Field.STANCE: self.stance,
        }


@command("opinion.fire", "Fire a workflow trigger on opinions, in one transaction.", input=FireTrigger,
         output=TransitionResult, roles=STAFF, writes=True, streamed=True)  # fmt: skip
def _fire(ctx: ServiceContext, acting: str | None, given: FireTrigger, use: Callable[[Iterable[Any]], T]) -> T:
    requests = opinions.SameTrigger(given.opinion_ids, given.trigger, given.fields())
    return use(opinions.fire_many(ctx, acting=acting, requests=requests))


@dataclass(frozen=True)
class AssignOpinions:
    """Assign opinions to the planner who owes them feedback."""

    opinion_ids: list[int]
    planner: str


@command("opinion.assign", "Assign opinions to a planner, in one transaction.", input=AssignOpinions,
         output=Assignment, roles=_roles(Action.ASSIGN_OPINION), writes=True, streamed=True)  # fmt: skip
def _assign(ctx: ServiceContext, acting: str | None, given: AssignOpinions, use: Callable[[Iterable[Any]], T]) -> T:
    return use(opinions.assign(ctx, acting=acting, opinion_ids=given.opinion_ids, planner=given.planner))


@dataclass(frozen=True)
class CorrectOpinion:
    """Correct a recorded opinion's text, on record."""

    opinion_id: int
    text: str
    reason: str


@command("opinion.correct", "Correct a recorded opinion's text.", input=CorrectOpinion, output=OpinionView,
         roles=_roles(Action.CORRECT_OPINION), writes=True)  # fmt: skip
def _correct(ctx: ServiceContext, acting: str | None, given: CorrectOpinion) -> OpinionView:
    return opinions.correct(ctx, acting=acting, opinion_id=given.opinion_id, text=given.text, reason=given.reason)


@dataclass(frozen=True)
class ListOpinions:
    """Opinions matching every filter given."""

    consultation_id: int | None = None
    state: str | None = None
    assigned_to: str | None = None
    category: str | None = None
    channel: str | None = None
    round_no: int | None = None
    outcome: str | None = None
    limit: int | None = None


@command("opinion.list", "Opinions matching every filter given (a planner's work queue).", input=ListOpinions,
         output=OpinionView, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _list_opinions(
    ctx: ServiceContext, _acting: str | None, given: ListOpinions, use: Callable[[Iterable[Any]], T]
) -> T:
    criteria = OpinionFilter(
        consultation_id=given.consultation_id,
        state=given.state,
        category=given.category,
        channel=given.channel,
        round_no=given.round_no,
        outcome=given.outcome,
        limit=given.limit,
    )
    return opinion_views.use_opinion_list(ctx, criteria, given.assigned_to, use)


@dataclass(frozen=True)
class OfOpinion:
    """One opinion, by id."""

    opinion_id: int


@dataclass(frozen=True)
class OpinionDetail:
    """An opinion and the feedback and replies exchanged about it."""

    opinion: OpinionView
    entries: tuple[EntryView, ...]


@command("opinion.show", "One opinion and its exchange.", input=OfOpinion, output=OpinionDetail, roles=STAFF,
         writes=False)  # fmt: skip
def _show_opinion(ctx: ServiceContext, _acting: str | None, given: OfOpinion) -> OpinionDetail:
    view, entries = opinion_views.show_opinion(ctx, given.opinion_id)
    return OpinionDetail(view, tuple(entries))


@dataclass(frozen=True)
class ReceiptCode:
    """A new receipt code for an opinion: shown once, only its hash is kept."""

    opinion_id: int
    receipt_code: str


@command("opinion.receipt", "Issue a receipt code for an opinion, to hand to the villager.", input=OfOpinion,
         output=ReceiptCode, roles=_roles(Action.ISSUE_RECEIPT), writes=True)  # fmt: skip
def _receipt(ctx: ServiceContext, acting: str | None, given: OfOpinion) -> ReceiptCode:
    return ReceiptCode(given.opinion_id, receipts.issue_receipt(ctx, acting=acting, opinion_id=given.opinion_id))


# --- the auditors' reads --------------------------------------------------------------------------


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
    """Check hash chains and live rows."""

    consultation_id: int | None = None
    expect_head: str | None = None
    require_keyed: bool = False


@dataclass(frozen=True)
class ChainReports:
    """One report per consultation checked."""

    reports: tuple[ChainReport, ...]


@command("audit.verify", "Recompute audit chains and compare live rows with what the events say.", input=Verify,
         output=ChainReports, roles=STAFF, writes=False)  # fmt: skip
def _verify(ctx: ServiceContext, _acting: str | None, given: Verify) -> ChainReports:
    expected = verify.parse_head(given.expect_head) if given.expect_head is not None else None
    reports = verify.verify_all(ctx, given.consultation_id, expected, require_keyed=given.require_keyed)
    return ChainReports(tuple(reports))


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


# --- accounts: passwords, tokens, two-step codes, roles, and their own log ---------------------------


@dataclass(frozen=True)
class SetPassword:
    """Set a person's password (your own, or anyone's as a coordinator)."""

    name: str
    password: str
    current_password: str | None = None  # your own password: the current one too


@dataclass(frozen=True)
class Done:
    """A change that returns nothing but that it was made."""

    done: str


@command("account.set-password", "Set a password: your own, or anyone's (coordinators).", input=SetPassword,
         output=Done, roles=STAFF, writes=True)  # fmt: skip
def _set_password(ctx: ServiceContext, acting: str | None, given: SetPassword) -> Done:
    accounts.set_password(
        ctx, acting=acting, name=given.name, password=given.password, current_password=given.current_password
    )
    return Done(f"password set for {given.name}")


@dataclass(frozen=True)
class IssueToken:
    """Another personal access token for the acting person (for automation)."""

    name: str
    scope: str = "read"
    expires_days: int = TOKEN_DAYS


@command("account.issue-token", "Issue another personal access token (shown once).", input=IssueToken,
         output=accounts.IssuedToken, roles=STAFF, writes=True)  # fmt: skip
def _issue_token(ctx: ServiceContext, acting: str | None, given: IssueToken) -> accounts.IssuedToken:
    return accounts.issue_token(
        ctx, acting=_signed(acting), name=given.name, scope=given.scope, expires_days=given.expires_days
    )


@dataclass(frozen=True)
class OfToken:
    """One token, by id."""

    token_id: int


@command("account.revoke-token", "Revoke a token: your own, or anyone's (coordinators).", input=OfToken,
         output=Done, roles=STAFF, writes=True)  # fmt: skip
def _revoke_token(ctx: ServiceContext, acting: str | None, given: OfToken) -> Done:
    accounts.revoke_token(ctx, acting=_signed(acting), token_id=given.token_id)
    return Done(f"token {given.token_id} revoked")


@dataclass(frozen=True)
class ListTokens:
    """Your tokens, or everyone's (coordinators)."""

    everyone: bool = False


@dataclass(frozen=True)
class Tokens:
    """Tokens as listed (never the token itself)."""

    tokens: tuple[accounts.TokenView, ...]


@command("account.tokens", "Personal access tokens: yours, or everyone's (coordinators).", input=ListTokens,
         output=Tokens, roles=STAFF, writes=False)  # fmt: skip
def _tokens(ctx: ServiceContext, acting: str | None, given: ListTokens) -> Tokens:
    return Tokens(tuple(accounts.list_tokens(ctx, acting=_signed(acting), everyone=given.everyone)))


@command("account.totp-enable", "Start two-step sign-in: a secret for your authenticator app.", input=Nothing,
         output=accounts.TotpSetup, roles=STAFF, writes=True)  # fmt: skip
def _totp_enable(ctx: ServiceContext, acting: str | None, _given: Nothing) -> accounts.TotpSetup:
    return accounts.enable_totp(ctx, acting=_signed(acting))


@dataclass(frozen=True)
class TotpCode:
    """A code from the authenticator app."""

    code: str


@command("account.totp-confirm", "Confirm two-step sign-in with a first code.", input=TotpCode, output=Done,
         roles=STAFF, writes=True)  # fmt: skip
def _totp_confirm(ctx: ServiceContext, acting: str | None, given: TotpCode) -> Done:
    accounts.confirm_totp(ctx, acting=_signed(acting), code=given.code)
    return Done("two-step sign-in is on")


@dataclass(frozen=True)
class OfAccount:
    """One person's account, by name."""

    name: str


@command("account.totp-disable", "Turn two-step sign-in off: your own, or anyone's (coordinators).",
         input=OfAccount, output=Done, roles=STAFF, writes=True)  # fmt: skip
def _totp_disable(ctx: ServiceContext, acting: str | None, given: OfAccount) -> Done:
    accounts.disable_totp(ctx, acting=_signed(acting), name=given.name)
    return Done(f"two-step sign-in is off for {given.name}")


@command("account.disable", "Disable a person's account and revoke its tokens.", input=OfAccount, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _disable(ctx: ServiceContext, acting: str | None, given: OfAccount) -> Done:
    accounts.disable_account(ctx, acting=_signed(acting), name=given.name)
    return Done(f"account {given.name} disabled; its tokens are revoked")


@command("account.enable", "Enable a disabled account again.", input=OfAccount, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _enable(ctx: ServiceContext, acting: str | None, given: OfAccount) -> Done:
    accounts.enable_account(ctx, acting=_signed(acting), name=given.name)
    return Done(f"account {given.name} enabled")


@dataclass(frozen=True)
class RoleChange:
    """A role given to or taken from a person."""

    name: str
    role: str


@command("role.grant", "Give a person a role.", input=RoleChange, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _grant(ctx: ServiceContext, acting: str | None, given: RoleChange) -> Done:
    accounts.grant_role(ctx, acting=_signed(acting), name=given.name, role=given.role)
    return Done(f"{given.name} now has the role {given.role}")


@command("role.revoke", "Take a role from a person.", input=RoleChange, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _revoke(ctx: ServiceContext, acting: str | None, given: RoleChange) -> Done:
    accounts.revoke_role(ctx, acting=_signed(acting), name=given.name, role=given.role)
    return Done(f"{given.name} no longer has the role {given.role}")


@dataclass(frozen=True)
class AccountEventsOf:
    """Account events, newest first."""

    name: str | None = None
    kind: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class AccountEvents:
    """Events of the account log."""

    events: tuple[accounts.AccountEventView, ...]


@command("audit.accounts", "The account log: sign-ins, tokens, roles and account changes.", input=AccountEventsOf,
         output=AccountEvents, roles=STAFF, writes=False)  # fmt: skip
def _account_events(ctx: ServiceContext, acting: str | None, given: AccountEventsOf) -> AccountEvents:
    found = accounts.account_events(ctx, acting=_signed(acting), name=given.name, kind=given.kind, limit=given.limit)
    return AccountEvents(tuple(found))


@dataclass(frozen=True)
class VerifyAccounts:
    """Check the account log's chain."""

    expect_head: str | None = None
    require_keyed: bool = False


@command("audit.verify-accounts", "Recompute the account log's hash chain.", input=VerifyAccounts,
         output=accounts.AccountChainReport, roles=STAFF, writes=False)  # fmt: skip
def _verify_accounts(ctx: ServiceContext, _acting: str | None, given: VerifyAccounts) -> accounts.AccountChainReport:
    expected = verify.parse_head(given.expect_head) if given.expect_head is not None else None
    return accounts.verify_account_chain(ctx, expect_head=expected, require_keyed=given.require_keyed)


# --- reminders and their deliveries ---------------------------------------------------------------


@dataclass(frozen=True)
class ListReminders:
    """Reminders matching every filter given, soonest first."""

    consultation_id: int | None = None
    status: str | None = None
    limit: int | None = None


@command("reminders.list", "Reminders, soonest first, as read.", input=ListReminders, output=ReminderView,
         roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _list_reminders(
    ctx: ServiceContext, _acting: str | None, given: ListReminders, use: Callable[[Iterable[Any]], T]
) -> T:
    return reminders.use_reminder_list(
        ctx, use, consultation_id=given.consultation_id, status=given.status, limit=given.limit
    )


@dataclass(frozen=True)
class FailedDeliveries:
    """Deliveries that failed (retrying or dead-lettered)."""

    limit: int | None = None


@dataclass(frozen=True)
class Deliveries:
    """Messages in the outbox (never the recipient's contact)."""

    deliveries: tuple[DeliveryView, ...]


@command("reminders.failed", "Deliveries that failed: retrying or dead-lettered.", input=FailedDeliveries,
         output=Deliveries, roles=STAFF, writes=False)  # fmt: skip
def _failed_deliveries(ctx: ServiceContext, _acting: str | None, given: FailedDeliveries) -> Deliveries:
    return Deliveries(tuple(reminders.list_deliveries(ctx, failed_only=True, limit=given.limit)))


@dataclass(frozen=True)
class OfReminder:
    """One reminder, by id."""

    reminder_id: int


@dataclass(frozen=True)
class ReminderDetail:
    """A reminder, its deliveries and every attempt at them."""

    reminder: ReminderView
    deliveries: tuple[DeliveryView, ...]


@command("reminders.show", "One reminder, its deliveries and every attempt.", input=OfReminder,
         output=ReminderDetail, roles=STAFF, writes=False)  # fmt: skip
def _show_reminder(ctx: ServiceContext, _acting: str | None, given: OfReminder) -> ReminderDetail:
    view, deliveries = reminders.show_reminder(ctx, given.reminder_id)
    return ReminderDetail(view, tuple(deliveries))


@dataclass(frozen=True)
class CancelReminders:
    """Cancel pending reminders."""

    reminder_ids: list[int]
    reason: str | None = None


@dataclass(frozen=True)
class Reminders:
    """Reminders as changed."""

    reminders: tuple[ReminderView, ...]


@command("reminders.cancel", "Cancel pending reminders.", input=CancelReminders, output=Reminders,
         roles=_roles(Action.MANAGE_REMINDERS), writes=True)  # fmt: skip
def _cancel_reminders(ctx: ServiceContext, acting: str | None, given: CancelReminders) -> Reminders:
    views = reminders.cancel_reminders(ctx, acting=acting, reminder_ids=given.reminder_ids, reason=given.reason)
    return Reminders(tuple(views))


@dataclass(frozen=True)
class RequeueDeliveries:
    """Dead-lettered deliveries to try once more: these, or every one (`delivery_ids` None)."""

    delivery_ids: list[int] | None = None


@dataclass(frozen=True)
class Requeued:
    """The deliveries given one more try at the next sweep."""

    requeued: list[int]


@command("reminders.requeue", "Give dead-lettered deliveries one more try at the next sweep.",
         input=RequeueDeliveries, output=Requeued, roles=_roles(Action.MANAGE_REMINDERS), writes=True)  # fmt: skip
def _requeue(ctx: ServiceContext, acting: str | None, given: RequeueDeliveries) -> Requeued:
    return Requeued(reminders.requeue_dead_letters(ctx, acting=acting, delivery_ids=given.delivery_ids))


# --- workflows: the server's files and the versions its consultations run on ---------------------


@dataclass(frozen=True)
class WorkflowListings:
    """The server's workflow files and the versions stored in its database."""

    workflows: tuple[WorkflowListing, ...]


@command("workflow.list", "Workflow files and the versions consultations use.", input=Nothing,
         output=WorkflowListings, roles=STAFF, writes=False)  # fmt: skip
def _list_workflows(ctx: ServiceContext, _acting: str | None, _given: Nothing) -> WorkflowListings:
    return WorkflowListings(tuple(workflows.list_workflows(ctx)))


@dataclass(frozen=True)
class OfWorkflow:
    """A workflow by NAME or NAME@VERSION (without a version, the newest)."""

    ref: str


@command("workflow.show", "A workflow (the stored copy, else the file): states, transitions, rules, labels.",
         input=OfWorkflow, output=WorkflowSpec, roles=STAFF, writes=False)  # fmt: skip
def _show_workflow(ctx: ServiceContext, _acting: str | None, given: OfWorkflow) -> WorkflowSpec:
    return workflows.find_spec(ctx, given.ref)


def _signed(acting: str | None) -> str:
    """The acting person's name: account commands always act as someone.

    Raises:
        ValidationError: nobody is named (`--as` on a local database).
    """
    if not acting:
        msg = "say who you are: sign in to the server, or give --as NAME on a local database"
        raise ValidationError(msg)
    return acting


# Commands kept in modules of their own register themselves when imported: load them with the registry.
from consultflow.services import intake_commands, report_commands  # noqa: E402, F401 - import, merge, reports
