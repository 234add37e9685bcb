"""What every ``dataex`` command does with bad input and output files: one ``error:`` line
and exit status 2, and inputs and outputs kept apart (outputs appear only whole:
``exchange.whole_files``)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

__all__ = ["EXIT_BAD_INPUT", "check_distinct", "fail"]

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
