"""Tables written beside the replay by a process of their own.

An export of every table from one replay spends its time in the process that executes the
commands: the replay itself, then building each table's rows and writing them. Writing (CSV
quoting, JSON, conversion to Arrow, partitioning) needs none of the replay's state, so a
process of its own does it, on the core the replay leaves:

- the **replayed tables** (trades, orders, events, book): the replay's process builds each
  row and sends the rows here in batches, serialised by :mod:`marshal` (a row is a tuple of
  integers, text, booleans and nulls, which marshal writes in 0.6 µs: 0.7 µs by pickle,
  1.6 µs to write it into a Parquet dataset, 3.0 µs as CSV; ``bench_export --row-costs``).
  A thread of the replay's process feeds the pipe, so the replay does not wait while this
  process writes.
- the **record tables** (journal, ledger): the database's own rows (each command with the
  entries it settled; each entry), which this process reads again, checking both hash chains
  as the replay's reader does, told by the replay how many entries each command it checked
  settled (the ledger's rows do not say which command settled an entry). Sending the
  commands and entries the replay has instead would cost the replay's process more than
  reading them again costs this one (measured)."""

from __future__ import annotations

import gc
import glob
import marshal
import multiprocessing
import os
import pickle
import queue
import shutil
import signal
import threading
from array import array
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from exchange.research.formats import Format, write_table
from exchange.research.journal import (
    MIN_READ_AHEAD_COMMANDS,
    JournalRow,
    RecordedCommand,
    open_database,
)
from exchange.research.readahead import start_method
from exchange.research.tables import TABLES, Row, Sink, Window, journal_row, ledger_row
from exchange.service import Exchange, Outcome
from exchange.whole_files import temporary_prefix
from ledger.store import StoredEntry

__all__ = ["MIN_COMMANDS", "RECORD_TABLES", "WriterStopped", "WritingProcess"]

# The tables built from the database's rows, which this process reads itself.
RECORD_TABLES: Final = frozenset({"journal", "ledger"})
# A journal of fewer commands has its tables written in the replay's own process: as with
# reading ahead, starting another costs more than it saves on short journals.
MIN_COMMANDS = MIN_READ_AHEAD_COMMANDS
# Commands whose entry counts go in one message: a message per few milliseconds of replay.
COUNTS_PER_MESSAGE: Final = 4_096
# A replayed table's rows in one message (about 100 bytes each).
ROWS_PER_MESSAGE: Final = 2_048
# Messages waiting for the pipe, at most: the replay waits beyond this (memory stays bounded
# if this process falls behind).
MAX_QUEUED: Final = 256
# How much lower the process's priority is than the replay's (nice(2)).
NICENESS: Final = 10
# How long the process gets to remove its files and exit once told to abandon them.
STOP_TIMEOUT_S: Final = 5.0

# Messages to the process, each a marshalled tuple whose first item says what it is.
_COUNTS: Final = "counts"  # (_COUNTS, entry counts as array("I") bytes)
_ROWS: Final = "rows"  # (_ROWS, table, [row, ...])
_REPLAYED: Final = "replayed"  # the replay checked every command it will: no more counts
_END: Final = "end"  # no more rows
_COMMIT: Final = "commit"
_ABANDON: Final = "abandon"


class WriterStopped(Exception):
    """The writing process ended without saying why (killed, or out of memory)."""


