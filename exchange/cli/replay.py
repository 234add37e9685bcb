"""``dataex replay``: rebuild the exchange from its journal and check it reproduces the record.

Sources (one of):

- the database, ``--database URL`` (default ``$DATAEX_DATABASE_URL``, else
  ``sqlite:///dataex.db``): the journal and the settlement ledger as stored;
- ``--journal FILE``: a JSONL journal written by ``dataex export --what journal --format
  jsonl`` (docs/research.md);
- ``--lobster MESSAGES.csv [--orderbook ORDERBOOK.csv]``: a LOBSTER message file, whose book
  is rebuilt and, given the order-book file, compared with it row by row.

With ``--counterfactual RULES.toml`` the journal (database or file) is not checked but
executed again under the rules the file changes, and the named instruments' price discovery
is printed for the original and the counterfactual side by side (``--out`` writes it as CSV,
``--html`` as a self-contained page; ``--truth`` compares both with a simulation's true
values; :mod:`exchange.research.counterfactual`).

Exit status: 0 when everything was reproduced; 1 at the first difference (a changed row, an
entry or a book row that differs), with both sides shown; 2 when an input cannot be read (one
``error:`` line naming the file, line and column). Never a traceback for a bad input.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from exchange.cli.files import EXIT_BAD_INPUT
from exchange.orderflow import BOOK_COLUMNS, book_rows
from exchange.research import (
    DatabaseJournal,
    ExportError,
    InputError,
    JournalFile,
    LobsterMismatch,
    LobsterReport,
    Mismatch,
    MissingDependency,
    ReplayReport,
    check_lobster,
    format_time,
    parse_until,
    replay,
)
from exchange.research.counterfactual import Comparison, compare, load_rules, load_truth, rows
from exchange.research.counterfactual_report import render_html
from exchange.research.journal import count_lines
from exchange.research.lobster import BUY, SELL, PriceUnit, orderbook_column_name
from exchange.research.offload import WriterStopped
from exchange.research.readahead import ReaderStopped
from exchange.whole_files import replacing
from ledger import LedgerError
from ledger.schema import require_ledger
from ledger.store import Ledger

__all__ = ["open_database", "replay_command", "reports_errors"]

EXIT_DIFFERS = 1
# A process of the command's own stopped without a word (killed, out of memory).
EXIT_STOPPED = 1
# Differing order-book columns listed for a LOBSTER mismatch.
MISMATCH_COLUMNS_SHOWN = 12

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def reports_errors(command: F) -> F:
    """Turn what a user can get wrong into one ``error:`` line and exit 2, never a
    traceback; a difference found, or a helper process killed, exits 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (InputError, MissingDependency, LedgerError) as error:
            fail(str(error))
        except BrokenPipeError:
            raise  # the reader went away (``| head``): the command line ends quietly
        except OSError as error:
            fail(f"{error.filename}: {error.strerror}" if error.filename else str(error))
        except SQLAlchemyError as error:
            detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            fail(f"database: {detail}")
        except ExportError as error:
            fail(str(error), EXIT_DIFFERS)
        except (ReaderStopped, WriterStopped) as error:
            fail(str(error), EXIT_STOPPED)

    return wrapper  # type: ignore[return-value]


def open_database(database: str | None) -> Ledger:
    """The ledger at ``database`` (or the configured URL); where there is no dataex database
    (a missing SQLite file, an empty or mistyped PostgreSQL schema) a
    :class:`~ledger.schema.NoLedger` error, not a new empty database."""
    return Ledger.open(require_ledger(database))


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s", style="cyan")


