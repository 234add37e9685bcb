"""The witness: the database's committed checkpoints, kept outside it, so that a database
rolled back, truncated or rewritten is refused.

A checkpoint is two digests and a time: those of the order-flow journal's and of the
settlement ledger's RFC 6962 Merkle trees (tree size and root hash). The ledger's leaves are
its entries' canonical bytes, as for ``dataex ledger digest``; the journal's are its rows'
canonical bytes (:func:`ledger.chain.command_document`), hashed the same way. The witness is
a file of one checkpoint a line, as JSON::

    {"journal":{"root_hash":"…","tree_size":20},"ledger":{"root_hash":"…","tree_size":15},"time":"2026-12-05T21:07:08.123456Z"}

A :class:`Checkpointer` appends them while a server runs (each line written, flushed and
fsynced before the next), whenever the trees have grown, at most every
:data:`CHECKPOINT_INTERVAL_S`, and once more at stop. :func:`check_checkpoint` checks that the
database extends a checkpoint, each tree with the RFC 6962 consistency proof from the
witnessed digest to the database's own: a tree smaller than witnessed (a rollback or a
truncation) or one whose first witnessed leaves hash to another root (a rewrite: a fork) is
a :class:`WitnessError` naming the checkpoint.

A crash while a line is written can leave it torn: a last line without its newline. Its
write never finished, so it is no checkpoint: readers pass over it and say so, and a
checkpointer cuts it off before it appends. Any other line that is not a checkpoint makes
the witness unreadable, a :class:`WitnessError`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from multiprocessing.connection import Connection as MPConnection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from ledger.chain import GENESIS_HASH, command_document
from ledger.database import create_engine
from ledger.errors import LedgerError
from ledger.merkle import Digest, MerkleFrontier, MerkleTree, ProofError, verify_consistency
from ledger.rows import gc_paused, iter_rows, seq_bounds
from ledger.scan import entry_rows, posting_groups, scan_entries, scan_ledger
from ledger.store import Ledger

__all__ = [
    "CHECKPOINT_INTERVAL_S",
    "Checkpoint",
    "Checkpointer",
    "DatabaseTrees",
    "WitnessError",
    "WitnessState",
    "check_checkpoint",
    "check_witness",
    "database_trees",
    "default_witness_path",
    "extension_problem",
    "read_witness",
]

# The witness lags the database by at most this (plus the time to write a line): a few
# lines a second keep the lag short and the file small (about 240 bytes a line).
CHECKPOINT_INTERVAL_S: Final = 0.25
# Rows that other processes append (``dataex participant create``) wake no listener; an idle
# checkpointer looks for them this often (two indexed queries).
IDLE_POLL_S: Final = 1.0
# How long the last checkpoint may take at stop before the witness's process is ended.
STOP_TIMEOUT_S: Final = 30.0
# Signals that stop a server; its witness's process ignores them and ends when the server does.
STOP_SIGNALS: Final = frozenset({signal.SIGINT, signal.SIGTERM})
# A checkpoint line is about 240 bytes; anything much longer is not one.
MAX_LINE_BYTES: Final = 4_096
WITNESS_SUFFIX: Final = ".witness"
_LEAF_PREFIX = b"\x00"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

log = logging.getLogger(__name__)


class WitnessError(LedgerError):
    """The witness cannot be read, or the database does not extend its last checkpoint."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The journal's and the ledger's digests, and when they were witnessed (UTC, ISO 8601)."""

    journal: Digest
    ledger: Digest
    time: str

    def __str__(self) -> str:
        return (
            f"the checkpoint of {self.time} (journal {self.journal.tree_size} commands, "
            f"ledger {self.ledger.tree_size} entries)"
        )

    def to_line(self) -> bytes:
        """The checkpoint as one line of canonical JSON, newline included."""
        document = {
            "journal": self.journal.to_json(),
            "ledger": self.ledger.to_json(),
            "time": self.time,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Checkpoint:
        """Parse one line (without its newline); raises ValueError unless it is a checkpoint."""
        data = json.loads(line)
        if not isinstance(data, dict) or not isinstance(data.get("time"), str):
            raise ValueError("not an object with a 'time'")
        journal, ledger = data.get("journal"), data.get("ledger")
        if not isinstance(journal, dict) or not isinstance(ledger, dict):
            raise ValueError("'journal' and 'ledger' must be digests")
        try:
            return cls(Digest.from_json(journal), Digest.from_json(ledger), data["time"])
        except ProofError as error:
            raise ValueError(str(error)) from None


@dataclass(frozen=True, slots=True)
class WitnessState:
    """What reading a witness found: its last checkpoint (None when it has none yet), the
    length of the complete lines, and that of a torn last line passed over (0 if none)."""

    path: Path
    checkpoint: Checkpoint | None
    complete_bytes: int
    torn_bytes: int

    @property
    def note(self) -> str | None:
        """What a reader should be told of a torn last line, if there is one."""
        if not self.torn_bytes:
            return None
        return (
            f"witness {self.path}: its last line ({self.torn_bytes} bytes) is torn, a write "
            "a crash cut short; it is no checkpoint and was passed over"
        )


def default_witness_path(database_url: str) -> Path | None:
    """Where ``dataex serve`` keeps the witness of ``database_url`` unless told otherwise.

    A SQLite file ``dir/name.db``: ``dir/name.witness``, beside the database but not among
    its own files (``name.db``, ``-wal``, ``-shm``), so that restoring a copy of those does
    not restore the witness with them. An in-memory SQLite database: None, as it ends with
    its process. Any other database: ``$XDG_DATA_HOME/dataex/witness/`` (default
    ``~/.local/share/dataex/witness/``), a file named after the server, the database and a
    hash of the URL without its password.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or url.query.get("mode") == "memory":
            return None
        path = Path(database).absolute()
        witness = path.with_suffix(WITNESS_SUFFIX)
        return path.with_name(path.name + WITNESS_SUFFIX) if witness == path else witness
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    rendered = url.render_as_string(hide_password=True)
    name = "-".join(
        str(part) for part in (url.get_backend_name(), url.host, url.port, url.database) if part
    )
    tag = sha256(rendered.encode()).hexdigest()[:12]
    file_name = f"{_UNSAFE.sub('_', name)}-{tag}{WITNESS_SUFFIX}"
    return Path(data_home) / "dataex" / "witness" / file_name


def read_witness(path: Path) -> WitnessState:
    """The last checkpoint of the witness at ``path``, reading only the file's end.

    A missing or empty file has no checkpoint yet. Raises :class:`WitnessError` if the file
    cannot be read, or its last complete line is not a checkpoint.
    """
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            # The last complete line and a torn one after it fit in three lines' worth.
            start = max(0, size - 3 * MAX_LINE_BYTES)
            file.seek(start)
            tail = file.read()
    except FileNotFoundError:
        return WitnessState(path, None, 0, 0)
    except OSError as error:
        raise WitnessError(f"witness {path}: cannot be read: {error}") from None
    end = tail.rfind(b"\n") + 1  # where the complete lines end, within the tail
    torn = len(tail) - end
    if torn > MAX_LINE_BYTES or (end == 0 and start > 0):
        raise WitnessError(f"witness {path}: its last line is longer than a checkpoint")
    if end == 0:
        return WitnessState(path, None, 0, torn)
    line_start = tail.rfind(b"\n", 0, end - 1) + 1
    if line_start == 0 and start > 0:
        raise WitnessError(f"witness {path}: its last line is longer than a checkpoint")
    try:
        checkpoint = Checkpoint.from_line(tail[line_start : end - 1])
    except ValueError as error:
        raise WitnessError(f"witness {path}: its last line is not a checkpoint ({error})") from None
    return WitnessState(path, checkpoint, start + end, torn)


@dataclass(frozen=True, slots=True)
class DatabaseTrees:
    """The journal's and the ledger's Merkle trees as one snapshot of the database holds
    them, and the sequence numbers of their last rows (0 when empty)."""

    journal: MerkleTree
    ledger: MerkleTree
    journal_seq: int
    entry_seq: int


def database_trees(ledger: Ledger) -> DatabaseTrees:
    """Both trees, from every row of one consistent snapshot of ``ledger``'s database."""
    with gc_paused(), ledger.snapshot() as connection:
        journal_seq, entry_seq = _heads(connection)
        journal_leaves = _journal_leaves(connection, 0, journal_seq)
        entry_leaves = scan_ledger(connection).leaves
        # Rows above the heads read first cannot exist in this snapshot: they are the same.
        return DatabaseTrees(
            MerkleTree(journal_leaves), MerkleTree(entry_leaves), journal_seq, entry_seq
        )


def extension_problem(tree: MerkleTree, witnessed: Digest, stream: str, unit: str) -> str | None:
    """Why ``tree`` does not extend the ``witnessed`` digest, or None if it does.

    The check is the one an auditor makes: the RFC 6962 consistency proof from the
    witnessed size to the tree's, taken from the tree, must lead to the witnessed root and
    to the tree's own. ``stream`` and ``unit`` name the tree and its leaves in the message.
    """
    if tree.size < witnessed.tree_size:
        return (
            f"the {stream} holds {tree.size} {unit}, fewer than the {witnessed.tree_size} "
            "witnessed: it was rolled back or truncated"
        )
    try:
        proof = tree.consistency_proof(witnessed.tree_size)
        verify_consistency(proof, witnessed, tree.digest())
    except ProofError as error:
        return (
            f"the {stream}'s first {witnessed.tree_size} {unit} are not the ones witnessed "
            f"(root {witnessed.root_hash.hex()[:16]}…): they were rewritten ({error})"
        )
    return None


def check_checkpoint(trees: DatabaseTrees, state: WitnessState) -> None:
    """Raise :class:`WitnessError` unless both trees extend the witness's last checkpoint
    (a witness without one is extended by every database)."""
    checkpoint = state.checkpoint
    if checkpoint is None:
        return
    problems = [
        problem
        for problem in (
            extension_problem(trees.journal, checkpoint.journal, "journal", "commands"),
            extension_problem(trees.ledger, checkpoint.ledger, "ledger", "entries"),
        )
        if problem is not None
    ]
    if problems:
        raise WitnessError(
            f"witness {state.path}: the database does not extend {checkpoint}: "
            + "; ".join(problems)
        )


def check_witness(ledger: Ledger, path: Path) -> WitnessState:
    """Check that ``ledger``'s database extends the last checkpoint of the witness at
    ``path`` (raising :class:`WitnessError` if not); return what was read of the witness.

    The witness is read before the database, so that a checkpoint a running server writes
    meanwhile is never newer than the rows it is checked against.
    """
    state = read_witness(path)
    check_checkpoint(database_trees(ledger), state)
    return state


class Checkpointer:
    """Keeps the witness of one database while a server runs; see the module docstring.

    :meth:`start` checks the database against the witness's last checkpoint (raising
    :class:`WitnessError`; nothing is written then) and writes a checkpoint of the database
    as it stands. A process of its own then follows the database: it reads the rows
    appended since the last checkpoint, folds their leaf hashes into the trees' frontiers
    (no leaf is read or hashed twice) and appends a checkpoint when the trees have grown:
    after :meth:`notify` (the sequencer's committed-batch listener, which only sets an
    event), at most every ``interval_s``, and every ``idle_poll_s`` without one (rows that
    other processes append wake no listener). :meth:`stop` has it write the last and end;
    so does the end of this process, however it ends. The witness therefore lags the
    committed database by at most ``interval_s`` plus the time to read, hash and write.

    In a process, not a thread: reading and hashing every committed row a second time took
    about a tenth of a thread's share of the interpreter lock from the sequencer (measured
    with the exchange's benchmark, docs/ledger.md); a process of its own takes none.
    """

    def __init__(
        self,
        ledger: Ledger,
        path: Path,
        *,
        interval_s: float = CHECKPOINT_INTERVAL_S,
        idle_poll_s: float = IDLE_POLL_S,
    ) -> None:
        self.ledger = ledger
        self.path = path
        self.interval_s = interval_s
        self.idle_poll_s = idle_poll_s
        self.written: Checkpoint | None = None
        # Not forked: a server runs threads, and a fork copies their locks mid-use.
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        # The server's end of a pipe to the process: a byte is a wake-up, closing it is the
        # order to stop. Not a shared event: a process killed while holding an event's lock
        # (a signal to the whole process group) would hang the server's next set() forever,
        # whereas a write to a pipe whose reader died only fails.
        self._signals: MPConnection | None = None

    def start(self) -> Checkpointer:
        """Check the database against the witness, witness it as it is, and go on."""
        follower = self._witness_now()
        url = self.ledger.engine.url.render_as_string(hide_password=False)
        received, sent = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=_follow,
            args=(url, follower, self.interval_s, self.idle_poll_s, received),
            name="dataex-witness",
            daemon=True,
        )
        self._process.start()
        received.close()  # the process holds its own copy
        # A wake-up never blocks the sequencer: with the pipe full one is already waiting.
        os.set_blocking(sent.fileno(), False)
        self._signals = sent
        return self

    def _witness_now(self) -> _Follower:
        """Check the database against the witness and append its checkpoint if it grew;
        the follower of the trees read."""
        state = read_witness(self.path)
        trees = database_trees(self.ledger)
        check_checkpoint(trees, state)
        follower = _Follower(
            self.path,
            MerkleFrontier.of_tree(trees.journal),
            MerkleFrontier.of_tree(trees.ledger),
            trees.journal_seq,
            trees.entry_seq,
            state.checkpoint,
        )
        follower.open(state)
        try:
            follower.write_if_grown()
        finally:
            follower.close()
        self.written = follower.written
        return follower

    def notify(self, _committed: object = None) -> None:
        """A batch was committed: witness it soon. Cheap, for the sequencer's listeners."""
        signals = self._signals
        if signals is None:
            return
        try:
            signals.send_bytes(b"w")
        except BlockingIOError:
            pass  # a wake-up is already waiting, and the process reads to the head
        except OSError:
            pass  # the process has ended; stop() says whether it wrote its last

    def stop(self) -> None:
        """Have the witness's process write what the database holds now, and end (call
        after the sequencer has stopped, so that the last checkpoint covers its last batch)."""
        process, self._process = self._process, None
        signals, self._signals = self._signals, None
        if process is None:
            return
        if signals is not None:
            signals.close()
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            log.error("witness %s: no last checkpoint within %s s", self.path, STOP_TIMEOUT_S)
            process.terminate()
            process.join()
        if process.exitcode == 0:
            self.written = read_witness(self.path).checkpoint
        else:
            # Killed, or interrupted before it could ignore stop signals: the last
            # checkpoint is written here, from every row (as at start), so it is not lost.
            log.warning(
                "witness %s: its process ended (exit status %s); writing the last checkpoint",
                self.path,
                process.exitcode,
            )
            self._witness_now()


