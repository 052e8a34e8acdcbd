"""Registered commands: reminders and their deliveries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from consultflow.domain.roles import Action
from consultflow.services import (
    reminders,
)
from consultflow.services.commands.core import (
    STAFF,
    _roles,
    command,
)
from consultflow.services.context import ServiceContext
from consultflow.services.reminders import DeliveryView, ReminderView

__all__ = [
    "CancelReminders",
    "Deliveries",
    "FailedDeliveries",
    "ListReminders",
    "OfReminder",
    "ReminderDetail",
    "Reminders",
    "RequeueDeliveries",
    "Requeued",
]

T = TypeVar("T")


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
    """Deliveries that failed (retrying or dead-lettered); villagers' full names and bodies on record."""

    limit: int | None = None
    full_names: bool = False
    purpose: str | None = None


@dataclass(frozen=True)
class Deliveries:
    """Messages in the outbox (never the recipient's contact)."""

    deliveries: tuple[DeliveryView, ...]


@command("reminders.failed", "Deliveries that failed: retrying or dead-lettered.", input=FailedDeliveries,
         output=Deliveries, roles=STAFF, writes=False)  # fmt: skip
def _failed_deliveries(ctx: ServiceContext, acting: str | None, given: FailedDeliveries) -> Deliveries:
    views = reminders.list_deliveries(
        ctx, failed_only=True, limit=given.limit, acting=acting, full_names=given.full_names, purpose=given.purpose
    )
    return Deliveries(tuple(views))


@dataclass(frozen=True)
class OfReminder:
    """One reminder, by id; villagers' full names and message bodies on record (coordinators, with a purpose)."""

    reminder_id: int
    full_names: bool = False
    purpose: str | None = None


@dataclass(frozen=True)
class ReminderDetail:
    """A reminder, its deliveries and every attempt at them."""

    reminder: ReminderView
    deliveries: tuple[DeliveryView, ...]


@command("reminders.show", "One reminder, its deliveries and every attempt.", input=OfReminder,
         output=ReminderDetail, roles=STAFF, writes=False)  # fmt: skip
def _show_reminder(ctx: ServiceContext, acting: str | None, given: OfReminder) -> ReminderDetail:
    view, deliveries = reminders.show_reminder(
        ctx, given.reminder_id, acting=acting, full_names=given.full_names, purpose=given.purpose
    )
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
