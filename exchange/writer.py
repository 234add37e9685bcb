"""The journal writer: what makes each of the sequencer's batches durable, in order.

The sequencer's thread executes commands; writing them (canonical JSON, two hash chains,
the inserts and the commit) costs more than executing them. ``InlineWriter`` appends each
batch on the sequencer's own thread, as a short-lived console sequencer or a simulation
wants. ``ProcessWriter`` hands each batch, in order, to a process of its own with its own
connection, so that the next batch is executed on one core while this one is written on
another (a thread would not do: the interpreter's lock serialises it with the sequencer,
and the lock's hand-over after every database call stalls both). Either way ``write``
returns at once and the batch's answer comes later, in batch order, through
``on_answer(batch_id, error)``: ``error`` is None once the batch is committed, else the
reason the database refused it, and a refused batch commits nothing.

The process gets each batch as one JSON document: the journal records and the entries as
plain values, which the ledger checks again as it does every append. Nothing it reads runs
code. If the process dies, every batch not yet answered is answered with an error, and the
sequencer rebuilds its state from what the database holds.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

import orjson

from ledger import Entry, EntryKind, Posting
from ledger.store import Ledger

__all__ = ["Answer", "BatchWriter", "InlineWriter", "ProcessWriter", "WriterGone"]

log = logging.getLogger(__name__)

Answer = Callable[[int, Exception | None], None]
Records = Sequence[tuple[int, dict[str, Any]]]


class WriterGone(Exception):
    """The writer process ended before it answered a batch: the batch is not known to be
    durable, and is treated as refused."""


class BatchWriter(Protocol):
    def start(self, on_answer: Answer) -> None: ...

    def write(
        self, batch_id: int, journal_head_seq: int, records: Records, entries: Sequence[Entry]
    ) -> None: ...

    def ensure_running(self, on_answer: Answer) -> None: ...

    def stop(self) -> None: ...


class InlineWriter:
    """Append each batch on the caller's thread; the answer comes before ``write`` returns."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._on_answer: Answer | None = None

    def start(self, on_answer: Answer) -> None:
        self._on_answer = on_answer

    def write(
        self, batch_id: int, journal_head_seq: int, records: Records, entries: Sequence[Entry]
    ) -> None:
        assert self._on_answer is not None, "the writer has not started"
        try:
            self.ledger.append(commands=records, entries=entries, journal_head_seq=journal_head_seq)
        except Exception as error:
            log.exception("commit of %d commands failed", len(records))
            self._on_answer(batch_id, error)
            return
        self._on_answer(batch_id, None)

    def ensure_running(self, on_answer: Answer) -> None:
        self._on_answer = on_answer

    def stop(self) -> None:
        self._on_answer = None


class ProcessWriter:
    """Append batches in a process of its own; answers arrive on a thread of this process."""

    def __init__(self, ledger: Ledger) -> None:
        # The process opens its own engine on the same database (the URL with its password).
        self.url = ledger.engine.url.render_as_string(hide_password=False)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None
        self._answers: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._on_answer: Answer | None = None
        self._unanswered: list[int] = []  # batch ids sent, oldest first
        self._unanswered_lock = threading.Lock()
        # Set, under the lock above, once the answering thread has answered its last batch:
        # from then on ``write`` answers each batch itself, as no one else will.
        self._answering_ended = False

    def start(self, on_answer: Answer) -> None:
        self._on_answer = on_answer
        self._answering_ended = False
        # Not forked: this process runs threads, and a fork copies their locks mid-use.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_serve, args=(theirs, self.url), name="dataex-writer", daemon=True
        )
        self._process.start()
        theirs.close()
        self._pipe = ours
        self._answers = threading.Thread(target=self._answer_loop, name="writer-answers",
                                         daemon=True)  # fmt: skip
        self._answers.start()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def ensure_running(self, on_answer: Answer) -> None:
        """Start a new process if the last one has ended (nothing is in flight)."""
        if not self.alive:
            self.stop()
            self.start(on_answer)

    def write(
        self, batch_id: int, journal_head_seq: int, records: Records, entries: Sequence[Entry]
    ) -> None:
        assert self._pipe is not None, "the writer has not started"
        document = orjson.dumps(
            [batch_id, journal_head_seq, records,
             [(e.kind, e.key, e.ts_ns, e.body, e.postings) for e in entries]],
            default=tuple,  # postings are named tuples, which JSON writes as arrays
        )  # fmt: skip
        with self._unanswered_lock:
            ended = self._answering_ended
            if not ended:
                self._unanswered.append(batch_id)
        if ended:
            assert self._on_answer is not None
            self._on_answer(batch_id, WriterGone("the writer process has ended"))
            return
        try:
            with self._send_lock:
                self._pipe.send_bytes(document)
        except (OSError, ValueError):
            # The process is gone; the answering thread answers every unanswered batch.
            log.error("the writer process is gone; batch %d not sent", batch_id)

    def stop(self) -> None:
        """Let the process finish what it was sent, then end it and the answering thread."""
        if self._pipe is not None:
            try:
                with self._send_lock:
                    self._pipe.send_bytes(b"")
            except (OSError, ValueError):
                pass
        if self._process is not None:
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        if self._answers is not None:
            self._answers.join(timeout=30)
        if self._pipe is not None:
            self._pipe.close()
        self._process = self._pipe = self._answers = None

    def _answer_loop(self) -> None:
        pipe, on_answer = self._pipe, self._on_answer
        assert pipe is not None and on_answer is not None
        while True:
            try:
                data = pipe.recv_bytes()
            except (EOFError, OSError):
                break
            batch_id, error = orjson.loads(data)
            with self._unanswered_lock:
                expected = self._unanswered.pop(0)
            assert batch_id == expected, (batch_id, expected)
            on_answer(batch_id, None if error is None else _Refused(error))
        # The process has ended: nothing it was sent and did not answer is known durable.
        with self._unanswered_lock:
            lost, self._unanswered = self._unanswered, []
            self._answering_ended = True
        for batch_id in lost:
            on_answer(batch_id, WriterGone("the writer process ended before it answered"))


class _Refused(Exception):
    """The database refused a batch; the message is the writer process's error."""


def _serve(pipe: Connection, url: str) -> None:
    """The writer process: append every batch it is sent, answer each, until told to stop."""
    logging.basicConfig(level=logging.WARNING)
    ledger = Ledger.open(url, run_migrations=False)
    kinds = {kind.value: kind for kind in EntryKind}
    while True:
        try:
            data = pipe.recv_bytes()
        except EOFError:
            return
        if not data:
            pipe.close()
            return
        batch_id, head, records, raw_entries = orjson.loads(data)
        error = None
        try:
            entries = [
                Entry(kinds[kind], key, ts_ns, body,
                      tuple(Posting(account, asset, units) for account, asset, units in postings))
                for kind, key, ts_ns, body, postings in raw_entries
            ]  # fmt: skip
            ledger.append(commands=records, entries=entries, journal_head_seq=head)
        except Exception as failure:
            log.exception("commit of batch %d failed", batch_id)
            error = f"{type(failure).__name__}: {failure}"
        pipe.send_bytes(orjson.dumps([batch_id, error]))
