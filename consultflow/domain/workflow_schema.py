"""The declared shape of a workflow file (JSON Schema), checked before any rule reads it.

The schema fixes every key's type and bounds, so the rules that follow (references between states
and transitions, reachability) only ever see well-formed data: a wrong-typed value is a problem
with its path, never a crash. Names, roles, fields and outcomes are checked against the
vocabulary by the loader, which can say what is allowed.

`format` is the version of this schema; files without it are format 1.
"""

from __future__ import annotations

from functools import cache
from typing import Any

WORKFLOW_FORMAT = 1
MAX_DAYS = 3650  # ten years: a deadline or reminder offset beyond that is a typo
MAX_ITEMS = 500
MAX_TEXT = 200

_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 60}
_LABEL = {
    "type": "object",
    "properties": {"zh": _TEXT, "en": _TEXT},
    "required": ["zh", "en"],
    "additionalProperties": False,
}
_NAMES = {"type": "array", "items": _NAME, "maxItems": 20}
_DAYS = {"type": "number", "minimum": 0, "maximum": MAX_DAYS}
_SIGNED_DAYS = {"type": "number", "minimum": -MAX_DAYS, "maximum": MAX_DAYS}
_LABELLED = {
    "type": "array",
    "maxItems": MAX_ITEMS,
    "items": {
        "type": "object",
        "properties": {"name": _NAME, "label": _LABEL},
        "required": ["name", "label"],
        "additionalProperties": False,
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "format": {"const": WORKFLOW_FORMAT},
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$", "maxLength": 80},
        "version": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "title": _LABEL,
        "initial": _NAME,
        "states": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "properties": {
                    "name": _NAME,
                    "label": _LABEL,
                    "outcome": {"type": ["string", "null"]},
                    "deadline": {
                        "type": "object",
                        "properties": {
                            "after_days": _DAYS,
                            "at": {"const": "round_close"},
                            "owner": _NAME,
                        },
                        "required": ["owner"],
                        "additionalProperties": False,
                    },
                },
                "required": ["name", "label"],
                "additionalProperties": False,
            },
        },
        "transitions": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "properties": {
                    "trigger": _NAME,
                    "label": _LABEL,
                    "source": {"oneOf": [_NAME, {"const": "*"}, {**_NAMES, "minItems": 1}]},
                    "dest": _NAME,
                    "roles": {**_NAMES, "minItems": 1},
                    "required": _NAMES,
                    "optional": _NAMES,
                    "completes_cycle": {"type": "boolean"},
                    "starts_round": {"type": "boolean"},
                    "entry": {"type": ["string", "null"]},
                },
                "required": ["trigger", "label", "source", "dest", "roles"],
                "additionalProperties": False,
            },
        },
        "round_close": {
            "type": "object",
            "maxProperties": MAX_ITEMS,
            "propertyNames": _NAME,
            "additionalProperties": {
                "oneOf": [
                    {"const": "carry_over"},
                    {
                        "type": "object",
                        "properties": {"fire": _NAME},
                        "required": ["fire"],
                        "additionalProperties": False,
                    },
                ]
            },
        },
        "categories": _LABELLED,
        "channels": _LABELLED,
        "groups": {
            "type": "array",
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "properties": {"id": {**_NAME, "maxLength": 40}, "label": _LABEL},
                "required": ["id", "label"],
                "additionalProperties": False,
            },
        },
        "reminders": {
            "type": "array",
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "properties": {
                    "name": _NAME,
                    "state": _NAME,
                    "to": _NAME,
                    "offsets_days": {"type": "array", "items": _SIGNED_DAYS, "minItems": 1, "maxItems": 20},
                    "escalation": {"type": "boolean"},
                },
                "required": ["name", "state", "to", "offsets_days"],
                "additionalProperties": False,
            },
        },
    },
}  # required and unknown top-level keys are the loader's to report: it names what is allowed


@cache
def _validator() -> Any:
    """Built on first use: commands that read no workflow file never import jsonschema."""
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    return Draft202012Validator(SCHEMA)


def schema_problems(data: object) -> list[tuple[str, str]]:
    """Every place `data` departs from the schema: (top-level section, `path: message`), in document order."""
    problems = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        if not error.absolute_path:
            continue
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        problems.append((str(error.absolute_path[0]), f"{path}: {_message(error.validator, error.message)}"))
    return problems


def _message(kind: object, message: str) -> str:
    """Jsonschema's messages, shortened where they would echo a whole sub-document."""
    if kind == "additionalProperties":
        return message.replace("Additional properties are not allowed", "unknown key(s)")
    if kind in {"oneOf", "type", "const"} and len(message) > 160:
        return message[:157] + "..."
    return message
