"""The one path every state-changing use case takes.

actor and role → locks in one global order → the change → audit events → reminders → commit → log.

Locks are always taken consultations first (by id), then opinions (by id). Every writer of an
opinion holds its consultation's row lock, so writers of one consultation queue behind each other
instead of deadlocking; a use case touching several consultations takes them in id order. On
SQLite, BEGIN IMMEDIATE serialises writers the same way.

A deadlock, serialization failure or busy file that still happens (another tool, a manual SQL
session) is retried a bounded number of times with jittered backoff: the whole use case runs
again from the start in a new transaction, which is safe because nothing outside the database
happens inside one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from consultflow.domain.audit import AuditContent, ChainKey
from consultflow.domain.errors import ConflictError, RetryableConflictError
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.ownership import Acting
from consultflow.domain.reminders import StateEntry
from consultflow.domain.roles import Action, Role, role_for_action
from consultflow.domain.workflow import WorkflowSpec
from consultflow.logconfig import get_logger
from consultflow.services import identity
from consultflow.services.context import ServiceContext, engine_for
from consultflow.services.ports import ActorRow, ConsultationRow, MovingOpinion, OpinionRow, RoundRow, UnitOfWork

log = get_logger(__name__)

R = TypeVar("R")

MAX_ATTEMPTS = 5
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 1.0


class LockOrderError(RuntimeError):
    """A use case asked for a consultation lock after opinion locks: a bug, never a user's doing."""


