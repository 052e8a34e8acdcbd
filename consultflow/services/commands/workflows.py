"""Registered commands: workflows: the server's files and the versions its consultations run on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from consultflow.domain.workflow import WorkflowSpec
from consultflow.services import (
    workflows,
)
from consultflow.services.commands.core import (
    STAFF,
    Nothing,
    command,
)
from consultflow.services.context import ServiceContext
from consultflow.services.workflows import WorkflowListing

__all__ = ["OfWorkflow", "WorkflowListings"]

T = TypeVar("T")


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
