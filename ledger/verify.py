"""Verification: recompute everything the ledger claims and name the first thing that is wrong.

Checked, from the rows alone, in one consistent snapshot:

1. the journal's hash chain and dense sequence numbers;
2. the settlement ledger's hash chain (each entry with its postings) and dense numbering;
3. the Merkle root over the entries' canonical bytes (reported as the digest);
4. that every posting belongs to an entry and has a non-zero amount on an account that
   holds its asset, and that each entry's postings sum to zero per asset;
5. that the balance projection equals the sums of the postings, and that no account with a
   floor of zero (participants, fees, unsold licences) is below it;
6. that every append-only guard the schema defines is in place (``ledger.guards``): a
   dropped, disabled or altered trigger is reported in ``guard_problems``, apart from the
   rows' problems, as it names no row.

Each row is checked against the *stored* hash of the row before it, so a single changed row
is named alone instead of every row after it. The entries are read in one streaming pass,
:func:`ledger.scan.scan_entries`, which does every per-entry and per-posting check.
Verification is bound by reading rows into Python; see ``docs/ledger-benchmarks.md`` for what
it costs and what was tried.

With ``workers`` above one, the journal and the entries are cut into ranges of sequence
numbers, checked by this process and ``workers - 1`` more (forked when this process runs one
thread, such as the ``dataex`` command, otherwise started afresh), and the ranges' findings
joined: the report is the one a single process gives. A range starts at the stored hash of
the row before it, so the chains need no pass of their own. This process's snapshot fixes the
rows to check; the workers read them in snapshots of their own, taken later, which hold the
same rows: rows are never changed once written, and nothing below the snapshot's head can be
added after it. Where a stream's sequence numbers are not exactly ``1..count``, the whole
ledger is checked in one process, which names the gap.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ledger import accounts
from ledger.chain import GENESIS_HASH, chain_hash, command_document
from ledger.database import create_engine
from ledger.guards import guard_problems
from ledger.merkle import Digest, root_hash, subtree_roots
from ledger.rows import gc_paused, iter_rows, seq_bounds
from ledger.scan import EntryScan, Problem, merge_scans, orphan_problem, scan_ledger, scan_range
from ledger.store import Ledger

__all__ = ["MIN_RANGE_ROWS", "Problem", "VerifyReport", "verify"]

# A worker's range holds at least this many rows: below it, starting the process costs more
# than it saves (a fork takes milliseconds; 5,000 entries take about 45 ms to check).
MIN_RANGE_ROWS = 5_000
MERKLE_BLOCK = 1_024
_JOURNAL, _ENTRIES = "ledger_journal", "ledger_entry"
# (table, sequence column, text columns): what a scan decodes from each table.
_TEXT_COLUMNS = (
    (_JOURNAL, "seq", ("command",)),
    (_ENTRIES, "seq", ("kind", "key", "body")),
    ("ledger_posting", "entry_seq", ("account", "asset")),
)


@dataclass(slots=True)
class VerifyReport:
    commands: int = 0
    entries: int = 0
    postings: int = 0
    accounts: int = 0
    digest: Digest | None = None
    problems: list[Problem] = field(default_factory=list)
    # Append-only guards missing or altered: the database would accept a changed row.
    guard_problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.guard_problems

    @property
    def first_problem(self) -> Problem | None:
        """The problem at the lowest sequence number (the first bad row), if any."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq or 0))


def verify(ledger: Ledger, *, workers: int = 1) -> VerifyReport:
    """Check the whole database, in up to ``workers`` processes; see the module docstring.

    Each check reports at most its first problem, so a broken database gives a short report
    whose :attr:`VerifyReport.first_problem` names the first bad row. A SQLite row whose text
    is not UTF-8 (a changed byte can make it so) cannot be read as text at all: the report
    then names it, and has no digest.
    """
    report = VerifyReport()
    with gc_paused(), ledger.snapshot() as connection:
        guards = guard_problems(connection)
        report.guard_problems = guards
        try:
            journal, scan, roots = _scan(ledger, connection, workers)
            report.commands = journal.count
            report.problems += journal.problems
            report.entries, report.postings = scan.entries, scan.postings
            report.digest = Digest(scan.entries, root_hash(roots))
            report.problems += scan.problems
            _verify_accounts(report, connection, scan.sums)
        except (sqlite3.Error, DBAPIError):
            unreadable = _undecodable_rows(connection)
            if not unreadable:
                raise
            return VerifyReport(problems=unreadable, guard_problems=guards)
    return report