@dataclass
class Change:
    """One use case's transaction as its body sees it: who acts, what is locked, what is recorded."""

    uow: UnitOfWork
    actor: ActorRow
    roles: list[Role]
    role: Role | None
    now: datetime
    _consultations: dict[int, ConsultationRow] = field(default_factory=dict)
    _opinions_locked: bool = False
    _events: dict[int, list[AuditContent]] = field(default_factory=dict)
    _left: dict[int, str] = field(default_factory=dict)
    _entered: dict[int, list[StateEntry]] = field(default_factory=dict)
    key_for: Callable[[ConsultationRow], ChainKey | None] = lambda _c: None
    # Set by use cases of the web portal: the channel a change came through (in each event's
    # payload as "via"), and the participant whose receipt code was shown (whom the portal acts for).
    via: str | None = None
    vouched_participant: int | None = None
    # On the server: the id of the access token the request came with, in each event's payload as
    # "token" (the account itself is the event's actor). Set by the server, never by a client.
    token: int | None = None
    _stamped: dict[int, tuple[object, dict[str, Any]]] = field(default_factory=dict)
    _current_rounds: dict[int, RoundRow] = field(default_factory=dict)
    _engines: dict[int, WorkflowEngine] = field(default_factory=dict)

    @property
    def acting_role(self) -> Role:
        """The role the use case's action was allowed under."""
        assert self.role is not None, "use cases without an action check roles themselves"
        return self.role

    def consultations(self, ids: Iterable[int]) -> dict[int, ConsultationRow]:
        """Lock consultations in id order (before any opinion)."""
        wanted = sorted(set(ids) - self._consultations.keys())
        if wanted and self._opinions_locked:
            msg = f"consultation(s) {wanted} locked after opinions: locks must go consultations first"
            raise LockOrderError(msg)
        for consultation_id in wanted:
            self._consultations[consultation_id] = self.uow.consultations.get(consultation_id, lock=True)
        return self._consultations

    def consultation(self, consultation_id: int) -> ConsultationRow:
        """Lock one consultation (asked once per opinion in bulk work, so a held one is returned at once)."""
        held = self._consultations.get(consultation_id)
        return held if held is not None else self.consultations([consultation_id])[consultation_id]

    def lock_owners(self, opinion_ids: Sequence[int]) -> None:
        """Lock the consultations of opinions about to be locked (bulk work does it once for all batches)."""
        locked = self.uow.consultations.lock_of_opinions(opinion_ids)
        new = [c.id for c in locked if c.id not in self._consultations]
        if new and self._opinions_locked:
            msg = f"consultation(s) {new} locked after opinions: locks must go consultations first"
            raise LockOrderError(msg)
        self._consultations.update((c.id, c) for c in locked if c.id in new)

    def opinions(self, ids: Sequence[int]) -> list[OpinionRow]:
        """Lock opinions (their consultations first, then the opinions by id); in the order asked."""
        unique = list(dict.fromkeys(ids))
        self.lock_owners(unique)
        self._opinions_locked = True
        return list(self.uow.opinions.lock_many(unique))

    def moving(self, ids: Sequence[int], *, owners_locked: bool = False) -> list[MovingOpinion]:
        """Lock opinions as `opinions` does, as plain rows for transitions (written back as a set).

        `owners_locked`: the caller took their consultations' locks already (`lock_owners`).
        """
        unique = list(dict.fromkeys(ids))
        if not owners_locked:
            self.lock_owners(unique)
        self._opinions_locked = True
        return list(self.uow.opinions.lock_moving(unique))

    def workflow(self, consultation_id: int) -> WorkflowEngine:
        """The machine of a locked consultation's workflow version (looked up once per change)."""
        engine = self._engines.get(consultation_id)
        if engine is None:
            consultation = self.consultation(consultation_id)
            engine = engine_for(self.uow.workflows.get(consultation.workflow_id))
            self._engines[consultation_id] = engine
        return engine

    def spec(self, consultation_id: int) -> WorkflowSpec:
        """The workflow spec of a locked consultation."""
        return self.workflow(consultation_id).spec

    def acting_as(self, role: Role) -> Acting:
        """The acting person in `role`, as the ownership rules see them.

        An actor tied to no participant record (the web portal) is, within one change, the
        participant a receipt code vouched for.
        """
        participant = self.actor.participant_id
        return Acting(
            self.actor.id, self.actor.name, role, self.vouched_participant if participant is None else participant
        )

    def registrars(self, participant_ids: Iterable[int]) -> dict[int, int]:
        """Who registered each participant (the local expert who represents them).

        Only a local expert's ownership depends on it, so for anyone else nothing is read.
        """
        if Role.EXPERT not in self.roles:
            return {}
        found = self.uow.participants.many(list(dict.fromkeys(participant_ids)))
        return {p.id: p.created_by_id for p in found}

    def open_round(self, consultation_id: int) -> RoundRow | None:
        """The consultation's open round, if any (read each time: round use cases open and close them)."""
        return self.uow.consultations.open_round(consultation_id)

    def current_round(self, consultation_id: int) -> RoundRow:
        """The open round that opinions are recorded and moved in, or a refusal; read once per change.

        For use cases that move opinions, never for those that open or close rounds. The reminders
        planned at the end reuse it, so a transition reads its round once.
        """
        if consultation_id not in self._current_rounds:
            self._current_rounds[consultation_id] = self.uow.consultations.require_open_round(consultation_id)
        return self._current_rounds[consultation_id]

    def event(self, kind: str, *, role: Role | None = None, **content: Any) -> AuditContent:
        """An audit event by the acting person, now, in the role the action was allowed under."""
        acting = role or self.acting_role
        if self.via is not None or self.token is not None:
            content["payload"] = self._stamp(content.get("payload"))
        return AuditContent(kind=kind, at=self.now, actor=self.actor.name, role=acting.value, **content)

    def _stamp(self, payload: dict[str, Any] | None) -> dict[str, Any]:
        """The payload with the channel and the token added; one copy per payload, as bulk work shares them."""
        found = self._stamped.get(id(payload))
        if found is None or found[0] is not payload:
            stamped = dict(payload or {})
            if self.via is not None:
                stamped["via"] = self.via
            if self.token is not None:
                stamped["token"] = self.token
            found = self._stamped[id(payload)] = (payload, stamped)  # the original kept alive: its id stays its own
        return found[1]

    def record(self, consultation_id: int, *drafts: AuditContent) -> None:
        """Audit events to append to the consultation's chain when the change is done."""
        self.consultation(consultation_id)
        self._events.setdefault(consultation_id, []).extend(drafts)

    def left_state(self, opinion_ids: Iterable[int], reason: str) -> None:
        """Opinions that left their state: their pending reminders are cancelled."""
        for opinion_id in opinion_ids:
            self._left[opinion_id] = reason

    def entered_state(self, entries: Iterable[StateEntry]) -> None:
        """Opinions in a state with a deadline: the reminders it calls for are planned."""
        for entry in entries:
            self._entered.setdefault(entry.consultation_id, []).append(entry)

    def append_events(self) -> None:
        """Chain the events recorded so far now, in consultation order (bulk work keeps memory bounded)."""
        for consultation_id in sorted(self._events):
            consultation = self._consultations[consultation_id]
            self.uow.audit.append(consultation, self._events[consultation_id], self.key_for(consultation))
        self._events.clear()
        self._stamped.clear()

    def flush(self) -> None:
        """Audit events (hashed with each chain's key, if it has one), then reminders, written now.

        The pipeline does this once before commit; bulk work calls it after each batch, so what a
        long change holds in memory stays bounded.
        """
        self.append_events()
        by_reason: dict[str, list[int]] = {}
        for opinion_id, reason in self._left.items():
            by_reason.setdefault(reason, []).append(opinion_id)
        for reason, opinion_ids in by_reason.items():
            self.uow.reminders.cancel_for_opinions(opinion_ids, reason, self.now)
        self._left.clear()
        for consultation_id in sorted(self._entered):
            known = self._current_rounds.get(consultation_id)
            open_round = known if known is not None else self.open_round(consultation_id)
            closes_at = open_round.closes_at if open_round is not None else None
            spec = self.spec(consultation_id)
            self.uow.reminders.plan(spec, self._entered[consultation_id], closes_at, self.now)
        self._entered.clear()

    def _finish(self) -> None:
        """What the change recorded, written before commit."""
        self.flush()


