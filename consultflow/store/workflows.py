"""The workflow aggregate: the text of each workflow version a consultation runs on, stored once, never changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.domain.errors import NotFoundError
from consultflow.domain.workflow import WorkflowSpec
from consultflow.store.models import Workflow


@dataclass(slots=True)
class StoredWorkflow:
    """A workflow version's row, kept in memory: such rows are never changed."""

    id: int
    name: str
    version: int
    digest: str
    source: str


class WorkflowRepository:
    """Stored workflow versions. A row read in a transaction that committed is kept in memory for later ones."""

    def __init__(self, session: Session, known: dict[int, StoredWorkflow] | None = None) -> None:
        self.session = session
        self.read: dict[int, StoredWorkflow] = {}  # read in this transaction (known to later ones once it commits)
        self._known = known if known is not None else {}  # committed, shared by the database's units

    def get(self, workflow_id: int) -> StoredWorkflow:
        """A stored workflow version.

        Its row never changes, so once a transaction that read it has committed, every later one
        of the same database takes it from memory: one statement fewer in each transition.
        """
        found = self._known.get(workflow_id) or self.read.get(workflow_id)
        if found is None:
            with self.session.no_autoflush:
                row = self.session.get(Workflow, workflow_id)
            if row is None:  # pragma: no cover - foreign keys make this impossible
                msg = f"unknown workflow id {workflow_id}"
                raise NotFoundError(msg)
            found = StoredWorkflow(row.id, row.name, row.version, row.digest, row.source)
            self.read[workflow_id] = found
        return found

    def as_stored(self, workflow_id: int) -> StoredWorkflow:
        """A workflow version's row as the table holds it now, never from memory (verify checks it)."""
        row = self.session.execute(
            select(Workflow.id, Workflow.name, Workflow.version, Workflow.digest, Workflow.source).where(
                Workflow.id == workflow_id
            )
        ).first()
        if row is None:
            msg = f"unknown workflow id {workflow_id}"
            raise NotFoundError(msg)
        return StoredWorkflow(*row)

    def version(self, name: str, version: int) -> Workflow | None:
        """The stored copy of a workflow version, if any consultation used it."""
        stmt = select(Workflow).where(Workflow.name == name, Workflow.version == version)
        return self.session.scalar(stmt)

    def versions(self, name: str | None = None) -> list[Workflow]:
        """Stored workflow versions, of one name or all, by name and version."""
        stmt = select(Workflow).order_by(Workflow.name, Workflow.version)
        if name is not None:
            stmt = stmt.where(Workflow.name == name)
        return list(self.session.scalars(stmt))

    def add(self, spec: WorkflowSpec, now: datetime) -> Workflow:
        """Store a workflow version's text, which its consultations then run on."""
        row = Workflow(name=spec.name, version=spec.version, digest=spec.digest, source=spec.source, registered_at=now)
        self.session.add(row)
        self.session.flush()
        return row