@dataclass(slots=True)
class _Follower:
    """What the witness's process keeps: the trees' frontiers, the last rows read, the last
    checkpoint written, and the witness file open for appending."""

    path: Path
    journal: MerkleFrontier
    ledger: MerkleFrontier
    journal_seq: int
    entry_seq: int
    written: Checkpoint | None
    fd: int | None = None
    failing: bool = False

    def open(self, state: WitnessState | None = None) -> None:
        """Open the witness for appending; make it and its directory, and cut off the torn
        last line ``state`` found, if any."""
        path = self.path
        created = not path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if state is not None and state.torn_bytes:
                log.warning("%s; cut off", state.note)
                os.truncate(path, state.complete_bytes)
                os.fsync(self.fd)
            if created:
                # The new file's name must be as durable as the checkpoints in it.
                directory = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
        except OSError as error:
            raise WitnessError(f"witness {path}: cannot be written: {error}") from None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def checkpoint(self, ledger: Ledger) -> None:
        """Read what was committed since the last checkpoint and witness it if it grew."""
        try:
            self.catch_up(ledger)
            self.write_if_grown()
        except Exception:
            # The server goes on: the witness only lags until the database or the file
            # answers again. Said once, not at every attempt.
            if not self.failing:
                log.exception("witness %s: writing a checkpoint failed; retrying", self.path)
            self.failing = True
        else:
            if self.failing:
                log.warning("witness %s: checkpoints are written again", self.path)
            self.failing = False

    def catch_up(self, ledger: Ledger) -> None:
        """Fold the rows appended since the last read into the frontiers."""
        with gc_paused(), ledger.snapshot() as connection:
            journal_seq, entry_seq = _heads(connection)
            journal_leaves = (
                _journal_leaves(connection, self.journal_seq, journal_seq)
                if journal_seq > self.journal_seq
                else []
            )
            entry_leaves = (
                _entry_leaves(connection, self.entry_seq, entry_seq)
                if entry_seq > self.entry_seq
                else []
            )
        for leaf in journal_leaves:
            self.journal.append(leaf)
        for leaf in entry_leaves:
            self.ledger.append(leaf)
        self.journal_seq = max(self.journal_seq, journal_seq)
        self.entry_seq = max(self.entry_seq, entry_seq)

    def write_if_grown(self) -> None:
        journal, ledger = self.journal.digest(), self.ledger.digest()
        written = self.written
        if written is not None and (written.journal, written.ledger) == (journal, ledger):
            return
        now = datetime.now(UTC).isoformat(timespec="microseconds").removesuffix("+00:00")
        checkpoint = Checkpoint(journal, ledger, f"{now}Z")
        assert self.fd is not None, "the witness is written only while it is open"
        line = checkpoint.to_line()
        count = os.write(self.fd, line)
        if count != len(line):
            raise OSError(f"wrote {count} of the checkpoint's {len(line)} bytes")
        os.fsync(self.fd)
        self.written = checkpoint


