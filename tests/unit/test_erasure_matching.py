"""How erasure recognises the same person and what it rewrites in stored messages (no database)."""

from __future__ import annotations

import pytest

from consultflow.domain.sealing import FORGOTTEN
from consultflow.store.personal_data import _Person, forget_quote, normal_contact


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("13812345678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),  # full-width digits
        ("Zhang.XiuYing@Example.COM", "zhang.xiuying@example.com"),
        ("", ""),
        (None, ""),
    ],
)
def test_contacts_compare_by_digits_or_lower_case(written: str | None, normal: str) -> None:
    """Erasure finds a villager's contact however it was written: a phone by its digits, an email in any case."""
    assert normal_contact(written) == normal


def test_a_different_phone_is_not_the_same_person() -> None:
    """A phone one digit away belongs to someone else: erasing one villager does not reach another."""
    assert normal_contact("13812345679") != normal_contact("13812345678")


def test_a_quoted_opinion_is_forgotten_and_the_reminder_kept() -> None:
    """Erasure drops the opinion a stored reminder quotes and keeps the rest; a message of unknown form goes whole."""
    old = "意见 #12：青龙村张秀英建议…\n当前状态：研究办理中\n事项：请对意见给出反馈\n截止时间：2026-03-08 09:00 CST\n"
    assert (
        forget_quote(old)
        == f"意见 #12：{FORGOTTEN}\n当前状态：研究办理中\n事项：请对意见给出反馈\n截止时间：2026-03-08 09:00 CST\n"
    )
    english = "Opinion #12: my phone 13812345678\nState: x\nAsked: y\nDue: z\n"
    assert forget_quote(english) == f"Opinion #12: {FORGOTTEN}\nState: x\nAsked: y\nDue: z\n"
    new = "意见 #12\n当前状态：研究办理中\n事项：请对意见给出反馈\n截止时间：2026-03-08 09:00 CST\n"
    assert forget_quote(new) == new  # reminders no longer quote: nothing to forget
    assert forget_quote("张秀英 said: fix the road") == FORGOTTEN  # a form not known: replaced whole
    assert forget_quote("") == ""


def test_her_name_given_name_phone_and_email_are_masked_only_hers() -> None:
    """Erasure masks her name, given name, phone (in any form) and email in stored messages, and nobody else's."""
    phone = _Person.of("张秀英", "+8613812345678", "张某某")
    said = "张秀英（秀英）来电 138-1234-5678、+86 138 1234 5678、１３８１２３４５６７８；李明 13999998888"
    assert phone.mask(said) == (
        "张某某（某某）来电 〔手机号已隐去〕、〔手机号已隐去〕、〔手机号已隐去〕；李明 13999998888"
    )
    mail = _Person.of("Wang Fang", "Wang.Fang@Example.com", "W.")
    assert mail.mask("bounce: wang.fang@example.COM (Wang Fang)") == "bounce: 〔邮箱已隐去〕 (W.)"
    assert _Person.of("", None, "").mask("nothing 13812345678") == "nothing 13812345678"
