"""The `consultflow` command: global options, error handling, and the command groups."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from consultflow import __version__, extras
from consultflow.config import (
    DEFAULT_DB,
    DEFAULT_TZ,
    KNOWN,
    Environment,
    Settings,
    env_default,
    load_zone,
    zone_database,
)
from consultflow.domain.clock import Clock
from consultflow.domain.errors import (
    INTERNAL_ERROR_EXIT_CODE,
    ConfigurationError,
    ConsultflowError,
    PermissionDeniedError,
)
from consultflow.domain.identity import PORTAL_ACTOR
from consultflow.domain.labels import Label

if TYPE_CHECKING:
    from consultflow.cli.remote import Client
    from consultflow.services.context import ServiceContext

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

BROKEN_PIPE_EXIT_CODE = 141  # 128 + SIGPIPE, what shells report for a reader that stopped reading


@dataclass
class CliState:
    """Per-invocation state shared by every command."""

    settings: Settings
    clock: Clock | None = None
    _services: ServiceContext | None = None
    # Set when the CLI works through a server (a stored sign-in and no --db): registered commands
    # go there; anything else is refused rather than run on a database this person cannot reach.
    remote: Client | None = None
    signed_in_as: str | None = None

    def services(self, *, check_schema: bool = True, create: bool = False) -> ServiceContext:
        """The service context, connecting on first use (`create`: the command may make the database)."""
        from consultflow.bootstrap import build_context  # noqa: PLC0415 - keeps --help free of SQLAlchemy

        if self.remote is not None:
            click_ctx = click.get_current_context(silent=True)
            what = click_ctx.command_path if click_ctx is not None else "this command"
            msg = (
                f"'{what}' does not go through the server yet; run it where the database is, with --db "
                f"(you are signed in to {self.remote.server})"
            )
            raise ConfigurationError(msg)
        if self._services is None:
            self._services = build_context(self.settings, clock=self.clock, check_schema=check_schema, create=create)
        return self._services

    def call(self, name: str, given: Any, **hooks: Any) -> Any:
        """Run the registered command `name`: on the server when signed in to one, else on the database.

        `hooks` (a progress callback) are for the local call only.
        """
        from consultflow.services.commands.core import lookup  # noqa: PLC0415 - loads a use case's module if need be

        command = lookup(name)
        if self.remote is not None:
            self._check_acting()
            return self.remote.call(command, given)
        return command.run(self.services(), self.actor, given, **hooks)

    def stream(self, name: str, given: Any, use: Callable[[Iterable[Any]], T]) -> T:
        """Run the registered streamed command `name`; `use` reads its items (as `call` chooses where)."""
        from consultflow.services.commands.core import lookup  # noqa: PLC0415

        command = lookup(name)
        if self.remote is not None:
            self._check_acting()
            result: T = self.remote.stream(command, given, use)
            return result
        return command.run_streamed(self.services(), self.actor, given, use)

    def _check_acting(self) -> None:
        """Through the server, the signed-in person acts; `--as` may only repeat their name."""
        if self.actor and self.signed_in_as and self.actor != self.signed_in_as:
            assert self.remote is not None
            msg = (
                f"you are signed in to {self.remote.server} as {self.signed_in_as}; --as {self.actor} cannot act "
                "through the server (sign in as that person with 'consultflow login')"
            )
            raise PermissionDeniedError(msg)

    @property
    def json(self) -> bool:
        """Whether output is one JSON document."""
        return self.settings.json_output

    @property
    def actor(self) -> str | None:
        """Who is acting (--as)."""
        return self.settings.actor

    def label(self, label: Label) -> str:
        """A label in the chosen language."""
        return label.get(self.settings.lang)

    def emit(self, value: object, text: Callable[[], str]) -> None:
        """JSON when asked for, else the text rendering."""
        if self.json:
            from consultflow.cli.output import emit_json  # noqa: PLC0415 - json and the renderers load on use

            emit_json(value, self.settings.tz)
        else:
            click.echo(text())

    def emit_lines(self, value: object, lines: Callable[[], Iterable[str]]) -> None:
        """As `emit`, for output of a line per item: the lines go out as they come."""
        if self.json:
            self.emit(value, lambda: "")
        else:
            from consultflow.cli.output import echo_lines  # noqa: PLC0415 - as in emit

            echo_lines(lines())


pass_state = click.make_pass_decorator(CliState)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        state = ctx.find_object(CliState)
        if state is not None:
            state.settings = replace(state.settings, json_output=True)


def _set_actor(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        if value == "system":
            raise click.BadParameter("'system' is reserved for consultflow itself", param_hint="--as")
        state = ctx.find_object(CliState)
        if state is not None:
            state.settings = replace(state.settings, actor=value)


def as_option(func: F) -> F:
    """`--as NAME` on a command that changes data (the same as the global `consultflow --as`)."""
    return click.option(
        "--as",
        "as_",
        metavar="NAME",
        expose_value=False,
        callback=_set_actor,
        help="Who is acting (a registered actor).",
    )(func)


def json_flag(func: F) -> F:
    """`--json` on a read command (the same as the global `consultflow --json`)."""
    return click.option(
        "--json",
        "json_",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print one JSON document.",
    )(func)


# name: (module, attribute, short help). Command modules load only when their command runs, so
# `consultflow --help` imports neither SQLAlchemy nor Alembic; a test keeps the help texts in step.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "account": (
        "consultflow.cli.accounts",
        "account_group",
        "Staff accounts on the server: passwords, tokens, two-step sign-in.",
    ),
    "actor": (
        "consultflow.cli.people",
        "actor_group",
        "People who act: coordinators, planners, local experts, participants, auditors.",
    ),
    "audit": ("consultflow.cli.audit", "audit_group", "Read the audit trail (auditors change nothing)."),
    "consultation": (
        "consultflow.cli.consultation",
        "consultation_group",
        "Consultations: one per area plan (片区规划).",
    ),
    "db": ("consultflow.cli.db", "db_group", "Create and upgrade the database schema."),
    "demo": (
        "consultflow.cli.demo",
        "demo_command",
        "Run a consultation shaped like the county pilot: ~800 opinions, three rounds, 203 adopted.",
    ),
    "opinion": (
        "consultflow.cli.opinion",
        "opinion_group",
        "Opinions (意见建议): the unit that moves through the workflow.",
    ),
    "participant": ("consultflow.cli.people", "participant_group", "Villagers and groups whose opinions are recorded."),
    "programme": (
        "consultflow.cli.programme",
        "programme_group",
        "County programmes of areas (片区): consultations side by side.",
    ),
    "reminders": (
        "consultflow.cli.reminders",
        "reminders_group",
        "Reminders owed to planners, participants and coordinators, and their deliveries.",
    ),
    "plan": (
        "consultflow.cli.plans",
        "plan_group",
        "The draft plan (规划草案): versions of numbered sections and clauses, and their diff.",
    ),
    "report": ("consultflow.cli.report", "report_group", "Reports for publication, in zh or en (--lang)."),
    "review": (
        "consultflow.cli.plans",
        "review_group",
        "Review rounds (成果评审 / 大众点评): the public rates each clause of a plan version.",
    ),
    "round": ("consultflow.cli.rounds", "round_group", "Rounds (轮次): each one a pass of participate -> feedback."),
    "theme": (
        "consultflow.cli.themes",
        "theme_group",
        "Themes (主题) opinions are coded with: counts, keyword suggestions, % coded per round.",
    ),
    "login": (
        "consultflow.cli.session",
        "login_command",
        "Sign in to the consultflow server at SERVER; later commands go through it.",
    ),
    "logout": ("consultflow.cli.session", "logout_command", "Revoke this machine's token on the server and forget it."),
    "serve": (
        "consultflow.cli.web",
        "web_command",
        "Run the server: the staff API (the only writer), the villagers' portal, the published account.",
    ),
    "settings": (
        "consultflow.cli.settings",
        "settings_command",
        "Every CONSULTFLOW_* setting: its option, default, who reads it, its meaning, and its value here.",
    ),
    "web": (
        "consultflow.cli.web",
        "web_command",
        "Run the server: the staff API (the only writer), the villagers' portal, the published account.",
    ),  # the earlier name of `serve`
    "whoami": (
        "consultflow.cli.session",
        "whoami_command",
        "Who commands act as: the signed-in person on a server, or --as on a local database.",
    ),
    "worker": ("consultflow.cli.reminders", "worker_command", "Run the reminder worker until SIGTERM or SIGINT."),
    "workflow": (
        "consultflow.cli.workflow",
        "workflow_group",
        "Workflows: the state machines opinions run on (YAML files in workflows/).",
    ),
}


# Commands that never go through a server: they sign in and out, or work on a database (or files)
# on this machine. `--db` (or CONSULTFLOW_DB) makes any command local.
LOCAL_ONLY = frozenset({"login", "logout", "whoami", "db", "demo", "serve", "web", "worker", "settings"})


class ConsultflowGroup(click.Group):
    """Loads commands lazily; turns a user's mistake into one line on stderr, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 - click's signature
        """Every command, loaded or not."""
        return sorted({*LAZY_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        """The command, importing its module on first use."""
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attribute, _help = LAZY_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:  # noqa: ARG002
        """The command list from the table above, without importing any command."""
        rows = [(name, LAZY_COMMANDS[name][2]) for name in sorted(LAZY_COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a user's mistake is one line and its exit code, a bug is one line and 70."""
        try:
            return super().invoke(ctx)
        except ConsultflowError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing more was written.", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # The reader went away (`consultflow ... | head`): stop quietly, as a shell tool does on SIGPIPE.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(BROKEN_PIPE_EXIT_CODE)
        except Exception as exc:  # noqa: BLE001 - the one place a bug is turned into one line
            from consultflow.logconfig import record_internal_error  # noqa: PLC0415

            where = record_internal_error(exc)
            kept = f"; details are in {where}" if where else ""
            _fail(ctx, f"internal error ({type(exc).__name__}){kept}; please report it", INTERNAL_ERROR_EXIT_CODE)
        return None


def _fail(ctx: click.Context, message: str, code: int) -> None:
    state = ctx.find_object(CliState)
    if state is not None and state.json:
        import json  # noqa: PLC0415

        click.echo(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False), err=True)
    else:
        click.echo(f"Error: {message}", err=True)
    ctx.exit(code)


@click.group(cls=ConsultflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="consultflow")
@click.option(
    "--db",
    default=env_default("CONSULTFLOW_DB", DEFAULT_DB),
    show_default=DEFAULT_DB,
    help="Database URL or SQLite file path [env CONSULTFLOW_DB].",
)
@click.option(
    "--as",
    "actor",
    default=env_default("CONSULTFLOW_ACTOR"),
    help="Who is acting: a registered actor's name [env CONSULTFLOW_ACTOR].",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Print one JSON document on stdout (logs stay on stderr).",
)
@click.option("--log-json", is_flag=True, help="Write logs as JSON lines on stderr.")
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default=env_default("CONSULTFLOW_LANG", "zh"),
    show_default="zh",
    help="Language of labels [env CONSULTFLOW_LANG].",
)
@click.option(
    "--tz",
    default=env_default("CONSULTFLOW_TZ", DEFAULT_TZ),
    show_default=DEFAULT_TZ,
    help="Time zone times are shown in [env CONSULTFLOW_TZ].",
)
@click.option(
    "--workflows",
    type=click.Path(path_type=Path, file_okay=False),
    default=env_default("CONSULTFLOW_WORKFLOWS"),
    help="Directory of workflow files [env CONSULTFLOW_WORKFLOWS].",
)
@click.option(
    "--chain-key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=env_default("CONSULTFLOW_CHAIN_KEY_FILE"),
    help="File holding the secret that HMAC-keys new consultations' audit chains "
    "[env CONSULTFLOW_CHAIN_KEY_FILE; or the key itself in CONSULTFLOW_CHAIN_KEY].",
)
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail too.")
@click.pass_context
def main(
    ctx: click.Context,
    db: str,
    actor: str | None,
    json_output: bool,
    log_json: bool,
    lang: str,
    tz: str,
    workflows: Path | None,
    chain_key_file: Path | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """consultflow: run public consultations in rounds (参与—反馈—再参与—再反馈).

    Every opinion moves through a workflow state machine until it is adopted, partly adopted,
    rejected, withdrawn or merged; every change is an audit event.
    """
    import structlog  # noqa: PLC0415 - loaded once a command runs, not for --help

    from consultflow.logconfig import configure_logging  # noqa: PLC0415

    level = "DEBUG" if verbose else "WARNING" if quiet else "INFO"
    configure_logging(json_lines=log_json, level=level)
    structlog.contextvars.clear_contextvars()
    env = Environment()  # every CONSULTFLOW_* setting checked once: a bad one is one line, before anything runs
    if env.unknown:
        import difflib  # noqa: PLC0415

        from consultflow.logconfig import get_logger  # noqa: PLC0415

        meant = {n: m[0] for n in env.unknown if (m := difflib.get_close_matches(n, sorted(KNOWN), n=1, cutoff=0.8))}
        get_logger(__name__).warning(
            "unknown_settings",
            names=env.unknown,
            hint="not consultflow settings; see 'consultflow settings'",
            **({"did_you_mean": meant} if meant else {}),
        )
    structlog.contextvars.bind_contextvars(command=ctx.invoked_subcommand)
    if actor == "system":
        raise click.BadParameter("'system' is reserved for consultflow itself", param_hint="--as")
    if actor == PORTAL_ACTOR:
        raise click.BadParameter(
            f"{PORTAL_ACTOR!r} is the web portal's actor; it acts only through the portal", param_hint="--as"
        )
    try:
        load_zone(tz)
    except ConsultflowError as exc:
        if not zone_database():
            raise  # the system has no zones at all: not the option's fault (exit 1, naming tzdata)
        raise click.BadParameter(str(exc), param_hint="--tz") from None
    settings = Settings(
        db_url=db,
        actor=actor,
        workflows_dir=workflows,
        tz_name=tz,
        lang="en" if lang == "en" else "zh",
        json_output=json_output,
        log_json=log_json,
        log_level=level,
        chain_key_file=chain_key_file,
        db_given=ctx.get_parameter_source("db") is not ParameterSource.DEFAULT or env.get("CONSULTFLOW_DB") is not None,
    )
    given = ctx.obj if isinstance(ctx.obj, dict) else {}
    ctx.obj = CliState(settings=settings, clock=given.get("clock"))
    if not settings.db_given and ctx.invoked_subcommand not in LOCAL_ONLY:
        from consultflow.cli.remote import Client, load_sign_in  # noqa: PLC0415 - only when no --db is given

        signed = load_sign_in()
        if signed is not None:
            extras.require(extras.REMOTE)  # signed in, but without the remote extra: one line naming it
            ctx.obj.remote = Client(signed.server, signed.token)
            ctx.obj.signed_in_as = signed.name
            if chain_key_file is not None or env.get("CONSULTFLOW_CHAIN_KEY"):
                click.echo(
                    "warning: a chain key is set on this machine, but it belongs on the server only "
                    "(commands run there, with its key); remove it from here",
                    err=True,
                )
    ctx.call_on_close(lambda: _dispose(ctx.obj))


def _dispose(state: CliState) -> None:
    if state._services is not None:  # noqa: SLF001 - owner of the object
        state._services.database.dispose()  # noqa: SLF001
