"""One wall-clock deadline for one delivery, whatever the peer does.

A socket timeout bounds each read, not the exchange: a peer sending one byte a second under the
timeout would hold a send for ever. `Deadline` runs a timer; when it fires, every socket the
send opened is shut down, so whatever read or write is blocked returns at once with an error,
and the send, in whatever thread it runs, ends. Sockets are registered by file descriptor,
because TLS wraps them in new objects (STARTTLS, HTTPS) while the descriptor stays the same.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class Deadline:
    """Cuts the registered sockets `seconds` after it is entered (used as a context manager)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._done = False
        self._descriptors: list[int] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:  # noqa: PYI034 - final class; typing.Self is 3.11+
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """The send is over: the timer must not touch its descriptors, which may be reused after closing."""
        with self._lock:
            self._done = True
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock` at the deadline (at once, if it has passed)."""
        with self._lock:
            self._descriptors.append(sock.fileno())
            if self.expired and not self._done:
                _shut(sock.fileno())

    def create_connection(
        self, address: tuple[str, int], timeout: float | None = None, source_address: tuple[str, int] | None = None
    ) -> socket.socket:
        """`socket.create_connection`, with the new socket watched and no read waiting past the deadline."""
        sock = socket.create_connection(address, min(timeout or self.seconds, self.seconds), source_address)
        self.watch(sock)
        return sock

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for descriptor in self._descriptors:
                _shut(descriptor)


def _shut(descriptor: int) -> None:
    """Shut a socket down by its descriptor (without closing it: its owner does that)."""
    if descriptor < 0:
        return
    with contextlib.suppress(OSError):
        borrowed = socket.socket(fileno=descriptor)
        try:
            borrowed.shutdown(socket.SHUT_RDWR)
        finally:
            borrowed.detach()
