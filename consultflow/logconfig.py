"""structlog setup: readable lines by default, JSON lines on request, always on stderr.

Called by entry points only (the CLI and the worker), never at import time. Contact details are
masked by a processor, whatever a caller passes, so a log file never holds them.
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

from consultflow.domain.privacy import mask_contact, mask_text

SENSITIVE_KEYS = frozenset({"contact", "email", "phone", "address", "recipient_address"})

__all__ = ["SENSITIVE_KEYS", "configure_logging", "mask_contact", "record_internal_error"]


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Contacts masked in every field: whole values under contact keys, and inside any text (errors too)."""
    for key, value in event.items():
        if value is None:
            continue
        if key in SENSITIVE_KEYS:
            event[key] = mask_contact(value)
        elif isinstance(value, str):
            event[key] = mask_text(value)
        elif isinstance(value, BaseException):
            event[key] = mask_text(f"{type(value).__name__}: {value}")
    return event


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
    given = os.environ.get("CONSULTFLOW_ERROR_LOG")
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
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(f"--- {datetime.now(timezone.utc).isoformat()}\n{masked}\n")
    except OSError:
        return None
    return path
