"""Delivery channels. Each sends one message or raises `DeliveryError`; none retries itself.

Every message carries its idempotency key (an email header, a JSON field and an HTTP header) so a
receiver can drop a repeat. Contact details appear in logs only masked.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from consultflow.domain.errors import ConfigurationError
from consultflow.logconfig import get_logger
from consultflow.scheduler.deadline import Deadline
from consultflow.scheduler.webhook import WebhookChannel
from consultflow.services.outbox import CHANNELS, DeliveryError, OutgoingMessage

log = get_logger(__name__)


class LogChannel:
    """Writes the message to the log: the default, and the fallback for people without a contact."""

    def send(self, message: OutgoingMessage) -> None:
        """Log the message: a villager pseudonymised, the contact masked, no body (it quotes an opinion)."""
        log.info(
            "reminder_message",
            channel="log",
            key=message.idempotency_key,
            to=message.loggable_recipient,
            contact=message.address,
            subject=message.subject,
        )


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send email."""

    host: str
    port: int = 25
    sender: str = "consultflow@localhost"
    username: str | None = None
    password: str | None = None
    security: str = "none"  # none | starttls | ssl
    timeout: float = 20.0  # one read or write
    allow_plain_auth: bool = False
    deadline: float = 30.0  # one whole message: connecting, greeting, TLS, login, DATA


MAX_REPLY_LINES = 100  # a multi-line SMTP reply longer than this is a peer to stop reading
MAX_LINE = 8192  # smtplib's own bound on one reply line


class _SMTP(smtplib.SMTP):
    """smtplib's client, its socket watched by a deadline and its replies bounded."""

    def __init__(self, deadline: Deadline, **kwargs: Any) -> None:
        self.deadline = deadline
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.deadline.watch(sock)
        return sock

    def getreply(self) -> tuple[int, bytes]:
        """As smtplib's, but a reply of more than `MAX_REPLY_LINES` lines is an error, not memory filled."""
        return _bounded_reply(self)


