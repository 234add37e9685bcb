"""Reading ahead: a journal's two streams read and checked in another process.

A replay spends its time in two places that do not depend on each other: reading the
journal and the settlement entries and checking both hash chains, and executing the commands.
Python runs one of them at a time per process (the GIL; the database drivers hand rows over
in C but keep the GIL while building them), so :func:`read_ahead` runs the reading in a
process of its own, which sends the checked commands and entries here in batches through a
pipe while this process executes the previous batch.

The consumer sees the same two streams, in the same order, as a reading in this process would
give: an exception raised while reading (a broken hash chain, a row that is not a command, a
driver error) ends its stream at the place where it was raised and is raised here when the
consumer reaches that place, so a replay stops at the same row either way.

Each message holds a batch of commands and the entries recorded up to the last command's
time (a command's entries carry its time), so the entries a batch needs arrive with it. The
pipe holds one message: the reader runs at most one batch ahead of its consumer and the
memory in flight stays at two batches. The reader ignores Ctrl-C: the consumer's process
gets it and stops the reader when it leaves :func:`read_ahead`, whichever way it leaves.
"""

from __future__ import annotations

import gc
import io
import multiprocessing
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import fields, is_dataclass
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any, Final, Protocol, TypeVar

try:
    import fcntl
except ImportError:  # Windows: its pipes keep their size
    fcntl = None  # type: ignore[assignment]

__all__ = ["ReaderStopped", "read_ahead", "start_method"]

# Entries sent in one message once the commands have ended (the rest of the ledger is then
# sent in messages of this many, not in one).
MAX_MESSAGE_ENTRIES: Final = 16_384
# The pipe's capacity asked for (Linux's default limit for an unprivileged process): a
# replay's batch of 512 commands takes about 300 KiB, so the reader can be three ahead.
PIPE_BYTES: Final = 1 << 20
# How long the reader gets to exit after it is told to stop, before it is killed.
STOP_TIMEOUT_S: Final = 5.0


class _Timed(Protocol):
    @property
    def ts_ns(self) -> int: ...


C = TypeVar("C", bound=_Timed)
E = TypeVar("E", bound=_Timed)
# Opens the two streams in the reader's process, from a picklable argument (a database URL).
OpenStreams = Callable[[str], AbstractContextManager[tuple[Iterator[Any], Iterator[Any]]]]

# How a stream ends in a message: None (more to come), _ENDED, or the exception it ended with.
_ENDED: Final = True


class ReaderStopped(Exception):
    """The reading process ended without saying why (killed, or out of memory)."""


@contextmanager
def read_ahead(
    open_streams: OpenStreams, source: str, batch_commands: int
) -> Iterator[tuple[Iterator[Any], Iterator[Any]]]:
    """The streams ``open_streams(source)`` gives, read in another process in batches of
    ``batch_commands`` commands; the process is stopped on leaving, however this is left."""
    if batch_commands < 1:
        raise ValueError(f"batch_commands must be at least 1, got {batch_commands}")
    context = multiprocessing.get_context(start_method())
    receiver, sender = context.Pipe(duplex=False)
    _widen(sender)
    reader = context.Process(
        target=_read,
        args=(open_streams, source, batch_commands, receiver, sender),
        name="dataex-journal-reader",
        daemon=True,
    )
    try:
        reader.start()
        # Only the reader writes: with this end closed here, its exit reads as end of file.
        sender.close()
        received = _Received(receiver, reader)
        yield received.commands(), received.entries()
    finally:
        sender.close()
        receiver.close()
        if reader.pid is not None:
            _stop(reader)


def _widen(pipe: Connection) -> None:
    """Let the pipe hold PIPE_BYTES (Linux; elsewhere, and where refused, it keeps its
    64 KiB), so the reader can send a batch while its consumer is still executing."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is not None:
        with suppress(OSError):
            fcntl.fcntl(pipe.fileno(), set_size, PIPE_BYTES)


def start_method() -> str:
    """Fork where it is safe (this process runs one thread): it starts in milliseconds, where
    a fresh interpreter takes a large part of a second to import the ledger."""
    forkable = "fork" in multiprocessing.get_all_start_methods()
    return "fork" if forkable and threading.active_count() == 1 else "spawn"


def _stop(reader: multiprocessing.process.BaseProcess) -> None:
    if reader.is_alive():
        reader.terminate()
        reader.join(STOP_TIMEOUT_S)
        if reader.is_alive():
            reader.kill()
    reader.join()


# -- the consumer's side -------------------------------------------------------------------


class _Received:
    """The messages of the pipe, split into the command stream and the entry stream. A
    stream that needs more receives the next message, keeping the other stream's part."""

    __slots__ = ("_commands", "_entries", "_pipe", "_reader")

    def __init__(self, pipe: Connection, reader: multiprocessing.process.BaseProcess) -> None:
        self._pipe = pipe
        self._reader = reader
        # Batches (lists) and, last, how the stream ended (_ENDED or an exception).
        self._commands: deque[Any] = deque()
        self._entries: deque[Any] = deque()

    def _receive(self) -> None:
        try:
            message = self._pipe.recv_bytes()
        except EOFError:
            self._reader.join(STOP_TIMEOUT_S)
            raise ReaderStopped(
                f"the journal reader process stopped (exit code {self._reader.exitcode})"
            ) from None
        commands, commands_end, entries, entries_end = pickle.loads(message)
        for queue, batch, end in (
            (self._commands, commands, commands_end),
            (self._entries, entries, entries_end),
        ):
            if batch:
                queue.append(batch)
            if end is not None:
                queue.append(end)

    def commands(self) -> Iterator[Any]:
        return self._stream(self._commands)

    def entries(self) -> Iterator[Any]:
        return self._stream(self._entries)

    def _stream(self, queue: deque[Any]) -> Iterator[Any]:
        while True:
            while not queue:
                self._receive()
            item = queue.popleft()
            if item is _ENDED:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item


