"""The optional parts of consultflow (pip extras), and the one line that names a missing one.

`pip install consultflow` is the core: the CLI on SQLite, with `reminders run-once` for reminders
and rounds closing on time. The long-running worker is the worker extra, signing in to a server the
remote extra. A command that needs more says which extra to install, before it reads or writes anything:

    Error: PostgreSQL needs the postgres extra: pip install 'consultflow[postgres]'

It is a ConfigurationError, so its exit code is 1, as for every refused action.
"""

from __future__ import annotations

from importlib.util import find_spec

from consultflow.domain.errors import ConfigurationError

# What each extra makes possible, and the modules it brings (any one of a tuple's names will do).
POSTGRES = ("PostgreSQL", "postgres", ("psycopg",))
WEB = (
    "the server (consultflow serve)",
    "web",
    ("fastapi", "uvicorn", "jinja2", ("python_multipart", "multipart"), "apscheduler"),
)
# The long-running worker; APScheduler keeps its time (the server has it too, in the web extra).
WORKER = ("the reminder worker (consultflow worker)", "worker", ("apscheduler",))
XLSX = ("reading or writing XLSX files", "xlsx", ("openpyxl",))
CHARTS = ("drawing charts", "charts", ("matplotlib",))
# The CLI signed in to a server speaks JSON with it through pydantic (the server has it with FastAPI).
REMOTE = ("signing in to a consultflow server", "remote", ("pydantic",))

Module = str | tuple[str, ...]
Extra = tuple[str, str, tuple[Module, ...]]


def message(what: str, extra: str, *, verb: str = "needs") -> str:
    """The one line naming the extra `what` needs, and how to install it."""
    return f"{what} {verb} the {extra} extra: pip install 'consultflow[{extra}]'"


def _found(module: Module) -> bool:
    names = (module,) if isinstance(module, str) else module
    return any(find_spec(name) is not None for name in names)


def installed(extra: Extra) -> bool:
    """Whether every module of `extra` can be imported here (found, not imported)."""
    _what, _name, modules = extra
    return all(_found(m) for m in modules)


def require(extra: Extra) -> None:
    """Refuse in one line naming the extra when one of its modules is not installed.

    Raises:
        ConfigurationError: the extra is not installed.
    """
    if not installed(extra):
        what, name, _modules = extra
        raise ConfigurationError(message(what, name))
