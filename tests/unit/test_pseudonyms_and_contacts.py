"""Pseudonyms hide a name's length; contacts are refused without being repeated; phones are masked in any form."""

from __future__ import annotations

import pytest

from consultflow.domain.errors import ValidationError
from consultflow.domain.privacy import checked_contact, mask_text, pseudonymise


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("李明", "李某某"),
        ("张秀英", "张某某"),
        ("欧阳小明", "欧某某"),  # a compound surname is not told apart either
        ("司马相如", "司某某"),
        ("诸葛亮", "诸某某"),
        ("阿卜杜热合曼·买买提", "阿某某"),
        ("  王五 ", "王某某"),
        ("Wang Fang", "W."),
        ("Li", "L."),
    ],
)
def test_pseudonyms_keep_one_character_and_one_length(name: str, expected: str) -> None:
    """A pseudonym keeps only a name's first character, at one length, for Chinese and Latin names alike."""
    assert pseudonymise(name) == expected


def test_names_of_different_lengths_give_the_same_pseudonym() -> None:
    """Two villagers of one surname cannot be told apart by their pseudonyms' lengths."""
    assert len({pseudonymise(n) for n in ("欧明", "欧阳明", "欧阳小明", "欧阳小明明")}) == 1


LONG_EMAIL = "a" * 250 + "@county.example"  # well-formed, but 265 characters


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (LONG_EMAIL, "at most 254"),
        ("1" * 300, "at most 254"),
        ("wang@plan.example\tx", "control character"),
        ("1381234\u20285678", "control character"),
        ("wang\u200b@plan.example", "control character"),
        ("微信号 secretvillager", "neither an email address nor a mainland mobile"),
    ],
)
def test_a_bad_contact_is_refused_in_one_line_that_does_not_repeat_it(value: str, says: str) -> None:
    """A contact too long, with a control character or of no known kind is refused in one line not repeating it."""
    with pytest.raises(ValidationError, match=says) as caught:
        checked_contact(value)
    message = str(caught.value)
    assert "\n" not in message
    assert value.strip()[:20] not in message and "secretvillager" not in message


def test_the_longest_contact_allowed_is_254_characters() -> None:
    """A contact of 254 characters, the longest an email address may be, is accepted as written."""
    fits = "a" * 239 + "@county.example"
    assert len(fits) == 254
    assert checked_contact(fits) == fits


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("call 138-1234-5678 today", "1234", "78"),
        ("call 138 1234 5678 today", "1234", "78"),
        ("电话：１３８１２３４５６７８", "１３８１２３４", "７８"),
        ("村委会 010-62345678", "6234", "78"),
        ("村委会 (0731)8888 6666", "8888", "66"),
        ("村委会 ０７５５－１２３４５６７", "１２３４", "６７"),
    ],
)
def test_phones_in_text_are_masked_in_every_common_form(text: str, gone: str, kept: str) -> None:
    """Phone numbers in text are masked whether written with dashes, spaces, full-width digits or an area code."""
    masked = mask_text(text)
    assert gone not in masked and kept in masked


@pytest.mark.parametrize(
    "text",
    ["event 20261129 after 3 tries (550)", "head 5f0c2e9a1d7b3c44 ab01012345678", "at 2026-12-08T09:00:00+08:00"],
)
def test_dates_ids_and_digests_are_not_taken_for_phones(text: str) -> None:
    """Dates, ids, digests and timestamps in text are left as they are, not masked as phone numbers."""
    assert mask_text(text) == text
