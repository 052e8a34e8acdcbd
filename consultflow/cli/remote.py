"""The CLI as the server's client: the stored sign-in, and registered commands sent over HTTP.

`consultflow login URL` stores the server's address and a personal access token in a file only
its owner may read (`CONSULTFLOW_CREDENTIALS`, by default `~/.config/consultflow/credentials.json`).
From then on every registered command goes to that server, unless `--db` says to work on a database
directly. `CONSULTFLOW_SERVER` and `CONSULTFLOW_TOKEN` do the same without a file (automation).

A command's result comes back as JSON and is decoded into the same dataclass a local call returns,
so the CLI prints it with the same code; a refusal comes back with the CLI's own message and exit
code. A streamed answer is spooled to a private temporary file before anything is printed: a cut
answer is reported as one, never printed as if it were whole.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing as _closing
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any
from urllib.parse import urlsplit

from consultflow import extras
from consultflow.config import environment
from consultflow.domain.document import Reread
from consultflow.domain.errors import ConfigurationError, ConsultflowError
from consultflow.services.commands.core import Command

# Seconds a read may wait for the next bytes. A streamed answer gets an empty line every few
# seconds while the server works; a held one (a province's round close) may take many minutes.
TIMEOUT_S = 3600.0
_MAX_ERROR_BYTES = 64 * 1024


class RemoteRefusalError(ConsultflowError):
    """The server refused or failed the command: its one line and exit code, as the local CLI gives them."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ServerUnreachableError(ConsultflowError):
    """The server cannot be reached, or answered something that is not consultflow's."""


def credentials_path() -> Path:
    """Where the sign-in is kept."""
    given = environment().text("CONSULTFLOW_CREDENTIALS")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "consultflow" / "credentials.json"


@dataclass(frozen=True)
class SignedIn:
    """A stored sign-in: the server and the token (and whom it belongs to, for messages)."""

    server: str
    token: str
    name: str | None = None


def checked_server(url: str) -> str:
    """An http(s) URL without a trailing slash, or one line naming what is allowed.

    Raises:
        ConfigurationError: not an http:// or https:// URL with a host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        msg = f"server {url!r} is not an http:// or https:// URL such as https://consult.county.example"
        raise ConfigurationError(msg)
    return url.strip().rstrip("/")


def load_sign_in() -> SignedIn | None:
    """The sign-in from CONSULTFLOW_SERVER/CONSULTFLOW_TOKEN or the credentials file; None if there is none.

    Raises:
        ConfigurationError: the file is readable by others, or is not one consultflow wrote.
    """
    env = environment()
    server = env.text("CONSULTFLOW_SERVER").strip()
    token = env.text("CONSULTFLOW_TOKEN").strip()
    path = credentials_path()
    stored: dict[str, Any] = {}
    if path.exists():
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            msg = f"credentials file {path} may be read by others; run 'chmod 600 {path}' or 'consultflow login' again"
            raise ConfigurationError(msg)
        try:
            loaded: object = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"credentials file {path} cannot be read ({type(exc).__name__}); run 'consultflow login URL' again"
            raise ConfigurationError(msg) from None
        stored = loaded if isinstance(loaded, dict) else {}
    server = server or str(stored.get("server") or "")
    token = token or str(stored.get("token") or "")
    if not server:
        return None
    if not token:
        msg = f"no token for {server}: run 'consultflow login {server}' (or set CONSULTFLOW_TOKEN)"
        raise ConfigurationError(msg)
    name = stored.get("name") if stored.get("server") == server else None
    return SignedIn(checked_server(server), token, name if isinstance(name, str) else None)


def store_sign_in(signed: SignedIn, extra: dict[str, Any]) -> Path:
    """Write the sign-in to the credentials file, readable by its owner only."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = {"server": signed.server, "token": signed.token, "name": signed.name, **extra}
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")  # created 0600
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=2)
    Path(temporary).replace(path)
    return path


def forget_sign_in() -> bool:
    """Remove the credentials file; whether there was one."""
    path = credentials_path()
    if path.exists():
        path.unlink()
        return True
    return False


