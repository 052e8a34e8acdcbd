"""Free text that can be forgotten, and hashes of personal data that cannot be tested by guessing.

A participant's free text (their opinion, the feedback on it, their replies, corrections and the
reasons given) is stored sealed: encrypted with AES-256-GCM under a key of that participant's own.
The same sealed text goes into the live tables and the append-only audit events, so the chain
hashes what is stored and still verifies when the key is destroyed on erasure; from then on no one
can read the text again, and readers see FORGOTTEN.

A sealed text names its participant (not a secret: the event already does) so a reader knows which
key opens it; the participant's id is also bound to the ciphertext as associated data, so a sealed
text moved to another participant's opinion does not open.

Match and intake keys (how a re-import recognises a person or a row) are HMAC-SHA256 under a secret
the server holds, so someone reading the table cannot test a guessed name and phone number against
them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from consultflow.domain.errors import ValidationError

SEALED_PREFIX = "cf1:"
FORGOTTEN = "（已删除）"  # the text of a participant whose key was destroyed on erasure
UNREADABLE = "（已加密）"  # the text as seen by a login that may not read participants' keys
DAMAGED = "（密文已损坏）"  # a sealed text that does not open with its participant's key (altered)
KEY_BYTES = 32
_NONCE_BYTES = 12


def new_key() -> bytes:
    """A fresh random participant key (AES-256)."""
    return os.urandom(KEY_BYTES)


def _aad(participant_id: int) -> bytes:
    return f"consultflow participant {participant_id}".encode("ascii")


def is_sealed(value: object) -> bool:
    """Whether a stored text is sealed (texts recorded before sealing are stored as written)."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def sealed_by(value: str) -> int | None:
    """The participant whose key opens a sealed text; None for a text that is not sealed."""
    if not is_sealed(value):
        return None
    head = value[len(SEALED_PREFIX) :].split(":", 1)[0]
    return int(head) if head.isdigit() else None


def seal(key: bytes, participant_id: int, text: str) -> str:
    """`text` encrypted under the participant's key (AES-256-GCM, a random nonce each time).

    Raises:
        ValidationError: the text itself looks like a sealed text (it could not be told apart).
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415 - only where texts are written

    if text.startswith(SEALED_PREFIX):
        msg = f"a text may not start with {SEALED_PREFIX!r}"
        raise ValidationError(msg)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, text.encode("utf-8", "surrogatepass"), _aad(participant_id))
    token = base64.b64encode(nonce + sealed).decode("ascii")
    return f"{SEALED_PREFIX}{participant_id}:{token}"


def unseal(key: bytes, value: str) -> str | None:
    """The text a sealed value holds; None when it does not open with `key` (altered, or another's)."""
    from cryptography.exceptions import InvalidTag  # noqa: PLC0415
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    participant_id = sealed_by(value)
    if participant_id is None:
        return None
    try:
        raw = base64.b64decode(value.split(":", 2)[2], validate=True)
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(participant_id))
    except (InvalidTag, ValueError, IndexError):
        return None
    return plain.decode("utf-8", "surrogatepass")


def keyed(secret: bytes, plain: str) -> str:
    """A match or intake key as stored: HMAC-SHA256 of the plain key under the server's secret."""
    return hmac.new(secret, plain.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