# -- the reader's side ---------------------------------------------------------------------


def _read(
    open_streams: OpenStreams,
    source: str,
    batch_commands: int,
    receiver: Connection,
    sender: Connection,
) -> None:
    """The reader process: open the streams and send them in batches until both end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The reader allocates only acyclic rows and tuples, which reference counting frees;
    # the cyclic collector's passes over them would cost a third of its time (ledger.rows).
    gc.disable()
    # This process only writes: with its copy of the reading end closed, a write after the
    # consumer has gone fails instead of waiting for a reader that will never come.
    receiver.close()
    send = _sender(sender)
    try:
        with open_streams(source) as (commands, entries):
            _send_batches(commands, entries, batch_commands, send)
    except BrokenPipeError:
        pass  # the consumer stopped reading (it found a difference, or it was interrupted)
    except Exception as error:  # opening (or closing) the source failed: both streams end
        portable = _portable(error)
        with suppress(BrokenPipeError):
            send(([], portable, [], portable))
    finally:
        sender.close()


def _send_batches(
    commands: Iterator[C],
    entries: Iterator[E],
    batch_commands: int,
    send: Callable[[tuple[Any, ...]], None],
) -> None:
    """Send ``commands`` in batches, each with the entries up to its last command's time,
    then the entries left; each stream's end (or the exception that ended it) follows it."""
    commands_end: Any = None
    entries_end: Any = None
    held: E | None = None  # an entry read past the last batch's time, sent with the next
    while commands_end is None or entries_end is None:
        batch: list[C] = []
        ended_here = None
        if commands_end is None:
            try:
                batch.extend(islice(commands, batch_commands))
                if len(batch) < batch_commands:
                    ended_here = _ENDED
            except Exception as error:
                ended_here = _portable(error)
            commands_end = ended_here
        # While commands come, their entries come with them; after, the rest in slices.
        horizon_ns = batch[-1].ts_ns if commands_end is None and batch else None
        sent: list[E] = []
        entries_ended_here = None
        if entries_end is None:
            if held is not None and (horizon_ns is None or held.ts_ns <= horizon_ns):
                sent.append(held)
                held = None
            try:
                while held is None and len(sent) < MAX_MESSAGE_ENTRIES:
                    entry = next(entries, None)
                    if entry is None:
                        entries_ended_here = _ENDED
                        break
                    if horizon_ns is not None and entry.ts_ns > horizon_ns:
                        held = entry
                    else:
                        sent.append(entry)
            except Exception as error:
                entries_ended_here = _portable(error)
            entries_end = entries_ended_here
        send((batch, ended_here, sent, entries_ended_here))


def _sender(pipe: Connection) -> Callable[[tuple[Any, ...]], None]:
    def send(message: tuple[Any, ...]) -> None:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
        pipe.send_bytes(buffer.getbuffer())

    return send


def _portable(error: Exception) -> Exception:
    """``error`` if it survives pickling, else a ``ReaderStopped`` that says what it was (some
    driver errors hold connections, which do not)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        first_line = (str(error).strip().splitlines() or [""])[0]
        return ReaderStopped(f"reading the journal: {type(error).__name__}: {first_line}")
    return error


class _Pickler(pickle.Pickler):
    """Sends a dataclass as its constructor and field values, with no Python call on the
    receiving side but the constructor's, and a named tuple as ``tuple.__new__`` of its class
    and values, with none at all. Frozen dataclasses with slots otherwise unpickle through a
    Python ``__setstate__`` that sets each field in turn (three times the cost of calling the
    constructor); a named tuple's own ``__new__`` is Python code, and the ledger's postings
    (several an entry) and the journal's records (one a command) are named tuples: built in C
    a posting unpickles in 30% less time (0.13 of the 3.0 us a replayed command's share of
    the messages costs to unpickle, measured 2026-12-06)."""

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        try:
            names = _FIELD_NAMES[cls]
        except KeyError:
            names = _FIELD_NAMES[cls] = _constructor_fields(cls)
        if names is None:
            return NotImplemented
        if names is _NAMED_TUPLE:
            return tuple.__new__, (cls, tuple(obj))
        return cls, tuple([getattr(obj, name) for name in names])


# Per class sent: the dataclass fields its constructor takes, in order; _NAMED_TUPLE for a
# named tuple; None for any other class, which pickles as usual.
_NAMED_TUPLE: Final = "named tuple"
_FIELD_NAMES: dict[type, tuple[str, ...] | str | None] = {}


def _constructor_fields(cls: type) -> tuple[str, ...] | str | None:
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _NAMED_TUPLE
    if not is_dataclass(cls):
        return None
    declared = fields(cls)
    if not all(field.init for field in declared):
        return None
    return tuple(field.name for field in declared)
