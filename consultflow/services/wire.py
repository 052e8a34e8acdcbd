"""Commands and their results as JSON, the same way on the server and in the CLI.

The server decodes a command's input from the request body and encodes its result; the CLI in
remote mode encodes the input and decodes the result into the very dataclass the local call
returns, so both render it with the same code. Times travel in UTC (ISO 8601 with offset) and are
shown in local time only when rendered.

A streamed result is JSON lines: `{"item": ...}` per item as it is read, then `{"end": N}` with the
count, or `{"error": ..., "exit_code": ..., "kind": ...}` if the command failed part-way. A missing
end line means the answer was cut off, which the client reports instead of printing part of it as
if it were whole.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from consultflow.domain.errors import ValidationError
from consultflow.services.inputs import refuse_unstorable

__all__ = [
    "adapter",
    "decode",
    "decode_line",
    "encode",
    "encode_bytes",
    "end_line",
    "error_line",
    "item_line",
    "refuse_unstorable",
]


@cache
def adapter(kind: Any) -> TypeAdapter[Any]:
    """A (cached) codec for a dataclass or type."""
    return TypeAdapter(kind)


def encode(kind: Any, value: Any) -> Any:
    """`value` as JSON-ready data."""
    return adapter(kind).dump_python(value, mode="json")


def encode_bytes(kind: Any, value: Any) -> bytes:
    """`value` as compact JSON text."""
    return adapter(kind).dump_json(value)


def decode(kind: Any, data: Any, what: str) -> Any:
    """JSON data as `kind`, or one line naming the first field that is wrong.

    Raises:
        ValidationError: the data does not fit `kind`.
    """
    try:
        return adapter(kind).validate_python(data)
    except PydanticValidationError as exc:
        raise ValidationError(_first_problem(exc, what)) from None


def decode_line(kind: Any, line: bytes, what: str) -> Any:
    """One JSON text as `kind` (items of a stream)."""
    try:
        return adapter(kind).validate_json(line)
    except PydanticValidationError as exc:
        raise ValidationError(_first_problem(exc, what)) from None


def _first_problem(exc: PydanticValidationError, what: str) -> str:
    errors = exc.errors(include_url=False, include_input=False)  # never echo the value: it may be personal
    if not errors:
        return f"{what}: malformed"
    where = ".".join(str(p) for p in errors[0]["loc"]) or "body"
    return f"{what}: {where}: {errors[0]['msg']}".replace("\n", " ")


def item_line(kind: Any, value: Any) -> bytes:
    """One streamed item as a JSON line."""
    return b'{"item":' + adapter(kind).dump_json(value) + b"}\n"


def end_line(count: int) -> bytes:
    """The last line of a stream that finished."""
    return json.dumps({"end": count}).encode() + b"\n"


def error_line(message: str, exit_code: int, kind: str) -> bytes:
    """The last line of a stream that failed part-way."""
    return json.dumps({"error": message, "exit_code": exit_code, "kind": kind}, ensure_ascii=False).encode() + b"\n"
