"""What every ``dataex`` command does with bad input and output files: one ``error:`` line
and exit status 2, inputs and outputs kept apart, and outputs that appear only whole."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NoReturn

import typer

__all__ = ["EXIT_BAD_INPUT", "check_distinct", "fail", "replacing"]

EXIT_BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def check_distinct(paths: list[Path]) -> None:
    """Refuse a file given twice (an output that would overwrite an input)."""
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            fail(f"{path} is given twice (also as {seen[key]}); inputs and outputs must differ")
        seen[key] = path


@contextmanager
def replacing(path: Path) -> Iterator[IO[str]]:
    """A text file that becomes ``path`` if the block succeeds and vanishes if it fails."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
