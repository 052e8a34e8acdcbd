"""`consultflow round`: open, close and inspect a consultation's rounds."""

from __future__ import annotations

import click

from consultflow.cli.main import CliState, as_option, json_flag, pass_state
from consultflow.cli.output import ID, local_time, table
from consultflow.services.commands.consultations import CloseRound, OpenRound, RescheduleRound
from consultflow.services.commands.core import OfConsultation
from consultflow.services.inputs import parse_time


@click.group("round")
def round_group() -> None:
    """Rounds (轮次): each one a pass of participate -> feedback."""


@round_group.command("open")
@click.argument("consultation_id", type=ID)
@click.option("--closes-at", help="When the round is due to close (local time, ISO 8601).")
@as_option
@pass_state
def round_open(state: CliState, consultation_id: int, closes_at: str | None) -> None:
    """Open the next round of CONSULTATION_ID."""
    when = parse_time(closes_at, state.settings.tz) if closes_at else None
    view = state.call("round.open", OpenRound(consultation_id, when))
    state.emit(
        view,
        lambda: (
            f"round {view.number} of consultation {consultation_id} is open"
            + (f" until {local_time(view.closes_at, state.settings.tz)}" if view.closes_at else "")
        ),
    )


@round_group.command("reschedule")
@click.argument("consultation_id", type=ID)
@click.argument("closes_at")
@as_option
@pass_state
def round_reschedule(state: CliState, consultation_id: int, closes_at: str) -> None:
    """Set or move the open round's closing time (local time, ISO 8601); reminders follow it."""
    when = parse_time(closes_at, state.settings.tz)
    view = state.call("round.reschedule", RescheduleRound(consultation_id, when))
    state.emit(view, lambda: f"round {view.number} now closes {local_time(view.closes_at, state.settings.tz)}")


@round_group.command("close")
@click.argument("consultation_id", type=ID)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List exactly what closing would do, and change nothing.",
)
@as_option
@pass_state
def round_close(state: CliState, consultation_id: int, dry_run: bool) -> None:
    """Close the open round, applying the workflow's round-close rules."""
    plan = state.call("round.close", CloseRound(consultation_id, dry_run))

    def text() -> str:
        head = "would close" if plan.dry_run else "closed"
        out = [
            f"{head} round {plan.round_no} of consultation {plan.consultation_id}: {plan.affected} opinion(s) affected"
        ]
        if plan.moves:
            out.append(table(["action", "from", "to", "opinions"], plan.summary()))
        if plan.dry_run:
            out += [
                "",
                table(
                    ["opinion", "action", "from", "to"],
                    [(s.opinion_id, s.trigger or s.action, s.from_state, s.to_state) for s in plan.steps],
                ),
            ]
        return "\n".join(out)

    state.emit(plan, text)


@round_group.command("status")
@click.argument("consultation_id", type=ID)
@json_flag
@pass_state
def round_status(state: CliState, consultation_id: int) -> None:
    """The open round and the opinions still waiting, by state."""
    status = state.call("round.status", OfConsultation(consultation_id))
    tz = state.settings.tz

    def text() -> str:
        r = status.open_round
        head = (
            f"round {r.number} open since {local_time(r.opened_at, tz)}"
            + (f", closes {local_time(r.closes_at, tz)}" if r.closes_at else "")
            if r
            else "no round open"
        )
        out = [
            f"consultation {consultation_id}: {head} ({len(status.rounds)} round(s) so far)",
            "",
        ]
        out.append(table(["waiting in state", "opinions"], status.waiting))
        return "\n".join(out)

    state.emit(status, text)


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(round_group)
