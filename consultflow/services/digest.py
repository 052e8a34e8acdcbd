"""The daily digest: each planner and coordinator with open work hears about it once a day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from consultflow.domain.reminders import due_time
from consultflow.domain.roles import Role
from consultflow.logconfig import get_logger
from consultflow.services.context import ServiceContext, spec_for
from consultflow.services.outbox import Recipient, SweepSettings, actor_recipient, coordinators, delivery_row
from consultflow.services.ports import OpinionRow

log = get_logger(__name__)


def queue_digests(ctx: ServiceContext, settings: SweepSettings) -> int:
    """Queue today's digest for each planner and coordinator with open work (once per local day)."""
    now = ctx.clock.now()
    day = now.astimezone(ctx.tz).date().isoformat()
    rows: list[dict[str, object]] = []
    with ctx.uow() as uow:
        open_ops = uow.opinions.undecided()
        overdue: dict[int | None, list[OpinionRow]] = {}
        waiting: dict[int | None, list[OpinionRow]] = {}
        coordinators_owe: list[OpinionRow] = []  # e.g. opinions waiting to be screened
        coordinators_late: list[OpinionRow] = []
        for op in open_ops:
            spec = spec_for(uow.workflows.get(op.workflow_id))
            deadline = spec.states[op.state].deadline
            if deadline is None or deadline.owner not in (Role.PLANNER, Role.COORDINATOR):
                continue
            due = due_time(spec, op.state, op.state_entered_at, None)
            is_late = due is not None and due < now
            if deadline.owner is Role.COORDINATOR:
                coordinators_owe.append(op)
                if is_late:
                    coordinators_late.append(op)
                continue
            waiting.setdefault(op.assigned_planner_id, []).append(op)
            if is_late:
                overdue.setdefault(op.assigned_planner_id, []).append(op)
        people = {a.id: a for a in uow.actors.with_role(Role.PLANNER)}
        for planner_id, ops in waiting.items():
            if planner_id is None or planner_id not in people:
                continue
            rows.append(
                _digest_row(actor_recipient(people[planner_id]), ops, overdue.get(planner_id, []), day, settings, now)
            )
        if open_ops:
            late = [op for ops in overdue.values() for op in ops] + coordinators_late
            # coordinators owe screening, unassigned work, and a chase of everything overdue (each once)
            owed = list({op.id: op for op in [*coordinators_owe, *waiting.get(None, []), *late]}.values())
            for coordinator in coordinators(uow):
                rows.append(_digest_row(coordinator, owed, late, day, settings, now))
        uow.outbox.queue(rows)
        uow.commit()
    log.info("digests_queued", day=day, recipients=len(rows))
    return len(rows)


def _digest_row(
    recipient: Recipient,
    waiting: Sequence[OpinionRow],
    late: Sequence[OpinionRow],
    day: str,
    settings: SweepSettings,
    now: datetime,
) -> dict[str, object]:
    ids = ", ".join(f"#{op.id}" for op in sorted(late, key=lambda o: o.id)[:20])
    if recipient.lang == "zh":
        subject = f"【每日汇总】{day} 待办意见 {len(waiting)} 条，逾期 {len(late)} 条"
        body = f"待办意见：{len(waiting)} 条\n已逾期：{len(late)} 条\n" + (f"逾期意见：{ids}\n" if ids else "")
    else:
        subject = f"[Daily digest] {day}: {len(waiting)} opinion(s) waiting, {len(late)} overdue"
        body = f"Waiting: {len(waiting)}\nOverdue: {len(late)}\n" + (f"Overdue opinions: {ids}\n" if ids else "")
    return delivery_row(
        key=f"digest-{day}-{recipient.kind}-{recipient.id}",
        kind="digest",
        reminder_id=None,
        recipient=recipient,
        subject=subject,
        body=body,
        settings=settings,
        now=now,
    )
