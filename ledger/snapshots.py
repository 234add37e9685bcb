"""Snapshots: state derived from the journal, stored so that recovery replays only the tail.

The ledger stores a snapshot as opaque bytes with what ties it to the journal: the sequence
number of the last command it reflects, that command's chain hash, and the number of
settlement entries at that point. :func:`latest_snapshot` returns the newest snapshot whose
bytes match their SHA-256 and whose chain hash matches the journal's row; the caller replays
the journal after ``journal_seq`` and checks the result against the ledger as usual.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from hashlib import sha256

from sqlalchemy import delete, insert, select

from ledger.models import JournalRow, SnapshotRow
from ledger.store import Ledger

__all__ = ["KEEP_SNAPSHOTS", "Snapshot", "latest_snapshot", "save_snapshot"]

KEEP_SNAPSHOTS = 2

_snapshot = SnapshotRow.__table__
_journal = JournalRow.__table__


@dataclass(frozen=True, slots=True)
class Snapshot:
    journal_seq: int
    entry_count: int
    state: bytes


def save_snapshot(ledger: Ledger, journal_seq: int, entry_count: int, state: bytes) -> None:
    """Store ``state`` as of journal command ``journal_seq``, when the settlement ledger held
    ``entry_count`` entries; keep the newest few."""
    with ledger.engine.begin() as connection:
        chain_hash = connection.execute(
            select(_journal.c.chain_hash).where(_journal.c.seq == journal_seq)
        ).scalar_one()
        connection.execute(
            insert(_snapshot).values(
                journal_seq=journal_seq,
                journal_chain_hash=bytes(chain_hash),
                entry_count=entry_count,
                created_ns=time.time_ns(),
                state_sha256=sha256(state).digest(),
                state=state,
            )
        )
        keep = (
            select(_snapshot.c.journal_seq)
            .order_by(_snapshot.c.journal_seq.desc())
            .limit(KEEP_SNAPSHOTS)
            .scalar_subquery()
        )
        connection.execute(delete(_snapshot).where(_snapshot.c.journal_seq.not_in(keep)))


def latest_snapshot(ledger: Ledger) -> Snapshot | None:
    """The newest intact snapshot that matches the journal, or None."""
    query = select(_snapshot).order_by(_snapshot.c.journal_seq.desc())
    with ledger.engine.connect() as connection:
        for row in connection.execute(query).all():
            state = bytes(row.state)
            if sha256(state).digest() != bytes(row.state_sha256):
                continue
            journal_hash = connection.execute(
                select(_journal.c.chain_hash).where(_journal.c.seq == row.journal_seq)
            ).scalar_one_or_none()
            if journal_hash is None or bytes(journal_hash) != bytes(row.journal_chain_hash):
                continue
            return Snapshot(row.journal_seq, row.entry_count, state)
    return None
