"""MkDocs hooks: the references generated at build time from the code, so they cannot drift.

- `reference/configuration.md`: the settings table, from `consultflow.config.settings_table()` (the
  function `consultflow settings --markdown` prints).
- `reference/api.md`: every operation of the server's OpenAPI document, from the FastAPI app that
  `consultflow serve` runs; the document itself is published beside it as `reference/openapi.json`.
- `changelog.md`: CHANGELOG.md, from the top of the repository.

The CLI reference needs no hook: the mkdocs-click extension renders the click command tree.
Nothing here opens a network connection or a real database: the app is built over an empty SQLite
file in a temporary folder, which no request ever reaches.
"""

# ruff: noqa: INP001 - MkDocs loads this file by its path (mkdocs.yml's hooks:), it is no package's module

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the tests import this module without MkDocs
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_MARK = "<!-- generated: settings table -->"
API_MARK = "<!-- generated: api operations -->"
CHANGELOG_MARK = "<!-- generated: CHANGELOG.md -->"
OPENAPI_FILE = "reference/openapi.json"
PUBLIC_TAG = "consultflow"  # the portal's JSON API: anyone, no sign-in


def settings_markdown() -> str:
    """The settings table, exactly as `consultflow settings --markdown` prints it."""
    from consultflow.config import settings_table  # noqa: PLC0415 - the package loads only when building

    return settings_table()


@cache
def openapi_document() -> dict[str, Any]:
    """The server's OpenAPI document, as `GET /api/v1/openapi.json` answers it (single sign-on off)."""
    from consultflow.bootstrap import build_context  # noqa: PLC0415
    from consultflow.config import Settings  # noqa: PLC0415
    from consultflow.web.app import create_app  # noqa: PLC0415
    from consultflow.web.common import WebSettings  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(db_url=str(Path(folder) / "unused.sqlite"))
        ctx = build_context(settings, check_schema=False, create=True, acting_proven=True)
        try:
            document: dict[str, Any] = create_app(ctx, WebSettings(secret=b"d" * 32)).openapi()
        finally:
            ctx.database.dispose()
    return document


def _cell(text: object) -> str:
    """Text that fits in one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its `$ref` followed."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return found
    return schema


def _type(schema: dict[str, Any]) -> str:
    """A field's type in a few words: `integer`, `string or null`, `array of ClauseRating`."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if schema.get("type") == "array":
        return "array of " + _type(schema.get("items", {}))
    if schema.get("type") == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return "object of " + _type(extra) if isinstance(extra, dict) and extra else "object"
    return str(schema.get("type", "any"))


def _role(tag: str, description: str) -> tuple[str, str]:
    """Who may call an operation, from the document's own words, and the rest of its description."""
    lines = description.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Roles: "):
            roles, _, rest = line.removeprefix("Roles: ").partition(". ")
            return roles.rstrip("."), "\n".join([*lines[:i], rest, *lines[i + 1 :]]).strip()
    if tag == PUBLIC_TAG:
        return "anyone (the portal's public API; a receipt code where one is asked for)", description
    return "any staff member with an account", description


def _fields(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """A request body's fields as table rows."""
    body = _schema(document, schema)
    required = set(body.get("required", []))
    rows = []
    for name, field in body.get("properties", {}).items():
        meaning = field.get("description") or field.get("title", "")
        default = f" (default `{json.dumps(field['default'], ensure_ascii=False)}`)" if "default" in field else ""
        mark = "yes" if name in required else "no"
        rows.append(f"| `{name}` | {_cell(_type(field))} | {mark} | {_cell(meaning)}{_cell(default)} |")
    return rows


def _operation(document: dict[str, Any], tag: str, method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """One operation: method, path, summary, role, parameters, request body fields, responses."""
    role, rest = _role(tag, operation.get("description", ""))
    out = [f"### {method} `{path}`", "", f"**{_cell(operation.get('summary', ''))}**", ""]
    out += [f"- Role: {role}", f"- Operation id: `{operation.get('operationId', '')}`"]
    if rest:
        out += ["", rest]
    parameters = [p for p in operation.get("parameters", []) if p["name"] != "authorization"]
    if parameters:
        out += ["", "| parameter | in | type | required | meaning |", "| --- | --- | --- | --- | --- |"]
        for p in parameters:
            meaning = _cell(p.get("description") or p.get("schema", {}).get("title", ""))
            kind = _cell(_type(p.get("schema", {})))
            out.append(f"| `{p['name']}` | {p['in']} | {kind} | {'yes' if p.get('required') else 'no'} | {meaning} |")
    for media, body in operation.get("requestBody", {}).get("content", {}).items():
        rows = _fields(document, body.get("schema", {}))
        out += ["", f"Request body (`{media}`, {_type(body.get('schema', {}))}):", ""]
        out += ["| field | type | required | meaning |", "| --- | --- | --- | --- |", *rows] if rows else ["no fields."]
    out += ["", "| status | meaning | body |", "| --- | --- | --- |"]
    for status, answer in operation.get("responses", {}).items():
        shapes = [_type(c.get("schema", {})) for c in answer.get("content", {}).values()]
        shape = ", ".join(s for s in shapes if s != "any")
        out.append(f"| {status} | {_cell(answer.get('description', ''))} | {_cell(shape)} |")
    return [*out, ""]


def api_markdown(document: dict[str, Any]) -> str:
    """Every operation of the document, grouped by its tag (the portal's public API first)."""
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    out: list[str] = []
    for tag, operations in by_tag.items():
        out += ["## The portal's public API" if tag == PUBLIC_TAG else f"## `{tag}`", ""]
        for method, path, operation in operations:
            out += _operation(document, tag, method, path, operation)
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Publish the OpenAPI document beside the API reference, for download."""
    from mkdocs.structure.files import File  # noqa: PLC0415 - only a build needs MkDocs

    content = json.dumps(openapi_document(), ensure_ascii=False, indent=2) + "\n"
    files.append(File.generated(config, OPENAPI_FILE, content=content))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:  # noqa: ARG001 - MkDocs' signature
    """Put the generated parts in their pages; a page whose mark is missing fails the build."""
    generated = {
        "reference/configuration.md": (SETTINGS_MARK, settings_markdown),
        "reference/api.md": (API_MARK, lambda: api_markdown(openapi_document())),
        "changelog.md": (CHANGELOG_MARK, lambda: (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")),
    }
    entry = generated.get(page.file.src_uri)
    if entry is None:
        return markdown
    mark, make = entry
    if mark not in markdown:
        from mkdocs.exceptions import PluginError  # noqa: PLC0415 - only a build needs MkDocs

        msg = f"{page.file.src_uri} lost its mark {mark!r}: the generated part has nowhere to go"
        raise PluginError(msg)
    return markdown.replace(mark, make())
