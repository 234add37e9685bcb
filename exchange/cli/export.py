"""``dataex export``: the research tables of a database as CSV, JSON lines, Parquet or LOBSTER.

``--what trades|orders|events|book|ledger|journal`` with ``--format csv|jsonl|parquet`` writes
one table (columns in docs/research.md) to ``--out`` (default ``<what>.<format>`` here; ``-``
for standard output, except Parquet, which is a dataset: a directory partitioned by date and
symbol). Several tables (``--what trades,orders,book`` or ``--what all``) come from one
replay, each to ``<what>.<format>`` in the directory ``--out`` (default: here).
``--format lobster --symbol S [--levels N]`` writes the symbol's LOBSTER message and order-book
files, a pair per UTC day, into the directory ``--out`` (default: here). ``--out``'s directory
is made, parents too, once the input has been checked. Every table but ``ledger`` comes from a
replay of the journal, checked against the recorded settlement: a database that does not replay
exports nothing (exit 1). Input that cannot be used, an instrument the database never listed
among it, exits 2 with one ``error:`` line; files appear only when the export succeeded.
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
    export_tables,
    parse_time,
)
from exchange.research.export import check_window
from exchange.research.lobster import MAX_LEVELS, PriceUnit
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
        str | None,
        typer.Option(
            "--what",
            metavar="TABLES",
            help="The tables, comma-separated, or all: trades, orders, events, book, ledger, "
            "journal (not with --format lobster).",
        ),
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
            help="File to write (- for standard output); a directory for Parquet, several "
            "tables or lobster. Missing directories are made.",
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
    price_unit: Annotated[
        PriceUnit | None,
        typer.Option(
            "--price-unit",
            help="LOBSTER prices: lobster (yuan x 10,000, LOBSTER's convention; the default) "
            "or fen.",
        ),
    ] = None,
    show_progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
) -> None:
    """Export trades, orders, events, the book, the ledger or the journal of a database."""
    _export(what, format, start, end, out, database, symbol, levels, price_unit, show_progress)


@reports_errors
def _export(
    what: str | None,
    format: ExportFormat,
    start: str | None,
    end: str | None,
    out: Path | None,
    database: str | None,
    symbol: str | None,
    levels: int,
    price_unit: PriceUnit | None,
    show_progress: bool,
) -> None:
    window = Window(_time(start, "--from"), _time(end, "--to"), symbol)
    if price_unit is not None and format is not ExportFormat.LOBSTER:
        raise InputError("--price-unit applies to --format lobster")
    if format is ExportFormat.LOBSTER:
        if what is not None:
            raise InputError("--format lobster writes messages and an order book: leave out --what")
        if symbol is None:
            raise InputError("--format lobster needs --symbol")
        if not 1 <= levels <= MAX_LEVELS:
            raise InputError(f"--levels must be within 1..{MAX_LEVELS}")
        directory = out or Path(".")
        unit = price_unit or PriceUnit.LOBSTER
        ledger = open_database(database)
        _check_listed(ledger, symbol)
        directory.mkdir(parents=True, exist_ok=True)
        with progress_bar("exporting", ledger.journal_head_seq(), "commands", show_progress) as p:
            result, lobster = export_lobster(
                ledger, symbol, levels, directory, window, unit=unit, progress=p
            )
        if not result.files:
            typer.echo(
                f"no LOBSTER messages for {symbol} in the window: no files written", err=True
            )
            return
        typer.echo(
            f"wrote {lobster.messages:,} messages of {symbol} ({levels} levels, prices in "
            f"{unit.describe()}):",
            err=True,
        )
        for path in result.files:
            typer.echo(f"  {path}", err=True)
        return
    if what is None:
        raise InputError("--what is required: trades, orders, events, book, ledger or journal")
    tables = _tables(what)
    table_format = Format(format.value)
    paths = _outputs(out, tables, table_format)
    check_window(tables, window)
    ledger = open_database(database)
    if symbol is not None:
        _check_listed(ledger, symbol)
    for path in paths.values():
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar("exporting", ledger.journal_head_seq(), "commands", show_progress) as p:
        result = export_tables(ledger, paths, table_format, window, progress=p)
    replayed = ""
    if result.replay is not None:
        replayed = f" (replayed {result.replay.commands:,} commands, settlement checked)"
    if len(tables) == 1:
        where = "standard output" if paths[tables[0]] is None else str(paths[tables[0]])
        typer.echo(
            f"wrote {result.rows[tables[0]]:,} {tables[0]} rows to {where}{replayed}", err=True
        )
        return
    typer.echo(f"wrote {len(tables)} tables{replayed}:", err=True)
    for table, path in paths.items():
        typer.echo(f"  {result.rows[table]:,} {table} rows to {path}", err=True)


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


def _tables(text: str) -> list[What]:
    """``--what``'s tables: ``trades,orders`` or ``all``, each once, in the order given."""
    if text.strip() == "all":
        return list(What)
    tables = []
    for name in text.split(","):
        try:
            table = What(name.strip())
        except ValueError:
            choices = ", ".join(What)
            raise InputError(f"--what: {name.strip()!r} is not a table: {choices} or all") from None
        if table in tables:
            raise InputError(f"--what: {table} is given twice")
        tables.append(table)
    return tables


def _outputs(out: Path | None, tables: list[What], format: Format) -> dict[What, Path | None]:
    if len(tables) > 1:
        if out is not None and str(out) == "-":
            raise InputError("several tables cannot go to standard output: give --out DIR")
        directory = out or Path(".")
        if directory.exists() and not directory.is_dir():
            raise InputError(f"--out {directory}: several tables go to a directory, not a file")
        return {table: directory / f"{table}.{format}" for table in tables}
    (table,) = tables
    if out is None:
        return {table: Path(f"{table}.{format}")}
    if str(out) == "-":
        if format is Format.PARQUET:
            raise InputError("Parquet cannot go to standard output: give --out DIR")
        return {table: None}
    return {table: out}
