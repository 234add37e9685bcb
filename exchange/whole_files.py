"""Output files that appear whole: written beside their path under a temporary name, put in
place (``os.replace``) only once complete, and removed if the writing fails, so that no reader
ever sees half a file and a failed command leaves nothing behind.

A temporary name carries the writing process's pid, so that what a killed process left can be
found (``exchange.research.offload``). A file gets the permissions any file the user creates
there would have: ``mkstemp`` alone would make it private.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["replacing", "replacing_text", "temporary_beside", "temporary_prefix", "user_mode"]


def temporary_prefix(path: Path, pid: int | None = None) -> str:
    """How the temporary file or directory that becomes ``path`` is named while process
    ``pid`` (this one by default) writes it, then ``<random>.tmp``."""
    return f".{path.name}.{os.getpid() if pid is None else pid}."


def user_mode(mode: int) -> int:
    """``mode`` (0o666 for a file, 0o777 for a directory) as the process's umask leaves it."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def temporary_beside(path: Path) -> tuple[int, str]:
    """A new temporary file in ``path``'s directory (descriptor, name), with the permissions
    a file created there would have."""
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp"
    )
    os.fchmod(handle, user_mode(0o666))
    return handle, temporary


def replacing(path: Path) -> AbstractContextManager[IO[bytes]]:
    """A binary file that becomes ``path`` if the block succeeds and vanishes if it fails."""
    return _replacing(path, mode="wb")


def replacing_text(path: Path) -> AbstractContextManager[IO[str]]:
    """:func:`replacing` for UTF-8 text, newlines written as given (CSV writes its own)."""
    return _replacing(path, mode="w", encoding="utf-8", newline="")


@contextmanager
def _replacing(path: Path, **how: Any) -> Iterator[IO[Any]]:
    handle, temporary = temporary_beside(path)
    try:
        with os.fdopen(handle, **how) as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