def _scan(
    ledger: Ledger, connection: Connection, workers: int
) -> tuple[_JournalScan, EntryScan, list[bytes]]:
    """The journal's and the entries' checks, and the Merkle roots to build the root from:
    in this process, or split between processes where the rows are many enough."""
    journal_ranges = _ranges(connection, _JOURNAL, workers)
    entry_ranges = _ranges(connection, _ENTRIES, workers)
    in_memory = ledger.engine.url.database in (None, "", ":memory:")
    # Worth another process: at least two ranges of MIN_RANGE_ROWS rows or more.
    ranges = (journal_ranges or []) + (entry_ranges or [])
    worth = sum(high - low + 1 >= MIN_RANGE_ROWS for low, high in ranges)
    if journal_ranges is None or entry_ranges is None or in_memory or workers < 2 or worth < 2:
        scan = scan_ledger(connection)
        return _JournalScan.of(connection), scan, scan.leaves
    url = ledger.engine.url.render_as_string(hide_password=False)
    journal, scan, roots = _scan_in_processes(
        connection, url, journal_ranges, entry_ranges, workers
    )
    # Postings above the last range's entries (or any, with no entries) belong to none.
    above = f" WHERE entry_seq > {entry_ranges[-1][1]}" if entry_ranges else ""
    orphan = connection.execute(text(f"SELECT MIN(entry_seq) FROM ledger_posting{above}")).scalar()
    if orphan is not None:
        scan.first.setdefault("orphan", orphan_problem(orphan))
    return journal, scan, roots


def _undecodable_rows(connection: Connection) -> list[Problem]:
    """The first row of each table whose text is not UTF-8, read as bytes (SQLite stores
    whatever bytes it is given; PostgreSQL refuses such text)."""
    if connection.dialect.name != "sqlite":
        return []
    problems = []
    balances = connection.exec_driver_sql(
        "SELECT CAST(account AS BLOB), CAST(asset AS BLOB) FROM ledger_balance ORDER BY 1, 2"
    )
    for account, asset in balances:
        if not (_utf8(account) and _utf8(asset)):
            where = f"{account.decode(errors='replace')} {asset.decode(errors='replace')}"
            problems.append(Problem("ledger_balance", where, "account or asset is not UTF-8 text"))
            break
    for table, key, columns in _TEXT_COLUMNS:
        blobs = ", ".join(f"CAST({column} AS BLOB)" for column in columns)
        rows = connection.exec_driver_sql(f"SELECT {key}, {blobs} FROM {table} ORDER BY {key}")
        for seq, *values in rows:
            bad = next((c for c, v in zip(columns, values, strict=True) if not _utf8(v)), None)
            if bad is not None:
                what = f"{bad} is not UTF-8 text"
                if table == "ledger_posting":  # a posting is named by its entry, as elsewhere
                    problems.append(Problem(_ENTRIES, f"seq {seq}", f"a posting's {what}", seq))
                else:
                    problems.append(Problem(table, f"seq {seq}", what, seq))
                break
    return problems