@contextmanager
def progress_bar(
    label: str, total: int | None, unit: str, show: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on standard error (when it is a terminal and ``show``); yields
    the callback that reports how many were done.

    The bar is redrawn when told of progress (the replay tells it every few thousand
    commands), not by rich's refresh thread: with no second thread, the replay can fork the
    process that reads its journal ahead instead of starting a fresh interpreter."""
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        console=console,
        disable=not (show and console.is_terminal),
        transient=False,
        auto_refresh=False,
    )
    with bar:
        task = bar.add_task(label, total=total or None)
        yield lambda done: bar.update(task, completed=done, refresh=True)


def replay_command(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="URL",
            help="Database to replay (default $DATAEX_DATABASE_URL, else sqlite:///dataex.db).",
        ),
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal",
            metavar="JOURNAL.jsonl",
            help="Replay a JSONL journal from `dataex export --what journal --format jsonl`.",
        ),
    ] = None,
    lobster: Annotated[
        Path | None,
        typer.Option(
            "--lobster", metavar="MESSAGES.csv", help="Rebuild the book of a LOBSTER message file."
        ),
    ] = None,
    orderbook: Annotated[
        Path | None,
        typer.Option(
            "--orderbook",
            metavar="ORDERBOOK.csv",
            help="With --lobster: the LOBSTER order-book file to check row by row.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="SEQ|TIME",
            help="Stop after this journal seq or ISO 8601 time (UTC unless it has an offset).",
        ),
    ] = None,
    book_out: Annotated[
        Path | None,
        typer.Option("--book-out", metavar="BOOK.csv", help="Write the book at the end here."),
    ] = None,
    price_unit: Annotated[
        PriceUnit | None,
        typer.Option(
            "--price-unit",
            help="With --lobster, for files without a side-car: lobster (yuan x 10,000, "
            "LOBSTER's convention; the default) or fen.",
        ),
    ] = None,
    show_progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    counterfactual: Annotated[
        Path | None,
        typer.Option(
            "--counterfactual",
            metavar="RULES.toml",
            help="Execute the journal again under these instruments' rules and compare price "
            "discovery with the original (docs/research.md).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE.csv", help="With --counterfactual: write the comparison here."
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE.html",
            help="With --counterfactual: write the comparison as a self-contained HTML page.",
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            metavar="SUMMARY.json",
            help="With --counterfactual: the simulation's summary.json (dataex simulate "
            "--report); compare the last price and the market approach with its true values.",
        ),
    ] = None,
) -> None:
    """Replay the journal into a fresh exchange and check, entry for entry and trade for
    trade, that it reproduces the recorded settlement; or rebuild a LOBSTER book.

    Exits 1 at the first difference (both sides shown), 2 when an input cannot be read.
    """
    if counterfactual is not None:
        _counterfactual(
            database, journal, lobster, until, book_out, counterfactual, out, html, truth
        )
        return
    for option, given in (("--out", out), ("--html", html), ("--truth", truth)):
        if given is not None:
            fail(f"{option} goes with --counterfactual")
    _replay(database, journal, lobster, orderbook, until, book_out, price_unit, show_progress)


@reports_errors
def _replay(
    database: str | None,
    journal: Path | None,
    lobster: Path | None,
    orderbook: Path | None,
    until_text: str | None,
    book_out: Path | None,
    price_unit: PriceUnit | None,
    show_progress: bool,
) -> None:
    sources = [name for name, given in (("--database", database), ("--journal", journal),
                                        ("--lobster", lobster)) if given is not None]  # fmt: skip
    if len(sources) > 1:
        raise InputError(f"give one source, not {' and '.join(sources)}")
    if orderbook is not None and lobster is None:
        raise InputError("--orderbook goes with --lobster")
    if price_unit is not None and lobster is None:
        raise InputError("--price-unit goes with --lobster")
    if book_out is not None and not book_out.parent.is_dir():
        raise InputError(f"{book_out}: directory {book_out.parent} does not exist")
    console = Console(highlight=False, soft_wrap=True)
    if lobster is not None:
        if until_text is not None:
            raise InputError("--until applies to journals, not to LOBSTER files")
        _replay_lobster(console, lobster, orderbook, book_out, price_unit, show_progress)
        return
    until = None if until_text is None else parse_until(until_text)
    source = (
        JournalFile(journal) if journal is not None else DatabaseJournal(open_database(database))
    )
    total = source.head_seq()
    if until is not None and until.seq is not None:
        total = min(total, until.seq)
    with progress_bar("replaying", total, "commands", show_progress) as progress:
        report = replay(source, until=until, progress=progress)
    _print_summary(console, report)
    if book_out is not None and report.ok:
        _write_book(book_out, book_rows(report.exchange.engine))
        console.print(f"book:        {book_out} (at journal seq {report.head_seq})")
    if report.mismatch is not None:
        _print_mismatch(console, report.mismatch)
        fail(f"the replay differs from the record at {report.mismatch}", EXIT_DIFFERS)


@reports_errors
def _counterfactual(
    database: str | None,
    journal: Path | None,
    lobster: Path | None,
    until: str | None,
    book_out: Path | None,
    rules_path: Path,
    out: Path | None,
    html: Path | None,
    truth_path: Path | None,
) -> None:
    for option, given in (("--lobster", lobster), ("--until", until), ("--book-out", book_out)):
        if given is not None:
            raise InputError(f"{option} does not go with --counterfactual")
    if journal is not None and database is not None:
        raise InputError("give one source, not --database and --journal")
    for path in (out, html):
        if path is not None and not path.parent.is_dir():
            raise InputError(f"{path}: directory {path.parent} does not exist")
    rules = load_rules(rules_path)
    truth = None if truth_path is None else load_truth(truth_path)
    source = (
        JournalFile(journal) if journal is not None else DatabaseJournal(open_database(database))
    )
    comparison = compare(source, rules, rules_path, truth)
    _print_comparison(Console(highlight=False, soft_wrap=True), source.name, comparison)
    if html is not None:
        # load_rules read the file as UTF-8 text already.
        page = render_html(
            comparison, source.name, str(rules_path), rules_path.read_text(encoding="utf-8")
        )
        with replacing(html) as file:
            file.write(page.encode())
    if out is not None:
        with replacing(out) as file:
            text = io.TextIOWrapper(file, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(("symbol", "figure", "original", "counterfactual"))
            writer.writerows(rows(comparison))
            text.flush()
            text.detach()


def _print_comparison(console: Console, source: str, comparison: Comparison) -> None:
    after = comparison.counterfactual
    console.print(f"source:      {source} ({after.commands:,} recorded commands)")
    table = Table()
    for title in ("symbol", "figure", "original", "counterfactual"):
        table.add_column(title, justify="left" if title in ("symbol", "figure") else "right")
    for row in rows(comparison):
        table.add_row(*row, style="bold" if row[2] != row[3] else None)
    console.print(table)
    refused = sum(after.refused_by_rules.values())
    console.print(f"refused:     {refused:,} orders and amendments off the new tick or lot grid")
    other = ", ".join(
        f"{reason} {count:,}" for reason, count in sorted(after.refused_other.items())
    )
    console.print(f"also:        {other or 'no other command refused'}; {after.skipped:,} "
                  "cancels and amendments skipped (their order was refused)")  # fmt: skip
    if after.uncrosses or after.recorded_uncrosses_replaced:
        console.print(f"auctions:    {after.uncrosses:,} periodic uncrosses or sealed-bid closes "
                      f"replaced the record's {after.recorded_uncrosses_replaced:,}")  # fmt: skip


def _print_summary(console: Console, report: ReplayReport) -> None:
    console.print(f"source:      {report.source}")
    console.print(f"commands:    {report.commands:,} replayed")
    checked = "checked against the record" if report.settlement_checked else "NOT checked"
    console.print(f"entries:     {report.entries:,} settled, {checked}")
    console.print(f"trades:      {report.trades:,}")
    console.print(
        f"elapsed:     {report.elapsed_s:.2f} s ({report.commands_per_s:,.0f} commands/s)"
    )
    if report.head_seq:
        moment = format_time(report.head_ts_ns)
        console.print(f"checked:     up to journal seq {report.head_seq} at {moment}")
    if report.stopped_at is not None:
        console.print(f"stopped:     at {report.stopped_at} (--until)")
    if report.ok:
        console.print(f"state hash:  {report.state_hash()}")
        if not report.settlement_checked:
            console.print(
                "result:      the journal's hash chain holds and every command replays; the "
                "file holds no entries, so the settlement was not checked"
            )
        else:
            console.print("result:      the replay reproduces the recorded settlement")


def _print_mismatch(console: Console, mismatch: Mismatch) -> None:
    moment = "" if mismatch.ts_ns is None else f" ({format_time(mismatch.ts_ns)})"
    console.print(f"[bold red]differs[/] at journal seq {mismatch.seq}{moment}: {mismatch.what}")
    if not mismatch.recorded and not mismatch.replayed:
        return
    table = Table()
    for title in ("field", "recorded", "replayed"):
        table.add_column(title, overflow="fold")
    for name in dict.fromkeys([*mismatch.recorded, *mismatch.replayed]):
        recorded, replayed = mismatch.recorded.get(name, ""), mismatch.replayed.get(name, "")
        style = "red" if recorded != replayed and recorded and replayed else None
        table.add_row(name, recorded, replayed, style=style)
    console.print(table)


def _write_book(path: Path, rows: Any) -> None:
    """The book as ``dataex match --book-out`` writes it: symbol, side, level, price, quantity."""
    with replacing(path) as file:
        text = io.TextIOWrapper(file, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(BOOK_COLUMNS)
        writer.writerows(rows)
        text.flush()
        text.detach()


def _replay_lobster(
    console: Console,
    messages: Path,
    orderbook: Path | None,
    book_out: Path | None,
    price_unit: PriceUnit | None,
    show_progress: bool,
) -> None:
    total = count_lines(messages)  # one message per line
    with progress_bar("rebuilding", total, "messages", show_progress) as progress:
        report = check_lobster(messages, orderbook, unit=price_unit, progress=progress)
    _print_lobster_summary(console, messages, orderbook, report)
    if book_out is not None and report.ok:
        # The book file is the exchange's: prices in minor units, converted exactly.
        ticker = re.split(r"_", messages.name, maxsplit=1)[0]
        rows = []
        for side, direction in (("buy", BUY), ("sell", SELL)):
            for level, (price, size) in enumerate(report.book.depth(direction), start=1):
                price_minor = report.unit.to_minor(price)
                if price_minor is None:
                    raise InputError(
                        f"--book-out: the {side} price {price} ({report.unit.describe()}) is "
                        "not a whole number of minor units"
                    )
                rows.append((ticker, side, level, price_minor, size))
        _write_book(book_out, rows)
        console.print(f"book:        {book_out}")
    if report.mismatch is not None:
        _print_lobster_mismatch(console, report.mismatch)
        fail(f"{messages}:{report.mismatch.row}: {report.mismatch.what}", EXIT_DIFFERS)


def _print_lobster_summary(
    console: Console, messages: Path, orderbook: Path | None, report: LobsterReport
) -> None:
    names = {1: "submissions", 2: "cancellations", 3: "deletions", 4: "executions",
             5: "hidden executions", 6: "cross trades", 7: "halts"}  # fmt: skip
    counts = ", ".join(f"{names[k]} {report.by_type[k]:,}" for k in names if report.by_type[k])
    console.print(f"messages:    {report.messages:,} from {messages} ({counts or 'none'})")
    console.print(f"prices:      {report.unit.describe()}, from {report.unit_source}")
    if orderbook is not None:
        console.print(
            f"order book:  {report.rows_checked:,} rows of {report.levels} levels checked "
            f"against {orderbook}"
        )
        if report.seeded_units:
            console.print(
                f"start:       the first row held {report.seeded_units:,} units resting before "
                "the first message"
            )
        console.print(
            f"revealed:    {report.revealed_levels:,} levels came into view from beyond the "
            f"file's {report.levels} and were taken from it; {report.unseen_messages:,} "
            "messages fell beyond the levels in view"
        )
    console.print(f"elapsed:     {report.elapsed_s:.2f} s")
    bids, asks = report.book.depth(BUY), report.book.depth(SELL)
    best_bid = f"{bids[0][1]} @ {bids[0][0]}" if bids else "none"
    best_ask = f"{asks[0][1]} @ {asks[0][0]}" if asks else "none"
    console.print(f"final book:  {len(bids)} bid / {len(asks)} ask levels; best bid {best_bid}, "
                  f"best ask {best_ask}")  # fmt: skip
    if report.ok:
        if orderbook is not None:
            console.print(
                "result:      every order-book row matches the rebuilt book within the levels "
                "it knows"
            )
        else:
            console.print("result:      every message applies to the book")


def _print_lobster_mismatch(console: Console, mismatch: LobsterMismatch) -> None:
    message = "" if mismatch.message is None else f" (message {mismatch.message})"
    console.print(f"[bold red]differs[/] at row {mismatch.row}{message}: {mismatch.what}")
    if mismatch.recorded is None or mismatch.rebuilt is None:
        return
    table = Table()
    for title in ("column", "order-book file", "rebuilt"):
        table.add_column(title, overflow="fold")
    shown = 0
    for index, (recorded, rebuilt) in enumerate(
        zip(mismatch.recorded, mismatch.rebuilt, strict=True)
    ):
        if recorded != rebuilt and shown < MISMATCH_COLUMNS_SHOWN:
            table.add_row(orderbook_column_name(index), str(recorded), str(rebuilt), style="red")
            shown += 1
    console.print(table)
