"""Contacts never reach a log line or a stored error unmasked, whatever field they hide in."""

from __future__ import annotations

from consultflow.domain.privacy import mask_contact, mask_text
from consultflow.logconfig import _redact


def test_contacts_in_any_text_are_masked() -> None:
    """Email addresses and mainland mobile numbers inside free text are masked; other numbers stay."""
    text = (
        "refused <li.xiao@county.example>: 550 user unknown; sms to +86 13812345678 failed after 3 tries (id 20261129)"
    )
    masked = mask_text(text)
    assert "li.xiao@county.example" not in masked and "li***@county.example" in masked
    assert "13812345678" not in masked and "*********78" in masked
    assert "550" in masked and "20261129" in masked and "3 tries" in masked
    assert mask_contact("13812345678") == "*********78"


def test_the_log_processor_masks_every_field() -> None:
    """Not only `contact`: an error text or an exception carrying a contact is masked too."""
    event = {
        "event": "delivery_failed",
        "contact": "wang@plan.example",
        "error": "smtp: (550, b'<wang@plan.example>: recipient rejected')",
        "exc": RuntimeError("gateway for 13812345678 exploded"),
        "attempt": 2,
    }
    out = _redact(None, "warning", dict(event))
    rendered = repr(out)
    assert "wang@plan.example" not in rendered and "13812345678" not in rendered
    assert out["attempt"] == 2 and out["event"] == "delivery_failed"


def test_contacts_are_checked_when_registered() -> None:
    """Email addresses and mainland mobiles pass (mobiles compacted); anything else, line breaks above all, is refused."""
    import pytest

    from consultflow.domain.errors import ValidationError
    from consultflow.domain.privacy import checked_contact

    assert checked_contact("wang@plan.example") == "wang@plan.example"
    assert checked_contact("138-1234-5678") == "13812345678"
    assert checked_contact("+86 13812345678") == "+8613812345678"
    assert checked_contact("  ") is None
    for bad in ("13812345678\r\nBcc: all@county.example", "wang@plan.example\nX: y", "12345", "wang@", "微信号abc"):
        with pytest.raises(ValidationError, match="neither an email address nor a mainland mobile") as caught:
            checked_contact(bad)
        assert "13812345678" not in str(caught.value)  # the refusal itself masks it
