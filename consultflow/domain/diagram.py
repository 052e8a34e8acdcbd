"""Diagrams of a workflow, drawn from the same spec the machine runs on."""

from __future__ import annotations

from consultflow.domain.labels import Lang
from consultflow.domain.workflow import WorkflowSpec


def _quote(text: str) -> str:
    r"""A DOT string: backslashes and quotes escaped, line breaks as DOT's own \n escape."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def to_dot(spec: WorkflowSpec, lang: Lang = "zh") -> str:
    """Graphviz DOT: terminal states drawn double, edges labelled with trigger and roles."""
    lines = [
        f"digraph {_quote(spec.key)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Noto Sans CJK SC, sans-serif"];',
        '  __start [shape=point, label=""];',
        f"  __start -> {_quote(spec.initial)};",
    ]
    for state in spec.states.values():
        shape = ", peripheries=2" if state.terminal else ""
        label = f"{state.label.get(lang)}\n{state.name}"
        lines.append(f"  {_quote(state.name)} [label={_quote(label)}{shape}];")
    for t in spec.transitions.values():
        roles = ",".join(sorted(r.value for r in t.roles))
        label = f"{t.label.get(lang)} ({t.trigger})\n[{roles}]"
        for src in t.sources:
            lines.append(f"  {_quote(src)} -> {_quote(t.dest)} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(spec: WorkflowSpec, lang: Lang = "zh") -> str:
    """Mermaid `stateDiagram-v2` text, which renders without any system package."""
    lines = ["stateDiagram-v2", f"  [*] --> {spec.initial}"]
    for state in spec.states.values():
        lines.append(f"  {state.name} : {state.label.get(lang)}")
    for t in spec.transitions.values():
        for src in t.sources:
            lines.append(f"  {src} --> {t.dest} : {t.label.get(lang)} ({t.trigger})")
    for name in spec.terminal_states():
        lines.append(f"  {name} --> [*]")
    return "\n".join(lines) + "\n"
