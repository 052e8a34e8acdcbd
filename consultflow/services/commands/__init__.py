"""Every use case as data: one typed command (its fields, who may call it, its handler) in one registry.

The server's API routes and their OpenAPI document, the CLI's local and remote calls, and the
first role check all come from `registry()`, so a use case is written once and the local and remote
CLI cannot drift:

- `Command.input` is a frozen dataclass: the request body on the server, the keyword arguments in
  the CLI.
- `Command.output` is the result's type (a dataclass of the views the CLI renders). A streamed
  command (`Command.item`) hands its items, as they are read, to a `use` callback instead: the CLI
  renders them, the server writes them out as JSON lines.
- `Command.roles` says who may call it at all; the pipeline then applies the fine rules (the
  workflow's roles per trigger, ownership of opinions) inside the transaction.
- `Command.writes` says whether it changes anything: reads run on a read-only unit, and a token
  with the `read` scope can call only those.

Handlers take the wiring, the name of the person acting (proven by the server's sign-in, or
`--as` in local mode) and the input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consultflow.services.commands.core import *  # noqa: F403 - the registry and the shared inputs
from consultflow.services.commands.core import load_all

if TYPE_CHECKING:  # every use case's names, for type checkers; at run time they load on first use
    from consultflow.services.commands.accounts import *  # noqa: F403
    from consultflow.services.commands.audit import *  # noqa: F403
    from consultflow.services.commands.consultations import *  # noqa: F403
    from consultflow.services.commands.intake import *  # noqa: F403
    from consultflow.services.commands.opinions import *  # noqa: F403
    from consultflow.services.commands.people import *  # noqa: F403
    from consultflow.services.commands.plans import *  # noqa: F403
    from consultflow.services.commands.programmes import *  # noqa: F403
    from consultflow.services.commands.reminders import *  # noqa: F403
    from consultflow.services.commands.reports import *  # noqa: F403
    from consultflow.services.commands.themes import *  # noqa: F403
    from consultflow.services.commands.workflows import *  # noqa: F403


def __getattr__(name: str) -> Any:
    """`commands.OpenRound`: a name from any module of use cases, found by loading them (PEP 562).

    The CLI imports the module it needs (`consultflow.services.commands.consultations`); the
    package does not import them all up front, so a command does not pay for the others.
    """
    if not name.startswith("__"):  # a tool probing a module's dunders loads nothing
        for module in load_all():
            if name in getattr(module, "__all__", ()):
                return getattr(module, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
