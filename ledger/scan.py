"""Reading the settlement ledger back: one streaming pass over its entries and postings.

:func:`scan_entries` recomputes each entry's canonical bytes from the rows, checks the hash
chain against the stored hashes, and does every per-entry and per-posting check on the way.
Verification and the Merkle tree (for digests and proofs) are both built on it. A scan can
cover a range of sequence numbers only, so that verification can split the ledger between
processes (:func:`scan_range`); :func:`merge_scans` joins the scans of consecutive ranges
into what one scan of them all would have found.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from itertools import groupby
from operator import itemgetter

import orjson
from sqlalchemy.engine import Connection

from ledger.chain import GENESIS_HASH, entry_document
from ledger.rows import iter_rows, seq_bounds

__all__ = [
    "EntryScan",
    "Problem",
    "entry_rows",
    "merge_scans",
    "posting_groups",
    "scan_entries",
    "scan_ledger",
    "scan_range",
]

_LEAF_PREFIX = b"\x00"
_END = (None, None)

_ENTRIES_SQL = (
    "SELECT seq, ts_ns, kind, key, body, chain_hash FROM ledger_entry{where} ORDER BY seq"
)
# SQLite hands each entry's postings over as one JSON array, built in C. Fetching posting
# rows as Python tuples cost 0.6 us a row; the arrays and their parsing take three quarters
# of that, and the grouping by entry in Python goes away (the scan: 227 -> 187 ms). The
# GROUP BY on the prefix of the primary key runs as a plain scan of the clustered table in
# (entry_seq, idx) order, so each array lists the entry's postings in idx order (were they
# ever fed in another order, the entry's bytes would change and verification would report
# it: a false alarm, never a pass). The scan parses the arrays back into values and encodes
# them itself: SQLite's JSON text is never hashed, only the values read from the rows.
_SQLITE_POSTINGS_SQL = (
    "SELECT entry_seq, json_group_array(json_array(account, asset, amount_units)) "
    "FROM ledger_posting{where} GROUP BY entry_seq ORDER BY entry_seq"
)
# PostgreSQL builds JSON per row slowly (json_agg measured at four times the row fetch), so
# its postings come as rows and are grouped here.
_POSTINGS_SQL = (
    "SELECT entry_seq, account, asset, amount_units FROM ledger_posting{where} "
    "ORDER BY entry_seq, idx"
)
# The order in which one scan reports its checks' first problems at the same entry; a
# posting of a missing entry is reported after them all, once the scan has ended.
_CHECKS = ("zero", "unbalanced", "chain")
_ORPHAN = "orphan"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that is wrong: where (table and sequence number or account) and what."""

    table: str
    where: str
    what: str
    seq: int | None = None

    def __str__(self) -> str:
        return f"{self.table} {self.where}: {self.what}"


@dataclass(slots=True)
class EntryScan:
    """What one pass over the entries and their postings found: the entries counted and
    their Merkle leaves, the postings counted and summed by (account, asset), and each
    check's first problem."""

    entries: int = 0
    leaves: list[bytes] = field(default_factory=list)
    postings: int = 0
    sums: dict[tuple[str, str], int] = field(default_factory=dict)
    first: dict[str, Problem] = field(default_factory=dict)  # check -> its first problem

    @property
    def problems(self) -> list[Problem]:
        """Each check's first problem, in the order one pass meets them."""
        found = sorted(
            (problem.seq or 0, _CHECKS.index(check), problem)
            for check, problem in self.first.items()
            if check in _CHECKS
        )
        orphan = self.first.get(_ORPHAN)
        return [problem for _, _, problem in found] + ([orphan] if orphan else [])


def scan_ledger(connection: Connection) -> EntryScan:
    """Scan every entry of the database behind ``connection``, which must be a snapshot."""
    return scan_entries(entry_rows(connection), posting_groups(connection))


def scan_range(connection: Connection, low: int, high: int, previous: bytes) -> EntryScan:
    """Scan entries ``low`` to ``high`` (both included; ``previous`` is the stored hash of
    entry ``low - 1``). The range starting at 1 also reads postings numbered below 1, which
    belong to no entry; postings above the last range are for the caller to look for."""
    return scan_entries(
        entry_rows(connection, low, high),
        posting_groups(connection, None if low == 1 else low, high),
        first_seq=low,
        previous=previous,
    )


def merge_scans(scans: Iterable[EntryScan]) -> EntryScan:
    """One scan of consecutive ranges, in order, from the scans of each."""
    merged = EntryScan()
    for scan in scans:
        merged.entries += scan.entries
        merged.leaves += scan.leaves
        merged.postings += scan.postings
        sums = merged.sums
        for pair, amount in scan.sums.items():
            sums[pair] = sums.get(pair, 0) + amount
        for check, problem in scan.first.items():
            merged.first.setdefault(check, problem)  # the earlier range's comes first
    return merged


