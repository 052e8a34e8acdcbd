"""What every use case needs: a way to open a unit of work, a clock, and the workflows."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from consultflow.config import DEFAULT_TZ
from consultflow.domain.audit import ChainKey
from consultflow.domain.clock import Clock, SystemClock
from consultflow.domain.errors import ConfigurationError
from consultflow.domain.heads import HeadPublishing
from consultflow.domain.identity import UnboundLogins
from consultflow.domain.machine import WorkflowEngine
from consultflow.domain.workflow import WorkflowSpec
from consultflow.domain.workflow_loader import load_workflow_text
from consultflow.services.ports import ConsultationRow, Database, UnitOfWork, WorkflowRow

_ENGINES: dict[str, WorkflowEngine] = {}


def engine_for(workflow: WorkflowRow) -> WorkflowEngine:
    """The machine for a stored workflow version, built once per process and digest."""
    cached = _ENGINES.get(workflow.digest)
    if cached is None:
        where = f"{workflow.name}@{workflow.version} (stored)"
        spec = load_workflow_text(workflow.source, where, stored_digest=workflow.digest)
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
    chain_key: ChainKey | None = None
    unbound_logins: UnboundLogins = "read"
    # The server proves who acts (staff sign in to it); its own database login proves nothing
    # about them, so bound per-person logins are not consulted.
    acting_proven: bool = False
    # A reading command's context: every plain unit of work it opens only reads (no write lock on
    # SQLite, READ ONLY on PostgreSQL); a change it makes on record (a read of personal data put on
    # record) still goes through the pipeline's writing unit.
    read_only: bool = False
    # The server's head signing key and where signed heads go: held by the server only.
    heads: HeadPublishing | None = None
    # On the server: the access token (its id) a staff request came with, recorded in each event.
    token_id: int | None = None

    def key_for(self, consultation: ConsultationRow) -> ChainKey | None:
        """The key the consultation's chain is hashed with; refuses to write or check a keyed chain without it.

        Raises:
            ConfigurationError: the chain is keyed and the configured key is missing or another one.
        """
        wanted = consultation.chain_key_id
        if wanted is None:
            return None
        if self.chain_key is None:
            msg = (
                f"consultation {consultation.id}'s audit chain is keyed (key {wanted}); set CONSULTFLOW_CHAIN_KEY_FILE "
                "or CONSULTFLOW_CHAIN_KEY to the key it was created with"
            )
            raise ConfigurationError(msg)
        if self.chain_key.key_id != wanted:
            msg = (
                f"consultation {consultation.id}'s audit chain is keyed with key {wanted}, "
                f"but the configured key is {self.chain_key.key_id}"
            )
            raise ConfigurationError(msg)
        return self.chain_key

    def uow(self) -> UnitOfWork:
        """A fresh unit of work (one that only reads, in a reading command's context)."""
        return self.database.reading() if self.read_only else self.database.unit_of_work()

    def writing(self) -> UnitOfWork:
        """A unit of work that may write (the pipeline's), whatever the context."""
        return self.database.unit_of_work()

    def for_reading(self) -> ServiceContext:
        """This context for a command that only reads."""
        return replace(self, read_only=True)

    def reading(self) -> UnitOfWork:
        """A unit of work for a long read (a report, a listing, verify) on one snapshot.

        Writers are not held up while it streams.
        """
        return self.database.reading()
