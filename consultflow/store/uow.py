"""The unit of work: one transaction per use case, committed explicitly or rolled back."""

from __future__ import annotations

from contextvars import ContextVar, Token
from functools import cached_property
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from consultflow.store.accounts import AccountLog, AccountStore, Throttle, TokenStore
from consultflow.store.engine import shown_database
from consultflow.store.errors import translate
from consultflow.store.figures import Figures
from consultflow.store.heads import SignedHeads
from consultflow.store.intake import IntakeStore
from consultflow.store.logins import Logins
from consultflow.store.models import Opinion, OpinionEntry
from consultflow.store.opinions import OpinionRepository
from consultflow.store.outbox import Outbox
from consultflow.store.participants import ParticipantRepository
from consultflow.store.personal_data import PersonalDataStore
from consultflow.store.plans import PlanStore
from consultflow.store.programmes import Participation, Programmes
from consultflow.store.reminders import ReminderStore
from consultflow.store.repositories import ActorRepository, AuditLog, ConsultationRepository
from consultflow.store.texts import TextKeys
from consultflow.store.themes import ThemeStore
from consultflow.store.types import OPENER, TextOpener
from consultflow.store.workflows import StoredWorkflow, WorkflowRepository


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded rows usable after commit (results are rendered after it)."""
    return sessionmaker(engine, expire_on_commit=False)


class UnitOfWork:
    """A transaction and the repositories that work inside it.

    Leaving the block without `commit()` rolls everything back, so a use case that raises half way
    leaves no trace: the state change and its audit event land together or not at all.

    Each repository is built the first time a use case asks for it in this transaction (a
    `cached_property` below) and forgotten when the unit is entered again, so a reused unit never
    hands out a repository bound to an old session. Adding a repository is one property here.
    """

    session: Session
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
        for name in _REPOSITORIES:  # those of an earlier transaction belong to its (closed) session
            self.__dict__.pop(name, None)
        self.session = self._factory()
        self._opener = OPENER.set(self.texts)  # sealed texts read in this unit open with its keys
        return self

    # --- repositories, built when first used ---------------------------------------------------

    @cached_property
    def texts(self) -> TextKeys:
        """Participants' keys (shared: the repositories that seal or open texts use this one)."""
        return TextKeys(self.session)

    @cached_property
    def actors(self) -> ActorRepository:
        """People who act, and their roles."""
        return ActorRepository(self.session)

    @cached_property
    def participants(self) -> ParticipantRepository:
        """People who give opinions."""
        return ParticipantRepository(self.session, self.texts)

    @cached_property
    def workflows(self) -> WorkflowRepository:
        """The workflow versions consultations run on (rows read once a database, then from memory)."""
        return WorkflowRepository(self.session, self._known_workflows)

    @cached_property
    def consultations(self) -> ConsultationRepository:
        """Consultations and their rounds."""
        return ConsultationRepository(self.session)

    @cached_property
    def opinions(self) -> OpinionRepository:
        """Opinions and what was exchanged about them."""
        return OpinionRepository(self.session, self.texts)

    @cached_property
    def audit(self) -> AuditLog:
        """The audit chain."""
        return AuditLog(self.session)

    @cached_property
    def reminders(self) -> ReminderStore:
        """Reminder records."""
        return ReminderStore(self.session)

    @cached_property
    def figures(self) -> Figures:
        """Aggregates for reports."""
        return Figures(self.session)

    @cached_property
    def outbox(self) -> Outbox:
        """Messages to send."""
        return Outbox(self.session)

    @cached_property
    def personal_data(self) -> PersonalDataStore:
        """Access records and erasure."""
        return PersonalDataStore(self.session)

    @cached_property
    def logins(self) -> Logins:
        """Database logins and their bindings."""
        return Logins(self.session)

    @cached_property
    def intake(self) -> IntakeStore:
        """Bulk intake."""
        return IntakeStore(self.session, self.texts)

    @cached_property
    def accounts(self) -> AccountStore:
        """Staff accounts' credentials."""
        return AccountStore(self.session)

    @cached_property
    def tokens(self) -> TokenStore:
        """Personal access tokens."""
        return TokenStore(self.session)

    @cached_property
    def throttle(self) -> Throttle:
        """Failed sign-ins, counted."""
        return Throttle(self.session)

    @cached_property
    def account_log(self) -> AccountLog:
        """The account log's chain."""
        return AccountLog(self.session)

    @cached_property
    def heads(self) -> SignedHeads:
        """Chain heads the server signed."""
        return SignedHeads(self.session)

    @cached_property
    def plans(self) -> PlanStore:
        """The draft plan's versions and clauses, review rounds and ratings."""
        return PlanStore(self.session)

    @cached_property
    def participation(self) -> Participation:
        """Who took part and how often; participants' groups."""
        return Participation(self.session)

    @cached_property
    def programmes(self) -> Programmes:
        """County programmes of areas."""
        return Programmes(self.session)

    @cached_property
    def themes(self) -> ThemeStore:
        """Themes opinions are coded with."""
        return ThemeStore(self.session)

    # --- the transaction -----------------------------------------------------------------------

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
        if "workflows" in self.__dict__:  # workflow rows are read only through it
            self._known_workflows.update(self.workflows.read)

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
_REPOSITORIES = tuple(name for name, value in vars(UnitOfWork).items() if isinstance(value, cached_property))
