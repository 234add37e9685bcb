"""Carry a journal into a new database: the ledger it settles, rebuilt by this version.

The order-flow journal is the record; the settlement ledger is what executing it settles.
When the ledger's format changes (as when holds for open orders left the ledger), an old
database's journal is read as it is, every command is executed again at its journalled
sequence number and time, and the journal with the entries it settles now is written to an
empty database. The new journal's hash chain must end in the old one's head hash: the same
commands at the same times, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

from exchange.recovery import RecoveryError, replay_record
from exchange.service import Exchange
from ledger import Entry
from ledger.store import Ledger

__all__ = ["REBUILD_PAGE_COMMANDS", "rebuild"]

# Commands read and committed at a time; the entries they settle stay far below the
# ledger's batch limit (a command settles a few trades, an expiry a few holdings).
REBUILD_PAGE_COMMANDS = 1_000


def rebuild(
    source: Ledger, target: Ledger, *, progress: Callable[[int], None] | None = None
) -> int:
    """Write ``source``'s journal and what it settles into the empty ``target``; return the
    number of commands carried. Raises :class:`RecoveryError` if a command does not execute
    as journalled or the journals' chains end differently."""
    if target.journal_head_seq() or target.size():
        raise RecoveryError("the target database is not empty: rebuild into a new one")
    exchange = Exchange()
    start, last = 1, None
    while records := source.journal(start, REBUILD_PAGE_COMMANDS):
        commands: list[tuple[int, dict]] = []
        settled: list[Entry] = []
        for record in records:
            settled.extend(replay_record(exchange, record).entries)
            commands.append((record.ts_ns, record.command))
        target.append(commands=commands, entries=settled, journal_head_seq=start - 1)
        last = records[-1]
        start = last.seq + 1
        if progress is not None:
            progress(last.seq)
    if last is not None:
        [carried] = target.journal(last.seq, 1)
        if carried.chain_hash != last.chain_hash:
            raise RecoveryError(f"journal record {last.seq} hashes differently after the rebuild")
    exchange.check_invariants()
    return 0 if last is None else last.seq
