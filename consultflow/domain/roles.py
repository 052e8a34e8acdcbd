"""Roles, and which role may do what outside the workflow's own transitions.

Transitions carry their own role lists in the workflow file; this table covers the actions around
them (opening rounds, registering people), so that every change is checked in one way.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from consultflow.domain.errors import PermissionDeniedError
from consultflow.domain.labels import Label


class Role(str, Enum):
    """Who someone is in a consultation."""

    COORDINATOR = "coordinator"
    PLANNER = "planner"
    EXPERT = "expert"
    PARTICIPANT = "participant"
    AUDITOR = "auditor"
    SYSTEM = "system"

    @property
    def label(self) -> Label:
        """The role's zh/en label."""
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, Label] = {
    Role.COORDINATOR: Label("协调人", "Coordinator"),
    Role.PLANNER: Label("规划编制人员", "Planner"),
    Role.EXPERT: Label("土专家", "Local expert"),
    Role.PARTICIPANT: Label("参与者", "Participant"),
    Role.AUDITOR: Label("审计员", "Auditor"),
    Role.SYSTEM: Label("系统", "System"),
}

#: Roles a person can be registered with (`system` is reserved for consultflow itself).
ASSIGNABLE_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.SYSTEM)


class Action(str, Enum):
    """Changes that are not workflow transitions."""

    ADD_ACTOR = "add actors"
    CREATE_CONSULTATION = "create consultations"
    ADD_PARTICIPANT = "register participants"
    SUBMIT_OPINION = "submit opinions"
    ASSIGN_OPINION = "assign opinions"
    OPEN_ROUND = "open rounds"
    CLOSE_ROUND = "close rounds"
    MANAGE_REMINDERS = "manage reminders"
    CORRECT_OPINION = "correct recorded opinions"
    ISSUE_RECEIPT = "issue receipt codes"
    READ_PERSONAL_DATA = "see participants' full names or contacts"
    ERASE_PERSONAL_DATA = "erase participants' personal information"
    IMPORT_PLAN = "import plan drafts and link opinions to their clauses"
    CODE_THEMES = "code opinions with themes"


ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.ADD_ACTOR: frozenset({Role.COORDINATOR}),
    Action.CREATE_CONSULTATION: frozenset({Role.COORDINATOR}),
    Action.ADD_PARTICIPANT: frozenset({Role.COORDINATOR, Role.EXPERT, Role.PLANNER}),
    Action.SUBMIT_OPINION: frozenset({Role.COORDINATOR, Role.EXPERT, Role.PARTICIPANT}),
    Action.ASSIGN_OPINION: frozenset({Role.COORDINATOR}),
    Action.OPEN_ROUND: frozenset({Role.COORDINATOR, Role.SYSTEM}),
    Action.CLOSE_ROUND: frozenset({Role.COORDINATOR, Role.SYSTEM}),
    Action.MANAGE_REMINDERS: frozenset({Role.COORDINATOR}),
    Action.CORRECT_OPINION: frozenset({Role.COORDINATOR, Role.EXPERT}),
    Action.ISSUE_RECEIPT: frozenset({Role.COORDINATOR, Role.EXPERT}),
    Action.READ_PERSONAL_DATA: frozenset({Role.COORDINATOR}),
    Action.ERASE_PERSONAL_DATA: frozenset({Role.COORDINATOR}),
    Action.IMPORT_PLAN: frozenset({Role.COORDINATOR, Role.PLANNER}),
    Action.CODE_THEMES: frozenset({Role.COORDINATOR, Role.PLANNER}),
}


def acting_role(actor_name: str, actor_roles: Iterable[Role], allowed: Iterable[Role], what: str) -> Role:
    """The role under which `actor_name` may do `what`, or a refusal naming who may.

    A person with several roles acts under the first of them that is allowed, in the order the
    roles are declared, so the audit trail records one definite role.
    """
    allowed_set = frozenset(allowed)
    mine = list(actor_roles)
    for role in mine:
        if role in allowed_set:
            return role
    have = ", ".join(r.value for r in mine) or "none"
    may = ", ".join(sorted(r.value for r in allowed_set)) or "nobody"
    msg = f"{actor_name} (role: {have}) may not {what}; allowed roles: {may}"
    raise PermissionDeniedError(msg)


def role_for_action(actor_name: str, actor_roles: Iterable[Role], action: Action) -> Role:
    """The role under which `actor_name` may take a non-workflow `action`."""
    return acting_role(actor_name, actor_roles, ACTION_ROLES[action], action.value)
