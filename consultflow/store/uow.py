"""The unit of work: one transaction per use case, committed explicitly or rolled back."""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from consultflow.store.accounts import AccountStore
from consultflow.store.engine import shown_database
from consultflow.store.errors import translate
from consultflow.store.figures import Figures
from consultflow.store.heads import SignedHeads
from consultflow.store.intake import IntakeStore
from consultflow.store.logins import Logins
from consultflow.store.models import Opinion, OpinionEntry
from consultflow.store.opinions import OpinionRepository
from consultflow.store.outbox import Outbox
from consultflow.store.personal_data import PersonalDataStore
from consultflow.store.plans import PlanStore
from consultflow.store.programmes import Participation, Programmes
from consultflow.store.reminders import ReminderStore
from consultflow.store.repositories import ActorRepository, AuditLog, ConsultationRepository, StoredWorkflow
from consultflow.store.texts import TextKeys
from consultflow.store.themes import ThemeStore
from consultflow.store.types import OPENER, TextOpener


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
    reminders: ReminderStore
    figures: Figures
    outbox: Outbox
    accounts: AccountStore
    heads: SignedHeads
    texts: TextKeys
    plans: PlanStore
    participation: Participation
    programmes: Programmes
    themes: ThemeStore
    _token: Token[bool]
    _opener: Token[TextOpener | None]

    def __init__(
        self, factory: sessionmaker[Session], known_workflows: dict[int, StoredWorkflow] | None = None
    ) -> None:
        self._factory = factory
        self._known_workflows = known_workflows if known_workflows is not None else {}

    def __enter__(self) -> UnitOfWork:  # noqa: PYI034 - Python 3.10 has no typing.Self
        if _OPEN.get():
            # A second transaction inside the first waits for the first's lock on SQLite (and can
            # deadlock on PostgreSQL): whatever needs the database inside a use case takes its uow.
            msg = "a unit of work is already open in this context: pass it down instead of opening another"
            raise RuntimeError(msg)
        self._token = _OPEN.set(True)
        self.session = self._factory()
        self.texts = TextKeys(self.session)
        self.actors = ActorRepository(self.session, self.texts)
        self.consultations = ConsultationRepository(self.session, self._known_workflows)
        self.opinions = OpinionRepository(self.session, self.texts)
        self.audit = AuditLog(self.session)
        self.reminders = ReminderStore(self.session)
        self.figures = Figures(self.session)
        self.outbox = Outbox(self.session)
        self.personal_data = PersonalDataStore(self.session)
        self.logins = Logins(self.session)
        self.intake = IntakeStore(self.session, self.texts)
        self.accounts = AccountStore(self.session)
        self.heads = SignedHeads(self.session)
        self.plans = PlanStore(self.session)
        self.participation = Participation(self.session)
        self.programmes = Programmes(self.session)
        self.themes = ThemeStore(self.session)
        self._opener = OPENER.set(self.texts)  # sealed texts read in this unit open with its keys
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        closing: DBAPIError | None = None
        try:
            self.session.close()  # rolls back what was not committed; loaded rows stay readable
        except DBAPIError as failed:  # the connection died under the transaction: nothing was committed
            closing = failed
        finally:
            OPENER.reset(self._opener)
            _OPEN.reset(self._token)
        failure = exc if exc is not None else closing
        if failure is not None:
            translated = translate(failure, self._shown())
            if translated is not None and translated is not failure:
                raise translated from failure
            if failure is closing:
                raise closing

    def _shown(self) -> str:
        bind = self._factory.kw.get("bind")
        return shown_database(bind) if isinstance(bind, Engine) else ""

    def commit(self) -> None:
        """Make the use case's changes permanent (and the workflow rows read, known to later ones)."""
        self.session.commit()
        self._known_workflows.update(self.consultations.read_workflows)

    def flush(self) -> None:
        """Send pending changes so generated ids are known, without committing."""
        self.session.flush()

    def release(self) -> None:
        """Send pending changes, then drop the loaded opinions and entries from the session (locks stay held)."""
        self.session.flush()
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, (Opinion, OpinionEntry)):
                self.session.expunge(obj)


_OPEN: ContextVar[bool] = ContextVar("consultflow_uow_open", default=False)
