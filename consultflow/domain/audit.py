"""The audit event's content and its place in a consultation's hash chain.

Each event's hash covers its content and the previous event's hash, so editing, inserting or
deleting any stored event breaks every hash after it. The content is serialised canonically
(sorted keys, UTC timestamps with microseconds) so any reader recomputes the same digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

GENESIS_HASH = "0" * 64


class EventKind:
    """What an audit event records."""

    CONSULTATION_CREATED = "consultation_created"
    ROUND_OPENED = "round_opened"
    ROUND_CLOSED = "round_closed"
    ROUND_RESCHEDULED = "round_rescheduled"
    SETTINGS_CHANGED = "settings_changed"
    SUBMITTED = "submitted"
    ASSIGNED = "assigned"
    TRANSITION = "transition"
    CARRIED_OVER = "carried_over"


@dataclass(frozen=True)
class AuditContent:
    """Everything an audit event says; the hash covers exactly these fields."""

    kind: str
    at: datetime
    actor: str
    role: str
    consultation_id: int = 0  # set by the chain writer
    chain_seq: int = 0  # set by the chain writer
    opinion_id: int | None = None
    opinion_seq: int | None = None
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    round_no: int | None = None
    completes_cycle: bool = False
    payload: dict[str, Any] | None = None

    def canonical(self) -> str:
        """The text the hash is taken over."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["at"] = utc_iso(self.at)
        data["payload"] = self.payload or {}
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, content: AuditContent) -> str:
    """The event's hash: SHA-256 over the previous hash and the canonical content."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(content.canonical().encode("utf-8"))
    return digest.hexdigest()


def utc_iso(moment: datetime) -> str:
    """`moment` in UTC as ISO 8601 with microseconds, the one form the chain hashes."""
    if moment.tzinfo is None:
        msg = "naive datetime in the audit trail; store times in UTC"
        raise ValueError(msg)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
