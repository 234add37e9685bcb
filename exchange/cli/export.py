"""``dataex export``: the research tables of a database as CSV, JSON lines, Parquet or LOBSTER.

``--what trades|orders|events|book|ledger|journal`` with ``--format csv|jsonl|parquet`` writes
one table (columns in docs/research.md) to ``--out`` (default ``<what>.<format>`` here; ``-``
for standard output, except Parquet). ``--format lobster --symbol S [--levels N]`` writes the
symbol's LOBSTER message and order-book files, a pair per UTC day, into the directory
``--out`` (default: here). ``--out``'s directory is made, parents too, once the input has
been checked. Every table but ``ledger`` comes from a replay of the journal, checked against
the recorded settlement: a database that does not replay exports nothing (exit 1). Input that
cannot be used, an instrument the database never listed among it, exits 2 with one ``error:``
line; files appear only when the export succeeded.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from exchange.cli.replay import open_database, progress_bar, reports_errors
from exchange.research import (
    Format,
    InputError,
    What,
    Window,
    export_lobster,
    export_table,
    parse_time,
)
from exchange.research.export import check_window
from exchange.research.lobster import MAX_LEVELS
from exchange.research.times import TimeError
from ledger.accounts import AccountError, issued, licence_asset
from ledger.store import Ledger

__all__ = ["export_command"]

DEFAULT_LEVELS = 10


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"
    LOBSTER = "lobster"


def export_command(
    what: Annotated[
        What | None,
        typer.Option("--what", help="The table to export (not with --format lobster)."),
    ] = None,
    format: Annotated[ExportFormat, typer.Option("--format", help="File format.")] = (
        ExportFormat.CSV
    ),
    start: Annotated[
        str | None,
        typer.Option("--from", metavar="TIME", help="Rows at or after this ISO 8601 time."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", metavar="TIME", help="Rows at or before this ISO 8601 time."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="PATH",
            help="File to write (- for standard output); a directory for lobster. Missing "
            "directories are made.",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="URL",
            help="Database (default $DATAEX_DATABASE_URL, else sqlite:///dataex.db).",
        ),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Only this instrument (required for lobster).")
    ] = None,
    levels: Annotated[
        int, typer.Option("--levels", help=f"Book levels of the LOBSTER files (1..{MAX_LEVELS}).")
    ] = DEFAULT_LEVELS,
    show_progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
) -> None:
    """Export trades, orders, events, the book, the ledger or the journal of a database."""
    _export(what, format, start, end, out, database, symbol, levels, show_progress)


@reports_errors
def _export(
    what: What | None,
    format: ExportFormat,
    start: str | None,
    end: str | None,
    out: Path | None,
    database: str | None,
    symbol: str | None,
    levels: int,
    show_progress: bool,
) -> None:
    window = Window(_time(start, "--from"), _time(end, "--to"), symbol)
    if format is ExportFormat.LOBSTER:
        if what is not None:
            raise InputError("--format lobster writes messages and an order book: leave out --what")
        if symbol is None:
            raise InputError("--format lobster needs --symbol")
        if not 1 <= levels <= MAX_LEVELS:
            raise InputError(f"--levels must be within 1..{MAX_LEVELS}")
        directory = out or Path(".")
        ledger = open_database(database)
        _check_listed(ledger, symbol)
        directory.mkdir(parents=True, exist_ok=True)
        with progress_bar("exporting", ledger.journal_head_seq(), "commands", show_progress) as p:
            result, lobster = export_lobster(ledger, symbol, levels, directory, window, progress=p)
        if not result.files:
            typer.echo(
                f"no LOBSTER messages for {symbol} in the window: no files written", err=True
            )
            return
        typer.echo(f"wrote {lobster.messages:,} messages of {symbol} ({levels} levels):", err=True)
        for path in result.files:
            typer.echo(f"  {path}", err=True)
        return
    if what is None:
        raise InputError("--what is required: trades, orders, events, book, ledger or journal")
    table_format = Format(format.value)
    path = _output(out, what, table_format)
    check_window([what], window)
    ledger = open_database(database)
    if symbol is not None:
        _check_listed(ledger, symbol)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar("exporting", ledger.journal_head_seq(), "commands", show_progress) as p:
        result = export_table(ledger, what, table_format, path, window, progress=p)
    where = "standard output" if path is None else str(path)
    replayed = ""
    if result.replay is not None:
        replayed = f" (replayed {result.replay.commands:,} commands, settlement checked)"
    typer.echo(f"wrote {result.rows[what]:,} {what} rows to {where}{replayed}", err=True)


def _check_listed(ledger: Ledger, symbol: str) -> None:
    """Refuse a symbol the database never listed, before the replay rather than after it
    with an empty export: listing an instrument issues its licences, which leaves its
    ``issued`` account non-zero for good."""
    try:
        listed = ledger.balance(issued(symbol), licence_asset(symbol)) != 0
    except AccountError:  # not even a possible symbol (a colon, or too long)
        listed = False
    if not listed:
        raise InputError(f"--symbol: no instrument {symbol!r} in the database")


def _time(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except TimeError as error:
        raise InputError(f"{option}: {error}") from None


def _output(out: Path | None, what: What, format: Format) -> Path | None:
    if out is None:
        return Path(f"{what}.{format}")
    if str(out) == "-":
        if format is Format.PARQUET:
            raise InputError("Parquet cannot go to standard output: give --out FILE")
        return None
    return out
