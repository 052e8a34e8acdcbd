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
    assert checked_contact("028-87765767") == checked_contact("(028) 8776 5767") == "028-87765767"  # landlines
    assert checked_contact("02887765767") == "02887765767"  # where its area code ends is not guessed
    assert checked_contact("  ") is None
    for bad in ("13812345678\r\nBcc: all@county.example", "wang@plan.example\nX: y"):
        with pytest.raises(ValidationError, match="control character") as caught:
            checked_contact(bad)
        assert "13812345678" not in str(caught.value) and "wang" not in str(caught.value)  # never echoed
    for bad in ("12345", "87765767", "wang@", "微信号abc"):
        with pytest.raises(ValidationError, match="neither an email address nor a mainland mobile") as caught:
            checked_contact(bad)
        assert bad not in str(caught.value)


def test_library_use_without_configure_logging_still_masks(tmp_path: object) -> None:
    """A program embedding consultflow with structlog's defaults, or its own structlog setup, never logs a contact."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent(
        """
        import structlog
        from consultflow.logconfig import get_logger

        log = get_logger("consultflow.services.outbox")
        log.warning("delivery_failed", contact="wang@plan.example", error=RuntimeError("550 <wang@plan.example>"))
        log.info("sms to 13812345678 queued", recipient_address="13812345678")
        # A host application's own setup: JSON lines, no consultflow processor anywhere.
        structlog.configure(processors=[structlog.processors.JSONRenderer()])
        log.error("again", note="reach me at 13812345678")
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60)
    out = done.stdout + done.stderr
    assert "delivery_failed" in out and "again" in out  # the events were logged
    assert "wang@plan.example" not in out and "13812345678" not in out
    assert "wa***@plan.example" in out and "*********78" in out
