"""Recovery: rebuild the exchange from its order-flow journal, and prove the rebuild right.

The journal is verified first (hash chain, Merkle root, balances). The newest snapshot that
matches the journal (``ledger.snapshots``) is loaded if there is one, and every later command
is replayed through :meth:`Exchange.execute` at its journalled sequence number and time;
without a usable snapshot the whole journal is replayed. Because
the exchange is deterministic, the replay must assign the same ids and produce the same
settlement: it must create exactly as many ledger entries as the database holds, and its
balances must equal the database's projection, account by account. Any difference stops the
start with :class:`RecoveryError` naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from exchange.commands import command_from_record, command_to_record
from exchange.service import Exchange, Outcome
from exchange.snapshot import load_state
from ledger.snapshots import latest_snapshot
from ledger.store import JournalRecord, Ledger
from ledger.verify import verify

__all__ = ["RecoveryError", "recover", "replay_record"]

JOURNAL_PAGE = 10_000

log = logging.getLogger(__name__)


class RecoveryError(Exception):
    """The journal does not rebuild into the state the database records."""


def replay_record(exchange: Exchange, record: JournalRecord) -> Outcome:
    """Apply one journal record; return what it did (its ledger entries among it)."""
    try:
        command = command_from_record(record.command)
    except (TypeError, ValueError) as error:
        raise RecoveryError(f"journal record {record.seq}: {error}") from None
    outcome = exchange.execute(command, record.seq, record.ts_ns)
    if outcome.command is None or command_to_record(outcome.command) != record.command:
        raise RecoveryError(f"journal record {record.seq} replays differently: {record.command}")
    return outcome


def recover(
    ledger: Ledger,
    *,
    verify_first: bool = True,
    use_snapshot: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Exchange:
    """The exchange state that ``ledger``'s journal describes; see the module docstring."""
    if verify_first:
        report = verify(ledger)
        if not report.ok:
            raise RecoveryError(f"the ledger does not verify: {report.first_problem}")
    exchange = _from_snapshot(ledger) if use_snapshot else None
    if exchange is None:
        exchange = Exchange()
    settled = exchange.entries_settled
    start = exchange.head_seq + 1
    while records := ledger.journal(start, JOURNAL_PAGE):
        for record in records:
            settled += len(replay_record(exchange, record).entries)
        start = records[-1].seq + 1
        if progress is not None:
            progress(records[-1].seq)
    stored = ledger.size()
    if settled != stored:
        raise RecoveryError(f"the journal settles {settled} entries; the ledger holds {stored}")
    rebuilt = {account: units for account, units in exchange.risk.balances.items() if units}
    recorded = {account: units for (account, _asset), units in ledger.balances().items() if units}
    if rebuilt != recorded:
        differing = sorted(set(rebuilt.items()) ^ set(recorded.items()))[:3]
        raise RecoveryError(f"rebuilt balances differ from the ledger's: {differing}")
    exchange.check_invariants()
    return exchange


def _from_snapshot(ledger: Ledger) -> Exchange | None:
    snapshot = latest_snapshot(ledger)
    if snapshot is None:
        return None
    try:
        exchange = load_state(snapshot.state)
    except ValueError as error:
        log.warning("snapshot at journal %d not used: %s", snapshot.journal_seq, error)
        return None
    if (exchange.head_seq, exchange.entries_settled) != (
        snapshot.journal_seq,
        snapshot.entry_count,
    ):
        log.warning("snapshot at journal %d does not match its record", snapshot.journal_seq)
        return None
    return exchange
