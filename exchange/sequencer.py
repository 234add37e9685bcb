"""The single writer: one thread that orders and applies every command, and a journal writer
that makes each batch durable before it is acknowledged.

Callers hand commands to :meth:`Sequencer.submit` from any thread and get a future. The
sequencer's thread takes whatever is queued (up to a batch), and for each command in turn
stamps the next sequence number and time, lets :class:`~exchange.service.Exchange` check and
apply it (validation, risk, matching, settlement entries), then hands the whole batch's
journal records and ledger entries to the journal writer (``exchange.writer``), which
appends them in one transaction (group commit). Batches are pipelined: while one is being
written, the next is executed, up to ``MAX_BATCHES_IN_FLIGHT``. Only when a batch's commit
is durable are its futures resolved: an acknowledgement means the command is in the
journal. A refused command is answered at once; it was never journalled.

If a commit fails (the database is gone, or another writer appended to the journal), that
batch and every later one in flight fail (each was executed on the state that held the one
before), and the exchange's state is thrown away and rebuilt from the journal once nothing
is in flight: the sequencer fails stop rather than serve state that is not in the database.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from exchange.commands import Command, Housekeeping, command_to_record
from exchange.errors import ExchangeError
from exchange.recovery import recover, replay_record
from exchange.service import OPERATOR, Exchange, Outcome
from exchange.snapshot import dump_state
from exchange.writer import BatchWriter, InlineWriter
from ledger import Entry
from ledger.snapshots import save_snapshot
from ledger.store import Ledger

__all__ = ["MAX_BATCH_COMMANDS", "Sequencer", "SequencerStopped"]

log = logging.getLogger(__name__)

MAX_BATCH_COMMANDS = 512
# Batches executed and not yet answered by the journal writer: enough to keep both the
# sequencer and the writer busy, few enough that a failed commit discards little work.
MAX_BATCHES_IN_FLIGHT = 4
# A batch is committed early once it holds this many entries (the ledger takes 10,000).
MAX_BATCH_ENTRIES = 4_000
MAX_QUEUED_COMMANDS = 100_000
TICK_INTERVAL_S = 1.0
REBUILD_ATTEMPTS = 10
SNAPSHOT_EVERY_COMMANDS = 100_000


class SequencerStopped(Exception):
    """The sequencer is not running, or its last commit failed: nothing was acknowledged."""


@dataclass(slots=True)
class _Pending:
    future: Future[Outcome]
    outcome: Outcome


@dataclass(slots=True)
class _Batch:
    """A batch handed to the journal writer, answered when its commit is durable."""

    batch_id: int
    pending: list[_Pending] = field(default_factory=list)
    committed: list[tuple[int, Outcome]] = field(default_factory=list)


Listener = Callable[[list[tuple[int, Outcome]]], None]
# What the queue holds: a command with its future, the stop marker (None), or the marker
# that wakes an idle sequencer to rebuild after a failed commit.
_WAKE = "wake"
_Queued = tuple[Command, Future[Outcome]] | None | str


class Sequencer:
    """Owns an :class:`Exchange` and the :class:`Ledger` it writes to.

    ``clock`` returns nanoseconds since the epoch (the simulator passes a virtual clock);
    times are made strictly increasing, so each command has its own. Due expiries always
    run before the next command; ``housekeeping=False`` only stops the idle timer from
    running them when no command comes (a short-lived console sequencer). ``writer`` makes
    batches durable: by default on the sequencer's own thread; a server passes a
    :class:`~exchange.writer.ProcessWriter`.
    """

    def __init__(
        self,
        ledger: Ledger,
        exchange: Exchange | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        housekeeping: bool = True,
        snapshot_every: int | None = SNAPSHOT_EVERY_COMMANDS,
        writer: BatchWriter | None = None,
    ) -> None:
        self.ledger = ledger
        self.writer = writer if writer is not None else InlineWriter(ledger)
        self.exchange = exchange if exchange is not None else recover(ledger)
        self.clock = clock
        # Held while the batch is applied in memory; readers take it to see one state.
        # Reentrant: a failed command rebuilds the state while the batch still holds it.
        self.lock = threading.RLock()
        self._queue: queue.Queue[_Queued] = queue.Queue(
            MAX_QUEUED_COMMANDS
        )
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._housekeeping = housekeeping
        self.snapshot_every = snapshot_every
        self._snapshot_seq = self.exchange.head_seq
        self.batches = 0
        self.failed_commits = 0
        self.broken: Exception | None = None
        # Batches handed to the writer and not yet answered, oldest first; ``_failing`` is
        # set from a failed commit until the state is rebuilt.
        self._in_flight: deque[_Batch] = deque()
        self._in_flight_changed = threading.Condition()
        self._failing = False
        self._refused: list[_Pending] = []  # of failed batches, refused after the rebuild
        self._next_batch_id = 1

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> Sequencer:
        if self._thread is None:
            self.writer.start(self._answered)
            self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Finish what is queued and make it durable, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            self.writer.stop()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with each committed batch's ``(seq, outcome)`` pairs, in order,
        on the thread that learns of the commit (the sequencer's, or the journal writer's
        answering thread); it must be quick and must not raise."""
        self._listeners.append(listener)

    # -- submitting ------------------------------------------------------------------------

    def submit(self, command: Command) -> Future[Outcome]:
        """Queue ``command``; the future holds its outcome once durable, or the refusal."""
        if self._thread is None or self.broken is not None:
            raise SequencerStopped("the sequencer is not running")
        future: Future[Outcome] = Future()
        try:
            self._queue.put((command, future), timeout=5)
        except queue.Full:
            raise SequencerStopped("the sequencer's queue is full") from None
        return future

    def execute(self, command: Command) -> Outcome:
        """Submit and wait: the outcome, or the :class:`ExchangeError` that refused it."""
        return self.submit(command).result()

    # -- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        next_tick = time.monotonic() + TICK_INTERVAL_S
        while not stopping and self.broken is None:
            batch: list[tuple[Command, Future[Outcome] | None]] = []
            try:
                first = self._queue.get(timeout=max(0.0, next_tick - time.monotonic()))
                if first is None:
                    stopping = True
                elif first != _WAKE:
                    batch.append(first)  # type: ignore[arg-type]
            except queue.Empty:
                pass
            while not stopping and len(batch) < MAX_BATCH_COMMANDS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                elif item != _WAKE:
                    batch.append(item)  # type: ignore[arg-type]
            self._rebuild_if_failing()
            # Once a tick, busy or not: follow other writers, and run the exchange's timer
            # (commands that arrive run it themselves when it is due).
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_INTERVAL_S
                self._catch_up()
                if self._housekeeping and self.exchange.housekeeping_due(self.clock()):
                    batch.insert(0, (Housekeeping(OPERATOR), None))
            if batch:
                self._process(batch)
        self._wait_until_written()
        # Anything queued after the stop marker is refused, never silently dropped.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item != _WAKE:
                item[1].set_exception(SequencerStopped("the sequencer stopped"))  # type: ignore[index]
        # Commands of a failed commit that no rebuild has refused yet.
        for pending in self._refused:
            pending.future.set_exception(SequencerStopped("the sequencer stopped"))
        self._refused = []

    def _catch_up(self) -> None:
        """Apply commands another process appended (``dataex participant create`` while the
        server runs); a journal that does not replay onto this state is rebuilt from."""
        self._wait_until_written()
        try:
            if self.ledger.journal_head_seq() == self.exchange.head_seq:
                return
            with self.lock:
                while records := self.ledger.journal(self.exchange.head_seq + 1, 1_000):
                    for record in records:
                        replay_record(self.exchange, record)
        except Exception:
            log.exception("following the journal failed; rebuilding")
            self._fail_and_rebuild([], [])

    def _process(self, batch: list[tuple[Command, Future[Outcome] | None]]) -> None:
        start = 0
        while start < len(batch) and self.broken is None:
            # After a failed commit, these commands are applied to the rebuilt state.
            self._rebuild_if_failing()
            start = self._commit_some(batch, start)

    def _commit_some(self, batch: list[tuple[Command, Future[Outcome] | None]], start: int) -> int:
        """Apply commands from ``batch[start]`` on until the batch or its entry budget ends,
        hand them to the journal writer; return where the next commit starts."""
        exchange = self.exchange
        records: list[tuple[int, dict]] = []
        ledger_entries: list[Entry] = []
        pending: list[_Pending] = []
        committed: list[tuple[int, Outcome]] = []
        index = start
        with self.lock:
            head = exchange.head_seq
            while index < len(batch) and len(ledger_entries) < MAX_BATCH_ENTRIES:
                command, future = batch[index]
                index += 1
                if future is not None and not future.set_running_or_notify_cancel():
                    continue
                ts_ns = max(self.clock(), exchange.last_ts_ns + 1)
                try:
                    if type(command) is not Housekeeping and exchange.housekeeping_due(ts_ns):
                        # Expiries first, as their own journalled command, so that nothing
                        # trades a lapsed licence or an expired order.
                        seq = exchange.head_seq + 1
                        expiries = exchange.execute(Housekeeping(OPERATOR), seq, ts_ns)
                        records.append((ts_ns, command_to_record(expiries.command)))
                        ledger_entries.extend(expiries.entries)
                        committed.append((seq, expiries))
                        ts_ns += 1
                    seq = exchange.head_seq + 1
                    outcome = exchange.execute(command, seq, ts_ns)
                except ExchangeError as error:
                    if future is not None:
                        # Without its traceback the error keeps no frame (and so no batch)
                        # alive until the next full garbage collection.
                        future.set_exception(error.with_traceback(None))
                    continue
                except Exception as error:
                    # A bug: the state may be half-changed, so it is rebuilt from the journal
                    # once the batches before this one are written.
                    log.exception("command %r failed", command)
                    if future is not None:
                        future.set_exception(error)
                    self._wait_until_written()
                    self._fail_and_rebuild(pending, batch[index:])
                    return len(batch)
                if outcome.command is not None:
                    records.append((ts_ns, command_to_record(outcome.command)))
                    ledger_entries.extend(outcome.entries)
                    committed.append((seq, outcome))
                if future is not None:
                    pending.append(_Pending(future, outcome))
        if records:
            self._hand_over(_Batch(self._next_batch_id, pending, committed), head, records,
                            ledger_entries)  # fmt: skip
            self._next_batch_id += 1
        elif pending:
            # Idempotent retries only: each answers with an earlier command's result, which
            # may still be in flight, so they are answered with the last batch in flight.
            with self._in_flight_changed:
                if self._in_flight:
                    self._in_flight[-1].pending.extend(pending)
                    pending = []
            for item in pending:
                item.future.set_result(item.outcome)
        if self.snapshot_every and exchange.head_seq - self._snapshot_seq >= self.snapshot_every:
            self._wait_until_written()
            if not self._failing:
                self._snapshot()
        return index

    # -- the journal writer ----------------------------------------------------------------

    def _hand_over(
        self, batch: _Batch, head: int, records: list[tuple[int, dict]], entries: list[Entry]
    ) -> None:
        with self._in_flight_changed:
            while len(self._in_flight) >= MAX_BATCHES_IN_FLIGHT:
                self._in_flight_changed.wait()
            self._in_flight.append(batch)
        self.writer.write(batch.batch_id, head, records, entries)

    def _answered(self, batch_id: int, error: Exception | None) -> None:
        """The journal writer's answer to a batch: resolve its futures, or fail them."""
        with self._in_flight_changed:
            batch = self._in_flight.popleft()
            assert batch.batch_id == batch_id, (batch.batch_id, batch_id)
            if error is not None and not self._failing:
                log.error("commit of batch %d failed: %s", batch_id, error)
                self.failed_commits += 1
            # Every later batch was executed on the state that held this one.
            self._failing = self._failing or error is not None
            failed = self._failing
            self._in_flight_changed.notify_all()
        if failed:
            # Refused once the state no longer holds them, so that a refused client never
            # reads the state that held its command; the sequencer is woken to rebuild.
            self._refused.extend(batch.pending)
            self._queue.put(_WAKE)
            return
        self.batches += 1
        for item in batch.pending:
            item.future.set_result(item.outcome)
        for listener in self._listeners:
            listener(batch.committed)

    def _rebuild_if_failing(self) -> None:
        """After a failed commit: once nothing is in flight, rebuild the state from what the
        database holds, and refuse the commands that were not written."""
        if self._failing:
            self._wait_until_written()
            self._fail_and_rebuild([], [])

    def _wait_until_written(self) -> None:
        """Wait until the journal writer has answered every batch handed to it."""
        with self._in_flight_changed:
            while self._in_flight:
                self._in_flight_changed.wait()

    def _snapshot(self) -> None:
        """Store the state as of the last commit, so recovery replays only what follows."""
        exchange = self.exchange
        try:
            with self.lock:
                state = dump_state(exchange)
                seq, entries = exchange.head_seq, exchange.entries_settled
            save_snapshot(self.ledger, seq, entries, state)
            self._snapshot_seq = seq
        except Exception:
            # A snapshot only saves replay time; the journal stays the record.
            log.exception("snapshot at journal %d failed", exchange.head_seq)
            self._snapshot_seq = exchange.head_seq

    def _fail_and_rebuild(
        self,
        pending: list[_Pending],
        unprocessed: list[tuple[Command, Future[Outcome] | None]],
    ) -> None:
        """Rebuild the state from the journal, then refuse everything not committed (so a
        refused client never reads the state that held its command). Nothing is in flight."""
        self.writer.ensure_running(self._answered)
        with self.lock:
            for attempt in range(1, REBUILD_ATTEMPTS + 1):
                try:
                    self.exchange = recover(self.ledger)
                    self._failing = False
                    break
                except Exception as failure:
                    log.exception("rebuilding from the journal failed (attempt %d)", attempt)
                    if attempt == REBUILD_ATTEMPTS:
                        # Without a state that matches the journal nothing may be acknowledged.
                        self.broken = failure
                    else:
                        time.sleep(min(5.0, 0.1 * 2**attempt))  # the database may come back
        error = SequencerStopped("the exchange could not commit this command; retry it")
        with self._in_flight_changed:
            pending = [*self._refused, *pending]
            self._refused = []
        for item in pending:
            item.future.set_exception(error)
        for _command, future in unprocessed:
            if future is not None and future.set_running_or_notify_cancel():
                future.set_exception(error)
