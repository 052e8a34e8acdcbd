"""The webhook channel: one JSON POST per message, to an SMS or messaging gateway.

It fails safe rather than clever:
- only http and https;
- redirects are not followed: a 3xx is a failed attempt, since a POST must not become a GET to
  somewhere else;
- one deadline covers the whole request, so a server that drips a header a second cannot hold the
  worker;
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
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

from consultflow.domain.errors import ConfigurationError
from consultflow.logconfig import get_logger
from consultflow.services.outbox import DeliveryError, OutgoingMessage

log = get_logger(__name__)


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
        deadline = time.monotonic() + self.timeout
        connection_class = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self.host, self.port, timeout=self.timeout)
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            future = pool.submit(self._exchange, connection, body, message.idempotency_key)
            try:
                status, location = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                _abort(connection)
                raise DeliveryError(f"webhook: no complete answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
            pool.shutdown(wait=False)
        if 300 <= status < 400:
            raise DeliveryError(
                f"webhook answered a redirect (HTTP {status} to {location}); redirects are not followed"
            )
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook answered HTTP {status}")
        log.info("webhook_sent", key=message.idempotency_key, contact=message.address)

    def _exchange(self, connection: http.client.HTTPConnection, body: bytes, key: str) -> tuple[int, str]:
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
        response.read(64 * 1024)
        return response.status, response.getheader("Location") or "-"


def _abort(connection: http.client.HTTPConnection) -> None:
    """Cut a connection a slow server is holding, so the request's thread ends too."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
