"""Loading workflow files: YAML in, a validated `WorkflowSpec` out, or every problem with its path.

A coordinator editing YAML wants the whole list at once (`transitions[3].dest: unknown state
'adoptd'; states: ...`), so the validator collects problems instead of stopping at the first. It is
one pass: each rule checks the type and bounds of the value it reads, and a value of the wrong type
is a problem naming its path and what is allowed there, never a crash. `format` is the version of
the file format; files without it are format 1.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

from consultflow.domain.errors import WorkflowInvalidError
from consultflow.domain.groups import DEFAULT_GROUPS, GROUP_ID, MAX_GROUP_ID
from consultflow.domain.labels import Label
from consultflow.domain.roles import Role
from consultflow.domain.vocabulary import EntryKind, Field, Outcome
from consultflow.domain.workflow import CloseRule, Deadline, ReminderRule, StateSpec, TransitionSpec, WorkflowSpec

_E = TypeVar("_E", bound=Enum)

MAX_FILE_CHARS = 200_000
MAX_DEPTH = 8
WORKFLOW_FORMAT = 1
MAX_DAYS = 3650  # ten years: a deadline or reminder offset beyond that is a typo
MAX_ITEMS = 500  # entries in a section (states, transitions, round-close rules...)
MAX_LIST = 20  # names in a list (sources, roles, fields) and reminder offsets
MAX_TEXT = 200  # characters of a label
MAX_NAME = 60  # characters of a state, trigger, category... name
MAX_WORKFLOW_NAME = 80
MAX_VERSION = 1_000_000

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


_ABSENT: Any = object()  # a key not written at all, unlike one written empty (`required:` is null, not absent)


class _Problems:
    """Collects validation problems with their paths instead of stopping at the first."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def _member(kind: type[_E], raw: object, path: str, what: str, problems: _Problems) -> _E | None:
    """`raw` as one of `kind`'s values, or None and a problem naming the values allowed."""
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        problems.add(path, f"unknown {what} {_shown(raw)}; allowed: {allowed}")
        return None


