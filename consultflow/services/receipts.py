"""The villager's side of the loop, proven by a receipt code: submit online, follow, reply, withdraw.

The web portal acts as one actor (`web`, role participant). It is tied, within each change, to the
one participant whose receipt code was shown, so ownership is checked exactly as for a participant
acting in person; every event it writes carries the channel it came through (`via`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from consultflow.domain.audit import EventKind
from consultflow.domain.errors import InvalidTransitionError, NotFoundError, ValidationError
from consultflow.domain.groups import resolve_group
from consultflow.domain.heads import SignedHead
from consultflow.domain.identity import PORTAL_ACTOR
from consultflow.domain.labels import Label
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.ownership import check_owner
from consultflow.domain.privacy import checked_contact
from consultflow.domain.receipts import DIGITS, grouped, new_receipt_code, receipt_hash
from consultflow.domain.redaction import redacted
from consultflow.domain.roles import Action, Role
from consultflow.domain.vocabulary import EntryKind, Field, Outcome
from consultflow.domain.workflow import TransitionSpec
from consultflow.logconfig import get_logger
from consultflow.services import heads, throttle
from consultflow.services.context import ServiceContext, engine_for
from consultflow.services.inputs import language, required_text
from consultflow.services.opinion_views import EntryView, OpinionView, named_opinion_views, opinion_views
from consultflow.services.opinions import (
    FireRequest,
    NewOpinion,
    TransitionResult,
    fire_in,
    holding,
    note_on,
    record_opinions,
)
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import UnitOfWork

log = get_logger(__name__)

#: The workflow channel online submissions are recorded under (电子调查问卷 / Online questionnaire).
ONLINE_CHANNEL = "online_survey"

_NAME_MAX = 120
_VILLAGE_MAX = 120


class ReceiptNotFoundError(NotFoundError):
    """No opinion has the code shown: a typo, a replaced code, or a guess."""

    def __init__(self) -> None:
        super().__init__("no opinion has this receipt code; check the digits, or ask a feedback point for a new code")


class IdempotencyKeyReusedError(InvalidTransitionError):
    """An Idempotency-Key (or form key) already used by this client for another opinion (HTTP 409)."""

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used before for another opinion (or that opinion's code was replaced); "
            "send a new key for a new opinion"
        )


@dataclass(frozen=True)
class Asker:
    """Who looks a receipt code up, as the portal knows them (a keyed hash of their address), and their limits.

    Every lookup (a timeline, a reply, a withdrawal; by form, cookie or API) counts once against
    the client and once against the code, in the database, before the code is checked.
    """

    client: str
    lookups: throttle.Rate  # lookups per client, right or wrong
    per_code: throttle.Rate  # lookups and answers per receipt code


def admit(ctx: ServiceContext, asker: Asker, code: str) -> None:
    """Count one lookup against the client, then the code; refuse past either limit.

    Raises:
        TooManyAttemptsError: the client or the code is past its limit (logged as `receipt_refused`).
        ValidationError: the code is not 25 digits (counted against the client).
    """
    try:
        digest: str | None = receipt_hash(code)
    except ValidationError:
        digest = None
    counted = [(throttle.RECEIPT_CLIENT + asker.client, asker.lookups)]
    if digest is not None:
        counted.append((throttle.RECEIPT_CODE + digest[:32], asker.per_code))
    refused = throttle.spend(ctx, counted)
    if refused is not None:
        which, until = refused
        log.warning("receipt_refused", reason="client_limit" if which == 0 else "code_limit", client=asker.client)
        what = "receipt lookups from this client" if which == 0 else "lookups with this receipt code"
        raise throttle.refuse(f"too many {what}; wait a while and try again", until)
    if digest is None:
        log.warning("receipt_refused", reason="malformed", client=asker.client)
        receipt_hash(code)  # raises the CLI's message


def _wrong_code(asker: Asker | None) -> None:
    """A code that matched no opinion: logged by the client's hash (never the code)."""
    if asker is not None:
        log.warning("receipt_refused", reason="wrong_code", client=asker.client)


def _form_digest(form: OnlineOpinion) -> str:
    """What a form held, as one digest: the same key with another body is another opinion (refused)."""
    fields: tuple[str, ...] = (
        form.category, form.text, form.village, form.name, form.contact, str(form.contact_consent), form.lang
    )  # fmt: skip
    if form.group:
        fields = (*fields, form.group)  # a form without the group question digests as it did before
    joined = "\x1f".join(fields).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()