def _follow(
    url: str, follower: _Follower, interval_s: float, idle_poll_s: float, signals: MPConnection
) -> None:
    """The witness's process: checkpoint on each wake-up, at most every ``interval_s``,
    until the server closes its end of ``signals`` (told to stop, or its process ended);
    then write the last."""
    # Ctrl-C at a terminal, and a service manager's stop, signal every process of the
    # server; the server stops, then closes the pipe, and this process writes the last
    # checkpoint of what the server committed. Its end closes the pipe too, however it ends.
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    engine = create_engine(url)
    ledger = Ledger(engine)
    follower.open()
    try:
        running, woken = True, False
        while running:
            if not woken:
                signals.poll(idle_poll_s)
            running, woken = _drain(signals), False
            follower.checkpoint(ledger)
            # At most one checkpoint an interval, but a wake-up meanwhile is remembered.
            deadline = time.monotonic() + interval_s
            while running and (left := deadline - time.monotonic()) > 0 and signals.poll(left):
                running, woken = _drain(signals), True
        follower.checkpoint(ledger)
    finally:
        follower.close()
        engine.dispose()


def _drain(signals: MPConnection) -> bool:
    """Read every waiting wake-up; False once the server has closed its end."""
    try:
        while signals.poll(0):
            signals.recv_bytes()
    except EOFError:
        return False
    return True


