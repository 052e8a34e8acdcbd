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
from functools import partial
from json.encoder import encode_basestring  # C-accelerated, as json.dumps uses
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
    PARTICIPANT_GROUP_CHANGED = "participant_group_changed"
    PLAN_IMPORTED = "plan_imported"  # a draft plan version (issue 26)
    REVIEW_OPENED = "review_opened"  # a round made a review of a plan version
    CLAUSE_RATED = "clause_rated"  # a participant rated a clause in a review
    CLAUSES_LINKED = "clauses_linked"  # an opinion linked to plan clauses
    THEME_ADDED = "theme_added"
    THEME_REMOVED = "theme_removed"


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

    def canonical(
        self,
        payload: str | None = None,
        *,
        at: str | None = None,
        consultation_id: int | None = None,
        chain_seq: int | None = None,
    ) -> str:
        """The text the hash is taken over: every field.

        `payload` and `at` are its `payload_text` and `utc_iso`, if already made (the events of
        one change share them). The chain writer gives the consultation and sequence number the
        event gets, rather than copying the frozen draft to set them.
        """
        return canonical_text(
            actor=self.actor,
            at=utc_iso(self.at) if at is None else at,
            chain_seq=self.chain_seq if chain_seq is None else chain_seq,
            completes_cycle=self.completes_cycle,
            consultation_id=self.consultation_id if consultation_id is None else consultation_id,
            from_state=self.from_state,
            kind=self.kind,
            opinion_id=self.opinion_id,
            opinion_seq=self.opinion_seq,
            payload=payload_text(self.payload) if payload is None else payload,
            role=self.role,
            round_no=self.round_no,
            to_state=self.to_state,
            trigger=self.trigger,
        )


# The canonical form is JSON with sorted keys, no spaces and non-ASCII kept: what this gives.
_dumps = partial(json.dumps, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def payload_text(payload: dict[str, Any] | None) -> str:
    """An event's payload as canonical JSON: how it is stored, and how the hash sees it."""
    return _dumps(payload) if payload else "{}"


def _flag(value: bool) -> str:
    if value is True:
        return "true"
    return "false" if value is False else _dumps(value)


_string = encode_basestring  # exactly how json.dumps writes a string
_integer = int.__repr__  # exactly how json.dumps writes an int (and an int enum)


def canonical_text(
    *,
    actor: str,
    at: str,
    chain_seq: int,
    completes_cycle: bool,
    consultation_id: int,
    from_state: str | None,
    kind: str,
    opinion_id: int | None,
    opinion_seq: int | None,
    payload: str,
    role: str,
    round_no: int | None,
    to_state: str | None,
    trigger: str | None,
) -> str:
    """The canonical JSON of an event's fields, written out in sorted key order.

    This equals `json.dumps` of the fields as a dict with sorted keys and no spaces (a property
    test holds it to that), at a fraction of the cost: it runs once per event when writing,
    importing and verifying. `at` is `utc_iso` text and `payload` is `payload_text`. The values
    are written inline rather than through a helper each: at a million events, each call counts.
    """
    null = "null"
    return (
        f'{{"actor":{_string(actor)},"at":"{at}","chain_seq":{_integer(chain_seq)},'
        f'"completes_cycle":{_flag(completes_cycle)},"consultation_id":{_integer(consultation_id)},'
        f'"from_state":{null if from_state is None else _string(from_state)},"kind":{_string(kind)},'
        f'"opinion_id":{null if opinion_id is None else _integer(opinion_id)},'
        f'"opinion_seq":{null if opinion_seq is None else _integer(opinion_seq)},"payload":{payload},'
        f'"role":{_string(role)},"round_no":{null if round_no is None else _integer(round_no)},'
        f'"to_state":{null if to_state is None else _string(to_state)},'
        f'"trigger":{null if trigger is None else _string(trigger)}}}'
    )


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
    return text_hash(prev_hash, content.canonical(), key)


def text_hash(prev_hash: str, canonical: str, key: ChainKey | None = None) -> str:
    """The hash over the previous hash and an event's canonical text (made once by the caller)."""
    if key is None:
        return hashlib.sha256(f"{prev_hash}{canonical}".encode()).hexdigest()
    return hmac.new(key.secret, f"{prev_hash}{canonical}".encode(), hashlib.sha256).hexdigest()


def utc_iso(moment: datetime) -> str:
    """`moment` in UTC as ISO 8601 with microseconds, the one form the chain hashes."""
    if moment.tzinfo is None:
        msg = "naive datetime in the audit trail; store times in UTC"
        raise ValueError(msg)
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    if utc.year < 1000:  # strftime does not pad such years, and the chain hashed them that way
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{utc.isoformat(timespec='microseconds')[:-6]}Z"  # the same text, at a third of strftime's cost
