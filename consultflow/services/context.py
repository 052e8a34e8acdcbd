"""What every use case needs: a way to open a unit of work, a clock, and the workflows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from consultflow.config import DEFAULT_TZ
from consultflow.domain.clock import Clock, SystemClock
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.workflow import WorkflowSpec
from consultflow.domain.workflow_loader import load_workflow_text
from consultflow.services.ports import Database, UnitOfWork, WorkflowRow

_ENGINES: dict[str, WorkflowEngine] = {}


def engine_for(workflow: WorkflowRow) -> WorkflowEngine:
    """The machine for a stored workflow version, built once per process and digest."""
    cached = _ENGINES.get(workflow.digest)
    if cached is None:
        spec = load_workflow_text(workflow.source, f"{workflow.name}@{workflow.version} (stored)")
        cached = _ENGINES[workflow.digest] = WorkflowEngine(spec)
    return cached


def spec_for(workflow: WorkflowRow) -> WorkflowSpec:
    """The spec of a stored workflow version."""
    return engine_for(workflow).spec


@dataclass
class ServiceContext:
    """Wiring for the use cases; built by `consultflow.bootstrap`, never at import time."""

    database: Database
    workflows_dir: Path
    clock: Clock = field(default_factory=SystemClock)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TZ))

    def uow(self) -> UnitOfWork:
        """A fresh unit of work."""
        return self.database.unit_of_work()