def _heads(connection: Connection) -> tuple[int, int]:
    """The last journal and entry sequence numbers (0 when empty)."""
    journal_seq = connection.execute(text("SELECT MAX(seq) FROM ledger_journal")).scalar()
    entry_seq = connection.execute(text("SELECT MAX(seq) FROM ledger_entry")).scalar()
    return journal_seq or 0, entry_seq or 0


def _journal_leaves(connection: Connection, after_seq: int, head_seq: int) -> list[bytes]:
    """The leaf hashes of the journal rows after ``after_seq`` up to ``head_seq``."""
    bounds = seq_bounds("seq", after_seq + 1, head_seq)
    sql = f"SELECT seq, ts_ns, command FROM ledger_journal{bounds} ORDER BY seq"
    prefix, document_of = _LEAF_PREFIX, command_document
    return [
        sha256(prefix + document_of(seq, ts_ns, command)).digest()
        for seq, ts_ns, command in iter_rows(connection, sql)
    ]


def _entry_leaves(connection: Connection, after_seq: int, head_seq: int) -> list[bytes]:
    """The leaf hashes of the entries after ``after_seq`` up to ``head_seq``: the scan that
    verification makes, over those rows only."""
    previous = GENESIS_HASH
    if after_seq:
        stored = connection.execute(
            text("SELECT chain_hash FROM ledger_entry WHERE seq = :seq"), {"seq": after_seq}
        ).scalar()
        previous = bytes(stored) if stored is not None else GENESIS_HASH
    scan = scan_entries(
        entry_rows(connection, after_seq + 1, head_seq),
        posting_groups(connection, after_seq + 1, head_seq),
        first_seq=after_seq + 1,
        previous=previous,
    )
    return scan.leaves