class _SMTPSSL(smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte, watched and bounded likewise (the handshake too)."""

    def __init__(self, deadline: Deadline, **kwargs: Any) -> None:
        self.deadline = deadline
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((host, port), timeout, self.source_address)
        self.deadline.watch(raw)  # before the handshake, which a peer could drip too
        return self.context.wrap_socket(raw, server_hostname=self._host)  # type: ignore[attr-defined]

    def getreply(self) -> tuple[int, bytes]:
        """As `_SMTP.getreply`."""
        return _bounded_reply(self)


def _bounded_reply(client: smtplib.SMTP) -> tuple[int, bytes]:
    """What smtplib's `getreply` reads, except that a reply of more than `MAX_REPLY_LINES` lines is an error."""
    if client.file is None:
        client.file = client.sock.makefile("rb")  # type: ignore[union-attr]
    lines: list[bytes] = []
    code = -1
    while True:
        try:
            line = client.file.readline(MAX_LINE + 1)
        except OSError as exc:
            client.close()
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
        if not line:
            client.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > MAX_LINE or len(lines) >= MAX_REPLY_LINES:
            client.close()
            too_long = b"Line too long." if len(line) > MAX_LINE else b"Reply too long."
            raise smtplib.SMTPResponseException(500, too_long)
        lines.append(line[4:].strip(b" \t\r\n"))
        try:
            code = int(line[:3])
        except ValueError:
            code = -1
            break
        if line[3:4] != b"-":
            break
    return code, b"\n".join(lines)


class SmtpChannel:
    """Email over SMTP, one connection per message (reminders are few; simplicity wins)."""

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.username and settings.security == "none" and not settings.allow_plain_auth:
            msg = (
                "SMTP login without TLS would send the password readable; use --smtp-security starttls or ssl "
                "(or, on a network you trust, --smtp-allow-plain-auth)"
            )
            raise ConfigurationError(msg)
        self.settings = settings

    def _connect(self, deadline: Deadline) -> smtplib.SMTP:
        s = self.settings
        timeout = min(s.timeout, s.deadline)
        if s.security == "ssl":
            client: smtplib.SMTP = _SMTPSSL(deadline, timeout=timeout, context=ssl.create_default_context())
        else:
            client = _SMTP(deadline, timeout=timeout)
        try:
            code, greeting = client.connect(s.host, s.port)
            if code != 220:  # as smtplib.SMTP(host) checks
                raise smtplib.SMTPConnectError(code, greeting)  # noqa: TRY301 - closed below like any other failure
            if s.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if s.username:
                client.login(s.username, s.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def check(self) -> None:
        """Connect once at start-up so a wrong host or port is one clear error, not silent retries."""
        try:
            with Deadline(self.settings.deadline) as deadline, self._connect(deadline) as client:
                client.noop()
        except (OSError, smtplib.SMTPException) as exc:
            msg = f"cannot reach SMTP server {self.settings.host}:{self.settings.port}: {exc}"
            raise ConfigurationError(msg) from None

    def send(self, message: OutgoingMessage) -> None:
        """Send one email; the idempotency key is in the Message-ID and a header of its own."""
        if not message.address or "@" not in message.address:
            raise DeliveryError("no email address for the recipient")
        email = EmailMessage()
        email["From"] = self.settings.sender
        email["To"] = message.address
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(idstring=message.idempotency_key, domain="consultflow")
        email["X-Idempotency-Key"] = message.idempotency_key
        email["Content-Language"] = "zh-CN" if message.lang == "zh" else "en"
        email.set_content(message.body, charset="utf-8")
        deadline = Deadline(self.settings.deadline)
        client: smtplib.SMTP | None = None
        try:
            with deadline:
                client = self._connect(deadline)
                client.send_message(email)
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.putcmd("quit")  # accepted already: the answer to QUIT is not waited for
        except (OSError, smtplib.SMTPException) as exc:
            if deadline.expired:
                msg = f"smtp: no complete answer within {self.settings.deadline:g} s"
                raise DeliveryError(msg) from None
            raise DeliveryError(f"smtp: {type(exc).__name__}: {exc}") from None
        finally:
            if client is not None:
                client.close()
        log.info("email_sent", key=message.idempotency_key, contact=message.address)


class ChannelRouter:
    """Sends each message through the channel it was dispatched to."""

    def __init__(self, smtp: SmtpChannel | None = None, webhook: WebhookChannel | None = None) -> None:
        self.channels: dict[str, LogChannel | SmtpChannel | WebhookChannel] = {"log": LogChannel()}
        if smtp is not None:
            self.channels["email"] = smtp
        if webhook is not None:
            self.channels["webhook"] = webhook

    @property
    def enabled(self) -> frozenset[str]:
        """Channel names that can send."""
        return frozenset(self.channels)

    def send(self, message: OutgoingMessage) -> None:
        """Route to the message's channel."""
        channel = self.channels.get(message.channel)
        if channel is None:  # queued for a channel this worker lacks (a signed head to mail, say): the log has it
            log.warning("channel_not_configured", channel=message.channel, key=message.idempotency_key)
            channel = self.channels["log"]
        channel.send(message)


def build_router(
    *,
    channels: str | None,
    smtp: SmtpSettings | None,
    webhook_url: str | None,
    check_smtp: bool = True,
    webhook_timeout: float = 10.0,
    webhook_allow_private: bool = False,
    deadline: float | None = None,
) -> ChannelRouter:
    """The router for the given settings; an unknown channel or unusable setting is one clear error.

    `channels` is a comma-separated list (log, email, webhook); by default every channel that has
    settings is on. `deadline` (seconds) bounds one delivery on every channel: the webhook's own
    timeout is cut to it, and it is the SMTP channel's deadline.
    """
    if deadline is not None:
        webhook_timeout = min(webhook_timeout, deadline)
        if smtp is not None:
            smtp = replace(smtp, deadline=deadline)
    wanted = {"log"} | ({"email"} if smtp else set()) | ({"webhook"} if webhook_url else set())
    if channels:
        wanted = {c.strip() for c in channels.split(",") if c.strip()}
        unknown = sorted(wanted - set(CHANNELS))
        if unknown:
            msg = f"unknown channel(s) {', '.join(unknown)}; allowed: {', '.join(CHANNELS)}"
            raise ConfigurationError(msg)
        if "email" in wanted and smtp is None:
            raise ConfigurationError("channel email needs --smtp-host (or CONSULTFLOW_SMTP_HOST)")
        if "webhook" in wanted and not webhook_url:
            raise ConfigurationError("channel webhook needs --webhook-url (or CONSULTFLOW_WEBHOOK_URL)")
    smtp_channel = SmtpChannel(smtp) if smtp and "email" in wanted else None
    if smtp_channel is not None and check_smtp:
        smtp_channel.check()
    webhook = None
    if webhook_url and "webhook" in wanted:
        webhook = WebhookChannel(webhook_url, timeout=webhook_timeout, allow_private=webhook_allow_private)
        webhook.check()
    return ChannelRouter(smtp_channel, webhook)
