"""Exports: the research tables of a database, in CSV, JSON lines, Parquet or LOBSTER files.

``trades``, ``orders``, ``events``, ``book`` and ``journal`` come from a replay of the journal
(which is checked against the recorded settlement on the way: a database that does not
replay exports nothing); ``ledger`` is read straight from the settlement ledger, its hash
chain checked. A time window keeps the rows stamped within it; the replay stops at its end,
so ``orders`` and ``book`` describe that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from exchange.research import offload
from exchange.research.dataset import DatasetWriter
from exchange.research.formats import Format, write_table
from exchange.research.journal import BrokenChain, DatabaseJournal, InputError
from exchange.research.lobster import LobsterExport, PriceUnit
from exchange.research.offload import RECORD_TABLES, WritingProcess
from exchange.research.replay import Mismatch, ReplayListener, ReplayReport, Until, replay
from exchange.research.tables import (
    TABLES,
    BookRows,
    EventsRows,
    JournalRows,
    OrdersRows,
    Sink,
    TradesRows,
    Window,
    ledger_row,
)
from ledger.rows import gc_paused
from ledger.store import Ledger

__all__ = [
    "ExportError",
    "ExportReport",
    "What",
    "collect",
    "export_lobster",
    "export_table",
    "export_tables",
]


class What(StrEnum):
    TRADES = "trades"
    ORDERS = "orders"
    EVENTS = "events"
    BOOK = "book"
    LEDGER = "ledger"
    JOURNAL = "journal"


_REPLAYED: dict[What, Callable[[Window, Sink], ReplayListener]] = {
    What.TRADES: TradesRows,
    What.ORDERS: OrdersRows,
    What.EVENTS: EventsRows,
    What.BOOK: BookRows,
    What.JOURNAL: JournalRows,
}
_WITHOUT_SYMBOL = (What.LEDGER, What.JOURNAL)


class ExportError(Exception):
    """The database does not replay into its record: nothing is exported (exit 1)."""

    def __init__(self, mismatch: Mismatch) -> None:
        super().__init__(
            f"the journal does not replay into the recorded settlement at {mismatch}; "
            "`dataex replay` shows both sides"
        )
        self.mismatch = mismatch


@dataclass(slots=True)
class ExportReport:
    rows: dict[What, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    replay: ReplayReport | None = None


def check_window(whats: Sequence[What], window: Window) -> None:
    """Refuse options that do not apply to a table, rather than ignore them."""
    for what in whats:
        if window.symbol is not None and what in _WITHOUT_SYMBOL:
            raise InputError(f"--symbol does not apply to {what}: it has rows of every symbol")
        if window.start_ns is not None and what is What.BOOK:
            raise InputError("the book is a snapshot at --to (or the end): --from does not apply")
    if (
        window.start_ns is not None
        and window.end_ns is not None
        and window.start_ns > window.end_ns
    ):
        raise InputError("--from is after --to")


def collect(
    ledger: Ledger,
    sinks: dict[What, Sink],
    window: Window,
    *,
    progress: Callable[[int], None] | None = None,
    extra: Sequence[ReplayListener] = (),
    until_seq: int | None = None,
) -> ReplayReport | None:
    """Feed each table's rows to its sink: one replay for every replayed table (and the
    ``extra`` listeners; up to ``until_seq`` if given), one read of the ledger for
    ``ledger``. Raises :class:`ExportError` if the database does not replay (or its ledger
    chain is broken)."""
    check_window(list(sinks), window)
    report = None
    # The extra listeners first: the writing process is told that the replay has ended
    # before this one builds the orders and the book.
    listeners = [*extra]
    listeners += [_REPLAYED[w](window, sink) for w, sink in sinks.items() if w in _REPLAYED]
    journal = DatabaseJournal(ledger)
    if listeners:
        until = None
        if window.end_ns is not None or until_seq is not None:
            until = Until(seq=until_seq, ts_ns=window.end_ns)
        report = replay(journal, until=until, progress=progress, listeners=listeners)
        if report.mismatch is not None:
            raise ExportError(report.mismatch)
        for listener in listeners:
            finish = getattr(listener, "finish", None)
            if finish is not None:
                finish(report.exchange)
    if What.LEDGER in sinks:
        sink = sinks[What.LEDGER]
        try:
            with journal.open() as stream:
                assert stream.entries is not None
                for entry in stream.entries:
                    if window.end_ns is not None and entry.ts_ns > window.end_ns:
                        break
                    if window.contains(entry.ts_ns):
                        sink(ledger_row(entry))
        except BrokenChain as broken:
            raise ExportError(Mismatch(0, None, str(broken))) from None
    return report


def export_table(
    ledger: Ledger,
    what: What,
    format: Format,
    path: Path | None,
    window: Window,
    *,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write one table to ``path`` (None: standard output) in ``format``."""
    return export_tables(ledger, {what: path}, format, window, progress=progress)


