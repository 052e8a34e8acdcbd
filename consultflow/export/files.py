"""Writing a report or chart to the file a person named, without clobbering or following links.

By default the file must not exist yet (a symlink planted there counts as existing), so a typo
never overwrites last month's published account. With `force`, the content is written to a new
file beside it and moved into place: a link at that name is replaced, never followed. A report
is streamed into the new file, so a failure half-way leaves nothing at the name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from consultflow.domain.errors import ValidationError


def write_new_file(path: Path, content: bytes, *, force: bool = False) -> None:
    """Save `content` at `path`; refuses an existing file (or link) unless `force`.

    Raises:
        ValidationError: the file exists (and not `force`), or it cannot be written.
    """
    write_new_file_from(path, lambda out: out.write(content), force=force)


def write_new_file_from(path: Path, fill: Callable[[BinaryIO], object], *, force: bool = False) -> None:
    """Save what `fill` writes at `path`, streamed: nothing is left there if `fill` fails half-way.

    The file is its owner's alone (0600) whatever the umask, a file replaced with `force` too:
    what is written here (reports with full names, rejected import rows) may be personal.

    Without `force` the name is claimed first (so an existing file is refused before any work),
    the content goes to a new file beside it, and that file is moved over the claimed name.

    Raises:
        ValidationError: the file exists (and not `force`), or it cannot be written.
    """
    claimed = False
    try:
        if not force:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            os.close(os.open(path, flags, 0o600))
            claimed = True
        # Reports name people and rejects files hold their rows: readable by their owner alone,
        # whatever the umask (mkstemp makes the file 0600; fchmod says so in case it ever did not).
        fd, temporary = tempfile.mkstemp(dir=path.parent or Path(), prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as out:
                fill(out)
            Path(temporary).replace(path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise ValidationError(_taken(path)) from None
    except OSError as exc:
        if claimed:
            path.unlink(missing_ok=True)
        msg = f"cannot write {path}: {exc.strerror}"
        raise ValidationError(msg) from None
    except BaseException:
        if claimed:
            path.unlink(missing_ok=True)
        raise


def refuse_existing(path: Path) -> None:
    """Refuse a name already taken (a file or a link) now, before any work, as writing it later would.

    Raises:
        ValidationError: something is already at `path`.
    """
    if path.is_symlink() or path.exists():
        raise ValidationError(_taken(path))


def _taken(path: Path) -> str:
    what = "a link" if path.is_symlink() else "a file"
    return f"{path} is already {what}; choose another name, or give --force to replace it"
