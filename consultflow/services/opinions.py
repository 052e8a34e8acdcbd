"""Opinions: submitting, assigning, listing, and moving them through the workflow."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from typing import cast, overload

from consultflow.domain.audit import EventKind
from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.labels import resolve_choice
from consultflow.domain.opinion import Firing, Move
from consultflow.domain.ownership import Acting, Holding, check_owner, check_submitter
from consultflow.domain.reminders import StateEntry
from consultflow.domain.roles import Action, Role
from consultflow.domain.vocabulary import CHOICE_ALIASES, FIELD_MAX_CHARS, MAX_OPINION_CHARS, Field
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import required_text
from consultflow.services.opinion_views import OpinionView, opinion_views
from consultflow.services.pipeline import Change, run
from consultflow.services.ports import MovingOpinion, NewEntry, NewOpinionRow, OpinionRow, UnitOfWork


@dataclass(frozen=True, slots=True)  # slots: a bulk fire keeps one per opinion until it prints them
class TransitionResult:
    """What one fired trigger did."""

    opinion_id: int
    trigger: str
    from_state: str
    to_state: str
    round_no: int
    rounds_count: int
    actor: str
    role: str
    seq: int
    at: datetime


@dataclass(frozen=True, slots=True)
class FireRequest:
    """One trigger to fire, for bulk use (`fire_many`)."""

    opinion_id: int
    trigger: str
    fields: Mapping[Field, object]


class SameTrigger(Sequence[FireRequest]):
    """One trigger with one set of fields for many opinions (`opinion fire 1-800000 screen`).

    A request is made when asked for, so 800,000 ids cost their list, not an object each.
    """

    def __init__(self, opinion_ids: Sequence[int], trigger: str, fields: Mapping[Field, object]) -> None:
        self.opinion_ids, self.trigger, self.fields = opinion_ids, trigger, fields

    def __len__(self) -> int:
        return len(self.opinion_ids)

    @overload
    def __getitem__(self, index: int) -> FireRequest: ...

    @overload
    def __getitem__(self, index: slice) -> list[FireRequest]: ...

    def __getitem__(self, index: int | slice) -> FireRequest | list[FireRequest]:
        if isinstance(index, slice):
            return [FireRequest(i, self.trigger, self.fields) for i in self.opinion_ids[index]]
        return FireRequest(self.opinion_ids[index], self.trigger, self.fields)


@dataclass(frozen=True)
class NewOpinion:
    """One opinion to record (`submit_many` takes a batch, e.g. from a meeting's notes)."""

    participant_id: int
    category: str
    channel: str
    text: str
    intake_key: str | None = None  # the same key twice is the same submission (a web form posted again)
    receipt_hash: str | None = None


def submit_opinion(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    participant_id: int,
    category: str,
    channel: str,
    text: str,
) -> OpinionView:
    """Record an opinion in the consultation's open round."""
    item = NewOpinion(participant_id, category, channel, text)
    return submit_many(ctx, acting=acting, consultation_id=consultation_id, items=[item])[0]


def submit_many(
    ctx: ServiceContext,
    *,
    acting: str | None,
    consultation_id: int,
    items: Sequence[NewOpinion],
) -> list[OpinionView]:
    """Record several opinions in the open round, in one transaction: all of them, or none."""

    def body(change: Change) -> list[OpinionView]:
        return record_opinions(change, consultation_id, items)

    return run(
        ctx,
        acting=acting,
        action=Action.SUBMIT_OPINION,
        event="opinions_submitted",
        body=body,
        describe=lambda views: {"count": len(views), "consultation_id": consultation_id},
    )


def record_opinions(change: Change, consultation_id: int, items: Sequence[NewOpinion]) -> list[OpinionView]:
    """Record opinions in the consultation's open round, within a change (checked, evented, reminded)."""
    consultation = change.consultation(consultation_id)
    spec = change.spec(consultation.id)
    open_round = change.current_round(consultation.id)
    rows = []
    for item in items:
        category = resolve_choice(item.category, spec.categories, "category", CHOICE_ALIASES)
        channel = resolve_choice(item.channel, spec.channels, "channel", CHOICE_ALIASES)
        text = required_text(item.text, "opinion text", MAX_OPINION_CHARS)
        check_submitter(change.acting_as(change.acting_role), item.participant_id)
        rows.append(NewOpinionRow(item.participant_id, category, channel, text, item.intake_key, item.receipt_hash))
    missing = change.uow.participants.missing([r.participant_id for r in rows])
    if missing:
        noun = "participant" if len(missing) == 1 else "participants"
        listed = ", ".join(map(str, missing))
        msg = f"unknown {noun} {listed}; list them with 'consultflow participant list'"
        raise NotFoundError(msg)
    # Each text sealed once with its participant's key: the live row and its event hold the same.
    plain = [r.text for r in rows]
    sealed = change.uow.texts.seal_many([(r.participant_id, r.text) for r in rows])
    rows = [replace(r, text=s) for r, s in zip(rows, sealed, strict=True)]
    added = change.uow.opinions.add_many(
        consultation,
        rows,
        recorded_by=change.actor.id,
        state=spec.initial,
        round_no=open_round.number,
        now=change.now,
    )
    record_submitted(
        change,
        consultation.id,
        spec.initial,
        open_round.number,
        (
            (r.id, {"category": r.category, "channel": r.channel, "participant_id": r.participant_id, "text": r.text})
            for r in added
        ),
    )
    return [replace(v, text=t) for v, t in zip(opinion_views(change.uow, added), plain, strict=True)]


def fire(
    ctx: ServiceContext,
    *,
    acting: str | None,
    opinion_id: int,
    trigger: str,
    fields: Mapping[Field, object],
) -> TransitionResult:
    """Fire one trigger on one opinion: state change and audit event in one transaction."""
    results = fire_many(ctx, acting=acting, requests=[FireRequest(opinion_id, trigger, fields)])
    return results[0]


def fire_many(ctx: ServiceContext, *, acting: str | None, requests: Sequence[FireRequest]) -> list[TransitionResult]:
    """Fire several triggers in one transaction: all of them happen, or none.

    Each still runs through the opinion's workflow machine, role and field checks.
    """

    def body(change: Change) -> list[TransitionResult]:
        return fire_in(change, requests)

    def describe(results: list[TransitionResult]) -> dict[str, object]:
        if len(results) != 1:
            return {"count": len(results)}
        r = results[0]
        return {
            "opinion_id": r.opinion_id,
            "trigger": r.trigger,
            "from_state": r.from_state,
            "to_state": r.to_state,
            "round": r.round_no,
        }

    return run(ctx, acting=acting, action=None, event="transitions", body=body, describe=describe)


FIRE_BATCH = 2000


def fire_in(change: Change, requests: Sequence[FireRequest]) -> list[TransitionResult]:
    """Fire triggers within a change: each through its workflow machine, role, ownership and field checks.

    Many opinions are taken a batch at a time in id order (the global lock order): each batch is
    moved, evented and reminded, then let go of, so memory stays flat however many are fired. An
    opinion named twice keeps the requests' order in one batch.
    """
    ids = requests.opinion_ids if isinstance(requests, SameTrigger) else [r.opinion_id for r in requests]
    if len(requests) <= FIRE_BATCH:
        return _fire_batch(change, requests)
    in_order = all(a < b for a, b in pairwise(ids))  # a range, say: already in lock order, each id once
    if not in_order and len(set(ids)) != len(ids):
        return _fire_batch(change, requests)
    change.lock_owners(ids)  # every consultation lock before any opinion
    order: Sequence[int] = range(len(ids)) if in_order else sorted(range(len(ids)), key=ids.__getitem__)
    results: list[TransitionResult | None] = [None] * len(ids)  # in the order asked
    for start in range(0, len(order), FIRE_BATCH):
        batch = order[start : start + FIRE_BATCH]
        for i, result in zip(batch, _fire_batch(change, [requests[i] for i in batch], owners_locked=True), strict=True):
            results[i] = result
        change.flush()
        change.uow.release()
    assert None not in results, "every request was in a batch"
    return cast("list[TransitionResult]", results)


def _fire_batch(
    change: Change, requests: Sequence[FireRequest], *, owners_locked: bool = False
) -> list[TransitionResult]:
    """Fire a batch in memory (each opinion through its machine), then write it as a set: rows, entries, events."""
    loaded = {o.id: o for o in change.moving([r.opinion_id for r in requests], owners_locked=owners_locked)}
    registrars = change.registrars(o.participant_id for o in loaded.values())
    acting: dict[Role, Acting] = {}

    def owner(opinion: MovingOpinion, role: Role, what: str) -> None:
        found = acting.get(role)
        if found is None:
            found = acting[role] = change.acting_as(role)
        check_owner(found, holding(opinion, registrars.get(opinion.participant_id, 0)), what)

    firing = Firing(
        actor_name=change.actor.name,
        actor_roles=change.roles,
        now=change.now,
        round_no=lambda opinion: change.current_round(opinion.consultation_id).number,  # read once per change
        owner=owner,
        merge_target=lambda opinion, target: _check_merge_target(change.uow, opinion, target),
    )
    batch = _Batch()
    results = [_transition(change, loaded[request.opinion_id], request, firing, batch) for request in requests]
    change.uow.opinions.write_moves(list(loaded.values()))
    change.uow.opinions.add_entries(batch.entries)
    moved = [loaded[i] for i in dict.fromkeys(r.opinion_id for r in results if r.from_state != r.to_state)]
    change.left_state((o.id for o in moved), "the opinion left the state")
    change.entered_state(
        StateEntry(o.id, o.consultation_id, o.current_round, o.state, o.state_entered_at) for o in moved
    )
    return results


_SEALED_FIELDS = (Field.TEXT, Field.REASON)  # free text about the participant's opinion


@dataclass
class _Batch:
    """What a batch of transitions collects: the entries to write, and one event payload per set of fields.

    A bulk fire sends one trigger with one set of fields to thousands of opinions, and their moves
    share one cleaned mapping of fields (the batch's `Firing` cleans them once), so their events
    share one payload too.
    """

    entries: list[NewEntry] = field(default_factory=list)
    payloads: dict[int, tuple[Mapping[Field, object], dict[str, object]]] = field(default_factory=dict)

    def payload(self, move: Move) -> dict[str, object]:
        """The event payload of a move's fields, one dict for all moves with the same fields (written out once)."""
        found = self.payloads.get(id(move.fields))
        if found is None or found[0] is not move.fields:
            found = self.payloads[id(move.fields)] = (move.fields, {f.value: v for f, v in move.fields.items()})
        return found[1]


def _transition(
    change: Change, opinion: MovingOpinion, request: FireRequest, firing: Firing, batch: _Batch
) -> TransitionResult:
    """Fire one opinion (the machine checks and moves it), seal its free text, note its entry and audit event."""
    move = opinion.fire(change.workflow(opinion.consultation_id), request.trigger, request.fields, firing)
    payload = batch.payload(move)
    sealed = {
        f.value: change.uow.texts.seal(opinion.participant_id, str(move.fields[f]))
        for f in _SEALED_FIELDS
        if move.fields.get(f)
    }
    if sealed:  # the participant's free text, sealed with their key: this opinion's own payload
        payload = {**payload, **sealed}
    if move.entry is not None:
        text = sealed.get(Field.TEXT.value) or sealed.get(Field.REASON.value) or ""
        stance = move.fields.get(Field.STANCE)
        batch.entries.append(
            NewEntry(
                opinion.id,
                move.seq,
                move.round_no,
                move.entry.value,
                str(stance) if stance else None,
                str(text),
                change.actor.id,
                change.now,
            )
        )
    change.record(
        opinion.consultation_id,
        change.event(
            EventKind.TRANSITION,
            role=move.role,
            opinion_id=opinion.id,
            opinion_seq=move.seq,
            trigger=move.trigger,
            from_state=move.from_state,
            to_state=move.to_state,
            round_no=move.round_no,
            completes_cycle=move.completes_cycle,
            payload=payload,
        ),
    )
    return TransitionResult(
        request.opinion_id,  # the caller's number: the loaded row's copy can go
        move.trigger,
        move.from_state,
        move.to_state,
        move.round_no,
        opinion.rounds_count,
        change.actor.name,
        move.role.value,
        move.seq,
        change.now,
    )


def _check_merge_target(uow: UnitOfWork, opinion: MovingOpinion, target_id: int) -> None:
    if target_id == opinion.id:
        msg = f"opinion {opinion.id} cannot be merged into itself"
        raise ValidationError(msg)
    try:
        target = uow.opinions.get(target_id)
    except NotFoundError:
        msg = f"--into {target_id}: no such opinion"
        raise ValidationError(msg) from None
    if target.consultation_id != opinion.consultation_id:
        elsewhere = target.consultation_id
        msg = f"--into {target_id}: that opinion belongs to consultation {elsewhere}, not {opinion.consultation_id}"
        raise ValidationError(msg)
    if target.outcome in ("merged", "withdrawn"):
        hint = f"; merge into {target.merged_into_id} instead" if target.merged_into_id else ""
        msg = f"--into {target_id}: that opinion is {target.outcome}{hint}"
        raise ValidationError(msg)


@dataclass(frozen=True, slots=True)
class Assignment:
    """What assigning one opinion did: small, so assigning 100,000 opinions keeps memory flat."""

    opinion_id: int
    assigned_to: str
    state: str
    seq: int


def assign(ctx: ServiceContext, *, acting: str | None, opinion_ids: Sequence[int], planner: str) -> list[Assignment]:
    """Hand opinions to a planner; their work queue is `opinion list --assigned-to`."""
    if not opinion_ids:
        msg = "give at least one opinion id"
        raise ValidationError(msg)

    def body(change: Change) -> list[Assignment]:
        target = change.uow.actors.by_name(planner)
        if target is None or Role.PLANNER not in change.uow.actors.roles(target.id):
            msg = f"{planner!r} is not a registered planner; add one with 'consultflow actor add NAME --role planner'"
            raise ValidationError(msg)
        # In batches, in the global lock order (ids as a range gives them need no sorted copy).
        in_order = all(a < b for a, b in pairwise(opinion_ids))
        ids = opinion_ids if in_order else sorted(set(opinion_ids))
        change.lock_owners(ids)
        done: list[Assignment] = []
        for start in range(0, len(ids), FIRE_BATCH):
            batch = change.moving(ids[start : start + FIRE_BATCH], owners_locked=True)
            for op in batch:
                if op.outcome is not None:
                    msg = f"opinion {op.id} is already decided ({op.state}); only open opinions can be assigned"
                    raise ValidationError(msg)
                op.assigned_planner_id = target.id
                note_on(change, op, EventKind.ASSIGNED, "assign", {"planner": target.name})
                done.append(Assignment(op.id, target.name, op.state, op.last_seq))
            change.uow.opinions.write_moves(batch)  # one UPDATE for the batch
            change.flush()
            change.uow.release()
        if in_order:
            return done
        by_id = {a.opinion_id: a for a in done}
        return [by_id[i] for i in dict.fromkeys(opinion_ids)]  # in the order asked

    return run(
        ctx,
        acting=acting,
        action=Action.ASSIGN_OPINION,
        event="opinions_assigned",
        body=body,
        describe=lambda done: {"count": len(done), "planner": planner},
    )


def note_on(
    change: Change, op: OpinionRow | MovingOpinion, kind: str, trigger: str, payload: dict[str, object]
) -> None:
    """An event about an opinion that does not move it (assigned, corrected, a receipt issued): next in its sequence."""
    op.last_seq += 1
    change.record(
        op.consultation_id,
        change.event(
            kind,
            opinion_id=op.id,
            opinion_seq=op.last_seq,
            trigger=trigger,
            from_state=op.state,
            to_state=op.state,
            round_no=op.current_round,
            payload=payload,
        ),
    )


def holding(opinion: OpinionRow | MovingOpinion, registrar: int) -> Holding:
    """What ties `opinion` to people, for the ownership check (`registrar` 0: not read, it matters to no one)."""
    return Holding(opinion.id, opinion.participant_id, opinion.recorded_by_id, opinion.assigned_planner_id, registrar)


def correct(ctx: ServiceContext, *, acting: str | None, opinion_id: int, text: str, reason: str) -> OpinionView:
    """Fix a typo in a recorded opinion: the correction is an audit event holding both texts and why.

    Reports use the corrected text; the original stays readable in the opinion's history. Local
    experts correct what they recorded (or their participants'); coordinators anything.
    """
    corrected = required_text(text, "opinion text", MAX_OPINION_CHARS)
    why = required_text(reason, "--reason", FIELD_MAX_CHARS[Field.REASON])

    def body(change: Change) -> OpinionView:
        (op,) = change.opinions([opinion_id])
        registrars = change.registrars([op.participant_id])
        check_owner(change.acting_as(change.acting_role), holding(op, registrars.get(op.participant_id, 0)), "correct")
        if corrected == op.text:
            msg = f"opinion {op.id} already reads that way; nothing to correct"
            raise ValidationError(msg)
        previous, now_reads, sealed_why = change.uow.texts.seal_many(
            [(op.participant_id, op.text), (op.participant_id, corrected), (op.participant_id, why)]
        )
        op.text = now_reads  # sealed, as its event holds it
        note_on(
            change, op, EventKind.CORRECTED, "correct", {"previous": previous, "text": now_reads, "reason": sealed_why}
        )
        return replace(opinion_views(change.uow, [op])[0], text=corrected)

    return run(
        ctx,
        acting=acting,
        action=Action.CORRECT_OPINION,
        event="opinion_corrected",
        body=body,
        describe=lambda view: {"opinion_id": view.id},
    )


def record_submitted(
    change: Change,
    consultation_id: int,
    initial: str,
    round_no: int,
    submitted: Iterable[tuple[int, dict[str, object]]],
) -> None:
    """The `submitted` event of each new opinion (id, payload), and the reminders its first state calls for."""
    ids: list[int] = []
    for opinion_id, payload in submitted:
        ids.append(opinion_id)
        change.record(
            consultation_id,
            change.event(
                EventKind.SUBMITTED,
                opinion_id=opinion_id,
                opinion_seq=1,
                trigger="submit",
                to_state=initial,
                round_no=round_no,
                payload=payload,
            ),
        )
    change.entered_state(StateEntry(i, consultation_id, round_no, initial, change.now) for i in ids)