def run(
    ctx: ServiceContext,
    *,
    acting: str | None,
    action: Action | None,
    event: str,
    body: Callable[[Change], R],
    describe: Callable[[R], Mapping[str, object]] = lambda _r: {},
    first_person: bool = False,
) -> R:
    """Run a use case's `body` in one transaction through the pipeline, retrying conflicts.

    Args:
        ctx: the wiring.
        acting: who is acting (a registered actor's name).
        action: the action the actor's role must allow; None when the body checks roles itself
            (workflow triggers carry their own roles).
        event: the log event written after commit.
        body: the change; it may run more than once (each time in a new transaction).
        describe: log fields for the result.
        first_person: on a database with nobody registered yet, let consultflow's system actor
            act (registering the first coordinator).

    Raises:
        ConflictError: the change kept colliding with others; nothing was written.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with ctx.writing() as uow:
                login = None if ctx.acting_proven else uow.logins.session_login()
                change = _begin(uow, ctx.clock.now(), acting, login, action, first_person=first_person)
                change.key_for, change.token = ctx.key_for, ctx.token_id
                result = body(change)
                change._finish()  # noqa: SLF001 - the pipeline owns the change
                uow.commit()
        except RetryableConflictError as exc:
            if attempt == MAX_ATTEMPTS:
                msg = f"{exc}; nothing was written after {attempt} tries: run the same command again"
                raise ConflictError(msg) from None
            log.info("retrying", use_case=event, attempt=attempt, reason=str(exc))
            time.sleep(min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt) * random.uniform(0.5, 1.5))  # noqa: S311
            continue
        log.info(event, actor=change.actor.name, **describe(result))
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def _begin(
    uow: UnitOfWork, now: datetime, acting: str | None, login: str | None, action: Action | None, *, first_person: bool
) -> Change:
    if first_person and uow.actors.count_people() == 0:
        system = uow.actors.system()
        return Change(uow, system, [Role.SYSTEM], Role.SYSTEM, now)
    actor, roles = identity.acting_actor(uow, acting, login)
    role = role_for_action(actor.name, roles, action) if action is not None else None
    return Change(uow, actor, roles, role, now)
