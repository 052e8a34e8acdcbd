"""Which reminders an opinion's state calls for, and what they say. Pure: no clock, no I/O.

The workflow's deadlines and reminder rules are the only source: entering a state with a deadline
plans one reminder per rule offset, each with a key (opinion, rule, offset, round, due time) that
makes writing it twice impossible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from consultflow.domain.labels import Lang
from consultflow.domain.roles import Role
from consultflow.domain.workflow import WorkflowSpec


@dataclass(frozen=True)
class StateEntry:
    """An opinion that has just entered (or is staying in) a state with a deadline."""

    opinion_id: int
    consultation_id: int
    round_no: int
    state: str
    entered_at: datetime


@dataclass(frozen=True)
class PlannedReminder:
    """One reminder to record for an opinion's stay in a state."""

    rule: str
    offset_days: float
    state: str
    due_at: datetime
    send_at: datetime
    recipient_role: Role
    escalation: bool


def due_time(spec: WorkflowSpec, state: str, entered_at: datetime, round_closes_at: datetime | None) -> datetime | None:
    """When the move out of `state` is due, or None when the state has no (known) deadline."""
    deadline = spec.states[state].deadline
    if deadline is None:
        return None
    if deadline.at_round_close:
        return round_closes_at
    assert deadline.after_days is not None
    return entered_at + timedelta(days=deadline.after_days)


def plan_reminders(
    spec: WorkflowSpec, state: str, entered_at: datetime, round_closes_at: datetime | None
) -> list[PlannedReminder]:
    """The reminders for an opinion that entered `state` at `entered_at`."""
    due = due_time(spec, state, entered_at, round_closes_at)
    if due is None:
        return []
    return [
        PlannedReminder(
            rule=rule.name,
            offset_days=offset,
            state=state,
            due_at=due,
            send_at=due + timedelta(days=offset),
            recipient_role=rule.recipient,
            escalation=rule.escalation,
        )
        for rule in spec.reminders
        if rule.state == state
        for offset in rule.offsets_days
    ]


def round_close_states(spec: WorkflowSpec) -> list[str]:
    """States whose deadline is the round's closing time."""
    return [s.name for s in spec.states.values() if s.deadline is not None and s.deadline.at_round_close]


@dataclass(frozen=True)
class ReminderMessage:
    """A reminder's subject and body in one language."""

    subject: str
    body: str


_ASKS: dict[Role, tuple[str, str]] = {
    Role.PLANNER: ("请对意见给出反馈或办理结论", "please give feedback or a decision on the opinion"),
    Role.COORDINATOR: ("请督办该意见", "please follow up on the opinion"),
    Role.PARTICIPANT: ("可对规划团队的反馈再次发表意见", "you may reply to the planning team's feedback"),
    Role.EXPERT: ("请转告村民对反馈再次发表意见", "please relay the feedback and collect the reply"),
}


def compose(
    *,
    lang: Lang,
    recipient_role: Role,
    escalation: bool,
    opinion_id: int,
    state_label: str,
    due_local: str,
    overdue: bool,
) -> ReminderMessage:
    """The text of a reminder, in the recipient's language.

    It names the opinion by number, never quotes it: an opinion's text may hold its participant's
    name or phone number, and mail and webhooks leave consultflow (the worker cannot open sealed
    texts anyway). The recipient reads it in consultflow.
    """
    zh_ask, en_ask = _ASKS.get(recipient_role, _ASKS[Role.COORDINATOR])
    if lang == "zh":
        tag = "【逾期督办】" if escalation else ("【已逾期】" if overdue else "【提醒】")
        subject = f"{tag}意见 #{opinion_id}（{state_label}）截止 {due_local}"
        body = f"意见 #{opinion_id}\n当前状态：{state_label}\n事项：{zh_ask}\n截止时间：{due_local}\n"
    else:
        tag = "[Escalation] " if escalation else ("[Overdue] " if overdue else "[Reminder] ")
        subject = f"{tag}Opinion #{opinion_id} ({state_label}) due {due_local}"
        body = f"Opinion #{opinion_id}\nState: {state_label}\nAsked: {en_ask}\nDue: {due_local}\n"
    return ReminderMessage(subject, body)