def _derived_code(uow: UnitOfWork, intake_key: str, digest: str) -> str:
    """The receipt code of a submission with a one-time key: an HMAC (under the database's secret) of its key and body.

    A retry with the same key and body gets the same code again; only its hash is stored.
    """
    mac = uow.texts.keyed(f"receipt-code\x00{intake_key}\x00{digest}")
    return grouped(f"{int(mac, 16) % 10**DIGITS:0{DIGITS}d}")


@dataclass(frozen=True)
class OnlineOpinion:
    """What a villager fills in on the online questionnaire."""

    consultation_id: int
    category: str
    text: str
    village: str
    name: str = ""
    contact: str = ""
    contact_consent: bool = False
    form_key: str = ""  # the form's one-time token: posting the same form twice records one opinion
    lang: str = "zh"
    client: str = ""  # the submitter's client hash: a key is scoped to its client
    group: str = ""  # the kind of person they are (optional): one of the workflow's groups


@dataclass(frozen=True)
class Receipt:
    """A recorded online opinion and its code (the same code again when the same form was posted before)."""

    code: str
    opinion: OpinionView
    repeated: bool = False


@dataclass(frozen=True)
class RoundStep:
    """One round of an opinion's timeline: what was exchanged in it."""

    number: int
    opened_at: datetime | None
    closes_at: datetime | None
    closed_at: datetime | None
    entries: tuple[EntryView, ...]


@dataclass(frozen=True)
class Timeline:
    """Everything a receipt code shows: the opinion, each round's exchange, and what the holder may do now."""

    opinion: OpinionView
    consultation_title: str
    rounds: tuple[RoundStep, ...]
    reply: TransitionSpec | None  # re-participation, while feedback awaits an answer
    withdraw: TransitionSpec | None
    reply_by: datetime | None  # when the round closes (the answer is due)
    state_label: Label | None
    outcome: Outcome | None
    # The opinion's last audit event's place in the chain, and the latest signed head that covers it
    # (None until the server has signed one): what the villager can check in the published record.
    last_event: int = 0
    head: SignedHead | None = None


def issue_receipt(ctx: ServiceContext, *, acting: str | None, opinion_id: int) -> str:
    """A new receipt code for an opinion recorded at an assembly or feedback point, to hand to the villager.

    Only the code's hash is kept, so a lost code cannot be shown again: issuing a new one makes the
    old one worthless. The event says a code was issued, never the code.
    """

    def body(change: Change) -> str:
        (op,) = change.opinions([opinion_id])
        registrars = change.registrars([op.participant_id])
        check_owner(
            change.acting_as(change.acting_role),
            holding(op, registrars.get(op.participant_id, 0)),
            "issue a receipt for",
        )
        code = new_receipt_code()
        replaced = op.receipt_hash is not None
        op.receipt_hash = receipt_hash(code)
        note_on(change, op, EventKind.RECEIPT_ISSUED, "issue_receipt", {"replaces_earlier_code": replaced})
        return code

    return run(
        ctx,
        acting=acting,
        action=Action.ISSUE_RECEIPT,
        event="receipt_issued",
        body=body,
        describe=lambda _code: {"opinion_id": opinion_id},
    )


def portal_participant(change: Change, name: str, village: str, contact: str | None, lang: str) -> int:
    """The participant a portal visitor is: the one registered with her name, village and contact, or a new one.

    A villager who comes back with the same name, village and contact is the participant she was
    (her opinions are counted as one person's); without a name and contact no one can tell.
    """
    found = change.uow.participants.registered(name, village, contact) if name and contact else None
    if found is not None:
        return found
    return change.uow.participants.add(
        name=name, village=village, contact=contact, lang=language(lang), created_by=change.actor.id, now=change.now
    ).id


