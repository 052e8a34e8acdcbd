"""The audit event's content and its place in a consultation's hash chain.

Each event's hash covers its content and the previous event's hash, so editing, inserting or
deleting any stored event breaks every hash after it. The content is serialised canonically
(sorted keys, UTC timestamps with microseconds) so any reader recomputes the same digest.

A plain SHA-256 chain proves the events were not changed by someone who did not also rewrite every
hash after the change; anyone who can write the database can do that. A consultation created while
a chain key is configured gets an HMAC-SHA256 chain instead: without the key (kept outside the
database, in the environment or a file) nobody can recompute it. The consultation stores only the
key's id, so verify knows which key a chain needs and says which mode it is in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from consultflow.domain.errors import ConfigurationError

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
    PARTICIPANT_ERASED = "participant_erased"
    CORRECTED = "corrected"
    RECEIPT_ISSUED = "receipt_issued"


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
        """The text the hash is taken over (every field; `vars` copies them without walking `fields()` per event)."""
        data = dict(vars(self))
        data["at"] = utc_iso(self.at)
        data["payload"] = self.payload or {}
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class ChainKey:
    """The secret an HMAC chain is keyed with; its repr never shows the secret."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            msg = (
                f"the chain key is {len(self.secret)} bytes; at least {MIN_KEY_BYTES} are needed "
                "(e.g. the output of 'openssl rand -hex 32')"
            )
            raise ConfigurationError(msg)

    @property
    def key_id(self) -> str:
        """A public name for the key (16 hex digits), stored with each keyed consultation."""
        return hmac.new(self.secret, b"consultflow chain key id", hashlib.sha256).hexdigest()[:16]


def chain_mode(key_id: str | None) -> str:
    """How a chain with this stored key id is hashed, in words."""
    return f"HMAC-SHA256 with key {key_id}" if key_id else "SHA-256 (unkeyed)"


def chain_hash(prev_hash: str, content: AuditContent, key: ChainKey | None = None) -> str:
    """The event's hash over the previous hash and the canonical content: SHA-256, or HMAC-SHA256 with a key."""
    digest = hmac.new(key.secret, digestmod=hashlib.sha256) if key is not None else hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(content.canonical().encode("utf-8"))
    return digest.hexdigest()


def utc_iso(moment: datetime) -> str:
    """`moment` in UTC as ISO 8601 with microseconds, the one form the chain hashes."""
    if moment.tzinfo is None:
        msg = "naive datetime in the audit trail; store times in UTC"
        raise ValueError(msg)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
