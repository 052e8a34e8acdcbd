"""Registered reports: a report rendered in the format asked for, handed back as bytes, a chunk at a time.

The document is rendered where the data is (the same renderers the local CLI uses, so the bytes
are the same), into a private spool file; its chunks then go to whoever asked, to be shown or
written to their file. A report with full names is read on record inside its transaction, and
its bytes leave the spool only after that transaction has committed: nothing is shown off the
record, locally or through the server.
"""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, TypeVar, cast

from consultflow.domain.document import Document
from consultflow.domain.errors import ValidationError
from consultflow.domain.labels import Lang
from consultflow.domain.privacy import NAME_MODES, NameMode
from consultflow.export import formats
from consultflow.services import plans, reports
from consultflow.services.commands.core import STAFF, command
from consultflow.services.context import ServiceContext

T = TypeVar("T")
CHUNK_BYTES = 256 * 1024
KINDS = ("adoption", "account", "plan", "review")


__all__ = ["Chunk", "RenderReport", "chunk_bytes"]


@dataclass(frozen=True)
class RenderReport:
    """Which report, in which format and language, for the terminal or for a file."""

    consultation_id: int
    kind: str
    format: str
    lang: str = "zh"
    round_no: int | None = None
    names: str = "pseudonym"
    purpose: str | None = None
    for_file: bool = False  # a file's bytes (CSV with the BOM spreadsheets need) or the terminal's text
    version: int | None = None  # review: the plan version (the latest reviewed)


@dataclass(frozen=True)
class Chunk:
    """Part of a rendered report (base64, so XLSX travels as JSON too)."""

    data: str


def _checked(given: RenderReport) -> tuple[Lang, NameMode]:
    if given.kind not in KINDS:
        msg = f"unknown report {given.kind!r}; allowed: {', '.join(KINDS)}"
        raise ValidationError(msg)
    if given.format not in formats.FORMATS:
        msg = f"unknown format {given.format!r}; allowed: {', '.join(formats.FORMATS)}"
        raise ValidationError(msg)
    if given.format in formats.BINARY_FORMATS and not given.for_file:
        msg = f"{given.format} is a binary format; give --output FILE"
        raise ValidationError(msg)
    if given.names not in NAME_MODES:
        msg = f"--names {given.names!r}: allowed: {', '.join(NAME_MODES)}"
        raise ValidationError(msg)
    if given.kind in ("adoption", "review") and given.names != "pseudonym":
        msg = f"the {given.kind} report names nobody; --names is for the account and plan reports"
        raise ValidationError(msg)
    lang: Lang = "en" if given.lang == "en" else "zh"
    names: NameMode = "full" if given.names == "full" else "none" if given.names == "none" else "pseudonym"
    return lang, names


def _render(doc: Document, given: RenderReport, spool: IO[bytes]) -> None:
    if given.for_file:
        formats.write_binary(doc, given.format, cast("BinaryIO", spool))
        return
    text = io.TextIOWrapper(cast("BinaryIO", spool), encoding="utf-8", newline="")
    formats.write_out(doc, given.format, text)
    text.flush()
    text.detach()


def _chunks(spool: IO[bytes]) -> Iterator[Chunk]:
    spool.seek(0)
    while block := spool.read(CHUNK_BYTES):
        yield Chunk(base64.b64encode(block).decode("ascii"))


@command("report.render", "A report (adoption, account, plan) rendered in a format, as chunks of its bytes.",
         input=RenderReport, output=Chunk, roles=STAFF, writes=False, streamed=True)  # fmt: skip
def _report(ctx: ServiceContext, acting: str | None, given: RenderReport, use: Callable[[Iterable[Any]], T]) -> T:
    lang, names = _checked(given)
    with tempfile.TemporaryFile() as spool:  # private to this process; gone when closed
        if given.kind == "review":
            _render(plans.results_report(ctx, given.consultation_id, lang, given.version), given, spool)
        elif given.kind == "adoption":
            _render(reports.adoption_report(ctx, given.consultation_id, lang), given, spool)
        elif given.kind == "account":
            reports.use_account_report(
                ctx, given.consultation_id, lambda doc: _render(doc, given, spool), lang=lang,
                round_no=given.round_no, names=names, acting=acting, purpose=given.purpose,
            )  # fmt: skip
        else:
            reports.use_plan_report(
                ctx, given.consultation_id, lambda doc: _render(doc, given, spool), lang=lang, names=names,
                acting=acting, purpose=given.purpose,
            )  # fmt: skip
        # the read (if on record) has committed: now the bytes may go
        return use(_chunks(spool))


def chunk_bytes(chunks: Iterable[Chunk]) -> Iterator[bytes]:
    """The bytes of a rendered report, as its chunks arrive."""
    for chunk in chunks:
        yield base64.b64decode(chunk.data)