def export_tables(
    ledger: Ledger,
    paths: dict[What, Path | None],
    format: Format,
    window: Window,
    *,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write each table of ``paths`` to its path (None: standard output) in ``format``, all
    from one replay of the journal (and one read of the ledger for ``ledger``). The files
    appear only if every table was written."""
    check_window(list(paths), window)
    if sum(path is None for path in paths.values()) > 1:
        raise InputError("only one table can go to standard output")
    result = ExportReport()
    process: WritingProcess | None = None
    with ExitStack() as stack:
        # Hundreds of thousands of rows wait in the writers' batches, beside the replayed
        # exchange: the cyclic collector would walk them all again and again while the rows,
        # acyclic tuples and strings, are freed by reference counting anyway (paused, an
        # export of every table took 10% less CPU: docs/benchmarks.md, "Export").
        stack.enter_context(gc_paused())
        elsewhere = _written_elsewhere(ledger, paths)
        head_seq = None
        if elsewhere:
            # The process reads its own snapshot, taken after this: it holds every command
            # up to here, and the replay stops here whatever is journalled meanwhile.
            head_seq = ledger.journal_head_seq()
            url = ledger.engine.url.render_as_string(hide_password=False)
            names = {what.value: path for what, path in elsewhere.items()}
            process = stack.enter_context(WritingProcess(url, names, format, window))
        writers = {
            what: stack.enter_context(write_table(path, format, TABLES[what]))
            for what, path in paths.items()
            if what not in elsewhere
        }
        sinks = {what: writer.write for what, writer in writers.items()}
        extra = []
        if process is not None:
            # The record tables are read from the database there; the others' rows are
            # built here and sent.
            sent = [what for what in elsewhere if what not in RECORD_TABLES]
            sinks |= {what: process.sink(what.value) for what in sent}
            if process.counting:
                extra.append(process)
        result.replay = collect(
            ledger, sinks, window, progress=progress, extra=extra, until_seq=head_seq
        )
        if process is not None:
            process.end()
        for writer in writers.values():
            if isinstance(writer, DatasetWriter):
                writer.finish()  # every dataset's last row groups encode at once
        if process is not None:
            try:
                process.wait_written()
            except BrokenChain as broken:  # read again by the writing process
                raise ExportError(Mismatch(0, None, str(broken))) from None
    rows = {what: writer.rows for what, writer in writers.items()}
    if process is not None:
        rows |= {What(name): count for name, count in process.rows.items()}
    result.rows = {what: rows[what] for what in paths}
    result.files = [path for path in paths.values() if path is not None]
    return result


def _written_elsewhere(ledger: Ledger, paths: dict[What, Path | None]) -> dict[What, Path]:
    """The tables of an export that replays to be written to files by a process of their
    own (:mod:`exchange.research.offload`), where the database and its journal are worth
    it; none otherwise (standard output is this process's)."""
    wanted = {what: path for what, path in paths.items() if path is not None}
    if not wanted or not any(what in _REPLAYED for what in paths):
        return {}
    journal = DatabaseJournal(ledger, min_read_ahead_commands=offload.MIN_COMMANDS)
    return wanted if journal.worth_reading_elsewhere() else {}


def export_lobster(
    ledger: Ledger,
    symbol: str,
    levels: int,
    directory: Path,
    window: Window,
    *,
    unit: PriceUnit = PriceUnit.LOBSTER,
    progress: Callable[[int], None] | None = None,
) -> tuple[ExportReport, LobsterExport]:
    """Write ``symbol``'s LOBSTER message and order-book files, and their side-cars, into
    ``directory``, prices in ``unit``."""
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory")
    lobster = LobsterExport(symbol, levels, directory, window, unit)
    result = ExportReport()
    try:
        until = None if window.end_ns is None else Until(ts_ns=window.end_ns)
        result.replay = replay(
            DatabaseJournal(ledger), until=until, progress=progress, listeners=[lobster]
        )
        if result.replay.mismatch is not None:
            raise ExportError(result.replay.mismatch)
        lobster.finish(result.replay.exchange)
    except BaseException:
        lobster.abandon()
        raise
    result.files = list(lobster.files)
    return result, lobster
