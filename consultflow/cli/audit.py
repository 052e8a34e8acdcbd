"""`consultflow audit`: histories and rounds-to-outcome figures for auditors."""

from __future__ import annotations

import json

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.cli.output import local_time, shorten, table
from consultflow.domain.vocabulary import Outcome
from consultflow.services import audit, statistics


@click.group("audit")
def audit_group() -> None:
    """Read the audit trail (auditors change nothing)."""


@audit_group.command("history")
@click.argument("opinion_id", type=int)
@json_flag
@pass_state
def audit_history(state: CliState, opinion_id: int) -> None:
    """The full timeline of OPINION_ID from its audit events."""
    view, events = audit.history(state.services(), opinion_id)
    tz = state.settings.tz

    def text() -> str:
        out = [
            f"opinion {view.id}: {shorten(view.text, 60)}",
            f"now: {view.state}, {view.rounds_count} round(s)",
            "",
        ]
        rows = [
            (
                e.seq,
                local_time(e.at, tz),
                e.round_no,
                e.trigger or e.kind,
                f"{e.from_state or '·'} -> {e.to_state}",
                f"{e.actor} ({e.role})",
                shorten(json.dumps(e.payload, ensure_ascii=False), 50) if e.payload else "",
            )
            for e in events
        ]
        out.append(table(["#", "at", "round", "trigger", "change", "by", "details"], rows))
        return "\n".join(out)

    state.emit({"opinion": view, "events": events}, text)


@audit_group.command("rounds")
@click.argument("consultation_id", type=int)
@json_flag
@pass_state
def audit_rounds(state: CliState, consultation_id: int) -> None:
    """How many rounds each adopted, partly adopted and rejected opinion went through."""
    report = statistics.rounds_report(state.services(), consultation_id, per_opinion=state.json)

    def text() -> str:
        most = max((max(o.histogram, default=0) for o in report.outcomes), default=0)
        headers = [
            "outcome",
            "opinions",
            *[f"{n} round(s)" for n in range(1, most + 1)],
            "mean",
        ]
        rows = [
            (
                state.label(Outcome(o.outcome).label),
                o.total,
                *[o.histogram.get(n, 0) for n in range(1, most + 1)],
                f"{o.mean:.2f}",
            )
            for o in report.outcomes
        ]
        return f"consultation {consultation_id}: rounds to outcome\n" + table(headers, rows)

    state.emit(report, text)


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(audit_group)