def _utf8(value: bytes | None) -> bool:
    try:
        (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _ranges(connection: Connection, table: str, workers: int) -> list[tuple[int, int]] | None:
    """``table``'s rows cut into up to ``workers`` ranges of sequence numbers, of about
    ``MIN_RANGE_ROWS`` rows or more each; None unless the rows are numbered exactly
    ``1..count``, as only then does every range hold the rows its bounds say (the whole
    ledger is then checked in one pass, which names the gap). The cuts fall on multiples of
    :func:`_block`, so that each range's entries make whole subtrees of the Merkle tree."""
    count, low, high = connection.execute(
        text(f"SELECT COUNT(*), MIN(seq), MAX(seq) FROM {table}")
    ).one()
    if not count:
        return []
    if (low, high) != (1, count):
        return None
    parts = max(1, min(workers, count // MIN_RANGE_ROWS))
    block = _block(count, parts)
    cuts = sorted({0, count} | {count * i // parts // block * block for i in range(1, parts)})
    return [(start + 1, end) for start, end in pairwise(cuts)]


def _block(count: int, parts: int) -> int:
    """Subtree size for ranges of ``count // parts`` rows: the largest power of two that fits
    one, at most ``MERKLE_BLOCK`` (a range returns one root per block, not its leaves)."""
    return min(MERKLE_BLOCK, 1 << ((count // parts).bit_length() - 1))


@dataclass(slots=True)
class _JournalScan:
    """What a pass over (a range of) the journal found: rows read, and its first problem."""

    count: int = 0
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        connection: Connection,
        low: int | None = None,
        high: int | None = None,
        previous: bytes = GENESIS_HASH,
    ) -> _JournalScan:
        scan = cls()
        bounds = seq_bounds("seq", low, high)
        rows: Iterator[tuple[int, int, str, bytes]] = iter_rows(  # type: ignore[assignment]
            connection,
            f"SELECT seq, ts_ns, command, chain_hash FROM ledger_journal{bounds} ORDER BY seq",
            binary=True,
        )
        for expected_seq, (seq, ts_ns, command, stored) in enumerate(rows, low or 1):
            scan.count += 1
            stored = bytes(stored)
            if seq != expected_seq:
                what = f"expected seq {expected_seq}"
            elif chain_hash(previous, command_document(seq, ts_ns, command)) != stored:
                what = "hash mismatch: the row changed"
            else:
                previous = stored
                continue
            scan.problems.append(Problem("ledger_journal", f"seq {seq}", what, seq))
            break
        return scan


def _start_method() -> str:
    """Fork where it is safe (this process runs one thread): it starts in milliseconds, where a
    fresh interpreter takes a large part of a second to import the ledger."""
    forkable = "fork" in multiprocessing.get_all_start_methods()
    return "fork" if forkable and threading.active_count() == 1 else "spawn"


def _scan_in_processes(
    connection: Connection,
    url: str,
    journal_ranges: list[tuple[int, int]],
    entry_ranges: list[tuple[int, int]],
    workers: int,
) -> tuple[_JournalScan, EntryScan, list[bytes]]:
    """The journal's and the entries' ranges checked in ``workers`` processes, this one (on
    ``connection``) among them: the journal's findings, the entries' (without leaves), and
    the Merkle subtree roots."""
    # The largest power of two (up to MERKLE_BLOCK) that every range's first leaf index is a
    # multiple of: each range's subtrees of that size are then nodes of the whole tree.
    block = MERKLE_BLOCK
    while any((low - 1) % block for low, _ in entry_ranges):
        block //= 2
    tasks = [(_JOURNAL, low, high, block) for low, high in journal_ranges] + [
        (_ENTRIES, low, high, block) for low, high in entry_ranges
    ]
    # Every workers-th range is this process's; the others go to workers - 1 more.
    theirs = [task for i, task in enumerate(tasks) if i % workers]
    context = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(min(workers - 1, len(theirs)), mp_context=context) as pool:
        pending = iter([pool.submit(_scan_one_range, url, *task) for task in theirs])
        mine = iter([_check_range(connection, *task) for task in tasks[::workers]])
        done = [
            next(mine) if i % workers == 0 else next(pending).result() for i in range(len(tasks))
        ]
    journals = [found for found in done[: len(journal_ranges)] if isinstance(found, _JournalScan)]
    journal = _JournalScan(sum(found.count for found in journals))
    # The first range's problem is the first one: a range reports the first of its own.
    journal.problems = next((found.problems for found in journals if found.problems), [])
    ranges = [found for found in done[len(journal_ranges) :] if isinstance(found, tuple)]
    roots = [root for _, range_roots in ranges for root in range_roots]
    return journal, merge_scans(scan for scan, _ in ranges), roots


def _scan_one_range(
    url: str, table: str, low: int, high: int, block: int
) -> _JournalScan | tuple[EntryScan, list[bytes]]:
    """A worker's range, read in a snapshot of its own through a connection of its own."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with gc_paused(), Ledger(engine).snapshot() as connection:
            return _check_range(connection, table, low, high, block)
    finally:
        engine.dispose()


def _check_range(
    connection: Connection, table: str, low: int, high: int, block: int
) -> _JournalScan | tuple[EntryScan, list[bytes]]:
    """Rows ``low`` to ``high`` of ``table``. An entry range hands back, instead of its
    leaves, the roots of its subtrees of ``block`` leaves: fewer bytes to send between
    processes, and the hashing done in the range's process."""
    previous = GENESIS_HASH
    if low > 1:
        previous = bytes(
            connection.execute(
                text(f"SELECT chain_hash FROM {table} WHERE seq = :seq"), {"seq": low - 1}
            ).scalar_one()
        )
    if table == _JOURNAL:
        return _JournalScan.of(connection, low, high, previous)
    scan = scan_range(connection, low, high, previous)
    roots = subtree_roots(scan.leaves, block)
    scan.leaves = []
    return scan, roots


def _verify_accounts(
    report: VerifyReport, connection: Connection, computed: dict[tuple[str, str], int]
) -> None:
    report.accounts = len(computed)
    for account, asset in sorted(computed):
        try:
            valid = accounts.asset_of(account) == asset
        except accounts.AccountError:
            valid = False
        if not valid:
            seq = connection.execute(
                text(
                    "SELECT MIN(entry_seq) FROM ledger_posting "
                    "WHERE account = :account AND asset = :asset"
                ),
                {"account": account, "asset": asset},
            ).scalar()
            report.problems.append(
                Problem("ledger_entry", f"seq {seq}", f"{account} cannot hold {asset}", seq)
            )
            break
    projected = {
        (account, asset): units
        for account, asset, units in connection.execute(
            text("SELECT account, asset, balance_units FROM ledger_balance")
        )
    }
    for key in sorted(computed.keys() | projected.keys()):
        expected, actual = computed.get(key, 0), projected.get(key, 0)
        if expected != actual:
            report.problems.append(
                Problem(
                    "ledger_balance",
                    f"{key[0]} {key[1]}",
                    f"projection says {actual}, postings sum to {expected}",
                )
            )
            break
    for (account, asset), units in sorted(computed.items()):
        if units < 0 and accounts.is_non_negative(account):
            report.problems.append(
                Problem("ledger_balance", f"{account} {asset}", f"negative balance {units}")
            )
            break
