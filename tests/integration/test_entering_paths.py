"""A single transition and a round close enter a state through one definition, so they write the same rows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from consultflow.domain.vocabulary import Field
from consultflow.services import consultations, opinions, rounds
from consultflow.services.context import ServiceContext
from consultflow.store.models import AuditEvent, Opinion, OpinionEntry, Reminder
from tests.conftest import WORKFLOWS, sql_uow
from tests.helpers import COORD, EXPERT, PLANNER, seed

DEFAULT = (WORKFLOWS / "consultation-loop.yaml").read_text(encoding="utf-8")
# A variant whose round close decides: an unanswered opinion is closed as rejected, completing a cycle.
DECIDING = DEFAULT.replace("name: consultation-loop", "name: closing-loop").replace(
    "    source: feedback_given\n    dest: under_review\n    roles: [system, coordinator]",
    "    source: feedback_given\n    dest: rejected\n    roles: [system, coordinator]\n    completes_cycle: true",
)


def _row(ctx: ServiceContext, opinion_id: int) -> dict[str, object]:
    """What entering the state wrote: the opinion's columns, its last event, its entries and reminders."""
    with sql_uow(ctx) as uow:
        s = uow.session
        op = s.get(Opinion, opinion_id)
        assert op is not None
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.opinion_id == opinion_id).order_by(AuditEvent.opinion_seq.desc())
        ).first()
        assert event is not None
        entered = op.state_entered_at
        reminders = sorted(
            (r.rule, r.offset_minutes, r.recipient_role, r.escalation, r.due_at - entered, r.status)
            for r in s.scalars(
                select(Reminder).where(
                    Reminder.opinion_id == opinion_id,
                    Reminder.state == op.state,
                    Reminder.state_entered_at == entered,  # this stay in the state, not an earlier one
                )
            )
        )
        entries = s.scalars(select(OpinionEntry.kind).where(OpinionEntry.opinion_seq == op.last_seq)).all()
        return {
            "state": op.state,
            "outcome": op.outcome,
            "rounds_count": op.rounds_count,
            "last_seq": op.last_seq,
            "entered_at_is_event_time": op.state_entered_at == event.at,
            "event": (event.trigger, event.from_state, event.to_state, event.completes_cycle, event.opinion_seq),
            "payload_keys": sorted(json.loads(event.payload)),
            "entries": list(entries),
            "reminders": reminders,
        }


@pytest.mark.parametrize("text", [DEFAULT, DECIDING], ids=["lapse-to-review", "close-as-rejected"])
def test_single_transition_and_round_close_write_identical_rows(ctx: ServiceContext, tmp_path: Path, text: str) -> None:
    """The same trigger fired by hand and by a round close leaves the opinion in the same shape."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "consultation-loop.yaml").write_text(DEFAULT, encoding="utf-8")
    (folder / "closing-loop.yaml").write_text(DECIDING, encoding="utf-8")
    ctx = replace(ctx, workflows_dir=folder)
    seed(ctx, open_first_round=False)
    name = text.split("name: ", 1)[1].split("\n", 1)[0]
    c = consultations.create_consultation(ctx, acting=COORD, title="对照", area="片区", workflow=name)
    rounds.open_round(ctx, acting=COORD, consultation_id=c.id)
    items = [opinions.NewOpinion(1, "industry", "villagers_assembly", f"意见 {i}") for i in range(2)]
    by_hand, by_close = (v.id for v in opinions.submit_many(ctx, acting=EXPERT, consultation_id=c.id, items=items))
    opinions.assign(ctx, acting=COORD, opinion_ids=[by_hand, by_close], planner=PLANNER)
    for opinion_id in (by_hand, by_close):
        opinions.fire(ctx, acting=EXPERT, opinion_id=opinion_id, trigger="screen", fields={})
        opinions.fire(ctx, acting=PLANNER, opinion_id=opinion_id, trigger="give_feedback", fields={Field.TEXT: "答复"})

    opinions.fire(ctx, acting=COORD, opinion_id=by_hand, trigger="lapse", fields={})
    hand = _row(ctx, by_hand)  # before the close, which would carry it over once more
    rounds.close_round(ctx, acting=COORD, consultation_id=c.id)
    close = _row(ctx, by_close)
    assert hand["payload_keys"] == []  # a trigger fired by hand with no fields
    assert close["payload_keys"] == ["next_round", "round_close"]  # the close says which round it closed
    for row in (hand, close):
        row.pop("payload_keys")
    assert hand == close
    if name == "closing-loop":
        assert hand["outcome"] == "rejected" and hand["rounds_count"] == 2  # feedback, then the close
