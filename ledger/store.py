"""The Ledger: appends to the journal and the settlement ledger, and reads them back.

One write transaction per batch (group commit): the journal's commands and the ledger's
entries, their postings and the balance projections are written together and are durable
when :meth:`Ledger.append` returns. Writers are serialised (a lock per process, and
``BEGIN IMMEDIATE`` on SQLite or ``LOCK TABLE ... IN EXCLUSIVE MODE`` on PostgreSQL across
processes), so sequence numbers are dense and each hash covers the row before it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ledger import accounts
from ledger.canonical import CanonicalJSONError, canonical_json, parse_json
from ledger.chain import GENESIS_HASH, chain_hash, command_document, entry_document
from ledger.database import WRITE_OPTION, get_engine
from ledger.entries import Entry, EntryKind, Posting
from ledger.errors import BalanceError, EntryError, IdempotencyConflict, JournalConflict
from ledger.merkle import ConsistencyProof, Digest, InclusionProof, MerkleTree
from ledger.models import BalanceRow, EntryRow, JournalRow, PostingRow
from ledger.rows import gc_paused
from ledger.scan import scan_ledger
from ledger.schema import migrate

__all__ = [
    "MAX_BATCH_COMMANDS",
    "MAX_BATCH_ENTRIES",
    "MAX_PAGE_ENTRIES",
    "AppendResult",
    "EntryReceipt",
    "JournalRecord",
    "Ledger",
    "StoredEntry",
]

MAX_BATCH_ENTRIES = 10_000
MAX_BATCH_COMMANDS = 10_000
MAX_PAGE_ENTRIES = 1_000  # entries_of: well under the IN-list bound below
# Keeps every IN (...) list under SQLite's and PostgreSQL's bound-parameter limits.
_IN_CHUNK = 5_000

_journal = JournalRow.__table__
_entry = EntryRow.__table__
_posting = PostingRow.__table__
_balance = BalanceRow.__table__

_INSERT_BALANCE = insert(_balance)
_SELECT_ENTRIES_BY_KEY = select(
    _entry.c.seq, _entry.c.key, _entry.c.kind, _entry.c.ts_ns, _entry.c.body, _entry.c.chain_hash
).where(_entry.c.key.in_(bindparam("keys", expanding=True)))
_SELECT_POSTINGS_OF = (
    select(_posting.c.entry_seq, _posting.c.account, _posting.c.asset, _posting.c.amount_units)
    .where(_posting.c.entry_seq.in_(bindparam("seqs", expanding=True)))
    .order_by(_posting.c.entry_seq, _posting.c.idx)
)


@dataclass(frozen=True, slots=True)
class EntryReceipt:
    """Where an appended entry sits. ``created`` is False when the key already existed."""

    seq: int
    key: str
    chain_hash: bytes
    created: bool


@dataclass(frozen=True, slots=True)
class AppendResult:
    command_seqs: list[int]
    receipts: list[EntryReceipt]


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One command of the order-flow journal as stored."""

    seq: int
    ts_ns: int
    command: dict[str, Any]
    chain_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One entry as stored, with its sequence number, hash and canonical bytes."""

    seq: int
    kind: str
    key: str
    ts_ns: int
    body_json: str
    postings: tuple[Posting, ...]
    chain_hash: bytes

    @property
    def body(self) -> dict[str, Any]:
        return parse_json(self.body_json)

    @property
    def document(self) -> bytes:
        """The canonical bytes hashed into the chain and used as the Merkle leaf."""
        return entry_document(
            self.seq,
            self.ts_ns,
            self.kind,
            self.key,
            self.body_json,
            [tuple(p) for p in self.postings],
        )


class Ledger:
    """The order-flow journal and the settlement ledger of one database.

    Usage: ``Ledger.open(url).append_entries([entries.deposit("ann", 10_000, key="d-1",
    ts_ns=1)])``. One instance per database per process; appends from several threads are
    serialised by the instance, and from several processes by the database.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._is_postgresql = engine.dialect.name == "postgresql"
        self._write_lock = threading.Lock()
        self._balance_cache = BalanceCache()

    @classmethod
    def open(cls, database: str | Engine | None = None, *, run_migrations: bool = True) -> Ledger:
        """The ledger of ``database`` (engine, URL, or None for the configured URL).

        Runs the migrations first unless ``run_migrations`` is False.
        """
        engine = database if isinstance(database, Engine) else get_engine(database)
        if run_migrations:
            migrate(engine)
        return cls(engine)

    # -- writing ---------------------------------------------------------------------------

    def append_entries(self, entries: Sequence[Entry]) -> list[EntryReceipt]:
        """Append ``entries`` in one durable transaction; see :meth:`append`."""
        return self.append(entries=entries).receipts

    def append_commands(self, commands: Sequence[tuple[int, Mapping[str, Any]]]) -> list[int]:
        """Append ``(ts_ns, command)`` pairs to the journal; returns their sequence numbers."""
        return self.append(commands=commands).command_seqs

    def append(
        self,
        *,
        commands: Sequence[tuple[int, Mapping[str, Any]]] = (),
        entries: Sequence[Entry] = (),
        journal_head_seq: int | None = None,
    ) -> AppendResult:
        """Append journal commands and ledger entries in one transaction, all or nothing.

        Each entry is checked (balanced per asset, known accounts), then its idempotency key
        is looked up: a key already stored with the same kind, time, body and postings
        yields the stored entry's receipt with ``created=False``; with other content it
        raises :class:`IdempotencyConflict`. New entries get the next sequence numbers in
        order. Raises :class:`BalanceError` if an entry would take a participant's balance
        (or the provider's unsold licences) below zero or issue beyond the cap. A writer that
        keeps state derived from the journal passes the ``journal_head_seq`` it has seen:
        if another writer has appended since, :class:`JournalConflict` is raised. On any
        error nothing is written.
        """
        if len(entries) > MAX_BATCH_ENTRIES or len(commands) > MAX_BATCH_COMMANDS:
            raise EntryError(
                f"a batch holds at most {MAX_BATCH_ENTRIES} entries and "
                f"{MAX_BATCH_COMMANDS} commands"
            )
        with gc_paused():
            prepared_commands = [_prepare_command(ts_ns, command) for ts_ns, command in commands]
            prepared_entries = [_prepare_entry(entry) for entry in entries]
            with self._write_lock:
                staged = BalanceCache()
                with self._write_transaction() as connection:
                    command_seqs = _write_commands(connection, prepared_commands, journal_head_seq)
                    receipts = _write_entries(
                        connection, prepared_entries, self._balance_cache, staged
                    )
                # Committed: only now may the cache reflect what was written.
                self._balance_cache.absorb(staged)
        return AppendResult(command_seqs, receipts)

    def rebuild_balances(self) -> None:
        """Replace the balance projection with the sums of the postings."""
        with self._write_lock, self._write_transaction() as connection:
            self._balance_cache.clear()
            connection.execute(_balance.delete())
            rows = [
                {"account": account, "asset": asset, "balance_units": units}
                for (account, asset), units in _sum_postings(connection).items()
            ]
            if rows:
                connection.execute(_INSERT_BALANCE, rows)

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            driver_error = connection.dialect.loaded_dbapi.Error
            with connection.begin():
                if self._is_postgresql:
                    # Readers (ACCESS SHARE) go on; other writers wait for the commit.
                    connection.exec_driver_sql(
                        "LOCK TABLE ledger_journal, ledger_entry IN EXCLUSIVE MODE"
                    )
                try:
                    yield connection
                except driver_error as error:
                    # The append path's statements go to the driver itself (_cursor); its
                    # errors are raised as SQLAlchemy's, as every other statement's are.
                    raise DBAPIError.instance(None, None, error, driver_error) from error

    # -- reading ---------------------------------------------------------------------------

    def balances(self, participant: str | None = None) -> dict[tuple[str, str], int]:
        """The projected balances by ``(account, asset)``, of one participant if given."""
        query = select(_balance.c.account, _balance.c.asset, _balance.c.balance_units)
        if participant is not None:
            prefix = f"participant:{accounts.check_identifier(participant, 'participant')}:"
            query = query.where(_balance.c.account.startswith(prefix, autoescape=True))
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(_balance.c.account, _balance.c.asset))
            return {(account, asset): units for account, asset, units in rows}

    def balance(self, account: str, asset: str) -> int:
        """The projected balance of ``asset`` on ``account`` (0 if never posted)."""
        query = select(_balance.c.balance_units).where(
            _balance.c.account == account, _balance.c.asset == asset
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none() or 0

    def balances_from_postings(self) -> dict[tuple[str, str], int]:
        """The balances recomputed from every posting (what the projection must equal)."""
        with self.engine.connect() as connection:
            return _sum_postings(connection)

    def size(self) -> int:
        """Number of entries in the settlement ledger."""
        with self.engine.connect() as connection:
            return _head(connection, _entry)[0]

    def journal_head_seq(self) -> int:
        """The sequence number of the journal's last command (0 when empty)."""
        with self.engine.connect() as connection:
            return _head(connection, _journal)[0]

    def entry(self, seq: int) -> StoredEntry | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(_entry).where(_entry.c.seq == seq)).first()
            if row is None:
                return None
            postings = tuple(
                Posting(account, asset, units)
                for _, account, asset, units in connection.execute(
                    _SELECT_POSTINGS_OF, {"seqs": [seq]}
                )
            )
        return StoredEntry(
            row.seq, row.kind, row.key, row.ts_ns, row.body, postings, bytes(row.chain_hash)
        )

    def entries_of(self, participant: str, after_seq: int, limit: int) -> list[StoredEntry]:
        """Up to ``limit`` entries after ``after_seq``, in order, with a posting to one of
        ``participant``'s accounts (``participant:<id>:…``), each with all its postings.

        The accounts are the key range from ``participant:<id>:`` up to, not including,
        ``participant:<id>;`` (``;`` follows ``:``), so an id is never read as a pattern.
        The postings are read in their stored order from ``after_seq`` on until ``limit``
        entries are found: a participant with few entries in a long ledger costs a walk of
        the rest of it, which paging with ``after_seq`` keeps to one pass in all."""
        assert 1 <= limit <= MAX_PAGE_ENTRIES, limit
        prefix = f"participant:{participant}:"
        seqs_query = (
            select(_posting.c.entry_seq)
            .where(_posting.c.entry_seq > after_seq)
            .where(_posting.c.account >= prefix, _posting.c.account < prefix[:-1] + ";")
            .group_by(_posting.c.entry_seq)
            .order_by(_posting.c.entry_seq)
            .limit(limit)
        )
        with self.snapshot() as connection:
            seqs = [seq for (seq,) in connection.execute(seqs_query)]
            if not seqs:
                return []
            rows = connection.execute(
                select(_entry).where(_entry.c.seq.in_(seqs)).order_by(_entry.c.seq)
            ).all()
            postings: dict[int, list[Posting]] = {seq: [] for seq in seqs}
            for seq, account, asset, units in connection.execute(
                _SELECT_POSTINGS_OF, {"seqs": seqs}
            ):
                postings[seq].append(Posting(account, asset, units))
        return [
            StoredEntry(row.seq, row.kind, row.key, row.ts_ns, row.body,
                        tuple(postings[row.seq]), bytes(row.chain_hash))
            for row in rows
        ]  # fmt: skip

    def journal(self, start_seq: int = 1, limit: int = 10_000) -> list[JournalRecord]:
        """Up to ``limit`` journal records from ``start_seq`` on, in order (for replay)."""
        query = (
            select(_journal)
            .where(_journal.c.seq >= start_seq)
            .order_by(_journal.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                JournalRecord(row.seq, row.ts_ns, parse_json(row.command), bytes(row.chain_hash))
                for row in connection.execute(query)
            ]

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent state of every table."""
        with self.engine.connect() as connection:
            if self._is_postgresql:
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    def tree(self) -> MerkleTree:
        """The Merkle tree over every entry's canonical bytes, leaf ``i`` = entry ``i + 1``."""
        with gc_paused(), self.snapshot() as connection:
            return MerkleTree(scan_ledger(connection).leaves)

    def digest(self) -> Digest:
        return self.tree().digest()

    def inclusion_proof(
        self, seq: int, tree_size: int | None = None
    ) -> tuple[InclusionProof, StoredEntry]:
        """Proof that entry ``seq`` is in the tree of ``tree_size`` entries (default: all)."""
        entry = self.entry(seq)
        if entry is None:
            raise EntryError(f"no entry {seq}")
        return self.tree().inclusion_proof(seq - 1, tree_size), entry

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        return self.tree().consistency_proof(old_size, new_size)


class BalanceCache:
    """The balances this process last wrote, valid while the ledger's head is unchanged.

    Reading the balances a batch touches cost about a tenth of an append; a writer that is
    the only one (the usual case: one sequencer per process) can keep them. Every write checks
    the head it finds against the head the cache reflects, and reloads from the database
    when another writer has appended in between.
    """

    MAX_ACCOUNTS = 1_000_000

    __slots__ = ("balances", "head_seq")

    def __init__(self) -> None:
        self.head_seq: int | None = None
        self.balances: dict[tuple[str, str], int] = {}

    def clear(self) -> None:
        self.head_seq = None
        self.balances = {}

    def balances_of(
        self, account_names: set[str], head_seq: int, connection: Connection
    ) -> dict[tuple[str, str], int]:
        """Current balances of ``account_names``, from the cache or the database."""
        if self.head_seq != head_seq:
            self.clear()
        cached, asset_of = self.balances, accounts.asset_of
        balances: dict[tuple[str, str], int] = {}
        missing = set()
        for account in account_names:
            key = (account, asset_of(account))
            units = cached.get(key)
            if units is None:
                missing.add(account)
            else:
                balances[key] = units
        if missing:
            balances.update(_load_balances(connection, missing))
        return balances

    def absorb(self, staged: BalanceCache) -> None:
        """Take the balances of a committed write."""
        if staged.head_seq is None:
            return
        if len(self.balances) + len(staged.balances) > self.MAX_ACCOUNTS:
            self.balances = {}
        self.balances.update(staged.balances)
        self.head_seq = staged.head_seq


# -- the append path ----------------------------------------------------------------------


def _prepare_command(ts_ns: int, command: Mapping[str, Any]) -> tuple[int, str]:
    if type(ts_ns) is not int or ts_ns < 0:
        raise EntryError(f"command time {ts_ns!r} must be a non-negative integer (ns)")
    if not isinstance(command, Mapping):
        raise EntryError("a journal command must be a JSON object")
    try:
        return ts_ns, canonical_json(dict(command)).decode()
    except CanonicalJSONError as error:
        raise EntryError(f"command is not canonical JSON: {error}") from None


def _prepare_entry(entry: Entry) -> tuple[Entry, str]:
    entry.check()
    try:
        return entry, canonical_json(dict(entry.body)).decode()
    except CanonicalJSONError as error:
        raise EntryError(f"{entry.key}: body is not canonical JSON: {error}") from None


def _write_commands(
    connection: Connection, commands: list[tuple[int, str]], expected_head_seq: int | None
) -> list[int]:
    if not commands and expected_head_seq is None:
        return []
    seq, previous = _head(connection, _journal)
    if expected_head_seq is not None and seq != expected_head_seq:
        raise JournalConflict(
            f"the journal's head is {seq}, not {expected_head_seq}: another writer appended"
        )
    rows, seqs = [], []
    for ts_ns, command in commands:
        seq += 1
        previous = chain_hash(previous, command_document(seq, ts_ns, command))
        rows.append((seq, ts_ns, command, previous))
        seqs.append(seq)
    _append_rows(connection, _journal, rows)
    return seqs


def _write_entries(
    connection: Connection,
    prepared: list[tuple[Entry, str]],
    cache: BalanceCache,
    staged: BalanceCache,
) -> list[EntryReceipt]:
    if not prepared:
        return []
    existing = _stored_by_key(connection, [entry.key for entry, _ in prepared])
    receipts: list[EntryReceipt | None] = [None] * len(prepared)
    first_index_of_key: dict[str, int] = {}
    new_indices: list[int] = []
    repeats: list[tuple[int, int]] = []
    for index, (entry, body) in enumerate(prepared):
        key = entry.key
        stored = existing.get(key)
        if stored is not None:
            if _content(stored) != _content_of(entry, body):
                raise IdempotencyConflict(f"key {key!r} already names entry {stored.seq}")
            receipts[index] = EntryReceipt(stored.seq, key, stored.chain_hash, False)
        elif key in first_index_of_key:
            first = first_index_of_key[key]
            if _content_of(*prepared[first]) != _content_of(entry, body):
                raise IdempotencyConflict(f"key {key!r} appears twice in the batch")
            repeats.append((index, first))
        else:
            first_index_of_key[key] = index
            new_indices.append(index)
    if new_indices:
        _write_new_entries(connection, prepared, new_indices, receipts, cache, staged)
    for index, first in repeats:
        original = receipts[first]
        assert original is not None
        receipts[index] = EntryReceipt(original.seq, original.key, original.chain_hash, False)
    return receipts  # type: ignore[return-value]  # every slot was filled above


def _write_new_entries(
    connection: Connection,
    prepared: list[tuple[Entry, str]],
    new_indices: list[int],
    receipts: list[EntryReceipt | None],
    cache: BalanceCache,
    staged: BalanceCache,
) -> None:
    seq, previous = _head(connection, _entry)
    touched = {p[0] for i in new_indices for p in prepared[i][0].postings}
    balances = cache.balances_of(touched, seq, connection)
    is_non_negative = accounts.is_non_negative
    issuance_kind = EntryKind.LICENCE_ISSUANCE
    entry_rows: list[tuple[Any, ...]] = []
    posting_rows: list[tuple[Any, ...]] = []
    append_posting = posting_rows.append
    for index in new_indices:
        entry, body = prepared[index]
        seq += 1
        postings = entry.postings
        below_zero = None
        plain_postings = []
        for idx, (account, asset, amount) in enumerate(postings):
            balance = balances[account, asset] = balances.get((account, asset), 0) + amount
            if balance < 0:
                below_zero = (below_zero or []) + [(account, asset)]
            plain_postings.append((account, asset, amount))
            append_posting((seq, idx, account, asset, amount))
        # Judged on the entry's final effect, whatever the order of its own postings.
        for account, asset in below_zero or ():
            if balances[account, asset] < 0 and is_non_negative(account):
                raise BalanceError(
                    f"{entry.key}: {account} would hold {balances[account, asset]} {asset}"
                )
        kind = entry.kind.value
        if kind == issuance_kind:
            _check_issuance_cap(entry, balances)
        document = entry_document(seq, entry.ts_ns, kind, entry.key, body, plain_postings)
        previous = sha256(previous + document).digest()
        entry_rows.append((seq, entry.key, kind, entry.ts_ns, body, previous))
        receipts[index] = EntryReceipt(seq, entry.key, previous, True)
    _append_rows(connection, _entry, entry_rows)
    if posting_rows:
        _append_rows(connection, _posting, posting_rows)
        _store_balances(connection, balances)
    staged.head_seq, staged.balances = seq, balances


def _cursor(connection: Connection) -> Any:
    """The driver's own cursor on ``connection``'s transaction. The append path's statements
    go through it: SQLAlchemy's execution machinery costs many times what a one-row probe
    costs SQLite itself, and an append makes eight statements however few commands it
    carries (a server's batches are a dozen commands; docs/benchmarks.md)."""
    return connection.connection.driver_connection.cursor()


def _head(connection: Connection, table: Table) -> tuple[int, bytes]:
    """The sequence number and chain hash of ``table``'s last row (0 and the genesis hash
    when it is empty)."""
    cursor = _cursor(connection)
    cursor.execute(f"SELECT seq, chain_hash FROM {table.name} ORDER BY seq DESC LIMIT 1")
    head = cursor.fetchone()
    cursor.close()
    return (0, GENESIS_HASH) if head is None else (head[0], bytes(head[1]))


def _append_rows(connection: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the table's column order) into an append-only table.

    The hot path: rows go to the driver as tuples, without SQLAlchemy's per-row parameter
    processing, which measured at half of SQLite's insert rate. On PostgreSQL they are
    streamed with COPY, on SQLite through one prepared INSERT executed for every row.
    """
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(_copy_statement(table)) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.close()
        return
    _cursor(connection).executemany(_insert_statement(table), rows)


# Each append-only table's statements, spelled once: listing a table's columns walks
# SQLAlchemy's column collection, which showed in a profile of a server's small appends.
@cache
def _copy_statement(table: Table) -> str:
    columns = ", ".join(column.name for column in table.columns)
    return f"COPY {table.name} ({columns}) FROM STDIN"


@cache
def _insert_statement(table: Table) -> str:
    columns = ", ".join(column.name for column in table.columns)
    marks = ", ".join("?" * len(table.columns))
    return f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"


def _check_issuance_cap(entry: Entry, balances: Mapping[tuple[str, str], int]) -> None:
    symbol = entry.body["symbol"]
    issued_units = -balances[accounts.issued(symbol), accounts.licence_asset(symbol)]
    cap = entry.body["issuance_cap_units"]
    if issued_units > cap:
        raise BalanceError(f"{entry.key}: {issued_units} units of {symbol} issued, cap is {cap}")


def _load_balances(connection: Connection, account_names: set[str]) -> dict[tuple[str, str], int]:
    """Current projected balances of ``account_names`` (absent accounts are left out)."""
    names = sorted(account_names)
    balances: dict[tuple[str, str], int] = {}
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.execute(
                "SELECT account, asset, balance_units FROM ledger_balance WHERE account = ANY(%b)",
                (names,),
            )
            for account, asset, units in cursor:
                balances[account, asset] = units
        return balances
    cursor = _cursor(connection)
    for start in range(0, len(names), _IN_CHUNK):
        chunk = names[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = cursor.execute(
            f"SELECT account, asset, balance_units FROM ledger_balance WHERE account IN ({marks})",
            chunk,
        )
        for account, asset, units in rows:
            balances[account, asset] = units
    return balances


_UPSERT_BALANCE = (
    "INSERT INTO ledger_balance (account, asset, balance_units) {source} "
    "ON CONFLICT (account, asset) DO UPDATE SET balance_units = excluded.balance_units"
)


def _store_balances(connection: Connection, balances: Mapping[tuple[str, str], int]) -> None:
    """Write the new balances of every account a batch touched, in one statement."""
    if connection.dialect.name == "postgresql":
        # One statement over three arrays: far fewer round trips than one row at a time.
        accounts_, assets, units = [], [], []
        for (account, asset), balance in balances.items():
            accounts_.append(account)
            assets.append(asset)
            units.append(balance)
        # %b: binary parameters. Text arrays in text format are quoted element by element,
        # which measured at a fifth of the append time.
        source = "SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[])"
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.execute(_UPSERT_BALANCE.format(source=source), (accounts_, assets, units))
        return
    rows = [(account, asset, balance) for (account, asset), balance in balances.items()]
    _cursor(connection).executemany(_UPSERT_BALANCE.format(source="VALUES (?, ?, ?)"), rows)


_Content = tuple[str, int, str, tuple[tuple[str, str, int], ...]]


def _content_of(entry: Entry, body: str) -> _Content:
    return entry.kind.value, entry.ts_ns, body, tuple(tuple(p) for p in entry.postings)


def _content(stored: StoredEntry) -> _Content:
    return stored.kind, stored.ts_ns, stored.body_json, tuple(tuple(p) for p in stored.postings)


def _existing_keys(connection: Connection, keys: list[str]) -> list[str]:
    """Which of ``keys`` are already stored: one indexed probe per key, usually none found."""
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:
            # One array parameter instead of an IN list: PostgreSQL plans a thousand-item IN
            # list at a cost that measured at a tenth of the append time.
            cursor.execute("SELECT key FROM ledger_entry WHERE key = ANY(%b)", (keys,))
            return [key for (key,) in cursor]
    found = []
    cursor = _cursor(connection)
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        found += [
            key
            for (key,) in cursor.execute(
                f"SELECT key FROM ledger_entry WHERE key IN ({marks})", chunk
            )
        ]
    return found


def _stored_by_key(connection: Connection, keys: list[str]) -> dict[str, StoredEntry]:
    keys = _existing_keys(connection, keys)
    rows = []
    for start in range(0, len(keys), _IN_CHUNK):
        rows.extend(
            connection.execute(_SELECT_ENTRIES_BY_KEY, {"keys": keys[start : start + _IN_CHUNK]})
        )
    if not rows:
        return {}
    postings: dict[int, list[Posting]] = {row.seq: [] for row in rows}
    seqs = list(postings)
    for start in range(0, len(seqs), _IN_CHUNK):
        for seq, account, asset, units in connection.execute(
            _SELECT_POSTINGS_OF, {"seqs": seqs[start : start + _IN_CHUNK]}
        ):
            postings[seq].append(Posting(account, asset, units))
    return {
        row.key: StoredEntry(
            row.seq,
            row.kind,
            row.key,
            row.ts_ns,
            row.body,
            tuple(postings[row.seq]),
            bytes(row.chain_hash),
        )
        for row in rows
    }


def _sum_postings(connection: Connection) -> dict[tuple[str, str], int]:
    rows = connection.execute(
        text("SELECT account, asset, SUM(amount_units) FROM ledger_posting GROUP BY account, asset")
    )
    return {(account, asset): int(units) for account, asset, units in rows}
