"""The pure rules of staff accounts: passwords, tokens, two-step codes, the account log's hashing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyotp
import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st

from consultflow.domain.accounts import (
    account_canonical,
    account_chain_key,
    checked_days,
    checked_password,
    checked_scope,
    hash_password,
    is_token_text,
    needs_rehash,
    new_token,
    token_hash,
    totp_step,
    verify_password,
)
from consultflow.domain.audit import ChainKey, payload_text
from consultflow.domain.errors import ConfigurationError, ValidationError

KEY = ChainKey(b"county-secret-0123456789abcdef-0123")
texts = st.text(max_size=20)
maybe_texts = st.none() | texts


@given(
    seq=st.integers(min_value=1, max_value=2**31 - 1),
    kind=texts,
    actor=maybe_texts,
    subject=maybe_texts,
    key_id=maybe_texts,
    payload=st.dictionaries(texts, st.none() | st.booleans() | st.integers() | texts | st.lists(texts), max_size=4),
)
def test_the_canonical_text_is_sorted_compact_json_of_every_field(
    seq: int, kind: str, actor: str | None, subject: str | None, key_id: str | None, payload: dict[str, object]
) -> None:
    """What the hash covers equals json.dumps of the fields with sorted keys and no spaces."""
    at = "2026-03-01T01:00:00.000000Z"
    fields = {
        "actor": actor,
        "at": at,
        "chain_seq": seq,
        "key_id": key_id,
        "kind": kind,
        "payload": payload,
        "subject": subject,
    }
    expected = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    made = account_canonical(
        chain_seq=seq,
        kind=kind,
        actor=actor,
        subject=subject,
        at=at,
        key_id=key_id,
        payload=payload_text(payload),
    )
    assert made == expected


def test_the_password_policy_names_what_is_allowed() -> None:
    """10 to 1024 characters, not one repeated; Chinese characters count one each."""
    assert checked_password("青龙村三组道路硬化工程") == "青龙村三组道路硬化工程"
    assert checked_password("ab" * 512) == "ab" * 512
    for bad in ("", "123456789", "z" * 40, "ab" * 512 + "c"):
        with pytest.raises(ValidationError, match="^a password needs 10 to 1024 characters, not all the same one"):
            checked_password(bad)


@pytest.mark.argon2_as_shipped
def test_an_argon2id_hash_checks_the_password_and_nothing_else() -> None:
    """The right password matches; a wrong one, no hash or a broken hash do not; old parameters want a rehash."""
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse battery!")
    assert not verify_password(None, "correct horse battery")
    assert not verify_password("$argon2id$broken", "correct horse battery")
    assert not needs_rehash(stored)
    assert needs_rehash(PasswordHasher(time_cost=1, memory_cost=8192).hash("x" * 10))


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    """cft_ and 43 URL-safe characters; the hash is SHA-256 hex; the prefix is the first 8 characters."""
    token, digest, prefix = new_token()
    assert is_token_text(token) and len(token) == 47 and prefix == token[:8]
    assert digest == token_hash(token) and len(digest) == 64 and token not in digest
    assert new_token()[0] != token
    for bad in ("cft_short", "xyz_" + "A" * 43, token + "A", token[:-1] + "="):
        assert not is_token_text(bad)


def test_scopes_and_lifetimes_are_checked() -> None:
    """read or write; 1 to 366 days."""
    assert (checked_scope("read"), checked_scope("write"), checked_days(1), checked_days(366)) == (
        "read",
        "write",
        1,
        366,
    )
    with pytest.raises(ValidationError, match="allowed: read, write"):
        checked_scope("admin")
    for days in (0, 367, -1):
        with pytest.raises(ValidationError, match="1 to 366 days"):
            checked_days(days)


def test_a_two_step_code_matches_its_step_or_one_either_side() -> None:
    """The step before, now and after match (returning which); two away, or anything not 6 digits, does not."""
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = datetime(2026, 3, 1, 1, 0, 10, tzinfo=timezone.utc)
    step = totp.timecode(now)
    for offset in (-1, 0, 1):
        assert totp_step(secret, totp.generate_otp(step + offset), now) == step + offset
    spaced = totp.generate_otp(step)
    assert totp_step(secret, f"{spaced[:3]} {spaced[3:]}", now) == step
    assert totp_step(secret, totp.generate_otp(step + 2), now) is None
    assert totp_step(secret, totp.generate_otp(step), now + timedelta(seconds=90)) is None
    for bad in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert totp_step(secret, bad, now) is None


def test_a_keyed_log_is_never_extended_without_its_key() -> None:
    """Unkeyed: any key (or none) goes on; keyed: only the same key."""
    other = ChainKey(b"another-county-secret-0123456789abcdef")
    assert account_chain_key(None, None) is None
    assert account_chain_key(None, KEY) is KEY
    assert account_chain_key(KEY.key_id, KEY) is KEY
    with pytest.raises(ConfigurationError, match=f"the account log is keyed \\(key {KEY.key_id}\\)"):
        account_chain_key(KEY.key_id, None)
    with pytest.raises(ConfigurationError, match=f"but the configured key is {other.key_id}"):
        account_chain_key(KEY.key_id, other)
