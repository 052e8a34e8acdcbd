"""The registry itself: what a command is, registering and finding one, and inputs many commands share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.roles import ACTION_ROLES, ASSIGNABLE_ROLES, Action, Role
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import refuse_unstorable

I = TypeVar("I")  # noqa: E741 - the input type, as in Command[I, R]
R = TypeVar("R")
__all__ = ["REGISTRY", "STAFF", "Command", "Nothing", "OfConsultation", "OfOpinion", "command", "lookup"]

T = TypeVar("T")

#: Everyone who signs in as staff (participants who use consultflow themselves included).
STAFF: frozenset[Role] = frozenset(ASSIGNABLE_ROLES)


@dataclass(frozen=True)
class Command(Generic[I, R]):
    """One use case: its name, fields, who may call it, what it returns, and its handler."""

    name: str  # "round.open": the CLI's words, and the API path /api/v1/commands/round.open
    summary: str
    input: type[I]
    output: Any  # the result's type (for streamed commands: the item's type)
    roles: frozenset[Role]
    writes: bool
    handler: Callable[..., Any] = field(repr=False)
    streamed: bool = False

    def run(self, ctx: ServiceContext, acting: str | None, given: I, **hooks: Any) -> R:
        """Run a held command; `hooks` are local-only extras a handler may take (a progress bar)."""
        assert not self.streamed, f"{self.name} streams: use run_streamed"
        refuse_unstorable(given)  # locally as through the server: one line, before anything runs
        result: R = self.handler(ctx if self.writes else ctx.for_reading(), acting, given, **hooks)
        return result

    def run_streamed(self, ctx: ServiceContext, acting: str | None, given: I, use: Callable[[Iterable[Any]], T]) -> T:
        """Run a streamed command: `use` reads its items (once, or again for a `Reread`) while they stream."""
        assert self.streamed, f"{self.name} is held: use run"
        refuse_unstorable(given)
        result: T = self.handler(ctx if self.writes else ctx.for_reading(), acting, given, use)
        return result


REGISTRY: dict[str, Command[Any, Any]] = {}


def command(
    name: str,
    summary: str,
    *,
    input: type[I],  # noqa: A002 - the command's input, as the registry names it
    output: Any,
    roles: Iterable[Role],
    writes: bool,
    streamed: bool = False,
) -> Callable[[Callable[..., Any]], Command[I, Any]]:
    """Register a handler as the command `name` (a decorator)."""

    def register(handler: Callable[..., Any]) -> Command[I, Any]:
        if name in REGISTRY:
            msg = f"command {name!r} is registered twice"
            raise RuntimeError(msg)
        made: Command[I, Any] = Command(name, summary, input, output, frozenset(roles), writes, handler, streamed)
        REGISTRY[name] = made
        return made

    return register


def lookup(name: str) -> Command[Any, Any]:
    """The command called `name`, or one line naming the known ones.

    Raises:
        NotFoundError: no command has that name.
    """
    found = REGISTRY.get(name)
    if found is None:
        msg = f"no command {name!r}; known commands: {', '.join(sorted(REGISTRY))}"
        raise NotFoundError(msg)
    return found


def _roles(action: Action) -> frozenset[Role]:
    return ACTION_ROLES[action] - {Role.SYSTEM}


@dataclass(frozen=True)
class Nothing:
    """A command that takes no fields."""


@dataclass(frozen=True)
class OfConsultation:
    """One consultation, by id."""

    consultation_id: int


@dataclass(frozen=True)
class OfOpinion:
    """One opinion, by id."""

    opinion_id: int


def _signed(acting: str | None) -> str:
    """The acting person's name: account commands always act as someone.

    Raises:
        ValidationError: nobody is named (`--as` on a local database).
    """
    if not acting:
        msg = "say who you are: sign in to the server, or give --as NAME on a local database"
        raise ValidationError(msg)
    return acting