class WritingProcess:
    """Has the tables of ``paths`` (table name -> path) written by a process of its own:
    the record tables from the database at ``url``, the others from the rows given to
    :meth:`sink`. A replay listener (add it to the replay's listeners when
    :attr:`counting`: it tells the process which entries each command settled).

    Used as a context manager around the export: leaving it without an exception, after
    :meth:`end` and :meth:`wait_written`, puts the tables in place; leaving it with one
    removes them. ``rows`` holds each table's row count once written.
    """

    def __init__(self, url: str, paths: dict[str, Path], format: Format, window: Window) -> None:
        self.counting = bool(RECORD_TABLES & paths.keys())
        context = multiprocessing.get_context(start_method())
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(
            target=_write,
            args=(url, paths, format, window, theirs),
            name="dataex-table-writer",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        self._paths = paths
        self._counts = array("I")
        self._pending: dict[str, list[Row]] = {}
        # Started with the first message, after the replay has started its reader: a
        # process started while this one runs a second thread is not forked (readahead).
        self._feeder: threading.Thread | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(MAX_QUEUED)
        self._feed_error: OSError | None = None
        self._finished = False
        self.rows: dict[str, int] = {}

    @property
    def pid(self) -> int | None:
        """The writing process's id."""
        return self._process.pid

    def sink(self, table: str) -> Sink:
        """The sink of a replayed table's rows: they go to the process in batches."""
        pending = self._pending.setdefault(table, [])

        def write(row: Row) -> None:
            pending.append(row)
            if len(pending) >= ROWS_PER_MESSAGE:
                self._send((_ROWS, table, pending))
                pending.clear()

        return write

    def on_command(
        self, exchange: Exchange, record: RecordedCommand, outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:  # fmt: skip
        counts = self._counts
        counts.append(len(recorded))
        if len(counts) >= COUNTS_PER_MESSAGE:
            self._send((_COUNTS, counts.tobytes()))
            del counts[:]

    def finish(self, exchange: Exchange) -> None:
        """The replay has ended: no more counts. The process writes the record tables' last
        rows while the replay's side builds the rows of its last tables."""
        if self._counts:
            self._send((_COUNTS, self._counts.tobytes()))
        self._send((_REPLAYED,))

    def end(self) -> None:
        """No more rows: the process writes what it has (then :meth:`wait_written`)."""
        for table, pending in self._pending.items():
            if pending:
                self._send((_ROWS, table, pending))
                pending.clear()
        self._send((_END,))

    def wait_written(self) -> None:
        """Wait until the process has written every row (raises its error, such as a broken
        hash chain)."""
        self._stop_feeding()
        self.rows = self._reply("written")
        self._finished = True

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._feed_error is not None:
            # The pipe broke: the process has ended. Its own error, if it sent one (or how
            # it ended), is raised here.
            self._stop_feeding(drop=True)
            self._reply("failed")
        if self._feeder is None:
            self._feeder = threading.Thread(
                target=self._feed, name="dataex-table-feeder", daemon=True
            )
            self._feeder.start()
        self._queue.put(marshal.dumps(message))  # waits if MAX_QUEUED wait

    def _feed(self) -> None:
        """The feeder thread: send the queued messages in order (the pipe's writes release
        the GIL while this process is busy). After a failure, drop the rest, so that the
        replay never waits on a full queue, and leave the error for it to raise."""
        while (message := self._queue.get()) is not None:
            if self._feed_error is None:
                try:
                    self._pipe.send_bytes(message)
                except OSError as error:
                    self._feed_error = error

    def _stop_feeding(self, *, drop: bool = False) -> None:
        """Wait until the feeder has sent what is queued (``drop``: drop it) and stop it."""
        if self._feeder is None:
            return
        if drop:
            with suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
        self._queue.put(None)
        self._feeder.join()
        self._feeder = None

    def __enter__(self) -> WritingProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None and self._finished:
                with suppress(OSError):  # it has gone: the reply says how
                    self._pipe.send_bytes(marshal.dumps(_COMMIT))
                self._reply("done")
            else:
                self._stop_feeding(drop=True)  # what is queued is abandoned too
                if self._process.is_alive():
                    with suppress(OSError):  # it has gone already
                        self._pipe.send_bytes(marshal.dumps(_ABANDON))
        finally:
            self._process.join(STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()
            self._pipe.close()
            if self._process.exitcode != 0:
                self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Remove what the process left when it was stopped without a word (killed): the
        temporary files and datasets named with its pid (``whole_files.temporary_prefix``)."""
        for path in self._paths.values():
            pattern = glob.escape(temporary_prefix(path, self._process.pid)) + "*.tmp"
            for leftover in path.parent.glob(pattern):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)

    def _reply(self, expected: str) -> Any:
        try:
            what, value = self._pipe.recv()
        except (EOFError, ConnectionResetError):  # reset: it died with messages unread
            self._process.join(STOP_TIMEOUT_S)
            raise WriterStopped(
                f"the process writing the tables stopped (exit code {self._process.exitcode})"
            ) from None
        if what == "failed":
            raise value
        assert what == expected, (what, expected)
        return value


class _Abandoned(Exception):
    """Told to remove the tables (or left without a word)."""


def _write(
    url: str, paths: dict[str, Path], format: Format, window: Window, pipe: Connection
) -> None:
    """The process: write the rows as they come, then wait for the verdict."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Lower priority than the replay: when both want a core (with the journal's reader,
    # three processes share two), the replay, on the export's critical path, gets it; this
    # process catches up when the replay waits (an export of every table 0.4-0.7 s faster).
    with suppress(OSError):
        os.nice(NICENESS)
    # Acyclic rows and tuples only, freed by reference counting (as the journal's reader).
    gc.disable()
    try:
        with ExitStack() as stack:
            writers = {
                name: stack.enter_context(write_table(path, format, TABLES[name]))
                for name, path in paths.items()
            }
            record = None
            if RECORD_TABLES & writers.keys():
                streams = stack.enter_context(open_database(url, parsed=False))
                record = _RecordRows(streams, writers, window)
            while (message := _receive(pipe))[0] != _END:
                kind = message[0]
                if kind == _ROWS:
                    writers[message[1]].write_rows(message[2])
                elif kind == _COUNTS:
                    assert record is not None, "entry counts, but no record table"
                    record.write(message[1])
                elif kind == _REPLAYED and record is not None:
                    record.close()  # while the replay's side builds its last rows
            # Every row and file written now; only putting them in place waits for the
            # verdict.
            for writer in writers.values():
                writer.close()
            pipe.send(("written", {name: writer.rows for name, writer in writers.items()}))
            if _receive(pipe) != _COMMIT:
                raise _Abandoned
        pipe.send(("done", None))
    except _Abandoned:
        pass
    except BaseException as error:
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
        with suppress(OSError):  # the other side has gone: nobody to tell
            pipe.send(("failed", error))


class _RecordRows:
    """The record tables' rows, from the database's streams and the replay's entry counts."""

    def __init__(
        self,
        streams: tuple[Iterator[JournalRow], Iterator[StoredEntry]],
        writers: dict[str, Any],
        window: Window,
    ) -> None:
        self.commands, self.entries = streams
        self.writers = {name: writers[name] for name in RECORD_TABLES & writers.keys()}
        self.window = window

    def write(self, message: bytes) -> None:
        counts = array("I")
        counts.frombytes(message)
        journal: list[Row] | None = [] if "journal" in self.writers else None
        ledger: list[Row] | None = [] if "ledger" in self.writers else None
        window, commands, entries = self.window, self.commands, self.entries
        for count in counts:
            record = next(commands, None)
            if record is None:
                raise RuntimeError("the journal ended before the replay did")
            recorded = list(islice(entries, count)) if count else []
            if len(recorded) != count:
                raise RuntimeError("the ledger ended before the replay did")
            if journal is not None and window.contains(record.ts_ns):
                journal.append(journal_row(record, recorded))
            if ledger is not None:
                for entry in recorded:
                    if window.contains(entry.ts_ns):
                        ledger.append(ledger_row(entry))
        if journal:
            self.writers["journal"].write_rows(journal)
        if ledger:
            self.writers["ledger"].write_rows(ledger)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _receive(pipe: Connection) -> Any:
    try:
        message = marshal.loads(pipe.recv_bytes())
    except EOFError:
        raise _Abandoned from None
    if message == _ABANDON:
        raise _Abandoned
    return message
