"""The single writer: one thread that orders, applies, journals and settles every command.

Callers hand commands to :meth:`Sequencer.submit` from any thread and get a future. The
sequencer's thread takes whatever is queued (up to a batch), and for each command in turn
stamps the next sequence number and time, lets :class:`~exchange.service.Exchange` check and
apply it (validation, risk, matching, settlement entries), then writes the whole batch's
journal records and ledger entries in one transaction (group commit). Only when that commit
is durable are the futures resolved: an acknowledgement means the command is in the journal.
A refused command is answered at once; it was never journalled.

If the commit fails (the database is gone, or another writer appended to the journal), the
batch's futures fail, and the exchange's state, which already holds the batch, is thrown away
and rebuilt from the journal: the sequencer fails stop rather than serve state that is not
in the database.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from exchange.commands import Command, Housekeeping, command_to_record
from exchange.errors import ExchangeError
from exchange.recovery import recover, replay_record
from exchange.service import OPERATOR, Exchange, Outcome
from exchange.snapshot import dump_state
from ledger import Entry
from ledger.snapshots import save_snapshot
from ledger.store import Ledger

__all__ = ["MAX_BATCH_COMMANDS", "Sequencer", "SequencerStopped"]

log = logging.getLogger(__name__)

MAX_BATCH_COMMANDS = 512
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


Listener = Callable[[list[tuple[int, Outcome]]], None]


class Sequencer:
    """Owns an :class:`Exchange` and the :class:`Ledger` it writes to.

    ``clock`` returns nanoseconds since the epoch (the simulator passes a virtual clock);
    times are made strictly increasing, so each command has its own. Due expiries always
    run before the next command; ``housekeeping=False`` only stops the idle timer from
    running them when no command comes (a short-lived console sequencer).
    """

    def __init__(
        self,
        ledger: Ledger,
        exchange: Exchange | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        housekeeping: bool = True,
        snapshot_every: int | None = SNAPSHOT_EVERY_COMMANDS,
    ) -> None:
        self.ledger = ledger
        self.exchange = exchange if exchange is not None else recover(ledger)
        self.clock = clock
        # Held while the batch is applied in memory; readers take it to see one state.
        # Reentrant: a failed command rebuilds the state while the batch still holds it.
        self.lock = threading.RLock()
        self._queue: queue.Queue[tuple[Command, Future[Outcome]] | None] = queue.Queue(
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

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> Sequencer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with each committed batch's ``(seq, outcome)`` pairs, in order,
        on the sequencer's thread; it must be quick and must not raise."""
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
                else:
                    batch.append(first)
            except queue.Empty:
                pass
            while not stopping and len(batch) < MAX_BATCH_COMMANDS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            # Once a tick, busy or not: follow other writers, and run the exchange's timer
            # (commands that arrive run it themselves when it is due).
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_INTERVAL_S
                self._catch_up()
                if self._housekeeping and self.exchange.housekeeping_due(self.clock()):
                    batch.insert(0, (Housekeeping(OPERATOR), None))
            if batch:
                self._process(batch)
        # Anything queued after the stop marker is refused, never silently dropped.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].set_exception(SequencerStopped("the sequencer stopped"))

    def _catch_up(self) -> None:
        """Apply commands another process appended (``dataex participant create`` while the
        server runs); a journal that does not replay onto this state is rebuilt from."""
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
        while start < len(batch):
            start = self._commit_some(batch, start)

    def _commit_some(self, batch: list[tuple[Command, Future[Outcome] | None]], start: int) -> int:
        """Apply commands from ``batch[start]`` on until the batch or its entry budget ends,
        commit them, answer them; return where the next commit starts."""
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
                    # A bug: the state may be half-changed, so it is rebuilt from the journal.
                    log.exception("command %r failed", command)
                    if future is not None:
                        future.set_exception(error)
                    self._fail_and_rebuild(pending, batch[index:])
                    return len(batch)
                if outcome.command is not None:
                    records.append((ts_ns, command_to_record(outcome.command)))
                    ledger_entries.extend(outcome.entries)
                    committed.append((seq, outcome))
                if future is not None:
                    pending.append(_Pending(future, outcome))
        try:
            if records:
                self.ledger.append(commands=records, entries=ledger_entries, journal_head_seq=head)
        except Exception:
            log.exception("commit of %d commands failed", len(records))
            self.failed_commits += 1
            self._fail_and_rebuild(pending, batch[index:])
            return len(batch)
        self.batches += 1
        for item in pending:
            item.future.set_result(item.outcome)
        for listener in self._listeners:
            listener(committed)
        if self.snapshot_every and exchange.head_seq - self._snapshot_seq >= self.snapshot_every:
            self._snapshot()
        return index

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
        refused client never reads the state that held its command)."""
        with self.lock:
            for attempt in range(1, REBUILD_ATTEMPTS + 1):
                try:
                    self.exchange = recover(self.ledger)
                    break
                except Exception as failure:
                    log.exception("rebuilding from the journal failed (attempt %d)", attempt)
                    if attempt == REBUILD_ATTEMPTS:
                        # Without a state that matches the journal nothing may be acknowledged.
                        self.broken = failure
                    else:
                        time.sleep(min(5.0, 0.1 * 2**attempt))  # the database may come back
        error = SequencerStopped("the exchange could not commit this command; retry it")
        for item in pending:
            item.future.set_exception(error)
        for _command, future in unprocessed:
            if future is not None and future.set_running_or_notify_cancel():
                future.set_exception(error)
