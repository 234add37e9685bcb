"""Journals to replay: the database's, or a JSONL file exported from it.

Both are read as a stream of :class:`RecordedCommand` (each journal row, its hash checked
against the row before it, and its command parsed) and of the settlement entries recorded for
them, each entry's hash checked too. A row whose hash does not follow from its content and its
predecessor's hash was changed behind the ledger's back (or damaged): reading stops there with
:class:`BrokenChain`, which names it; a row whose hash holds but which is not a command stops
it with :class:`UnreadableCommand`. Rows are checked against the *stored* hash of the row
before, as ``ledger.verify`` does, so one changed row is named alone.

A database journal opened with ``read_ahead`` and long enough to be worth it is read in a
process of its own while the replay executes (:mod:`exchange.research.readahead`); the
streams, and where they stop, are the same.

The JSONL journal (``dataex export --what journal --format jsonl``) holds one JSON object per
line, in sequence order from seq 1::

    {"seq": 1, "ts_ns": ..., "command": {...}, "chain_hash": "<hex>", "entries": [...]}

``command`` is the journalled command; ``chain_hash`` the journal's SHA-256 chain hash of the
row, in hex. ``entries`` (optional, but on every line or on none) lists the settlement
entries the command created, each ``{"seq": ..., "ts_ns": ..., "kind": ..., "key": ...,
"body": {...}, "postings": [[account, asset, amount_units], ...], "chain_hash": "<hex>"}``.
Hashes are over the canonical JSON of each row (``ledger.chain``), so re-serialising a line
with other key order or spacing changes nothing; changing any value breaks the chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import orjson
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from exchange.commands import Command, command_from_record
from exchange.research import readahead
from ledger import GENESIS_HASH, chain_hash, command_document, entry_document
from ledger.canonical import CanonicalJSONError, canonical_json
from ledger.database import create_engine
from ledger.entries import Posting
from ledger.rows import iter_rows
from ledger.scan import entry_rows, posting_groups
from ledger.store import Ledger, StoredEntry

__all__ = [
    "BrokenChain",
    "DatabaseJournal",
    "InputError",
    "Journal",
    "JournalFile",
    "JournalRow",
    "JournalStream",
    "RecordedCommand",
    "UnreadableCommand",
    "count_lines",
    "entry_json",
    "open_database",
]

# A JSONL line longer than this is refused: a command is a few hundred bytes, and a command's
# entries are bounded by the exchange (one per trade, at most a few thousand).
MAX_LINE_BYTES = 64 * 1024 * 1024
# A database journal of fewer commands is read in the replay's own process: below this, the
# reading process costs more than it saves (a fork takes milliseconds, a fresh interpreter
# about half a second; reading and checking 10,000 commands takes about 0.1 s).
MIN_READ_AHEAD_COMMANDS: Final = 20_000
# Commands a reading process sends at a time: about 10 ms of execution, so that the pipe's
# per-message costs vanish, and small enough that several fit in the pipe (readahead).
READ_AHEAD_BATCH_COMMANDS: Final = 512

_JOURNAL_SQL = "SELECT seq, ts_ns, command, chain_hash FROM ledger_journal ORDER BY seq"
_LINE_KEYS = frozenset({"seq", "ts_ns", "command", "chain_hash", "entries"})
_ENTRY_KEYS = frozenset({"seq", "ts_ns", "kind", "key", "body", "postings", "chain_hash"})
_NO_POSTINGS: tuple[Posting, ...] = ()


def count_lines(path: Path) -> int:
    """The number of lines of a file (for progress bars), read in 1 MiB chunks."""
    count = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            count += chunk.count(b"\n")
    return count


class InputError(Exception):
    """An input that cannot be read at all (a file's line or column, an option): exit 2."""


class BrokenChain(Exception):
    """A recorded row whose hash does not follow from its content: changed or damaged.

    ``table`` is ``journal`` or ``ledger``; ``seq`` the row's sequence number.
    """

    def __init__(self, table: str, seq: int, what: str) -> None:
        super().__init__(f"{table} row {seq}: {what}")
        self.table = table
        self.seq = seq
        self.what = what

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return BrokenChain, (self.table, self.seq, self.what)


class UnreadableCommand(Exception):
    """A journal row whose hash holds but which is not a command this exchange knows (an
    unknown verb, missing or unknown fields): the replay reports it as a difference."""

    def __init__(self, seq: int, ts_ns: int, command_json: str, what: str) -> None:
        super().__init__(f"journal row {seq}: {what}")
        self.seq = seq
        self.ts_ns = ts_ns
        self.command_json = command_json
        self.what = what

    def __reduce__(self) -> tuple[type, tuple[int, int, str, str]]:
        return UnreadableCommand, (self.seq, self.ts_ns, self.command_json, self.what)


class RecordedCommand(NamedTuple):
    """One journal row: the command, its canonical JSON text as hashed, and, when the source
    groups them (a JSONL file with entries), the entries recorded for it. A named tuple, not
    a frozen dataclass: a replay receives one per command from its reading process, and a
    tuple unpickles in a third of the time (measured, ``docs/benchmarks.md``)."""

    seq: int
    ts_ns: int
    command: Command
    command_json: str
    chain_hash: bytes
    entries: list[StoredEntry] | None = None


class JournalRow(NamedTuple):
    """What the ``journal`` table shows of one command: its row, and its verb."""

    seq: int
    ts_ns: int
    verb: str
    command_json: str
    chain_hash: bytes


@dataclass(slots=True)
class JournalStream:
    """What a replay reads: the commands, and the recorded entries in order when they come
    as one stream (the database) rather than grouped by command (``RecordedCommand.entries``).
    ``has_entries`` is False when the source recorded no settlement at all."""

    commands: Iterator[RecordedCommand]
    entries: Iterator[StoredEntry] | None
    has_entries: bool


class Journal(Protocol):
    """A journal that can be replayed (see :func:`exchange.research.replay`)."""

    @property
    def name(self) -> str: ...

    def head_seq(self) -> int:
        """The last sequence number, for progress (it need not be exact)."""
        ...

    def open(self, *, read_ahead: bool = False) -> Any:
        """A context manager giving a :class:`JournalStream`; ``read_ahead`` lets the source
        read in another process where that is worth it."""
        ...


# -- the database --------------------------------------------------------------------------


class DatabaseJournal:
    """The journal and settlement ledger of a database, read in one consistent snapshot.

    Opened with ``read_ahead``, a journal of ``min_read_ahead_commands`` or more (and not in
    memory) is read in another process, ``batch_commands`` commands at a time; its snapshot
    is that process's own, taken when it starts.
    """

    def __init__(
        self,
        ledger: Ledger,
        name: str | None = None,
        *,
        min_read_ahead_commands: int = MIN_READ_AHEAD_COMMANDS,
        batch_commands: int = READ_AHEAD_BATCH_COMMANDS,
    ) -> None:
        self.ledger = ledger
        self.name = name or ledger.engine.url.render_as_string(hide_password=True)
        self.min_read_ahead_commands = min_read_ahead_commands
        self.batch_commands = batch_commands

    def head_seq(self) -> int:
        return self.ledger.journal_head_seq()

    @contextmanager
    def open(self, *, read_ahead: bool = False) -> Iterator[JournalStream]:
        if read_ahead and self.worth_reading_elsewhere():
            url = self.ledger.engine.url.render_as_string(hide_password=False)
            with readahead.read_ahead(open_database, url, self.batch_commands) as streams:
                commands, entries = streams
                yield JournalStream(commands, entries, True)
            return
        with self.ledger.snapshot() as connection:
            commands, entries = _database_streams(connection)
            yield JournalStream(commands, entries, True)

    def worth_reading_elsewhere(self) -> bool:
        """Whether another process can open this database (it is not in this one's memory)
        and its journal is long enough to be worth starting one."""
        if self.ledger.engine.url.database in (None, "", ":memory:"):
            return False  # another process cannot open this one's memory
        return self.head_seq() >= self.min_read_ahead_commands


def _database_streams(
    connection: Connection, *, parsed: bool = True
) -> tuple[Iterator[Any], Iterator[StoredEntry]]:
    """The journal's commands (``parsed``: as :class:`RecordedCommand`; else as
    :class:`JournalRow`, the commands not built) and the ledger's entries in ``connection``'s
    snapshot, each row's hash checked as it is read."""
    journal = _chained(iter_rows(connection, _JOURNAL_SQL, binary=True))
    postings = (
        (entry_seq, tuple(map(tuple, group))) for entry_seq, group in posting_groups(connection)
    )
    entries = _entries(entry_rows(connection), postings)  # type: ignore[arg-type]
    return (_commands(journal) if parsed else _journal_rows(journal)), entries


@contextmanager
def open_database(
    url: str, *, parsed: bool = True
) -> Iterator[tuple[Iterator[Any], Iterator[StoredEntry]]]:
    """The streams of the database at ``url``, through an engine of the reading process
    (``parsed``: see :func:`_database_streams`)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Ledger(engine).snapshot() as connection:
            yield _database_streams(connection, parsed=parsed)
    finally:
        engine.dispose()


def _chained(
    rows: Iterable[tuple[int, int, str, bytes]],
) -> Iterator[tuple[int, int, str, bytes]]:
    """Journal rows, each row's hash checked against its predecessor's."""
    document_of, hash_of = command_document, chain_hash
    previous = GENESIS_HASH
    for expected_seq, (seq, ts_ns, command_json, stored) in enumerate(rows, start=1):
        stored = bytes(stored)
        if seq != expected_seq:
            raise BrokenChain("journal", seq, f"expected seq {expected_seq}: a row is missing")
        if hash_of(previous, document_of(seq, ts_ns, command_json)) != stored:
            raise BrokenChain("journal", seq, "hash mismatch: the row changed")
        yield seq, ts_ns, command_json, stored
        previous = stored


def _commands(rows: Iterable[tuple[int, int, str, bytes]]) -> Iterator[RecordedCommand]:
    """Checked journal rows as commands."""
    loads, parse = orjson.loads, _parse
    for seq, ts_ns, command_json, stored in rows:
        try:
            record = loads(command_json)
        except orjson.JSONDecodeError:
            raise BrokenChain("journal", seq, "the command is not JSON") from None
        command = parse(seq, ts_ns, record, command_json)
        yield RecordedCommand(seq, ts_ns, command, command_json, stored)


def _journal_rows(rows: Iterable[tuple[int, int, str, bytes]]) -> Iterator[JournalRow]:
    """Checked journal rows with their verbs, the commands not built (the ``journal`` table
    shows their text): a fifth of the time of building them."""
    loads = orjson.loads
    for seq, ts_ns, command_json, stored in rows:
        try:
            verb = loads(command_json).get("verb")
        except (orjson.JSONDecodeError, AttributeError):
            raise BrokenChain("journal", seq, "the command is not a JSON object") from None
        yield JournalRow(seq, ts_ns, verb, command_json, stored)


def _parse(seq: int, ts_ns: int, record: Any, command_json: str) -> Command:
    """The command of a journal row whose hash holds, or :class:`UnreadableCommand`."""
    try:
        if not isinstance(record, dict):
            raise ValueError("a journal record must be a JSON object")
        return command_from_record(record)
    except (TypeError, ValueError) as error:
        raise UnreadableCommand(seq, ts_ns, command_json, str(error)) from None


def _entries(
    rows: Iterable[tuple[int, int, str, str, str, bytes]],
    postings_by_entry: Iterator[tuple[int, tuple[Posting, ...]]],
) -> Iterator[StoredEntry]:
    """Entry rows with their postings, each entry's hash checked against its predecessor's."""
    document_of, hash_of = entry_document, chain_hash
    previous = GENESIS_HASH
    group_seq, group = next(postings_by_entry, (None, _NO_POSTINGS))
    for expected_seq, (seq, ts_ns, kind, key, body, stored) in enumerate(rows, start=1):
        stored = bytes(stored)
        if seq != expected_seq:
            raise BrokenChain("ledger", seq, f"expected seq {expected_seq}: a row is missing")
        if group_seq is not None and group_seq < seq:
            raise BrokenChain("ledger", group_seq, "postings of a missing entry")
        if group_seq == seq:
            postings = group
            group_seq, group = next(postings_by_entry, (None, _NO_POSTINGS))
        else:
            postings = _NO_POSTINGS
        if hash_of(previous, document_of(seq, ts_ns, kind, key, body, postings)) != stored:
            raise BrokenChain("ledger", seq, "hash mismatch: the entry or its postings changed")
        yield StoredEntry(seq, kind, key, ts_ns, body, postings, stored)
        previous = stored
    if group_seq is not None:
        raise BrokenChain("ledger", group_seq, "postings of a missing entry")


# -- the JSONL file ------------------------------------------------------------------------


def entry_json(entry: StoredEntry) -> dict[str, Any]:
    """An entry as a JSON object of the JSONL journal (its body spliced in verbatim)."""
    return {
        "seq": entry.seq,
        "ts_ns": entry.ts_ns,
        "kind": entry.kind,
        "key": entry.key,
        "body": orjson.Fragment(entry.body_json),
        "postings": [list(posting) for posting in entry.postings],
        "chain_hash": entry.chain_hash.hex(),
    }


class JournalFile:
    """A JSONL journal file (see the module docstring). Reading checks both hash chains."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def head_seq(self) -> int:
        """The number of lines: the last seq of a well-formed file."""
        return count_lines(self.path)

    @contextmanager
    def open(self, *, read_ahead: bool = False) -> Iterator[JournalStream]:
        """The file is read in this process, ``read_ahead`` or not."""
        with self.path.open("rb") as file:
            first = file.readline(MAX_LINE_BYTES)
            if not first.strip():
                raise InputError(f"{self.path}:1: the journal is empty")
            has_entries = "entries" in self._parse(first, 1)
            file.seek(0)
            yield JournalStream(self._commands(file, has_entries), None, has_entries)

    def _parse(self, line: bytes, number: int) -> dict[str, Any]:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise InputError(
                f"{self.path}:{number}: column {error.colno}: not JSON: {error.msg}"
            ) from None
        if not isinstance(value, dict):
            raise InputError(f"{self.path}:{number}: a line must be a JSON object")
        return value

    def _commands(self, lines: Iterable[bytes], has_entries: bool) -> Iterator[RecordedCommand]:
        previous, previous_entry = GENESIS_HASH, GENESIS_HASH
        entry_seq = 0
        for number, line in enumerate(lines, start=1):
            if len(line) > MAX_LINE_BYTES:
                raise InputError(f"{self.path}:{number}: line longer than {MAX_LINE_BYTES} bytes")
            if not line.strip():
                raise InputError(f"{self.path}:{number}: empty line")
            where = f"{self.path}:{number}"
            value = self._parse(line, number)
            unknown = set(value) - _LINE_KEYS
            if unknown:
                raise InputError(f"{where}: unknown field {sorted(unknown)[0]!r}")
            seq = _integer(value, "seq", where)
            ts_ns = _integer(value, "ts_ns", where)
            stored = _hex(value, "chain_hash", where)
            command = value.get("command")
            if not isinstance(command, dict):
                raise InputError(f"{where}: 'command' must be a JSON object")
            command_json = _canonical(command, f"{where}: 'command'")
            if seq != number:
                if number == 1:
                    raise InputError(
                        f"{where}: the journal starts at seq {seq}; a replay needs every "
                        "command from seq 1"
                    )
                raise BrokenChain("journal", seq, f"expected seq {number}: a row is missing")
            if chain_hash(previous, command_document(seq, ts_ns, command_json)) != stored:
                raise BrokenChain("journal", seq, "hash mismatch: the row changed")
            entries = None
            if has_entries:
                if "entries" not in value:
                    raise InputError(f"{where}: 'entries' is missing (line 1 has them)")
                raw = value["entries"]
                if not isinstance(raw, list):
                    raise InputError(f"{where}: 'entries' must be a list")
                entries = []
                for index, item in enumerate(raw):
                    entry = _entry(item, f"{where}: entries[{index}]")
                    entry_seq += 1
                    if entry.seq != entry_seq:
                        raise BrokenChain(
                            "ledger", entry.seq, f"expected seq {entry_seq}: an entry is missing"
                        )
                    document = entry_document(
                        entry.seq, entry.ts_ns, entry.kind, entry.key, entry.body_json,
                        entry.postings,
                    )  # fmt: skip
                    if chain_hash(previous_entry, document) != entry.chain_hash:
                        raise BrokenChain("ledger", entry.seq, "hash mismatch: the entry changed")
                    previous_entry = entry.chain_hash
                    entries.append(entry)
            elif "entries" in value:
                raise InputError(f"{where}: 'entries' is here but not on line 1")
            yield RecordedCommand(
                seq, ts_ns, _parse(seq, ts_ns, command, command_json), command_json, stored,
                entries,
            )  # fmt: skip
            previous = stored


def _integer(value: dict[str, Any], name: str, where: str) -> int:
    item = value.get(name)
    if type(item) is not int or item < 0:
        raise InputError(f"{where}: {name!r} must be a non-negative integer, got {item!r}")
    return item


def _hex(value: dict[str, Any], name: str, where: str) -> bytes:
    item = value.get(name)
    try:
        if not isinstance(item, str):
            raise ValueError
        digest = bytes.fromhex(item)
    except ValueError:
        raise InputError(f"{where}: {name!r} must be a SHA-256 hash in hex") from None
    if len(digest) != 32:
        raise InputError(f"{where}: {name!r} must be a SHA-256 hash in hex (64 digits)")
    return digest


def _canonical(value: Any, where: str) -> str:
    try:
        return canonical_json(value).decode()
    except CanonicalJSONError as error:
        raise InputError(f"{where}: {error}") from None


def _entry(item: Any, where: str) -> StoredEntry:
    if not isinstance(item, dict):
        raise InputError(f"{where} must be a JSON object")
    if set(item) != _ENTRY_KEYS:
        missing = sorted(_ENTRY_KEYS - set(item)) or sorted(set(item) - _ENTRY_KEYS)
        raise InputError(f"{where}: field {missing[0]!r} is missing or unknown")
    seq = _integer(item, "seq", where)
    ts_ns = _integer(item, "ts_ns", where)
    kind, key, body = item["kind"], item["key"], item["body"]
    if not isinstance(kind, str) or not isinstance(key, str):
        raise InputError(f"{where}: 'kind' and 'key' must be strings")
    if not isinstance(body, dict):
        raise InputError(f"{where}: 'body' must be a JSON object")
    postings: list[tuple[str, str, int]] = []
    raw = item["postings"]
    if not isinstance(raw, list):
        raise InputError(f"{where}: 'postings' must be a list")
    for index, posting in enumerate(raw):
        if (
            not isinstance(posting, list)
            or len(posting) != 3
            or not isinstance(posting[0], str)
            or not isinstance(posting[1], str)
            or type(posting[2]) is not int
        ):
            raise InputError(f"{where}: postings[{index}] must be [account, asset, amount]")
        postings.append(tuple(posting))  # plain tuples: orjson does not encode NamedTuples
    body_json = _canonical(body, f"{where}: 'body'")
    stored = _hex(item, "chain_hash", where)
    return StoredEntry(seq, kind, key, ts_ns, body_json, tuple(postings), stored)  # type: ignore[arg-type]
