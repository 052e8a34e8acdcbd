"""Loading workflow files: YAML in, a validated `WorkflowSpec` out, or every problem with its path.

A coordinator editing YAML wants the whole list at once (`transitions[3].dest: unknown state
'adoptd'`), so the validator collects problems instead of stopping at the first.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

from consultflow.domain.errors import WorkflowInvalidError
from consultflow.domain.groups import DEFAULT_GROUPS, GROUP_ID, MAX_GROUP_ID
from consultflow.domain.labels import Label
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import EntryKind, Field, Outcome
from consultflow.domain.workflow import CloseRule, Deadline, ReminderRule, StateSpec, TransitionSpec, WorkflowSpec
from consultflow.domain.workflow_schema import schema_problems

MAX_FILE_CHARS = 200_000
MAX_DEPTH = 8

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_WORKFLOW_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
TOP_LEVEL_KEYS = frozenset(
    {
        "format",
        "name",
        "version",
        "title",
        "initial",
        "states",
        "transitions",
        "round_close",
        "categories",
        "channels",
        "reminders",
        "groups",
    }
)


class _Problems:
    """Collects validation problems with their paths instead of stopping at the first."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def load_workflow_text(text: str, source: str = "<text>", *, stored_digest: str | None = None) -> WorkflowSpec:
    """Parse and validate a workflow from YAML text.

    `stored_digest` is the digest a stored copy was registered under. When the text still has that
    digest, it is the very text that passed validation when it was stored, so it is parsed with
    libyaml (when PyYAML has it) and the JSON-schema pass is skipped: importing jsonschema and
    walking the schema cost every command about 0.1 s. The rules that build the spec still run.

    Raises:
        WorkflowInvalidError: listing every problem found, each with its path.
    """
    if len(text) > MAX_FILE_CHARS:
        raise WorkflowInvalidError(source, [f"(file): longer than {MAX_FILE_CHARS} characters"])
    import yaml  # noqa: PLC0415 - read commands that load no workflow text never pay for it

    checked = stored_digest is not None and hashlib.sha256(text.encode("utf-8")).hexdigest() == stored_digest
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if checked else yaml.SafeLoader
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise WorkflowInvalidError(source, [f"{where}: {problem}"]) from None
    except RecursionError:
        raise WorkflowInvalidError(source, [f"(file): nested deeper than {MAX_DEPTH} levels"]) from None
    if not isinstance(data, dict):
        raise WorkflowInvalidError(source, ["(top): expected a mapping of workflow keys"])
    plain = _plain_problems(data)
    if plain:
        raise WorkflowInvalidError(source, plain)
    shape = [] if checked else schema_problems(data)
    if not shape:
        return _build(data, text, source)
    # Report the sections of the wrong shape, and what the rules say of the well-shaped rest, at once.
    broken = {section for section, _ in shape}
    problems = [problem for _, problem in shape]
    try:
        _build({k: v for k, v in data.items() if k not in broken}, text, source)
    except WorkflowInvalidError as exc:
        problems += [p for p in exc.problems if _section(p) not in broken and not _graph_noise(p, broken)]
    if "transitions" in broken and "states" not in broken and data.get("states"):
        problems += _unknown_references(data)  # a misspelt destination is said with the shape's problems
    raise WorkflowInvalidError(source, problems)


def _graph_noise(problem: str, broken: set[str]) -> bool:
    """A reachability problem found without the transitions (they are of the wrong shape): not the file's."""
    return "transitions" in broken and ("unreachable from the initial state" in problem or "no path from" in problem)


def _unknown_references(data: dict[str, Any]) -> list[str]:
    """Each transition's source or destination that names no state, when the transitions' shape is wrong."""
    raw_states = data.get("states")
    names = {s.get("name") for s in raw_states if isinstance(s, dict)} if isinstance(raw_states, list) else set()
    found: list[str] = []
    transitions = data.get("transitions")
    for i, item in enumerate(transitions if isinstance(transitions, list) else []):
        if not isinstance(item, dict):
            continue
        raw_source = item.get("source")
        sources = [raw_source] if isinstance(raw_source, str) else raw_source if isinstance(raw_source, list) else []
        for j, src in enumerate(sources):
            if isinstance(src, str) and src != "*" and src not in names:
                where = f"transitions[{i}].source" + ("" if isinstance(raw_source, str) else f"[{j}]")
                found.append(f"{where}: unknown state {src!r}")
        dest = item.get("dest")
        if isinstance(dest, str) and dest not in names:
            found.append(f"transitions[{i}].dest: unknown state {dest!r}; states: {', '.join(sorted(map(str, names)))}")
    return found


