"""structlog setup: readable lines by default, JSON lines on request, always on stderr.

Called by entry points only (the CLI and the worker), never at import time. Contact details are
masked by a processor, whatever a caller passes, so a log file never holds them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

SENSITIVE_KEYS = frozenset({"contact", "email", "phone", "address", "recipient_address"})
_EMAIL = re.compile(r"([^@\s]{1,2})[^@\s]*(@[^\s]+)")
_DIGITS = re.compile(r"\d(?=\d{2})")


def mask_contact(value: object) -> str:
    """`zhang@example.cn` -> `zh***@example.cn`; `13812345678` -> `*********78`."""
    text = str(value)
    if "@" in text:
        return _EMAIL.sub(r"\1***\2", text)
    return _DIGITS.sub("*", text)


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in SENSITIVE_KEYS & event.keys():
        if event[key] is not None:
            event[key] = mask_contact(event[key])
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
