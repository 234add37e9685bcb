"""Snapshots: recovery from the newest snapshot plus the journal's tail equals a full replay,
and a snapshot that is damaged, foreign or stale is ignored."""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import update

from exchange import recovery
from exchange.recovery import recover
from exchange.sequencer import Sequencer
from exchange.service import Exchange, Outcome
from exchange.snapshot import FORMAT, dump_state, load_state
from ledger.database import dispose_engines
from ledger.models import SnapshotRow
from ledger.snapshots import KEEP_SNAPSHOTS, latest_snapshot, save_snapshot
from ledger.store import Ledger
from tests.exchange.helpers import ManualClock, build_ready_market, buy, sell

SNAPSHOT_EVERY = 10


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """A ledger whose journal holds a traded market, with snapshots taken along the way."""
    ledger = Ledger.open(database_url)
    sequencer = Sequencer(ledger, clock=ManualClock(), snapshot_every=SNAPSHOT_EVERY).start()
    try:
        build_ready_market(sequencer.execute)
        for i in range(20):
            sequencer.execute(sell("prov", f"s{i}", 1_000 + 100 * (i % 3), 2))
            sequencer.execute(buy("ann" if i % 2 else "bob", f"b{i}", 1_100, 1))
    finally:
        sequencer.stop()
    yield ledger
    dispose_engines()


def replayed_commands(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seqs: list[int] = []
    replay = recovery.replay_record

    def counting(exchange: Exchange, record: object) -> Outcome:
        seqs.append(record.seq)  # type: ignore[attr-defined]
        return replay(exchange, record)  # type: ignore[arg-type]

    monkeypatch.setattr(recovery, "replay_record", counting)
    return seqs


def same_state(a: Exchange, b: Exchange) -> bool:
    participants = sorted(a.participants.by_id)
    return (
        a.engine.state_hash() == b.engine.state_hash()
        and a.head_seq == b.head_seq
        and [a.cash_of(p) for p in participants] == [b.cash_of(p) for p in participants]
        and [a.holdings_of(p) for p in participants] == [b.holdings_of(p) for p in participants]
        and a.orders == b.orders
        and a.client_orders.keys() == b.client_orders.keys()
    )


def test_recovery_replays_only_the_tail_after_the_newest_snapshot(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = latest_snapshot(ledger)
    assert snapshot is not None
    head = ledger.journal_head_seq()
    assert head - SNAPSHOT_EVERY < snapshot.journal_seq <= head
    full = recover(ledger, use_snapshot=False)
    seqs = replayed_commands(monkeypatch)
    rebuilt = recover(ledger)
    assert seqs == list(range(snapshot.journal_seq + 1, head + 1))
    assert same_state(rebuilt, full)
    rebuilt.check_invariants()


def test_only_the_newest_snapshots_are_kept(ledger: Ledger) -> None:
    with ledger.engine.connect() as connection:
        rows = connection.execute(SnapshotRow.__table__.select()).all()
    assert len(rows) == KEEP_SNAPSHOTS


def test_damaged_snapshot_is_ignored(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    newest = latest_snapshot(ledger)
    assert newest is not None
    table = SnapshotRow.__table__
    with ledger.engine.begin() as connection:
        connection.execute(
            update(table)
            .where(table.c.journal_seq == newest.journal_seq)
            .values(state=newest.state[:-1] + bytes([newest.state[-1] ^ 1]))
        )
    older = latest_snapshot(ledger)
    assert older is not None and older.journal_seq < newest.journal_seq
    assert same_state(recover(ledger), recover(ledger, use_snapshot=False))


def test_snapshot_that_does_not_load_falls_back_to_a_full_replay(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_snapshot(ledger, ledger.journal_head_seq(), 0, b"not a snapshot")
    seqs = replayed_commands(monkeypatch)
    rebuilt = recover(ledger)
    assert seqs[0] == 1
    assert same_state(rebuilt, recover(ledger, use_snapshot=False))


def test_snapshot_of_another_journal_is_ignored(ledger: Ledger) -> None:
    table = SnapshotRow.__table__
    with ledger.engine.begin() as connection:
        connection.execute(update(table).values(journal_chain_hash=b"\x00" * 32))
    assert latest_snapshot(ledger) is None


def test_recovery_from_a_snapshot_settles_like_the_journal(ledger: Ledger, tmp_path: Path) -> None:
    # The entry count the snapshot records must match what the ledger holds after the tail.
    rebuilt = recover(ledger)
    assert rebuilt.entries_settled == ledger.size()


class _RunsCode:
    """A pickle that, when loaded, writes a file: what a forged snapshot row once could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.write_text, (self.path, "ran"))


@pytest.mark.parametrize("prefix", [b"dataex-exchange-4:", b"dataex-exchange-5:"])
def test_a_forged_pickle_snapshot_runs_no_code_and_is_ignored(
    ledger: Ledger, tmp_path: Path, prefix: bytes
) -> None:
    # A row anyone with write access to the database could insert, hashes recomputed by
    # save_snapshot as an attacker would; the old format's prefix and the current one.
    marker = tmp_path / "ran"
    forged = prefix + zlib.compress(pickle.dumps(_RunsCode(marker)))
    save_snapshot(ledger, ledger.journal_head_seq(), ledger.size(), forged)
    rebuilt = recover(ledger)
    assert not marker.exists()
    assert same_state(rebuilt, recover(ledger, use_snapshot=False))


def test_a_forged_document_naming_other_classes_is_refused() -> None:
    for document in (
        ["O", 0, "posixpath.join", {}],
        ["V", 0, "builtins.eval", ["1"]],
        ["E", 0, "os.Enum", 1],
        ["F", ["O", 0, "exchange.service.Exchange", {}], "__init__"],
    ):
        state = FORMAT + zlib.compress(orjson.dumps(document))
        with pytest.raises(ValueError):
            load_state(state)


def test_a_document_that_breaks_an_invariant_is_refused(ledger: Ledger) -> None:
    snapshot = latest_snapshot(ledger)
    assert snapshot is not None
    exchange = load_state(snapshot.state)
    exchange.risk.cash_held["ann"] = 10**9  # a hold no open order explains
    with pytest.raises(ValueError, match="invariant"):
        load_state(dump_state(exchange))


def test_a_snapshot_round_trips_to_the_same_state(ledger: Ledger) -> None:
    exchange = recover(ledger)
    assert same_state(load_state(dump_state(exchange)), exchange)
