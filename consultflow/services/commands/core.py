"""The registry itself: what a command is, registering and finding one, and inputs many commands share."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generic, TypeVar

from consultflow.domain.errors import NotFoundError, ValidationError
from consultflow.domain.roles import ACTION_ROLES, ASSIGNABLE_ROLES, Action, Role
from consultflow.services.context import ServiceContext
from consultflow.services.inputs import refuse_unstorable

I = TypeVar("I")  # noqa: E741 - the input type, as in Command[I, R]
R = TypeVar("R")
__all__ = ["STAFF", "Command", "Nothing", "OfConsultation", "OfOpinion", "command", "lookup", "registry"]

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


# The use cases registered so far: a module's register as it is imported. A CLI command imports only
# its own module (a command starts about 55 ms sooner); `registry()` and `lookup()` load the rest.
_REGISTERED: dict[str, Command[Any, Any]] = {}


def load_all() -> list[ModuleType]:
    """Import every module of use cases (each registers its commands as it is imported); they, by name."""
    package = importlib.import_module("consultflow.services.commands")
    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


def registry() -> dict[str, Command[Any, Any]]:
    """Every use case by name, each module's in the order it declares them, the modules by name.

    The server's routes, its OpenAPI document and the tests that walk every command read this; the
    order is the same whichever module a process happened to import first.
    """
    load_all()
    order = {name: n for n, name in enumerate(_REGISTERED)}
    ranked = sorted(_REGISTERED.values(), key=lambda c: (c.handler.__module__, order[c.name]))
    return {c.name: c for c in ranked}


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
        if name in _REGISTERED:
            msg = f"command {name!r} is registered twice"
            raise RuntimeError(msg)
        made: Command[I, Any] = Command(name, summary, input, output, frozenset(roles), writes, handler, streamed)
        _REGISTERED[name] = made
        return made

    return register


def lookup(name: str) -> Command[Any, Any]:
    """The command called `name`, or one line naming the known ones.

    Raises:
        NotFoundError: no command has that name.
    """
    found = _REGISTERED.get(name)
    if found is None:  # a command of a module not imported yet
        found = registry().get(name)
    if found is None:
        msg = f"no command {name!r}; known commands: {', '.join(sorted(_REGISTERED))}"
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
