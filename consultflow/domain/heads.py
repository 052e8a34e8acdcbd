"""Signed chain heads: the server's Ed25519 signature over a consultation's chain head.

A head (the chain's last sequence number and hash) published outside the database proves that
every event up to it is still what it was: a chain rebuilt later, even by the database's owner,
no longer has that hash at that place. The signature proves the head came from the server that
holds the private key, so a published copy passed along by anyone can be checked.

What is signed is a short canonical JSON statement; the published record carries the statement
itself, the signature and the public key, so a verifier needs nothing else but the key's id to
compare with the one the portal shows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consultflow.domain.audit import utc_iso
from consultflow.domain.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:  # cryptography loads when a key is used, not with every command
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

WHAT = "consultflow audit chain head"
VERSION = 1
_HEX = frozenset("0123456789abcdef")


def key_id_of(public_key: bytes) -> str:
    """A public key's short name (16 hex digits of its SHA-256), as the portal shows it."""
    return hashlib.sha256(public_key).hexdigest()[:16]


ACCOUNTS = "accounts"  # the account log's chain (sign-ins, tokens, roles)
CONSULTATION = "consultation"  # one consultation's audit chain


def chain_name(consultation_id: int | None) -> str:
    """Which chain a head is of, in words."""
    return "the account log" if consultation_id is None else f"consultation {consultation_id}"


