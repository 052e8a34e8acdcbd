"""Workflow specs: the validated, frozen form of the YAML files in `workflows/`.

One spec drives single transitions, round closing, reminders, validation and diagrams, so every
rule about an opinion's life is read from here and nowhere else. `workflow_loader` makes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from consultflow.domain.groups import DEFAULT_GROUPS
from consultflow.domain.labels import Label
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import EntryKind, Field, Outcome

CloseAction = Literal["carry_over", "fire"]


@dataclass(frozen=True)
class Deadline:
    """When the move out of a state is due, and who owes it."""

    owner: Role
    after_days: float | None = None
    at_round_close: bool = False


@dataclass(frozen=True)
class StateSpec:
    """One state of the opinion loop."""

    name: str
    label: Label
    outcome: Outcome | None = None
    deadline: Deadline | None = None

    @property
    def terminal(self) -> bool:
        """Terminal states are outcomes; nothing leaves them."""
        return self.outcome is not None


@dataclass(frozen=True)
class TransitionSpec:
    """One trigger: where it may fire from, where it leads, who may fire it, what it needs."""

    trigger: str
    label: Label
    sources: tuple[str, ...]
    dest: str
    roles: frozenset[Role]
    required: tuple[Field, ...] = ()
    optional: tuple[Field, ...] = ()
    completes_cycle: bool = False
    starts_round: bool = False
    entry: EntryKind | None = None

    @property
    def fields(self) -> tuple[Field, ...]:
        """Every field the trigger accepts, required first."""
        return self.required + self.optional


@dataclass(frozen=True)
class CloseRule:
    """What closing a round does to an opinion still in `state`."""

    state: str
    action: CloseAction
    trigger: str | None = None


@dataclass(frozen=True)
class ReminderRule:
    """Reminders about a state's deadline: to whom, and how long before (-) or after (+) it."""

    name: str
    state: str
    recipient: Role
    offsets_days: tuple[float, ...]
    escalation: bool = False


@dataclass(frozen=True)
class WorkflowSpec:
    """A validated workflow, identified by name and version."""

    name: str
    version: int
    title: Label
    initial: str
    states: Mapping[str, StateSpec]
    transitions: Mapping[str, TransitionSpec]
    round_close: Mapping[str, CloseRule]
    categories: Mapping[str, Label]
    channels: Mapping[str, Label]
    reminders: tuple[ReminderRule, ...] = ()
    source: str = field(default="", compare=False, repr=False)
    # Participant groups (`groups:`; without it, the five kinds of consultflow.domain.groups).
    groups: Mapping[str, Label] = field(default_factory=lambda: dict(DEFAULT_GROUPS))

    @property
    def key(self) -> str:
        """`name@version`, the way opinions and users refer to it."""
        return f"{self.name}@{self.version}"

    @property
    def digest(self) -> str:
        """SHA-256 of the source text: detects a file edited without a version bump."""
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def terminal_states(self) -> list[str]:
        """States that are outcomes."""
        return [s.name for s in self.states.values() if s.terminal]

    def active_states(self) -> list[str]:
        """States an opinion can still move out of."""
        return [s.name for s in self.states.values() if not s.terminal]
