"""`consultflow serve` (or `web`): the server, with uvicorn, in one or several worker processes."""

from __future__ import annotations

import os

import click

from consultflow.cli.main import CliState, pass_state

APP_FACTORY = "consultflow.web.app:app_from_env"


@click.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, envvar="CONSULTFLOW_WEB_HOST", help="Address to listen on."
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, envvar="CONSULTFLOW_WEB_PORT",
    help="Port to listen on.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, envvar="CONSULTFLOW_WEB_WORKERS",
    help="Worker processes (several need PostgreSQL, or SQLite's single writer queues them).",
)  # fmt: skip
@click.option(
    "--forwarded-allow-ips", default="127.0.0.1", show_default=True, envvar="CONSULTFLOW_WEB_FORWARDED_ALLOW_IPS",
    help="Reverse proxies whose X-Forwarded-For is trusted for client addresses (rate limits).",
)  # fmt: skip
@pass_state
def web_command(state: CliState, host: str, port: int, workers: int, forwarded_allow_ips: str) -> None:
    """Run the server: the staff API (the only writer), the villagers' portal, the published account.

    Staff sign in to it (`consultflow login URL`) and never hold database credentials: only this
    process does. Settings come from the environment (see README, "The server"); the database,
    time zone, workflows and chain key from the global options. Stop it with SIGTERM or Ctrl-C.
    """
    import uvicorn  # noqa: PLC0415 - loaded when the command runs

    from consultflow.web.app import WebSettings  # noqa: PLC0415

    state.services()  # a missing database or an old schema is refused here, in one line
    settings = state.settings
    if not os.environ.get("CONSULTFLOW_WEB_SECRET") and not os.environ.get("CONSULTFLOW_WEB_SECRET_FILE"):
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