def _section(problem: str) -> str:
    """The top-level key a rule's problem (`transitions[3].dest: ...`) is about."""
    return re.split(r"[.\[:]", problem, maxsplit=1)[0]


def _plain_problems(data: object) -> list[str]:
    """Anything the schema cannot judge: non-text keys, deep nesting, YAML-only types, NaN."""
    problems: list[str] = []
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    while stack and len(problems) < 50:
        value, path, depth = stack.pop()
        where = path.lstrip(".") or "(top)"
        if depth > MAX_DEPTH:
            problems.append(f"{where}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append(f"{where}: key {key!r} is not text; keys are names")
                else:
                    stack.append((item, f"{path}.{key}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}: {value!r} is not a number")
        elif not isinstance(value, (str, int, float, bool)) and value is not None:
            problems.append(f"{where}: a {type(value).__name__} is not allowed here; write it as text")
    return sorted(problems)


def _build(data: dict[str, Any], text: str, source: str) -> WorkflowSpec:
    problems = _Problems()
    for key in sorted(set(data) - TOP_LEVEL_KEYS):
        problems.add(key, f"unknown key; allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not _WORKFLOW_NAME.match(name):
        problems.add("name", "required, lowercase letters, digits, '-' or '_'")
        name = "invalid"
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.add("version", "required, a whole number from 1 up")
        version = 0
    title = _label(data.get("title"), "title", problems) or Label(name, name)
    states = _states(data.get("states"), problems)
    initial = data.get("initial")
    if initial is None:
        problems.add("initial", "required, the name of the state opinions start in")
    elif not states:
        pass  # the states' own problem is said: naming none of them here would only repeat it
    elif initial not in states:
        problems.add("initial", f"unknown state {initial!r}; states: {', '.join(states)}")
    elif states[initial].terminal:
        problems.add("initial", f"state {initial!r} is terminal")
    transitions = _transitions(data.get("transitions"), states, problems)
    round_close = _round_close(data.get("round_close"), states, transitions, problems)
    categories = _labelled_names(data.get("categories"), "categories", problems)
    channels = _labelled_names(data.get("channels"), "channels", problems)
    reminders = _reminders(data.get("reminders"), states, problems)
    groups = _groups(data.get("groups"), problems)
    if isinstance(initial, str) and initial in states:
        _check_graph(initial, states, transitions, problems)
    if problems.items:
        raise WorkflowInvalidError(source, problems.items)
    return WorkflowSpec(
        name=name,
        version=version,
        title=title,
        initial=str(initial),
        states=states,
        transitions=transitions,
        round_close=round_close,
        categories=categories,
        channels=channels,
        reminders=reminders,
        source=text,
        groups=groups,
    )


def _label(raw: object, path: str, problems: _Problems) -> Label | None:
    if not isinstance(raw, dict):
        problems.add(path, "expected a label {zh: ..., en: ...}")
        return None
    zh, en = raw.get("zh"), raw.get("en")
    ok = True
    for lang, value in (("zh", zh), ("en", en)):
        if not isinstance(value, str) or not value.strip():
            problems.add(f"{path}.{lang}", "required, non-empty text")
            ok = False
    extra = set(raw) - {"zh", "en"}
    if extra:
        problems.add(
            path,
            f"unknown key(s) {', '.join(sorted(map(str, extra)))}; allowed: zh, en",
        )
    return Label(str(zh), str(en)) if ok else None


def _entries(raw: object, path: str, problems: _Problems) -> list[tuple[str, dict[str, Any]]]:
    """A list of mappings, each with a `name`, as (path, mapping) pairs."""
    if not isinstance(raw, list) or not raw:
        problems.add(path, "required, a non-empty list")
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(raw):
        item_path = f"{path}[{i}]"
        if not isinstance(item, dict):
            problems.add(item_path, "expected a mapping")
            continue
        out.append((item_path, item))
    return out


def _unknown_keys(item: dict[str, Any], allowed: set[str], path: str, problems: _Problems) -> None:
    for key in sorted(set(item) - allowed, key=str):
        problems.add(f"{path}.{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}")


def _name(item: dict[str, Any], path: str, problems: _Problems, seen: set[str]) -> str | None:
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.add(f"{path}.name", "required, lowercase letters, digits and '_'")
        return None
    if name in seen:
        problems.add(f"{path}.name", f"duplicate name {name!r}")
        return None
    seen.add(name)
    return name


def _states(raw: object, problems: _Problems) -> dict[str, StateSpec]:
    states: dict[str, StateSpec] = {}
    seen: set[str] = set()
    for path, item in _entries(raw, "states", problems):
        _unknown_keys(item, {"name", "label", "outcome", "deadline"}, path, problems)
        name = _name(item, path, problems, seen)
        label = _label(item.get("label"), f"{path}.label", problems)
        outcome = None
        if item.get("outcome") is not None:
            try:
                outcome = Outcome(item["outcome"])
            except ValueError:
                allowed = ", ".join(o.value for o in Outcome)
                problems.add(
                    f"{path}.outcome",
                    f"unknown outcome {item['outcome']!r}; allowed: {allowed}",
                )
        deadline = _deadline(item.get("deadline"), f"{path}.deadline", problems)
        if outcome is not None and deadline is not None:
            problems.add(f"{path}.deadline", "a terminal state has no deadline")
        if name and label:
            states[name] = StateSpec(name, label, outcome, deadline)
    return states


def _role(raw: object, path: str, problems: _Problems) -> Role | None:
    try:
        return Role(raw)
    except ValueError:
        problems.add(path, f"unknown role {raw!r}; allowed: {', '.join(r.value for r in Role)}")
        return None


def _days(raw: object, path: str, problems: _Problems, *, signed: bool = False) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (raw < 0 and not signed):
        problems.add(path, "expected a number of days" + ("" if signed else " (0 or more)"))
        return None
    return float(raw)


def _deadline(raw: object, path: str, problems: _Problems) -> Deadline | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(
            path,
            "expected {after_days: N, owner: ROLE} or {at: round_close, owner: ROLE}",
        )
        return None
    _unknown_keys(raw, {"after_days", "at", "owner"}, path, problems)
    owner = _role(raw.get("owner"), f"{path}.owner", problems)
    after = raw.get("after_days")
    at = raw.get("at")
    if (after is None) == (at is None):
        problems.add(path, "give exactly one of after_days or at")
        return None
    if at is not None and at != "round_close":
        problems.add(f"{path}.at", f"unknown deadline {at!r}; allowed: round_close")
        return None
    days = _days(after, f"{path}.after_days", problems) if after is not None else None
    if owner is None or (after is not None and days is None):
        return None
    return Deadline(owner=owner, after_days=days, at_round_close=at is not None)


def _fields(raw: object, path: str, problems: _Problems) -> tuple[Field, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(path, "expected a list of field names")
        return ()
    out: list[Field] = []
    for i, value in enumerate(raw):
        try:
            out.append(Field(value))
        except ValueError:
            allowed = ", ".join(f.value for f in Field)
            problems.add(f"{path}[{i}]", f"unknown field {value!r}; allowed: {allowed}")
    return tuple(out)


def _transitions(raw: object, states: Mapping[str, StateSpec], problems: _Problems) -> dict[str, TransitionSpec]:
    allowed_keys = {
        "trigger", "label", "source", "dest", "roles", "required", "optional",
        "completes_cycle", "starts_round", "entry",
    }  # fmt: skip
    out: dict[str, TransitionSpec] = {}
    active = [s for s, spec in states.items() if not spec.terminal]
    for path, item in _entries(raw, "transitions", problems):
        _unknown_keys(item, allowed_keys, path, problems)
        trigger = item.get("trigger")
        if not isinstance(trigger, str) or not _NAME.match(trigger):
            problems.add(f"{path}.trigger", "required, lowercase letters, digits and '_'")
            continue
        if trigger in out:
            problems.add(
                f"{path}.trigger",
                f"duplicate trigger {trigger!r}; list all its sources in one entry",
            )
            continue
        label = _label(item.get("label"), f"{path}.label", problems)
        raw_source = item.get("source")
        sources = active if raw_source == "*" else raw_source
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not sources:
            problems.add(
                f"{path}.source",
                "required: a state, a list of states, or '*' (every non-terminal state)",
            )
            sources = []
        ok_sources: list[str] = []
        for j, src in enumerate(sources):
            spath = f"{path}.source" if isinstance(raw_source, str) else f"{path}.source[{j}]"
            if src not in states:
                problems.add(spath, f"unknown state {src!r}")
            elif states[src].terminal:
                problems.add(spath, f"state {src!r} is terminal; nothing leaves it")
            else:
                ok_sources.append(src)
        dest = item.get("dest")
        if dest not in states:
            problems.add(f"{path}.dest", f"unknown state {dest!r}")
        roles_raw = item.get("roles")
        roles: set[Role] = set()
        if not isinstance(roles_raw, list) or not roles_raw:
            problems.add(f"{path}.roles", "required, a non-empty list of roles")
        else:
            for j, r in enumerate(roles_raw):
                role = _role(r, f"{path}.roles[{j}]", problems)
                if role is Role.AUDITOR:
                    problems.add(
                        f"{path}.roles[{j}]",
                        "auditors read and never change an opinion",
                    )
                elif role is not None:
                    roles.add(role)
        required = _fields(item.get("required"), f"{path}.required", problems)
        optional = _fields(item.get("optional"), f"{path}.optional", problems)
        both = set(required) & set(optional)
        if both:
            problems.add(
                f"{path}.optional",
                f"{', '.join(sorted(f.value for f in both))} also required",
            )
        flags: dict[str, bool] = {}
        for flag in ("completes_cycle", "starts_round"):
            value = item.get(flag, False)
            if not isinstance(value, bool):
                problems.add(f"{path}.{flag}", "expected true or false")
                value = False
            flags[flag] = value
        entry = None
        if item.get("entry") is not None:
            try:
                entry = EntryKind(item["entry"])
            except ValueError:
                allowed = ", ".join(e.value for e in EntryKind)
                problems.add(
                    f"{path}.entry",
                    f"unknown entry {item['entry']!r}; allowed: {allowed}",
                )
        if entry is not None and Field.TEXT not in required + optional and Field.REASON not in required + optional:
            problems.add(f"{path}.entry", "an entry needs a text or reason field to record")
        if label is None or dest not in states:
            continue
        out[trigger] = TransitionSpec(
            trigger=trigger,
            label=label,
            sources=tuple(ok_sources),
            dest=str(dest),
            roles=frozenset(roles),
            required=required,
            optional=optional,
            completes_cycle=flags["completes_cycle"],
            starts_round=flags["starts_round"],
            entry=entry,
        )
    return out


def _round_close(
    raw: object,
    states: Mapping[str, StateSpec],
    transitions: Mapping[str, TransitionSpec],
    problems: _Problems,
) -> dict[str, CloseRule]:
    rules: dict[str, CloseRule] = {}
    if not isinstance(raw, dict):
        problems.add("round_close", "required, a mapping of state: carry_over | {fire: TRIGGER}")
        return rules
    for state, action in raw.items():
        path = f"round_close.{state}"
        if state not in states:
            problems.add(path, f"unknown state {state!r}")
            continue
        if states[state].terminal:
            problems.add(path, f"state {state!r} is terminal; closing a round leaves it alone")
            continue
        if action == "carry_over":
            rules[state] = CloseRule(state, "carry_over")
            continue
        if not (isinstance(action, dict) and set(action) == {"fire"}):
            problems.add(path, "expected carry_over or {fire: TRIGGER}")
            continue
        trigger = action["fire"]
        spec = transitions.get(trigger)
        if spec is None:
            problems.add(f"{path}.fire", f"unknown trigger {trigger!r}")
        elif state not in spec.sources:
            problems.add(f"{path}.fire", f"trigger {trigger!r} cannot fire from {state!r}")
        elif spec.required:
            need = ", ".join(f.value for f in spec.required)
            problems.add(
                f"{path}.fire",
                f"trigger {trigger!r} requires {need}, which a round close cannot give",
            )
        elif Role.SYSTEM not in spec.roles:
            problems.add(f"{path}.fire", f"trigger {trigger!r} must allow role system")
        elif spec.entry is not None:
            problems.add(
                f"{path}.fire", f"trigger {trigger!r} records a {spec.entry.value}, which a round close cannot write"
            )
        else:
            rules[state] = CloseRule(state, "fire", trigger)
    for state, state_spec in states.items():
        if not state_spec.terminal and state not in rules and state not in raw:
            problems.add(
                "round_close",
                f"no rule for state {state!r}; every non-terminal state needs one",
            )
    return rules


def _labelled_names(raw: object, path: str, problems: _Problems) -> dict[str, Label]:
    out: dict[str, Label] = {}
    seen: set[str] = set()
    for item_path, item in _entries(raw, path, problems):
        _unknown_keys(item, {"name", "label"}, item_path, problems)
        name = _name(item, item_path, problems, seen)
        label = _label(item.get("label"), f"{item_path}.label", problems)
        if name and label:
            out[name] = label
    return out


def _groups(raw: object, problems: _Problems) -> dict[str, Label]:
    """`groups:` as {id: label}; absent, the five default kinds (consultflow.domain.groups)."""
    if raw is None:
        return dict(DEFAULT_GROUPS)
    out: dict[str, Label] = {}
    if isinstance(raw, list) and not raw:
        return out  # `groups: []`: this workflow records no groups
    for item_path, item in _entries(raw, "groups", problems):
        _unknown_keys(item, {"id", "label"}, item_path, problems)
        group = item.get("id")
        if not isinstance(group, str) or not GROUP_ID.match(group) or len(group) > MAX_GROUP_ID:
            problems.add(f"{item_path}.id", f"required, lowercase letters, digits and '_', at most {MAX_GROUP_ID}")
            continue
        if group in out:
            problems.add(f"{item_path}.id", f"duplicate id {group!r}")
            continue
        label = _label(item.get("label"), f"{item_path}.label", problems)
        if label:
            out[group] = label
    return out


def _reminders(raw: object, states: Mapping[str, StateSpec], problems: _Problems) -> tuple[ReminderRule, ...]:
    if raw is None:
        return ()
    out: list[ReminderRule] = []
    seen: set[str] = set()
    for path, item in _entries(raw, "reminders", problems):
        _unknown_keys(item, {"name", "state", "to", "offsets_days", "escalation"}, path, problems)
        name = _name(item, path, problems, seen)
        state = item.get("state")
        if state not in states:
            problems.add(f"{path}.state", f"unknown state {state!r}")
        elif states[str(state)].deadline is None:
            problems.add(f"{path}.state", f"state {state!r} has no deadline to remind about")
        recipient = _role(item.get("to"), f"{path}.to", problems)
        offsets_raw = item.get("offsets_days")
        offsets: list[float] = []
        if not isinstance(offsets_raw, list) or not offsets_raw:
            problems.add(
                f"{path}.offsets_days",
                "required, a list of days relative to the deadline (-2 = two days before)",
            )
        else:
            for j, value in enumerate(offsets_raw):
                days = _days(value, f"{path}.offsets_days[{j}]", problems, signed=True)
                if days is not None:
                    offsets.append(days)
        escalation = item.get("escalation", False)
        if not isinstance(escalation, bool):
            problems.add(f"{path}.escalation", "expected true or false")
            escalation = False
        if name and recipient and state in states and offsets:
            out.append(ReminderRule(name, str(state), recipient, tuple(offsets), escalation))
    return tuple(out)


def _check_graph(
    initial: str,
    states: Mapping[str, StateSpec],
    transitions: Mapping[str, TransitionSpec],
    problems: _Problems,
) -> None:
    """Every state reachable, every non-terminal state able to reach an outcome."""
    edges: dict[str, set[str]] = {s: set() for s in states}
    for spec in transitions.values():
        for src in spec.sources:
            edges[src].add(spec.dest)
    reached = {initial}
    frontier = [initial]
    while frontier:
        for nxt in edges[frontier.pop()] - reached:
            reached.add(nxt)
            frontier.append(nxt)
    for name in states:
        if name not in reached:
            problems.add(f"states.{name}", "unreachable from the initial state")
    if not any(s.terminal for s in states.values()):
        problems.add("states", "no terminal state (one with an outcome)")
        return
    can_finish = {s for s, spec in states.items() if spec.terminal}
    changed = True
    while changed:
        changed = False
        for src, dests in edges.items():
            if src not in can_finish and dests & can_finish:
                can_finish.add(src)
                changed = True
    for name in states:
        if name not in can_finish:
            problems.add(f"states.{name}", "no path from here to an outcome")
