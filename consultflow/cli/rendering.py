"""Reports as the CLI shows them or writes them: one way for every report command."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from consultflow.cli.main import CliState
from consultflow.domain.errors import ValidationError
from consultflow.export import formats
from consultflow.export.files import refuse_existing, write_new_file_from
from consultflow.services.commands.reports import Chunk, chunk_bytes


def render(
    state: CliState,
    name: str,
    make: Callable[[str, bool], object],
    fmt: str | None,
    output: Path | None,
    force: bool,
) -> None:
    """Render a report through the streaming command `name` and show it, or write it to a new file.

    `make(format, for_file)` builds the command's input. The format and a taken file name are
    checked before anything is read. The report arrives whole (a full-name report only once its
    read is on record) and is then shown, or written beside its file name and moved into place: a
    report that fails half-way leaves no file.
    """
    chosen = fmt or (guess_format(output) if output else "json" if state.json else "table")
    if output is None and chosen in formats.BINARY_FORMATS:
        msg = f"{chosen} is a binary format; give --output FILE"
        raise ValidationError(msg)
    if output is not None and not force:
        refuse_existing(output)
    given = make(chosen, output is not None)

    def show(chunks: Iterable[Chunk]) -> None:
        data = chunk_bytes(chunks)
        if output is None:
            text = codecs.getincrementaldecoder("utf-8")()
            for block in data:
                click.echo(text.decode(block), nl=False)
            click.echo(text.decode(b"", final=True), nl=False)
            return
        write_new_file_from(output, lambda out: [out.write(block) for block in data], force=force)
        if state.json:  # one JSON document on stdout, as with every command
            state.emit({"wrote": str(output), "format": chosen}, lambda: "")
        else:
            click.echo(f"wrote {output} ({chosen})", err=True)

    state.stream(name, given, show)


def guess_format(path: Path) -> str:
    """The report format a file name asks for (report.md: markdown)."""
    suffix = path.suffix.lower().lstrip(".")
    known = {"md": "markdown", "markdown": "markdown", "csv": "csv", "xlsx": "xlsx", "json": "json", "txt": "table"}
    if suffix not in known:
        msg = f"cannot tell the format of {path.name}; give --format ({', '.join(formats.FORMATS)})"
        raise ValidationError(msg)
    return known[suffix]
