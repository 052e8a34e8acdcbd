"""`consultflow serve` (or `web`): the server, with uvicorn, in one or several worker processes."""

from __future__ import annotations

import errno
import os
import socket

import click

from consultflow import extras
from consultflow.cli.main import CliState, pass_state
from consultflow.config import env_default, environment
from consultflow.domain.errors import AddressInUseError, ConfigurationError
from consultflow.logconfig import get_logger

APP_FACTORY = "consultflow.web.app:app_from_env"


@click.command("serve")
@click.option(
    "--host",
    default=env_default("CONSULTFLOW_WEB_HOST", "127.0.0.1"),
    show_default="127.0.0.1",
    help="Address to listen on [env CONSULTFLOW_WEB_HOST].",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=env_default("CONSULTFLOW_WEB_PORT", 8000), show_default="8000",
    help="Port to listen on [env CONSULTFLOW_WEB_PORT].",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(1, 64), default=env_default("CONSULTFLOW_WEB_WORKERS", 1), show_default="1",
    help="Worker processes (several need PostgreSQL, or SQLite's single writer queues them) "
    "[env CONSULTFLOW_WEB_WORKERS].",
)  # fmt: skip
@click.option(
    "--forwarded-allow-ips", default=env_default("CONSULTFLOW_WEB_FORWARDED_ALLOW_IPS", "127.0.0.1"),
    show_default="127.0.0.1",
    help="Reverse proxies whose X-Forwarded-For is trusted for client addresses (rate limits) "
    "[env CONSULTFLOW_WEB_FORWARDED_ALLOW_IPS].",
)  # fmt: skip
@pass_state
def web_command(state: CliState, host: str, port: int, workers: int, forwarded_allow_ips: str) -> None:
    """Run the server: the staff API (the only writer), the villagers' portal, the published account.

    Staff sign in to it (`consultflow login URL`) and never hold database credentials: only this
    process does. Settings come from the environment (see docs/operators/server.md); the database,
    time zone, workflows and chain key from the global options. Stop it with SIGTERM or Ctrl-C.
    """
    extras.require(extras.WEB)  # without the web extra: one line naming it
    import uvicorn  # noqa: PLC0415 - loaded when the command runs

    from consultflow.web.common import WebSettings  # noqa: PLC0415

    state.services()  # a missing database or an old schema is refused here, in one line
    settings = state.settings
    env = environment()
    random_secret = not env.get("CONSULTFLOW_WEB_SECRET") and not env.get("CONSULTFLOW_WEB_SECRET_FILE")
    if random_secret:
        os.environ["CONSULTFLOW_WEB_SECRET"] = os.urandom(32).hex()  # one secret shared by this run's workers
    WebSettings.from_env()  # bad limits or a short secret: one line before anything listens
    os.environ["CONSULTFLOW_DB"] = settings.db_url
    os.environ["CONSULTFLOW_TZ"] = settings.tz_name
    os.environ["CONSULTFLOW_LOG_JSON"] = "1" if settings.log_json else ""
    os.environ["CONSULTFLOW_LOG_LEVEL"] = settings.log_level
    if settings.workflows_dir is not None:
        os.environ["CONSULTFLOW_WORKFLOWS"] = str(settings.workflows_dir)
    if settings.chain_key_file is not None:
        os.environ["CONSULTFLOW_CHAIN_KEY_FILE"] = str(settings.chain_key_file)
    check_port(host, port)  # a port in use: one line and exit code 71, before "listening"
    if random_secret:  # said once it starts: a refusal above stays one line
        get_logger(__name__).warning(
            "web_secret_random",
            hint="sign-ins in progress, forms and the portal's limits do not survive a restart or agree between "
            "servers; set CONSULTFLOW_WEB_SECRET_FILE (or CONSULTFLOW_WEB_SECRET)",
        )
    click.echo(f"consultflow server on http://{host}:{port}/ ({workers} worker(s)); Ctrl-C stops it", err=True)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=False,  # consultflow logs each request itself, with no client address
        log_level="warning",
        server_header=False,
    )


def check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on, or an address this machine cannot listen on, in one line.

    Raises:
        AddressInUseError: the port is in use (exit code 71).
        ConfigurationError: the address is not this machine's, or the port needs privileges.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        msg = f"cannot listen on {host}:{port}: {exc.strerror}"
        raise ConfigurationError(msg) from None
    family, kind, proto, _name, address = found[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                msg = f"port {port} on {host} is in use by another process; nothing was started (choose --port)"
                raise AddressInUseError(msg) from None
            msg = f"cannot listen on {host}:{port}: {exc.strerror}"
            raise ConfigurationError(msg) from None
