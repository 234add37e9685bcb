"""The record tables, ``journal`` and ``ledger``, written beside the replay by a process of
their own.

An export of every table from one replay spends its time in the process that executes the
commands: the replay itself, then building and writing each table's rows. The ``journal`` and
``ledger`` tables are the database's own rows (each command with the entries it settled; each
entry), so they need none of the replay's state: only which entries each command settled,
which the ledger's rows do not say and the replay finds out as it checks them. So this module
reads the database again in another process, checks both hash chains as the replay's reader
does, and writes the two tables there, told by the replay how many entries each command it
checked settled. On a machine with a core to spare, the replay's process is left the tables
that only it can build (docs/benchmarks.md, "Export").

The tables' files appear only when the export succeeds: the process writes them under
temporary names, says when it has written every row, and puts them in place only when the
replay's side says so, after the replay has checked every command and its own tables are
written. Told to abandon them, or left without a word (the other side ended), it removes
them. The process ignores Ctrl-C: the export's process gets it and abandons.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import signal
from array import array
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from exchange.research.formats import Format, write_table
from exchange.research.journal import MIN_READ_AHEAD_COMMANDS, RecordedCommand, open_database
from exchange.research.readahead import start_method
from exchange.research.tables import TABLES, Window, journal_row, ledger_row
from exchange.service import Exchange, Outcome
from ledger.store import StoredEntry

__all__ = ["MIN_COMMANDS", "RECORD_TABLES", "RecordTables"]

# The tables built from the database's rows, which this process can write.
RECORD_TABLES: Final = frozenset({"journal", "ledger"})
# A journal of fewer commands has its record tables written in the replay's own process: as
# with reading ahead, starting another costs more than it saves on short journals.
MIN_COMMANDS = MIN_READ_AHEAD_COMMANDS
# Commands whose entry counts go in one message: a message per few milliseconds of replay.
COUNTS_PER_MESSAGE: Final = 4_096
# How long the process gets to remove its files and exit once told to abandon them.
STOP_TIMEOUT_S: Final = 5.0

_END: Final = None  # the replay checked every command it will: no more counts
_COMMIT: Final = "commit"
_ABANDON: Final = "abandon"


class RecordTables:
    """A replay listener that has ``journal`` and ``ledger`` (``paths``: table name ->
    path) written by a process of its own, from the database at ``url``.

    Used as a context manager around the export: leaving it without an exception, after
    :meth:`finish` and :meth:`wait_written`, puts the tables in place; leaving it with one
    removes them. ``rows`` holds each table's row count once written.
    """

    def __init__(self, url: str, paths: dict[str, Path], format: Format, window: Window) -> None:
        unknown = set(paths) - RECORD_TABLES
        assert not unknown, f"not record tables: {unknown}"
        context = multiprocessing.get_context(start_method())
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(
            target=_write,
            args=(url, paths, format, window, theirs),
            name="dataex-record-tables",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        self._counts = array("I")
        self._finished = False
        self.rows: dict[str, int] = {}

    def on_command(
        self, exchange: Exchange, record: RecordedCommand, outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:  # fmt: skip
        counts = self._counts
        counts.append(len(recorded))
        if len(counts) >= COUNTS_PER_MESSAGE:
            self._pipe.send(counts.tobytes())
            del counts[:]

    def finish(self, exchange: Exchange) -> None:
        """The replay has ended: no more counts. The process writes its last rows while the
        replay's side finishes its own tables (then :meth:`wait_written`)."""
        if self._counts:
            self._pipe.send(self._counts.tobytes())
        self._pipe.send(_END)

    def wait_written(self) -> None:
        """Wait until the process has written every row (raises its error, such as a broken
        hash chain)."""
        self.rows = self._reply("written")
        self._finished = True

    def __enter__(self) -> RecordTables:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None and self._finished:
                self._pipe.send(_COMMIT)
                self._reply("done")
            elif self._process.is_alive():
                with suppress(OSError):  # it has gone already
                    self._pipe.send(_ABANDON)
        finally:
            self._process.join(STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()
            self._pipe.close()

    def _reply(self, expected: str) -> Any:
        try:
            what, value = self._pipe.recv()
        except EOFError:
            self._process.join(STOP_TIMEOUT_S)
            raise RuntimeError(
                "the process writing the journal and ledger tables stopped "
                f"(exit code {self._process.exitcode})"
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
    """The process: write the tables as the counts come, then wait for the verdict."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Acyclic rows and tuples only, freed by reference counting (as the journal's reader).
    gc.disable()
    try:
        with ExitStack() as stack:
            writers = {
                name: stack.enter_context(write_table(path, format, TABLES[name]))
                for name, path in paths.items()
            }
            commands, entries = stack.enter_context(open_database(url))
            journal = writers["journal"].write if "journal" in writers else None
            ledger = writers["ledger"].write if "ledger" in writers else None
            for counts in _counts(pipe):
                for count in counts:
                    record = next(commands, None)
                    if record is None:
                        raise RuntimeError("the journal ended before the replay did")
                    recorded = list(islice(entries, count)) if count else []
                    if len(recorded) != count:
                        raise RuntimeError("the ledger ended before the replay did")
                    if journal is not None and window.contains(record.ts_ns):
                        journal(journal_row(record, recorded))
                    if ledger is not None:
                        for entry in recorded:
                            if window.contains(entry.ts_ns):
                                ledger(ledger_row(entry))
            # Every row and file written now, while the replay's side finishes its own
            # tables; only putting them in place waits for the verdict.
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


def _counts(pipe: Connection) -> Iterator[array[int]]:
    """The entry counts the replay sends, a message at a time, until it has ended."""
    while (message := _receive(pipe)) is not _END:
        counts = array("I")
        counts.frombytes(message)
        yield counts


def _receive(pipe: Connection) -> Any:
    try:
        message = pipe.recv()
    except EOFError:
        raise _Abandoned from None
    if message == _ABANDON:
        raise _Abandoned
    return message
