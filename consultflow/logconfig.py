"""structlog setup: readable lines by default, JSON lines on request, always on stderr.

`configure_logging` is called by entry points only (the CLI and the worker), never at import
time. Contact details are masked twice over: consultflow's own loggers (`get_logger`) mask every
field before the event leaves them, so a program that uses consultflow as a library with its own
structlog or logging setup never sees a contact; and the processor installed here masks whatever
other libraries log through the standard library.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import structlog

from consultflow.domain.privacy import SENSITIVE_KEYS, mask_contact, mask_text, redact_fields

__all__ = ["SENSITIVE_KEYS", "MaskedLogger", "configure_logging", "get_logger", "mask_contact", "record_internal_error"]


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Contacts masked in every field: whole values under contact keys, and inside any text (errors too)."""
    return redact_fields(event)


class MaskedLogger:
    """consultflow's logger: masks every field itself, so no logging setup can let a contact through.

    Tracebacks are not attached (a traceback's text is not masked by renderers); internal errors'
    tracebacks go, masked, to the error log through `record_internal_error`.
    """

    def __init__(self, name: str) -> None:
        self._log = structlog.get_logger(name)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        getattr(self._log, level)(mask_text(event), **redact_fields(fields))

    def debug(self, event: str, **fields: Any) -> None:
        """Log `event` at debug level, every field masked."""
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log `event` at info level, every field masked."""
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log `event` at warning level, every field masked."""
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log `event` at error level, every field masked."""
        self._emit("error", event, fields)


def get_logger(name: str) -> MaskedLogger:
    """The logger every consultflow module uses (see `MaskedLogger`)."""
    return MaskedLogger(name)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at emit time (test runners swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    """Route structlog and the standard library's loggers through one formatter on stderr."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.dict_tracebacks] if json_lines else []),
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _StderrHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("sqlalchemy", "alembic", "apscheduler", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def error_log_path() -> Path:
    """Where internal errors' tracebacks go: CONSULTFLOW_ERROR_LOG, else the user's state directory."""
    from consultflow.config import env_default  # noqa: PLC0415 - settings are read in one place

    given = env_default("CONSULTFLOW_ERROR_LOG")()
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "consultflow" / "errors.log"


def record_internal_error(exc: BaseException) -> Path | None:
    """Append a bug's traceback to the error log and the debug log; the user sees one line.

    Contact details in the traceback's text are masked like every log line. Returns the file, or
    None when it cannot be written (then the traceback goes to the debug log only).
    """
    text = "".join(traceback.format_exception(exc))
    masked = mask_text(text)
    logging.getLogger("consultflow").debug("internal error\n%s", masked)
    path = error_log_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Tracebacks may name what was being done: the file is its owner's alone (created 0600).
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(descriptor, 0o600)  # a file that was there before, made by hand, is made private too
        with open(descriptor, "a", encoding="utf-8") as out:  # noqa: PTH123 - a descriptor, not a path
            out.write(f"--- {datetime.now(timezone.utc).isoformat()}\n{masked}\n")
    except OSError:
        return None
    return path
