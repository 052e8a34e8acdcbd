"""`consultflow settings`: every CONSULTFLOW_* setting, what it means, and what this environment gives it."""

from __future__ import annotations

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.cli.output import table
from consultflow.config import SETTINGS, environment, settings_table


@click.command("settings")
@click.option(
    "--markdown",
    is_flag=True,
    help="The table as Markdown (the documentation's configuration reference is made from it).",
)
@json_flag
@pass_state
def settings_command(state: CliState, markdown: bool) -> None:
    """Every CONSULTFLOW_* setting: its option, default, who reads it, its meaning, and its value here.

    Secrets (passwords, keys, tokens) show only whether they are set.
    """
    if markdown:
        click.echo(settings_table())
        return
    env = environment()

    def here(name: str, secret: bool) -> str | None:
        value = env.get(name)
        if value is None:
            return None
        return "(set)" if secret else str(value)

    rows = [
        {
            "variable": s.env,
            "option": s.option,
            "default": s.default or None,
            "used_by": s.part,
            "meaning": s.meaning,
            "value": here(s.env, s.secret),
        }
        for s in SETTINGS
    ]
    state.emit(
        rows,
        lambda: table(
            ["variable", "option", "default", "here", "meaning"],
            [(r["variable"], r["option"], r["default"], r["value"], r["meaning"]) for r in rows],
        ),
    )
