"""The unit of work: one transaction per use case, committed explicitly or rolled back."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from consultflow.domain.errors import ConflictError
from consultflow.store.repositories import (
    ActorRepository,
    AuditLog,
    ConsultationRepository,
    OpinionRepository,
)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded rows usable after commit (results are rendered after it)."""
    return sessionmaker(engine, expire_on_commit=False)


class UnitOfWork:
    """A transaction and the repositories that work inside it.

    Leaving the block without `commit()` rolls everything back, so a use case that raises half way
    leaves no trace: the state change and its audit event land together or not at all.
    """

    session: Session
    actors: ActorRepository
    consultations: ConsultationRepository
    opinions: OpinionRepository
    audit: AuditLog

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def __enter__(self) -> UnitOfWork:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self.session = self._factory()
        self.actors = ActorRepository(self.session)
        self.consultations = ConsultationRepository(self.session)
        self.opinions = OpinionRepository(self.session)
        self.audit = AuditLog(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.session.close()  # rolls back what was not committed; loaded rows stay readable
        if isinstance(exc, (StaleDataError, IntegrityError)) or _is_lock_timeout(exc):
            msg = "someone else changed the same records at the same time; nothing was written, try again"
            raise ConflictError(msg) from exc

    def commit(self) -> None:
        """Make the use case's changes permanent."""
        self.session.commit()

    def flush(self) -> None:
        """Send pending changes so generated ids are known, without committing."""
        self.session.flush()


def _is_lock_timeout(exc: BaseException | None) -> bool:
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)
