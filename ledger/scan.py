"""Reading the settlement ledger back: one streaming pass over its entries and postings.

:func:`scan_entries` recomputes each entry's canonical bytes from the rows, checks the hash
chain against the stored hashes, and does every per-entry and per-posting check on the way.
Verification and the Merkle tree (for digests and proofs) are both built on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import sha256
from itertools import groupby
from operator import itemgetter

from sqlalchemy.engine import Connection

from ledger.chain import GENESIS_HASH, entry_document
from ledger.rows import iter_rows

__all__ = ["EntryScan", "Problem", "scan_entries", "scan_ledger"]

_LEAF_PREFIX = b"\x00"
_ENTRY_SEQ_OF_POSTING = itemgetter(3)


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
    """What one pass over the entries and their postings found."""

    leaves: list[bytes] = field(default_factory=list)
    postings: int = 0
    sums: dict[tuple[str, str], int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def scan_ledger(connection: Connection) -> EntryScan:
    """Scan every entry of the database behind ``connection``, which must be a snapshot."""
    return scan_entries(
        iter_rows(
            connection,
            "SELECT seq, ts_ns, kind, key, body, chain_hash FROM ledger_entry ORDER BY seq",
        ),
        iter_rows(
            connection,
            "SELECT account, asset, amount_units, entry_seq FROM ledger_posting "
            "ORDER BY entry_seq, idx",
        ),
    )


def scan_entries(
    entries: Iterable[tuple[int, int, str, str, str, bytes]],
    postings: Iterable[tuple[str, str, int, int]],
) -> EntryScan:
    """One pass over entry rows and posting rows, both in sequence order.

    Recomputes each entry's canonical bytes (hash chain and Merkle leaf), checks its
    postings balance per asset and are non-zero, notices postings whose entry is missing,
    and sums every (account, asset). This loop is verification's hot path.
    """
    scan = EntryScan()
    leaves, sums, problems = scan.leaves, scan.sums, scan.problems
    append_leaf = leaves.append
    previous = GENESIS_HASH
    chain_bad = unbalanced = zero = False
    posting_count = 0
    # Postings arrive as (account, asset, amount, entry_seq), grouped by entry in C.
    groups = groupby(postings, _ENTRY_SEQ_OF_POSTING)
    group_seq, group = next(groups, (None, None))
    orphan_seq = None
    for expected_seq, (seq, ts_ns, kind, key, body, stored) in enumerate(entries, start=1):
        while group_seq is not None and group_seq < seq:
            if orphan_seq is None:
                orphan_seq = group_seq
            group_seq, group = next(groups, (None, None))
        if group_seq == seq:
            entry_postings = [row[:3] for row in group]
            group_seq, group = next(groups, (None, None))
            posting_count += len(entry_postings)
            totals: dict[str, int] = {}
            for account, asset, amount in entry_postings:
                totals[asset] = totals.get(asset, 0) + amount
                pair = (account, asset)
                sums[pair] = sums.get(pair, 0) + amount
                if amount == 0 and not zero:
                    zero = True
                    problems.append(Problem("ledger_entry", f"seq {seq}", "zero posting", seq))
            if not unbalanced and any(totals.values()):
                unbalanced = True
                asset, total = next((a, t) for a, t in totals.items() if t)
                problems.append(
                    Problem(
                        "ledger_entry", f"seq {seq}", f"postings in {asset} sum to {total}", seq
                    )
                )
        else:
            entry_postings = []
        document = entry_document(seq, ts_ns, kind, key, body, entry_postings)
        append_leaf(sha256(_LEAF_PREFIX + document).digest())
        stored = bytes(stored)
        if not chain_bad:
            if seq != expected_seq:
                chain_bad = True
                problems.append(
                    Problem("ledger_entry", f"seq {seq}", f"expected seq {expected_seq}", seq)
                )
            elif sha256(previous + document).digest() != stored:
                chain_bad = True
                problems.append(
                    Problem(
                        "ledger_entry",
                        f"seq {seq}",
                        "hash mismatch: the row or its postings changed",
                        seq,
                    )
                )
        previous = stored
    if orphan_seq is None:
        orphan_seq = group_seq
    if orphan_seq is not None:
        problems.append(
            Problem(
                "ledger_posting",
                f"entry_seq {orphan_seq}",
                "posting of a missing entry",
                orphan_seq,
            )
        )
    scan.postings = posting_count
    return scan
