"""The webhook channel: one JSON POST per message, to an SMS or messaging gateway.

It fails safe rather than clever:
- only http and https;
- redirects are not followed: a 3xx is a failed attempt, since a POST must not become a GET to
  somewhere else;
- one deadline covers the whole request, so a server that drips a header a second cannot hold the
  worker: when it passes, the connection is shut down (see `deadline.Deadline`);
- at most `MAX_ANSWER_BYTES` of an answer are read, and its first `QUOTED_CHARS` characters go into
  the error of a failed attempt (the sweep masks and escapes them before storing them);
- the address actually connected to is checked: loopback, private, link-local (cloud metadata)
  and reserved addresses are refused unless the county's own gateway lives there and a setting
  allows it.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
from urllib.parse import urlsplit

from consultflow.domain.errors import ConfigurationError
from consultflow.logconfig import get_logger
from consultflow.scheduler.deadline import Deadline
from consultflow.services.outbox import DeliveryError, OutgoingMessage

log = get_logger(__name__)

MAX_ANSWER_BYTES = 64 * 1024  # of an answer's body; a 50 MB answer is not read whole
QUOTED_CHARS = 200  # of a failed answer's body, quoted in the attempt's error


def _refused_address(address: str) -> str | None:
    """Why an address is not a place to send personal data to, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    for kind, test in (
        ("loopback", ip.is_loopback),
        ("link-local (cloud metadata lives there)", ip.is_link_local),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved or ip.is_multicast or ip.is_unspecified),
    ):
        if test:
            return f"{address} is a {kind} address"
    return None


class WebhookChannel:
    """HTTP POST of a JSON document; any 2xx answer counts as delivered."""

    def __init__(self, url: str, *, timeout: float = 10.0, allow_private: bool = False) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = f"webhook URL must be http:// or https:// with a host, not {url!r}"
            raise ConfigurationError(msg)
        self.url = url
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.allow_private = allow_private

    def check(self) -> None:
        """At start: a host that resolves only to refused addresses is a setting that cannot work."""
        if self.allow_private:
            return
        try:
            infos = socket.getaddrinfo(self.host, self.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            msg = f"cannot resolve webhook host {self.host!r}: {exc.strerror or exc}"
            raise ConfigurationError(msg) from None
        reasons = [_refused_address(str(info[4][0])) for info in infos]
        if reasons and all(reasons):
            msg = (
                f"webhook host {self.host!r}: {reasons[0]}; if the gateway really is there, allow it with "
                "--webhook-allow-private (CONSULTFLOW_WEBHOOK_ALLOW_PRIVATE=1)"
            )
            raise ConfigurationError(msg)

    def send(self, message: OutgoingMessage) -> None:
        """POST the message within one overall deadline."""
        document = {
            "idempotency_key": message.idempotency_key,
            "kind": message.kind,
            "recipient": {"name": message.recipient_name, "contact": message.address},
            "lang": message.lang,
            "subject": message.subject,
            "body": message.body,
        }
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        connection_class = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self.host, self.port, timeout=self.timeout)
        deadline = Deadline(self.timeout)
        connection._create_connection = deadline.create_connection  # type: ignore[attr-defined]  # noqa: SLF001
        try:
            with deadline:
                status, reason, location, answer = self._exchange(connection, body, message.idempotency_key, deadline)
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired:
                raise DeliveryError(f"webhook: no complete answer within {self.timeout:g} s") from None
            raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if 300 <= status < 400:
            raise DeliveryError(
                f"webhook answered a redirect (HTTP {status} to {location}); redirects are not followed"
            )
        if not 200 <= status < 300:
            quoted = answer[: QUOTED_CHARS * 4].decode("utf-8", errors="replace")[:QUOTED_CHARS].strip()
            raise DeliveryError(f"webhook answered HTTP {status} {reason}".rstrip() + (f": {quoted}" if quoted else ""))
        log.info("webhook_sent", key=message.idempotency_key, contact=message.address)

    def _exchange(
        self, connection: http.client.HTTPConnection, body: bytes, key: str, deadline: Deadline
    ) -> tuple[int, str, str, bytes]:
        """POST and read the status, headers and at most `MAX_ANSWER_BYTES` of the answer."""
        connection.connect()
        if not self.allow_private:
            peer = str(connection.sock.getpeername()[0])
            refused = _refused_address(peer)
            if refused:  # checked where we actually are, so a DNS answer that changed is caught too
                raise DeliveryError(f"webhook: {refused}; refused without --webhook-allow-private")
        connection.request(
            "POST",
            self.path,
            body=body,
            headers={"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key},
        )
        response = connection.getresponse()
        try:
            if deadline.expired:  # headers cut short read as their end: an answer the deadline cut is none
                raise TimeoutError
            answer = b""
            with contextlib.suppress(OSError, http.client.HTTPException):  # the status decides; the body informs
                answer = response.read(MAX_ANSWER_BYTES)
            return response.status, response.reason or "", response.getheader("Location") or "-", answer
        finally:
            response.close()
