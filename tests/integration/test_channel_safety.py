"""Channels that fail safe: no redirects, one deadline, no private targets by default, no cleartext login."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from consultflow.domain.errors import ConfigurationError
from consultflow.scheduler.channels import SmtpChannel, SmtpSettings, build_router
from consultflow.scheduler.webhook import WebhookChannel
from consultflow.services.outbox import DeliveryError, OutgoingMessage
from tests.conftest import Cli
from tests.servers import raw_server

MESSAGE = OutgoingMessage(
    1, "reminder-1-participant-1", "reminder", "webhook", "张秀英", "13812345678", "zh", "主题", "正文"
)


def test_a_redirect_is_a_failed_attempt_not_followed() -> None:
    """A 302 to somewhere else: the POST is not turned into a GET there; the attempt fails and says why."""
    answer = [b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.example/steal\r\nContent-Length: 0\r\n\r\n"]
    with raw_server(answer) as url:
        channel = WebhookChannel(url, allow_private=True)
        with pytest.raises(DeliveryError, match=r"redirect \(HTTP 302 to http://elsewhere.example/steal\)"):
            channel.send(MESSAGE)


def test_a_server_that_drips_its_answer_is_cut_at_the_deadline() -> None:
    """One header a second never trips a per-socket timeout; the overall deadline still ends it."""
    answer = [b"HTTP/1.1 200 OK\r\n"] + [f"X-Drip-{i}: x\r\n".encode() for i in range(40)] + [b"\r\n"]
    with raw_server(answer, pause=0.5) as url:
        channel = WebhookChannel(url, timeout=1.5, allow_private=True)
        started = time.monotonic()
        with pytest.raises(DeliveryError, match=r"no complete answer within 1.5 s"):
            channel.send(MESSAGE)
        assert time.monotonic() - started < 5


def test_something_that_is_not_http_is_a_failed_attempt() -> None:
    """An SSH banner where a gateway should be: a DeliveryError, which the sweep records, not a crash."""
    with raw_server([b"SSH-2.0-OpenSSH_9.2\r\n"]) as url, pytest.raises(DeliveryError, match="BadStatusLine"):
        WebhookChannel(url, allow_private=True).send(MESSAGE)


def test_private_and_metadata_addresses_are_refused_unless_allowed() -> None:
    """Loopback, private and link-local targets: refused at start, and again where the connection lands."""
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.8/hook"):
        with pytest.raises(ConfigurationError, match="--webhook-allow-private"):
            build_router(channels="webhook", smtp=None, webhook_url=url)
    with raw_server([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]) as url:
        with pytest.raises(DeliveryError, match="127.0.0.1 is a loopback address"):
            WebhookChannel(url).send(MESSAGE)  # as if DNS had changed since the start-up check
        WebhookChannel(url, allow_private=True).send(MESSAGE)


@pytest.mark.parametrize("url", ["ftp://gateway.example/x", "file:///etc/passwd", "gateway.example/hook"])
def test_only_http_and_https_webhooks(url: str) -> None:
    """Any other scheme is one clear line at start."""
    with pytest.raises(ConfigurationError, match="must be http:// or https://"):
        build_router(channels="webhook", smtp=None, webhook_url=url)


def test_smtp_refuses_to_log_in_without_tls() -> None:
    """A user and password over a plain connection is refused at start unless explicitly allowed."""
    with pytest.raises(ConfigurationError, match="would send the password readable"):
        SmtpChannel(SmtpSettings(host="smtp.county.example", username="notify", password="s3cret"))
    SmtpChannel(SmtpSettings(host="smtp.county.example", username="notify", password="s3cret", security="starttls"))
    SmtpChannel(SmtpSettings(host="smtp.county.example", username="notify", password="x", allow_plain_auth=True))


def test_the_smtp_password_never_comes_from_a_flag(cli: Cli, tmp_path: Path) -> None:
    """`--smtp-password` is gone (it would show in the process list); a file or the environment is used."""
    result = cli("reminders", "run-once", "--smtp-host", "127.0.0.1", "--smtp-password", "s3cret")
    assert result.exit_code == 2 and "No such option" in result.stderr
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    refused = cli(
        "reminders", "run-once", "--smtp-host", "127.0.0.1", "--smtp-user", "notify",
        "--smtp-password-file", str(secret),
    )  # fmt: skip
    assert refused.exit_code == 1 and "would send the password readable" in refused.stderr
    assert "s3cret" not in refused.output