def statement_text(consultation_id: int | None, seq: int, head: str, signed_at: datetime, key_id: str) -> str:
    """The exact text that is signed: canonical JSON (sorted keys, no spaces).

    `consultation_id` None: the head of the account log.
    """
    fields = {
        "chain": ACCOUNTS if consultation_id is None else CONSULTATION,
        "consultation": consultation_id,
        "head": head,
        "key": key_id,
        "seq": seq,
        "signed_at": utc_iso(signed_at),
        "v": VERSION,
        "what": WHAT,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class SignedHead:
    """One signed head, as stored and as published (one JSON line); consultation_id None: the account log's."""

    consultation_id: int | None
    seq: int
    head: str
    signed_at: datetime
    key_id: str
    public_key: str  # base64 of the raw 32-byte Ed25519 key
    statement: str
    signature: str  # hex of the 64-byte signature

    def record(self) -> dict[str, Any]:
        """The published form: what `audit verify --heads` reads back."""
        out = asdict(self)
        out["signed_at"] = utc_iso(self.signed_at)
        return out

    def line(self) -> str:
        """The record as one JSON line."""
        return json.dumps(self.record(), sort_keys=True, ensure_ascii=False)


class HeadSigner:
    """The server's signing key; its repr never shows the key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - see above

        self._key = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()
        self.key_id = key_id_of(raw)

    def __repr__(self) -> str:
        return f"HeadSigner(key_id={self.key_id!r})"

    @classmethod
    def from_file(cls, path: Path) -> HeadSigner:
        """Load a PEM (PKCS#8) Ed25519 private key; refuse a file others may read.

        Raises:
            ConfigurationError: missing, unreadable, readable by others, or not an Ed25519 key.
        """
        from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415 - see above
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as exc:
            msg = f"cannot read the signing key file {path}: {exc.strerror or exc}"
            raise ConfigurationError(msg) from None
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            msg = f"the signing key file {path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
            raise ConfigurationError(msg)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            msg = (
                f"the signing key file {path} holds no unencrypted Ed25519 private key in PEM "
                "(make one with 'consultflow audit keygen FILE')"
            )
            raise ConfigurationError(msg)
        return cls(key)

    @staticmethod
    def generate_pem() -> bytes:
        """A new private key, PEM (PKCS#8), for `audit keygen`."""
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - see above
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, consultation_id: int | None, seq: int, head: str, at: datetime) -> SignedHead:
        """Sign one chain head at `at`."""
        statement = statement_text(consultation_id, seq, head, at, self.key_id)
        signature = self._key.sign(statement.encode()).hex()
        return SignedHead(consultation_id, seq, head, at, self.key_id, self.public_key, statement, signature)


def public_key_id(text: str) -> str:
    """The id of a public key given as base64 (as the portal shows it); refuses anything else.

    Raises:
        ValidationError: not the base64 of 32 bytes.
    """
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        msg = f"a public key is the base64 of 32 bytes, as the portal shows it, not {text[:60]!r}"
        raise ValidationError(msg)
    return key_id_of(raw)


def checked(record: object, where: str, trusted_key: str | None = None) -> SignedHead:
    """A published head whose signature and statement hold, or one clear refusal naming `where`.

    The statement is what was signed, so its fields are taken from it and must equal the record's.
    `trusted_key` (base64) pins the public key; without it any well-signed record passes and the
    caller shows which key signed it.

    Raises:
        ValidationError: not a head record, a bad signature, a statement that says otherwise, or
            another key than the trusted one.
    """
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - see above
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: PLC0415

    def refuse(why: str) -> ValidationError:
        return ValidationError(f"{where}: {why}")

    if not isinstance(record, dict):
        raise refuse("not a signed head (a JSON object per line, as 'consultflow audit heads' writes)")
    try:
        statement, signature, public_key = (str(record[k]) for k in ("statement", "signature", "public_key"))
    except KeyError as exc:
        raise refuse(f"the field {exc.args[0]!r} is missing") from None
    try:
        raw_key = base64.b64decode(public_key, validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw_key)
        key.verify(bytes.fromhex(signature), statement.encode())
    except (binascii.Error, ValueError, InvalidSignature):
        raise refuse("the signature does not match the statement and public key (forged or altered)") from None
    if trusted_key is not None and public_key_id(trusted_key) != key_id_of(raw_key):
        raise refuse(f"signed with key {key_id_of(raw_key)}, not the trusted key {public_key_id(trusted_key)}")
    try:
        said = json.loads(statement)
        consultation_id, seq, head, key_id = said["consultation"], said["seq"], said["head"], said["key"]
        at = datetime.fromisoformat(str(said["signed_at"]).replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, KeyError, TypeError):
        raise refuse("the signed statement is not a chain head") from None
    chain = said.get("chain", CONSULTATION)
    good = (
        said.get("what") == WHAT
        and (
            (chain == CONSULTATION and isinstance(consultation_id, int))
            or (chain == ACCOUNTS and consultation_id is None)
        )
        and isinstance(seq, int)
        and isinstance(head, str)
        and len(head) == 64
        and set(head) <= _HEX
        and key_id == key_id_of(raw_key)
    )
    if not good:
        raise refuse("the signed statement is not a chain head of this key")
    for name, value in (("consultation_id", consultation_id), ("seq", seq), ("head", head)):
        if name in record and record[name] != value:
            raise refuse(f"the record's {name} {record[name]!r} differs from the signed {value!r}")
    return SignedHead(consultation_id, seq, head, at, key_id, public_key, statement, signature)


def parse_lines(text: str, source: str, trusted_key: str | None = None) -> list[SignedHead]:
    """Every signed head in a published file (JSON lines, or one JSON array), each checked.

    Raises:
        ValidationError: naming the line that is not a well-signed head.
    """
    stripped = text.strip()
    if not stripped:
        msg = f"{source} holds no signed heads"
        raise ValidationError(msg)
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError as exc:
            msg = f"{source} is not JSON: {exc}"
            raise ValidationError(msg) from None
        return [checked(item, f"{source} item {n}", trusted_key) for n, item in enumerate(items, 1)]
    out = []
    for n, line in enumerate(stripped.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            msg = f"{source} line {n}: not JSON (one signed head per line, as 'consultflow audit heads' writes)"
            raise ValidationError(msg) from None
        out.append(checked(item, f"{source} line {n}", trusted_key))
    return out


def from_line(line: str) -> SignedHead | None:
    """A head as the heads file holds it (the server's own file: read, not re-checked); None if unreadable."""
    try:
        r = json.loads(line)
        at = datetime.fromisoformat(str(r["signed_at"]).replace("Z", "+00:00"))
        return SignedHead(
            r["consultation_id"], int(r["seq"]), str(r["head"]), at, str(r["key_id"]), str(r["public_key"]),
            str(r["statement"]), str(r["signature"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None


class HeadLedger:
    """The server's own record of what it signed: the heads file, outside the database.

    The database's copy (table signed_head) can be emptied or added to by whoever can write it; the
    file cannot. So the server checks a chain from the latest head this file holds before signing
    again, and the portal publishes from it. It is read once, then only what was appended since
    (several server processes append to it); safe to share between threads.
    """

    def __init__(self, path: Path, key_id: str) -> None:
        self.path, self.key_id = path, key_id
        self._offset = 0
        self._latest: dict[int | None, SignedHead] = {}
        self._lock = threading.Lock()

    def latest(self, consultation_id: int | None) -> SignedHead | None:
        """The latest head (by place in the chain) of a consultation's chain, or None: the account log's."""
        self._refresh()
        return self._latest.get(consultation_id)

    def lines(self, consultation_id: int | None = None, *, every: bool = True) -> Iterator[str]:
        """The file's lines (of every chain, or of one chain signed with this key), oldest first, as published."""
        try:
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        return  # a line being appended right now
                    if every:
                        yield line
                        continue
                    head = from_line(line)
                    if head is not None and head.consultation_id == consultation_id and head.key_id == self.key_id:
                        yield line
        except FileNotFoundError:
            return

    def _refresh(self) -> None:
        with self._lock:
            try:
                with self.path.open("rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                return
            end = data.rfind(b"\n") + 1  # only whole lines: one may be half written
            for line in data[:end].decode("utf-8", errors="replace").splitlines():
                head = from_line(line)
                if head is None or head.key_id != self.key_id:  # only what this server's key signed
                    continue
                known = self._latest.get(head.consultation_id)
                if known is None or head.seq >= known.seq:
                    self._latest[head.consultation_id] = head
            self._offset += end


@dataclass(frozen=True)
class HeadPublishing:
    """What the server signs heads with and where it publishes them: its own heads file, the portal, mail."""

    signer: HeadSigner
    file: Path  # each signed head appended as one JSON line: the server's record, outside the database
    mail: tuple[str, ...] = ()  # addresses each signed head is mailed to, through the outbox
    ledger: HeadLedger = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ledger", HeadLedger(self.file, self.signer.key_id))
