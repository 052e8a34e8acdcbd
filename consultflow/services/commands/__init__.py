"""Every use case as data: one typed command (its fields, who may call it, its handler) in one registry.

The server's API routes and their OpenAPI document, the CLI's local and remote calls, and the
first role check all come from `REGISTRY`, so a use case is written once and the local and remote
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

from consultflow.services.commands.accounts import *  # noqa: F403
from consultflow.services.commands.audit import *  # noqa: F403
from consultflow.services.commands.consultations import *  # noqa: F403
from consultflow.services.commands.core import *  # noqa: F403 - the registry and the shared inputs
from consultflow.services.commands.intake import *  # noqa: F403
from consultflow.services.commands.opinions import *  # noqa: F403
from consultflow.services.commands.people import *  # noqa: F403
from consultflow.services.commands.plans import *  # noqa: F403
from consultflow.services.commands.programmes import *  # noqa: F403
from consultflow.services.commands.reminders import *  # noqa: F403
from consultflow.services.commands.reports import *  # noqa: F403
from consultflow.services.commands.themes import *  # noqa: F403
from consultflow.services.commands.workflows import *  # noqa: F403