def submit_online(ctx: ServiceContext, form: OnlineOpinion) -> Receipt:
    """Record an opinion from the online questionnaire, with its submitter, and give its receipt code.

    The submitter registers themselves here (name optional; a contact only with consent). The same
    form posted twice records one opinion: the second answer says so and gives the same code,
    derived from the database's secret, the key and the body. A key is scoped to its client; the
    same key with another body is refused (IdempotencyKeyReusedError), never dropped.
    """
    village = required_text(form.village, "village", _VILLAGE_MAX)
    name = required_text(form.name, "name", _NAME_MAX) if form.name.strip() else ""
    contact = checked_contact(form.contact) if form.contact.strip() else None
    if contact is not None and not form.contact_consent:
        msg = "a contact is kept only with consent: tick the consent box, or leave the contact empty"
        raise ValidationError(msg)
    scoped = f"{form.client}\x00{form.form_key}".encode("utf-8", "surrogatepass")
    intake_key = "web:" + hashlib.sha256(scoped).hexdigest()[:48] if form.form_key else None
    digest = _form_digest(form)

    def body(change: Change) -> Receipt:
        change.via = ONLINE_CHANNEL
        change.consultation(form.consultation_id)
        if intake_key is not None:
            earlier = change.uow.opinions.by_intake_key(form.consultation_id, intake_key)
            if earlier is not None:
                op = change.uow.opinions.get(earlier)
                again = _derived_code(change.uow, intake_key, digest)
                if op.receipt_hash is None or not hmac.compare_digest(op.receipt_hash, receipt_hash(again)):
                    raise IdempotencyKeyReusedError
                return Receipt(again, opinion_views(change.uow, [op])[0], repeated=True)
        change.current_round(form.consultation_id)
        group = resolve_group(form.group, change.spec(form.consultation_id).groups) if form.group.strip() else None
        returning = portal_participant(change, name, village, contact, form.lang)
        if group is not None and change.uow.participation.set_group([returning], group, only_unset=True):
            # hers from now on (unless she gave one before), in the audit trail like any change of group
            payload = {"participant_id": returning, "group": group, "previous": None}
            change.record(form.consultation_id, change.event(EventKind.PARTICIPANT_GROUP_CHANGED, payload=payload))
        change.vouched_participant = returning
        code = new_receipt_code() if intake_key is None else _derived_code(change.uow, intake_key, digest)
        item = NewOpinion(returning, form.category, ONLINE_CHANNEL, form.text, intake_key, receipt_hash(code))
        (view,) = record_opinions(change, form.consultation_id, [item])
        return Receipt(code, view)

    return run(
        ctx,
        acting=PORTAL_ACTOR,
        action=Action.SUBMIT_OPINION,
        event="opinion_submitted_online",
        body=body,
        describe=lambda r: {"opinion_id": r.opinion.id, "repeated": r.repeated},
    )


def _find(uow: UnitOfWork, code: str) -> int:
    found = uow.opinions.by_receipt(receipt_hash(code))
    if found is None:
        raise ReceiptNotFoundError
    return found


def timeline(ctx: ServiceContext, code: str, asker: Asker | None = None) -> Timeline:
    """What a receipt code shows: the opinion, each round's feedback and replies, the outcome and plan clause.

    Texts are shown redacted (phone, ID-card and card numbers, e-mail, the participant's name masked):
    a code may be read aloud, written on a slip, typed at a kiosk. The portal passes its `asker`
    (every lookup counted and limited); None is an in-process caller's (the CLI, tests).
    """
    if asker is not None:
        admit(ctx, asker, code)
    try:
        return _timeline(ctx, code)
    except ReceiptNotFoundError:
        _wrong_code(asker)
        raise


def _timeline(ctx: ServiceContext, code: str) -> Timeline:
    with ctx.uow() as uow:
        op = uow.opinions.get(_find(uow, code))
        c = uow.consultations.get(op.consultation_id)
        engine = engine_for(uow.workflows.get(op.workflow_id))
        ((whole, participant),) = named_opinion_views(uow, [op])
        view = replace(whole, text=redacted(whole.text, participant))
        entries = [
            EntryView(e.round_no, e.kind, e.stance, redacted(e.text, participant), "", e.created_at)
            for e, _name in uow.opinions.entries(op.id)
        ]
        rounds = {r.number: r for r in uow.consultations.rounds(c.id)}
        last_event = max((e.chain_seq for e in uow.audit.for_opinion(op.id)), default=0)
    submitted_in = [n for n, r in rounds.items() if r.opened_at <= view.submitted_at]
    first = min([max(submitted_in, default=view.current_round), view.current_round, *(e.round_no for e in entries)])
    last = max([view.current_round, *(e.round_no for e in entries)])
    steps = tuple(
        RoundStep(
            n,
            rounds[n].opened_at if n in rounds else None,
            rounds[n].closes_at if n in rounds else None,
            rounds[n].closed_at if n in rounds else None,
            tuple(e for e in entries if e.round_no == n),
        )
        for n in range(first, last + 1)
    )
    reply, withdraw = _offered(engine, op.state)
    current = rounds.get(op.current_round)
    state = engine.spec.states.get(op.state)
    return Timeline(
        opinion=view,
        consultation_title=c.title,
        rounds=steps,
        reply=reply,
        withdraw=withdraw,
        reply_by=current.closes_at if reply is not None and current is not None and current.closed_at is None else None,
        state_label=state.label if state else None,
        outcome=state.outcome if state else None,
        last_event=last_event,
        head=heads.latest(ctx, c.id, covering=last_event),
    )