def _shown(value: object) -> str:
    """A value as a problem quotes it: its repr, cut short when it would echo a whole sub-document."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_text(value: object, expected: str) -> str:
    """A value of another type where text is expected, and what is allowed there."""
    return f"{_shown(value)} is not of type 'string'; expected {expected}"


def _too_many(raw: list[Any], limit: int, path: str, problems: _Problems) -> None:
    if len(raw) > limit:
        problems.add(path, f"{len(raw)} entries; at most {limit}")


def load_workflow_text(text: str, source: str = "<text>", *, stored_digest: str | None = None) -> WorkflowSpec:
    """Parse and validate a workflow from YAML text.

    `stored_digest` is the digest a stored copy was registered under. When the text still has that
    digest, it is the very text that passed validation when it was stored, so it is parsed with
    libyaml (when PyYAML has it). The one pass of rules that builds the spec runs either way.

    A text this process has loaded before gives the spec it gave then: a spec is frozen and depends
    on its text alone, and the server, the worker and the tests read the same files again and again
    (parsing the bundled workflow with PyYAML's own loader costs about 20 ms). A text with problems
    is checked again each time, so its error names the source it was read from.

    Raises:
        WorkflowInvalidError: listing every problem found, each with its path.
    """
    checked = stored_digest is not None and hashlib.sha256(text.encode("utf-8")).hexdigest() == stored_digest
    try:
        return _spec_of(text, checked=checked)
    except WorkflowInvalidError as exc:
        raise WorkflowInvalidError(source, exc.problems) from None


@functools.lru_cache(maxsize=32)
def _spec_of(text: str, *, checked: bool) -> WorkflowSpec:
    """The spec of `text`; `checked`: it is a stored copy whose digest still matches."""
    source = "<text>"  # load_workflow_text names the real source in any error
    if len(text) > MAX_FILE_CHARS:
        raise WorkflowInvalidError(source, [f"(file): longer than {MAX_FILE_CHARS} characters"])
    import yaml  # noqa: PLC0415 - read commands that load no workflow text never pay for it

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
    return _build(data, text, source)


def _plain_problems(data: object) -> list[str]:
    """What is wrong with the YAML itself, before any rule reads it: non-text keys, nesting, YAML-only types, NaN."""
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


class _Declared:
    """The names the states and transitions sections declare, built or not.

    A reference to a state or trigger whose own entry has a problem is not called unknown (that
    entry's problem is said), and the graph is only judged when every entry of both sections built.
    """

    def __init__(self) -> None:
        self.states: set[str] = set()
        self.triggers: set[str] = set()
        self.complete = True
        self.state_names_read = True  # every entry of `states:` is a mapping with a text name

    def unknown_state(self, name: str, states: Mapping[str, StateSpec]) -> bool:
        """Whether `name` is a state the file does not declare, as far as its states can be read."""
        return bool(states) and self.state_names_read and name not in states and name not in self.states


def _build(data: dict[str, Any], text: str, source: str) -> WorkflowSpec:
    problems = _Problems()
    declared = _Declared()
    for key in sorted(set(data) - TOP_LEVEL_KEYS):
        problems.add(key, f"unknown key; allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    form = data.get("format", WORKFLOW_FORMAT)
    if isinstance(form, bool) or form != WORKFLOW_FORMAT:
        problems.add("format", f"unknown format {_shown(form)}; allowed: {WORKFLOW_FORMAT}")
    name = data.get("name")
    if not isinstance(name, str) or not _WORKFLOW_NAME.match(name):
        problems.add("name", "required, lowercase letters, digits, '-' or '_'")
        name = "invalid"
    elif len(name) > MAX_WORKFLOW_NAME:
        problems.add("name", f"longer than {MAX_WORKFLOW_NAME} characters")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        problems.add("version", f"required, a whole number from 1 to {MAX_VERSION}")
        version = 0
    title = _label(data.get("title"), "title", problems) or Label(name, name)
    states = _states(data.get("states"), problems, declared)
    initial = data.get("initial")
    if initial is None:
        problems.add("initial", "required, the name of the state opinions start in")
    elif not isinstance(initial, str):
        problems.add("initial", _not_text(initial, "the name of the state opinions start in"))
    elif not states:
        pass  # the states' own problem is said: naming none of them here would only repeat it
    elif initial not in states:
        if declared.unknown_state(initial, states):
            problems.add("initial", f"unknown state {initial!r}; states: {', '.join(states)}")
    elif states[initial].terminal:
        problems.add("initial", f"state {initial!r} is terminal")
    transitions = _transitions(data.get("transitions"), states, declared, problems)
    round_close = _round_close(data.get("round_close"), states, transitions, declared, problems)
    categories = _labelled_names(data.get("categories"), "categories", problems)
    channels = _labelled_names(data.get("channels"), "channels", problems)
    reminders = _reminders(data.get("reminders", _ABSENT), states, declared, problems)
    groups = _groups(data.get("groups", _ABSENT), problems)
    if isinstance(initial, str) and initial in states and declared.complete:
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
    if raw is None:
        problems.add(path, "required, a label {zh: ..., en: ...}")
        return None
    if not isinstance(raw, dict):
        problems.add(path, "expected a label {zh: ..., en: ...}")
        return None
    zh, en = raw.get("zh"), raw.get("en")
    ok = True
    for lang, value in (("zh", zh), ("en", en)):
        if not isinstance(value, str) or not value.strip():
            problems.add(f"{path}.{lang}", "required, non-empty text")
            ok = False
        elif len(value) > MAX_TEXT:
            problems.add(f"{path}.{lang}", f"longer than {MAX_TEXT} characters")
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
    _too_many(raw, MAX_ITEMS, path, problems)
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


def _valid_name(raw: object, path: str, problems: _Problems, what: str = "name") -> str | None:
    """A state, trigger, category... name: lowercase letters, digits and '_', at most MAX_NAME characters."""
    if not isinstance(raw, str) or not _NAME.match(raw):
        problems.add(path, "required, lowercase letters, digits and '_'")
        return None
    if len(raw) > MAX_NAME:
        problems.add(path, f"{what} longer than {MAX_NAME} characters")
        return None
    return raw


def _name(item: dict[str, Any], path: str, problems: _Problems, seen: set[str]) -> str | None:
    name = _valid_name(item.get("name"), f"{path}.name", problems)
    if name is None:
        return None
    if name in seen:
        problems.add(f"{path}.name", f"duplicate name {name!r}")
        return None
    seen.add(name)
    return name


def _states(raw: object, problems: _Problems, declared: _Declared) -> dict[str, StateSpec]:
    states: dict[str, StateSpec] = {}
    seen: set[str] = set()
    entries = _entries(raw, "states", problems)
    if not isinstance(raw, list) or len(entries) < len(raw):
        declared.complete = declared.state_names_read = False
    for path, item in entries:
        _unknown_keys(item, {"name", "label", "outcome", "deadline"}, path, problems)
        raw_name = item.get("name")
        if isinstance(raw_name, str):
            declared.states.add(raw_name)
        else:
            declared.state_names_read = False
        name = _name(item, path, problems, seen)
        label = _label(item.get("label"), f"{path}.label", problems)
        outcome = None
        if item.get("outcome") is not None:
            outcome = _member(Outcome, item["outcome"], f"{path}.outcome", "outcome", problems)
        deadline = _deadline(item.get("deadline", _ABSENT), f"{path}.deadline", problems)
        if outcome is not None and deadline is not None:
            problems.add(f"{path}.deadline", "a terminal state has no deadline")
        bad_outcome = item.get("outcome") is not None and outcome is None
        bad_deadline = "deadline" in item and deadline is None
        if name and label and not bad_outcome and not bad_deadline:
            states[name] = StateSpec(name, label, outcome, deadline)
        else:
            declared.complete = False
    return states


def _role(raw: object, path: str, problems: _Problems) -> Role | None:
    allowed = ", ".join(r.value for r in Role)
    if raw is None:
        problems.add(path, f"required, a role; allowed: {allowed}")
        return None
    return _member(Role, raw, path, "role", problems)


def _days(raw: object, path: str, problems: _Problems, *, signed: bool = False) -> float | None:
    low = -MAX_DAYS if signed else 0
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not low <= raw <= MAX_DAYS:
        problems.add(path, f"expected a number of days from {low} to {MAX_DAYS}")
        return None
    return float(raw)


def _deadline(raw: object, path: str, problems: _Problems) -> Deadline | None:
    if raw is _ABSENT:
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
        problems.add(f"{path}.at", f"unknown deadline {_shown(at)}; allowed: round_close")
        return None
    days = _days(after, f"{path}.after_days", problems) if after is not None else None
    if owner is None or (after is not None and days is None):
        return None
    return Deadline(owner=owner, after_days=days, at_round_close=at is not None)


def _fields(raw: object, path: str, problems: _Problems) -> tuple[Field, ...] | None:
    """A list of field names; None when it has a problem (what the transition accepts is then unknown)."""
    if raw is _ABSENT:
        return ()
    if not isinstance(raw, list):
        problems.add(path, "expected a list of field names")
        return None
    _too_many(raw, MAX_LIST, path, problems)
    out: list[Field] = []
    for i, value in enumerate(raw):
        member = _member(Field, value, f"{path}[{i}]", "field", problems)
        if member is not None:
            out.append(member)
    return tuple(out) if len(out) == len(raw) else None


def _sources(
    raw: object, path: str, states: Mapping[str, StateSpec], declared: _Declared, problems: _Problems
) -> tuple[str, ...] | None:
    """A transition's `source`: a state, a list of states, or '*'; None when it has a problem."""
    if raw == "*":
        return tuple(s for s, spec in states.items() if not spec.terminal)
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        problems.add(path, "required: a state, a list of states, or '*' (every non-terminal state)")
        return None
    _too_many(items, MAX_LIST, path, problems)
    ok: list[str] = []
    for j, src in enumerate(items):
        spath = path if isinstance(raw, str) else f"{path}[{j}]"
        if not isinstance(src, str):
            problems.add(spath, _not_text(src, "the name of a state"))
        elif src in states:
            if states[src].terminal:
                problems.add(spath, f"state {src!r} is terminal; nothing leaves it")
            else:
                ok.append(src)
        elif declared.unknown_state(src, states):
            problems.add(spath, f"unknown state {src!r}")
    return tuple(ok) if len(ok) == len(items) else None


def _dest(
    raw: object, path: str, states: Mapping[str, StateSpec], declared: _Declared, problems: _Problems
) -> str | None:
    if raw is None:
        problems.add(path, "required, the name of a state")
    elif not isinstance(raw, str):
        problems.add(path, _not_text(raw, "the name of a state"))
    elif raw in states:
        return raw
    elif declared.unknown_state(raw, states):
        problems.add(path, f"unknown state {raw!r}; states: {', '.join(sorted(states))}")
    return None


def _transitions(
    raw: object, states: Mapping[str, StateSpec], declared: _Declared, problems: _Problems
) -> dict[str, TransitionSpec]:
    allowed_keys = {
        "trigger", "label", "source", "dest", "roles", "required", "optional",
        "completes_cycle", "starts_round", "entry",
    }  # fmt: skip
    out: dict[str, TransitionSpec] = {}
    entries = _entries(raw, "transitions", problems)
    if not isinstance(raw, list) or len(entries) < len(raw):
        declared.complete = False
    for path, item in entries:
        built = _transition(item, path, allowed_keys, states, declared, out, problems)
        if built is None:
            declared.complete = False
        else:
            out[built.trigger] = built
    return out


def _transition(
    item: dict[str, Any],
    path: str,
    allowed_keys: set[str],
    states: Mapping[str, StateSpec],
    declared: _Declared,
    seen: Mapping[str, TransitionSpec],
    problems: _Problems,
) -> TransitionSpec | None:
    """One entry of `transitions:`, every key checked; None when any of them has a problem that stops it."""
    _unknown_keys(item, allowed_keys, path, problems)
    trigger = _valid_name(item.get("trigger"), f"{path}.trigger", problems, "trigger")
    if trigger is not None and trigger in seen:
        problems.add(
            f"{path}.trigger",
            f"duplicate trigger {trigger!r}; list all its sources in one entry",
        )
        trigger = None
    elif trigger is not None:
        declared.triggers.add(trigger)
    label = _label(item.get("label"), f"{path}.label", problems)
    sources = _sources(item.get("source"), f"{path}.source", states, declared, problems)
    dest = _dest(item.get("dest"), f"{path}.dest", states, declared, problems)
    roles_raw = item.get("roles")
    roles: set[Role] = set()
    if not isinstance(roles_raw, list) or not roles_raw:
        problems.add(f"{path}.roles", "required, a non-empty list of roles")
    else:
        _too_many(roles_raw, MAX_LIST, f"{path}.roles", problems)
        for j, r in enumerate(roles_raw):
            role = _role(r, f"{path}.roles[{j}]", problems)
            if role is Role.AUDITOR:
                problems.add(
                    f"{path}.roles[{j}]",
                    "auditors read and never change an opinion",
                )
            elif role is not None:
                roles.add(role)
    required = _fields(item.get("required", _ABSENT), f"{path}.required", problems)
    optional = _fields(item.get("optional", _ABSENT), f"{path}.optional", problems)
    both = set(required or ()) & set(optional or ())
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
        entry = _member(EntryKind, item["entry"], f"{path}.entry", "entry", problems)
    if required is None or optional is None:
        return None  # the entry rule below needs both lists
    if entry is not None and Field.TEXT not in required + optional and Field.REASON not in required + optional:
        problems.add(f"{path}.entry", "an entry needs a text or reason field to record")
    if trigger is None or label is None or sources is None or dest is None:
        return None
    return TransitionSpec(
        trigger=trigger,
        label=label,
        sources=sources,
        dest=dest,
        roles=frozenset(roles),
        required=required,
        optional=optional,
        completes_cycle=flags["completes_cycle"],
        starts_round=flags["starts_round"],
        entry=entry,
    )


def _round_close(
    raw: object,
    states: Mapping[str, StateSpec],
    transitions: Mapping[str, TransitionSpec],
    declared: _Declared,
    problems: _Problems,
) -> dict[str, CloseRule]:
    rules: dict[str, CloseRule] = {}
    if not isinstance(raw, dict):
        problems.add("round_close", "required, a mapping of state: carry_over | {fire: TRIGGER}")
        return rules
    if len(raw) > MAX_ITEMS:
        problems.add("round_close", f"{len(raw)} rules; at most {MAX_ITEMS}")
    for state, action in raw.items():
        path = f"round_close.{state}"
        if state not in states:
            if declared.unknown_state(state, states):
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
        spec = transitions.get(trigger) if isinstance(trigger, str) else None
        if not isinstance(trigger, str):
            problems.add(f"{path}.fire", _not_text(trigger, "the trigger of a transition"))
        elif spec is None:
            if trigger not in declared.triggers:
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
    if raw is _ABSENT:
        return dict(DEFAULT_GROUPS)
    out: dict[str, Label] = {}
    if isinstance(raw, list) and not raw:
        return out  # `groups: []`: this workflow records no groups
    for item_path, item in _entries(raw, "groups", problems):
        _unknown_keys(item, {"id", "label"}, item_path, problems)
        group = item.get("id")
        label = _label(item.get("label"), f"{item_path}.label", problems)
        if not isinstance(group, str) or not GROUP_ID.match(group) or len(group) > MAX_GROUP_ID:
            problems.add(f"{item_path}.id", f"required, lowercase letters, digits and '_', at most {MAX_GROUP_ID}")
        elif group in out:
            problems.add(f"{item_path}.id", f"duplicate id {group!r}")
        elif label:
            out[group] = label
    return out


def _reminders(
    raw: object, states: Mapping[str, StateSpec], declared: _Declared, problems: _Problems
) -> tuple[ReminderRule, ...]:
    if raw is _ABSENT:
        return ()
    out: list[ReminderRule] = []
    seen: set[str] = set()
    for path, item in _entries(raw, "reminders", problems):
        _unknown_keys(item, {"name", "state", "to", "offsets_days", "escalation"}, path, problems)
        name = _name(item, path, problems, seen)
        state = item.get("state")
        if state is None:
            problems.add(f"{path}.state", "required, the name of a state with a deadline")
        elif not isinstance(state, str):
            problems.add(f"{path}.state", _not_text(state, "the name of a state with a deadline"))
        elif state not in states:
            if declared.unknown_state(state, states):
                problems.add(f"{path}.state", f"unknown state {state!r}")
        elif states[state].deadline is None:
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
            _too_many(offsets_raw, MAX_LIST, f"{path}.offsets_days", problems)
            for j, value in enumerate(offsets_raw):
                days = _days(value, f"{path}.offsets_days[{j}]", problems, signed=True)
                if days is not None:
                    offsets.append(days)
        escalation = item.get("escalation", False)
        if not isinstance(escalation, bool):
            problems.add(f"{path}.escalation", "expected true or false")
            escalation = False
        if name and recipient and isinstance(state, str) and state in states and offsets:
            out.append(ReminderRule(name, state, recipient, tuple(offsets), escalation))
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
