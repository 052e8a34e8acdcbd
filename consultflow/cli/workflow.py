"""`consultflow workflow`: list, show, validate and draw workflows."""

from __future__ import annotations

from pathlib import Path

import click

from consultflow.cli.main import CliState, json_flag, pass_state
from consultflow.cli.output import table
from consultflow.domain.diagram import to_dot, to_mermaid
from consultflow.domain.errors import WorkflowInvalidError
from consultflow.domain.workflow import WorkflowSpec
from consultflow.services import workflows
from consultflow.services.commands.core import Nothing
from consultflow.services.commands.workflows import OfWorkflow


@click.group("workflow")
def workflow_group() -> None:
    """Workflows: the state machines opinions run on (YAML files in workflows/)."""


@workflow_group.command("list")
@json_flag
@pass_state
def workflow_list(state: CliState) -> None:
    """Workflow files and the versions consultations use."""
    items = list(state.call("workflow.list", Nothing()).workflows)

    def text() -> str:
        rows = [
            (
                w.name,
                w.version or "?",
                "yes" if w.stored else "no",
                w.file or "-",
                "ok" if w.valid else f"{len(w.problems)} problem(s)",
            )
            for w in items
        ]
        listed = table(["name", "version", "in use", "file", "valid"], rows)
        invalid = [
            f"{w.file}: {len(w.problems)} problem(s)\n" + "".join(f"  {p}\n" for p in w.problems)
            for w in items
            if not w.valid
        ]
        return listed + ("\n\n" + "".join(invalid).rstrip() if invalid else "")

    state.emit(items, text)


def spec_summary(spec: WorkflowSpec) -> dict[str, object]:
    """A workflow as a JSON-ready document (labels in both languages)."""
    return {
        "name": spec.name,
        "version": spec.version,
        "digest": spec.digest,
        "title": spec.title,
        "initial": spec.initial,
        "states": [
            {
                "name": s.name,
                "label": s.label,
                "outcome": s.outcome,
                "deadline": s.deadline,
            }
            for s in spec.states.values()
        ],
        "transitions": [
            {
                "trigger": t.trigger,
                "label": t.label,
                "sources": t.sources,
                "dest": t.dest,
                "roles": sorted(r.value for r in t.roles),
                "required": t.required,
                "optional": t.optional,
                "completes_cycle": t.completes_cycle,
                "starts_round": t.starts_round,
            }
            for t in spec.transitions.values()
        ],
        "round_close": {s: (r.trigger or r.action) for s, r in spec.round_close.items()},
        "categories": dict(spec.categories),
        "channels": dict(spec.channels),
        "reminders": spec.reminders,
    }


@workflow_group.command("show")
@click.argument("ref", default="consultation-loop")
@json_flag
@pass_state
def workflow_show(state: CliState, ref: str) -> None:
    """Show workflow REF (NAME or NAME@VERSION): states, transitions, rules, labels."""
    spec: WorkflowSpec = state.call("workflow.show", OfWorkflow(ref))

    def text() -> str:
        lab = state.label
        out = [f"{spec.key}  {lab(spec.title)}", "", "States:"]
        out.append(
            table(
                ["state", "label", "outcome", "deadline"],
                [
                    (
                        s.name,
                        lab(s.label),
                        s.outcome.value if s.outcome else "-",
                        _deadline_text(
                            s.deadline.after_days,
                            s.deadline.at_round_close,
                            s.deadline.owner.value,
                        )
                        if s.deadline
                        else "-",
                    )
                    for s in spec.states.values()
                ],
            )
        )
        out += ["", "Transitions:"]
        out.append(
            table(
                ["trigger", "label", "from", "to", "roles", "fields"],
                [
                    (
                        t.trigger + (" ↻" if t.starts_round else "") + (" ✓" if t.completes_cycle else ""),
                        lab(t.label),
                        ",".join(t.sources),
                        t.dest,
                        ",".join(sorted(r.value for r in t.roles)),
                        " ".join([f.option for f in t.required] + [f"[{f.option}]" for f in t.optional]) or "-",
                    )
                    for t in spec.transitions.values()
                ],
            )
        )
        out.append("(↻ starts a new round for the opinion; ✓ completes a participate-feedback cycle)")
        out += ["", "When a round closes:"]
        out += [
            f"  {s}: {'fire ' + r.trigger if r.trigger else 'carry over to the next round'}"
            for s, r in spec.round_close.items()
        ]
        if spec.reminders:
            out += ["", "Reminders (days relative to the deadline):"]
            out += [
                f"  {r.name}: {r.state} -> {r.recipient.value} at {', '.join(f'{d:+g}' for d in r.offsets_days)}"
                + (" (escalation)" if r.escalation else "")
                for r in spec.reminders
            ]
        out += [
            "",
            "Categories: " + ", ".join(f"{k} ({lab(v)})" for k, v in spec.categories.items()),
        ]
        out += ["Channels:   " + ", ".join(f"{k} ({lab(v)})" for k, v in spec.channels.items())]
        return "\n".join(out)

    state.emit(spec_summary(spec), text)


def _deadline_text(after_days: float | None, at_round_close: bool, owner: str) -> str:
    when = "at round close" if at_round_close else f"{after_days:g} days"
    return f"{when} ({owner})"


@workflow_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_flag
@pass_state
def workflow_validate(state: CliState, files: tuple[Path, ...]) -> None:
    """Check workflow FILES; every problem is listed with its path. Exit 1 if any is invalid."""
    results: list[dict[str, object]] = []
    for path in files:
        try:
            spec = workflows.read_file(path)
            results.append({"file": str(path), "valid": True, "workflow": spec.key, "problems": []})
        except WorkflowInvalidError as exc:
            results.append(
                {
                    "file": str(path),
                    "valid": False,
                    "workflow": None,
                    "problems": exc.problems,
                }
            )

    def text() -> str:
        lines = []
        for r in results:
            if r["valid"]:
                lines.append(f"{r['file']}: ok ({r['workflow']})")
            else:
                problems = r["problems"]
                assert isinstance(problems, list)
                lines.append(f"{r['file']}: {len(problems)} problem(s)")
                lines += [f"  {p}" for p in problems]
        return "\n".join(lines)

    state.emit(results, text)
    if not all(r["valid"] for r in results):
        raise SystemExit(1)


@workflow_group.command("diagram")
@click.argument("ref", default="consultation-loop")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
)
@json_flag
@pass_state
def workflow_diagram(state: CliState, ref: str, fmt: str) -> None:
    """Draw workflow REF as Mermaid text or Graphviz DOT (labels in --lang)."""
    spec: WorkflowSpec = state.call("workflow.show", OfWorkflow(ref))
    render = to_dot if fmt == "dot" else to_mermaid
    drawn = render(spec, state.settings.lang)
    if state.json:
        state.emit({"workflow": spec.key, "format": fmt, "diagram": drawn}, lambda: drawn)
    else:
        click.echo(drawn, nl=False)


def register(main: click.Group) -> None:
    """Attach the commands."""
    main.add_command(workflow_group)