def reply(ctx: ServiceContext, *, code: str, stance: str, text: str, asker: Asker | None = None) -> TransitionResult:
    """Answer the planners' feedback (再参与): agree, object or revise, with text."""
    return _act(ctx, code, "reply", {Field.STANCE: stance, Field.TEXT: text}, asker)


def withdraw(ctx: ServiceContext, *, code: str, reason: str, asker: Asker | None = None) -> TransitionResult:
    """Withdraw the opinion."""
    return _act(ctx, code, "withdraw", {Field.REASON: reason} if reason.strip() else {}, asker)


def _offered(engine: WorkflowEngine, state: str) -> tuple[TransitionSpec | None, TransitionSpec | None]:
    """What the workflow lets a participant do from `state`: re-participate, and withdraw (each, if at all)."""
    offered = engine.triggers_for(state, Role.PARTICIPANT)
    reply = next((t for t in offered if t.entry is EntryKind.REPARTICIPATION), None)
    withdraw = next((t for t in offered if engine.spec.states[t.dest].outcome is Outcome.WITHDRAWN), None)
    return reply, withdraw


def _act(
    ctx: ServiceContext,
    code: str,
    what: Literal["reply", "withdraw"],
    fields: dict[Field, object],
    asker: Asker | None,
) -> TransitionResult:
    """Fire, for the receipt's holder, the transition the workflow offers a participant for `what`."""
    if asker is not None:
        admit(ctx, asker, code)
    wanted = receipt_hash(code)  # a malformed code is refused before any transaction

    def body(change: Change) -> TransitionResult:
        change.via = ONLINE_CHANNEL
        opinion_id = change.uow.opinions.by_receipt(wanted)
        if opinion_id is None:
            raise ReceiptNotFoundError
        (op,) = change.opinions([opinion_id])
        change.vouched_participant = op.participant_id
        engine = change.workflow(op.consultation_id)
        reply_spec, withdraw_spec = _offered(engine, op.state)
        spec, doing = (reply_spec, "reply to feedback") if what == "reply" else (withdraw_spec, "withdraw")
        if spec is None:
            state = engine.spec.states[op.state].label.en
            msg = f"this opinion is {state.lower()}: you cannot {doing} now"
            raise InvalidTransitionError(msg)
        (result,) = fire_in(change, [FireRequest(op.id, spec.trigger, fields)])
        return result

    try:
        return run(
            ctx,
            acting=PORTAL_ACTOR,
            action=None,
            event="opinion_answered_online",
            body=body,
            describe=lambda r: {"opinion_id": r.opinion_id, "trigger": r.trigger},
        )
    except ReceiptNotFoundError:
        _wrong_code(asker)
        raise


@dataclass(frozen=True)
class Questionnaire:
    """What the online questionnaire offers: the consultation, its categories, and whether a round is open."""

    consultation_id: int
    title: str
    area: str
    categories: tuple[tuple[str, Label], ...]
    open_round: int | None
    closes_at: datetime | None
    takes_online: bool  # the workflow has the online channel
    groups: tuple[tuple[str, Label], ...] = ()  # the workflow's participant groups (the form asks which)


def questionnaire(ctx: ServiceContext, consultation_id: int) -> Questionnaire:
    """The questionnaire of a consultation, read from its workflow version."""
    with ctx.uow() as uow:
        c = uow.consultations.get(consultation_id)
        spec = engine_for(uow.workflows.get(c.workflow_id)).spec
        current = uow.consultations.open_round(c.id)
    return Questionnaire(
        c.id,
        c.title,
        c.area,
        tuple(spec.categories.items()),
        current.number if current is not None else None,
        current.closes_at if current is not None else None,
        ONLINE_CHANNEL in spec.channels,
        tuple(spec.groups.items()),
    )