def entry_rows(
    connection: Connection, low: int | None = None, high: int | None = None
) -> Iterator[tuple[int, int, str, str, str, bytes]]:
    """Every entry row (from ``low`` to ``high`` if given), ``(seq, ts_ns, kind, key, body,
    chain_hash)``, in sequence order."""
    sql = _ENTRIES_SQL.format(where=seq_bounds("seq", low, high))
    return iter_rows(connection, sql, binary=True)  # type: ignore[return-value]


def posting_groups(
    connection: Connection, low: int | None = None, high: int | None = None
) -> Iterator[tuple[int, Sequence[Sequence[str | int]]]]:
    """``(entry_seq, [(account, asset, amount_units), ...])`` for every entry with postings
    (from ``low`` to ``high`` if given), in ``entry_seq`` order, each entry's postings in
    ``idx`` order: the fastest way each database has of handing them over."""
    where = seq_bounds("entry_seq", low, high)
    if connection.dialect.name == "sqlite":
        return _parsed_groups(iter_rows(connection, _SQLITE_POSTINGS_SQL.format(where=where)))
    return _grouped_rows(iter_rows(connection, _POSTINGS_SQL.format(where=where)))


def _parsed_groups(
    rows: Iterable[tuple[int, str]],
) -> Iterator[tuple[int, list[list[str | int]]]]:
    loads = orjson.loads
    for entry_seq, postings_json in rows:
        yield entry_seq, loads(postings_json)


def _grouped_rows(
    rows: Iterable[tuple[int, str, str, int]],
) -> Iterator[tuple[int, list[tuple[str, str, int]]]]:
    for entry_seq, group in groupby(rows, itemgetter(0)):
        yield entry_seq, [row[1:] for row in group]


def scan_entries(
    entries: Iterable[tuple[int, int, str, str, str, bytes]],
    postings_by_entry: Iterable[tuple[int, Sequence[Sequence[str | int]]]],
    *,
    first_seq: int = 1,
    previous: bytes = GENESIS_HASH,
) -> EntryScan:
    """One pass over entry rows and their postings, both in sequence order.

    ``entries`` yields ``(seq, ts_ns, kind, key, body, chain_hash)``, numbered from
    ``first_seq`` on, the first chained to ``previous``; ``postings_by_entry`` yields
    ``(entry_seq, [(account, asset, amount_units), ...])`` for every entry that has
    postings, in ``entry_seq`` order, each entry's postings in ``idx`` order. Recomputes
    each entry's canonical bytes (hash chain and Merkle leaf), checks its postings balance
    per asset and are non-zero, notices postings whose entry is missing, and sums every
    (account, asset). This loop is verification's hot path: its names are bound to locals.
    """
    scan = EntryScan()
    leaves, sums, first = scan.leaves, scan.sums, scan.first
    append_leaf, document_of, hash_of, sums_get = leaves.append, entry_document, sha256, sums.get
    chain_bad = unbalanced = zero = False
    posting_count = 0
    groups = iter(postings_by_entry)
    group_seq, group = next(groups, _END)
    orphan_seq = None
    for expected_seq, (seq, ts_ns, kind, key, body, stored) in enumerate(entries, first_seq):
        while group_seq is not None and group_seq < seq:
            if orphan_seq is None:
                orphan_seq = group_seq
            group_seq, group = next(groups, _END)
        if group_seq == seq:
            entry_postings = group
            group_seq, group = next(groups, _END)
            posting_count += len(entry_postings)
            totals: dict[str, int] = {}
            for account, asset, amount in entry_postings:
                totals[asset] = totals.get(asset, 0) + amount
                pair = (account, asset)
                sums[pair] = sums_get(pair, 0) + amount
                if not amount and not zero:
                    zero = True
                    first["zero"] = Problem("ledger_entry", f"seq {seq}", "zero posting", seq)
            if not unbalanced and any(totals.values()):
                unbalanced = True
                asset, total = next((a, t) for a, t in totals.items() if t)
                first["unbalanced"] = Problem(
                    "ledger_entry", f"seq {seq}", f"postings in {asset} sum to {total}", seq
                )
        else:
            entry_postings = ()
        document = document_of(seq, ts_ns, kind, key, body, entry_postings)
        append_leaf(hash_of(_LEAF_PREFIX + document).digest())
        stored = bytes(stored)
        if not chain_bad:
            if seq != expected_seq:
                chain_bad = True
                first["chain"] = Problem(
                    "ledger_entry", f"seq {seq}", f"expected seq {expected_seq}", seq
                )
            elif hash_of(previous + document).digest() != stored:
                chain_bad = True
                first["chain"] = Problem(
                    "ledger_entry",
                    f"seq {seq}",
                    "hash mismatch: the row or its postings changed",
                    seq,
                )
        previous = stored
    if orphan_seq is None:
        orphan_seq = group_seq
    if orphan_seq is not None:
        first[_ORPHAN] = orphan_problem(orphan_seq)
    scan.entries, scan.postings = len(leaves), posting_count
    return scan


def orphan_problem(entry_seq: int) -> Problem:
    return Problem(
        "ledger_posting", f"entry_seq {entry_seq}", "posting of a missing entry", entry_seq
    )