class Client:
    """Requests to one server with one token."""

    def __init__(self, server: str, token: str | None = None) -> None:
        self.server = checked_server(server)
        self.token = token
        parts = urlsplit(self.server)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._base = parts.path.rstrip("/")

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=TIMEOUT_S)
        return http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_S)

    @contextmanager
    def request(self, method: str, path: str, body: Any = None) -> Iterator[http.client.HTTPResponse]:
        """Send a request; the open response while the block runs (then the connection is closed).

        Raises:
            ServerUnreachableError: no connection, or no HTTP answer.
        """
        headers = {"Accept": "application/json, application/x-ndjson", "User-Agent": "consultflow-cli"}
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection = self._connection()
        try:
            try:
                connection.request(method, self._base + path, body=payload, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                msg = f"cannot reach the consultflow server at {self.server}: {reason}"
                raise ServerUnreachableError(msg) from None
            with _closing(response):
                yield response
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """A request whose answer is one JSON document; a refusal raises with the server's line and exit code."""
        with self.request(method, path, body) as response:
            if response.status >= 300:
                raise _refusal(response, self.server)
            try:
                return json.loads(response.read())
            except (ValueError, OSError, http.client.HTTPException):
                msg = f"the server at {self.server} answered something that is not consultflow's JSON"
                raise ServerUnreachableError(msg) from None

    def call(self, command: Command[Any, Any], given: Any) -> Any:
        """Run a held command on the server; its result as the local call returns it."""
        wire = _wire()
        data = self.json("POST", f"/api/v1/commands/{command.name}", wire.encode(command.input, given))
        return wire.decode(command.output, data, f"the server's answer to {command.name}")

    def stream(self, command: Command[Any, Any], given: Any, use: Callable[[Iterable[Any]], Any]) -> Any:
        """Run a streamed command on the server: its items are spooled, then `use` reads them (maybe twice)."""
        wire = _wire()
        body = wire.encode(command.input, given)
        with (
            self.request("POST", f"/api/v1/commands/{command.name}", body) as response,
            tempfile.TemporaryFile() as spool,
        ):
            if response.status >= 300:
                raise _refusal(response, self.server)
            _spool(response, spool, self.server)

            def items() -> Iterator[Any]:
                spool.seek(0)
                for line in spool:
                    yield wire.decode_line(command.output, line, f"the server's answer to {command.name}")

            return use(Reread(items))


def _wire() -> ModuleType:
    """The JSON codec commands travel in (pydantic: the remote extra).

    Raises:
        ConfigurationError: the remote extra is not installed.
    """
    extras.require(extras.REMOTE)
    from consultflow.services import wire  # noqa: PLC0415 - the remote extra, imported when a command is sent

    return wire


def _spool(response: http.client.HTTPResponse, spool: IO[bytes], server: str) -> None:
    """Copy the items to the spool; the end line must come, an error line raises."""
    try:
        for line in response:
            if not line.strip():  # the server's heartbeat while it works
                continue
            if line.startswith(b'{"item":'):
                spool.write(line[len(b'{"item":') : line.rstrip().rfind(b"}")] + b"\n")
                continue
            last = json.loads(line)
            if isinstance(last, dict) and "end" in last:
                return
            if isinstance(last, dict) and "error" in last:
                raise RemoteRefusalError(str(last["error"]), int(last.get("exit_code", 1)))
    except (OSError, http.client.HTTPException, ValueError, TypeError):
        pass
    msg = f"the answer from {server} was cut off before its end; run the command again (a change is all or nothing)"
    raise ServerUnreachableError(msg)


def _refusal(response: http.client.HTTPResponse, server: str) -> ConsultflowError:
    try:
        body = json.loads(response.read(_MAX_ERROR_BYTES))
        return RemoteRefusalError(str(body["error"]), int(body.get("exit_code", 1)))
    except (ValueError, KeyError, TypeError, OSError, http.client.HTTPException):
        return ServerUnreachableError(f"the server at {server} answered HTTP {response.status}, not consultflow's JSON")
