from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from ledger import BalanceError, EntryError, IdempotencyConflict, accounts, database, entries
from ledger.database import create_engine
from ledger.store import MAX_BATCH_ENTRIES, Ledger
from tests.ledger.helpers import EXPIRES_AT_NS, PROVIDER, SYMBOL, funded_ledger, trade

LICENCE = f"licence:{SYMBOL}"


def entry_count(ledger: Ledger) -> int:
    with ledger.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT COUNT(*) FROM ledger_entry").scalar_one()


def test_entries_get_dense_sequence_numbers_in_batch_order(ledger: Ledger) -> None:
    receipts = ledger.append_entries(
        [entries.deposit(name, 10, key=f"dep-{name}", ts_ns=1) for name in ("ann", "bob", "cy")]
    )
    more = ledger.append_entries([entries.deposit("ann", 1, key="dep-again", ts_ns=2)])
    assert [r.seq for r in receipts + more] == [1, 2, 3, 4]
    assert all(r.created for r in receipts + more)
    assert ledger.entry(2).key == "dep-bob"


def test_trade_settlement_updates_balance_projections(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann", cash_minor=1_000)
    ledger.append_entries([trade(1, price_minor_per_unit=250, quantity_units=2, fee_minor=5)])
    assert ledger.balance(accounts.cash("ann"), "cash") == 500
    assert ledger.balance(accounts.cash(PROVIDER), "cash") == 495
    assert ledger.balance(accounts.EXCHANGE_FEES, "cash") == 5
    assert ledger.balance(accounts.issuance(SYMBOL), LICENCE) == 998
    assert ledger.balance(accounts.licence_holding("ann", SYMBOL, EXPIRES_AT_NS), LICENCE) == 2
    assert ledger.balances() == ledger.balances_from_postings()


def test_balances_filter_by_participant(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann", "bob")
    assert {account for account, _ in ledger.balances("ann")} == {accounts.cash("ann")}


def test_same_key_same_content_returns_the_existing_entry(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann")
    first = ledger.append_entries([trade(7)])[0]
    before = entry_count(ledger)
    again = ledger.append_entries([trade(7), trade(7)])
    assert [(r.seq, r.created) for r in again] == [(first.seq, False), (first.seq, False)]
    assert again[0].chain_hash == first.chain_hash
    assert entry_count(ledger) == before


def test_same_key_twice_in_one_batch_is_written_once(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann")
    receipts = ledger.append_entries([trade(8), trade(8)])
    assert receipts[0].created and not receipts[1].created
    assert receipts[0].seq == receipts[1].seq


def test_same_key_different_content_is_refused_and_nothing_is_written(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann")
    ledger.append_entries([trade(7)])
    before, balances = entry_count(ledger), ledger.balances()
    with pytest.raises(IdempotencyConflict):
        ledger.append_entries([trade(9), trade(7, quantity_units=3)])
    assert entry_count(ledger) == before
    assert ledger.balances() == balances


def test_overdraft_fails_the_whole_batch(ledger: Ledger) -> None:
    ledger.append_entries([entries.deposit("ann", 100, key="dep", ts_ns=1)])
    with pytest.raises(BalanceError, match="participant:ann:cash"):
        ledger.append_entries(
            [
                entries.withdrawal("ann", 60, key="wd-1", ts_ns=2),
                entries.withdrawal("ann", 60, key="wd-2", ts_ns=3),
            ]
        )
    assert entry_count(ledger) == 1
    assert ledger.balance(accounts.cash("ann"), "cash") == 100


def test_trade_beyond_the_buyers_cash_is_refused(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann", cash_minor=499)
    with pytest.raises(BalanceError, match="participant:ann:cash"):
        ledger.append_entries([trade(1, price_minor_per_unit=250, quantity_units=2)])


def test_selling_licences_one_does_not_hold_is_refused(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann", "bob")
    with pytest.raises(BalanceError, match="licence"):
        ledger.append_entries([trade(1, buyer="bob", seller="ann", primary=False)])


def test_issuance_beyond_the_cap_is_refused(ledger: Ledger) -> None:
    def issue(units: int, key: str) -> entries.Entry:
        return entries.licence_issuance(
            symbol=SYMBOL, provider=PROVIDER, units=units, issuance_cap_units=10, key=key, ts_ns=1
        )

    ledger.append_entries([issue(6, "i1")])
    with pytest.raises(BalanceError, match="cap is 10"):
        ledger.append_entries([issue(5, "i2")])
    ledger.append_entries([issue(4, "i3")])
    assert ledger.balance(accounts.issuance(SYMBOL), LICENCE) == 10


def test_expiry_moves_held_licences_out_of_the_holding(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann")
    ledger.append_entries([trade(1, expires_at_ns=50)])
    holding = accounts.licence_holding("ann", SYMBOL, 50)
    expire = entries.licence_expiry(
        symbol=SYMBOL, holder="ann", expires_at_ns=50, units=2, key="exp", ts_ns=60
    )
    ledger.append_entries([expire])
    assert ledger.balance(holding, LICENCE) == 0
    assert ledger.balance(accounts.licence_expired(SYMBOL), LICENCE) == 2
    with pytest.raises(BalanceError):
        ledger.append_entries(
            [
                entries.licence_expiry(
                    symbol=SYMBOL, holder="ann", expires_at_ns=50, units=1, key="exp-2", ts_ns=61
                )
            ]
        )


def test_journal_keeps_commands_in_order_with_their_times(ledger: Ledger) -> None:
    seqs = ledger.append_commands([(5, {"verb": "new_order", "qty": 3}), (6, {"verb": "cancel"})])
    assert seqs == [1, 2]
    assert ledger.append_commands([(7, {"verb": "expire", "now_ns": 7})]) == [3]
    records = ledger.journal()
    assert [(r.seq, r.ts_ns, r.command) for r in records] == [
        (1, 5, {"qty": 3, "verb": "new_order"}),
        (2, 6, {"verb": "cancel"}),
        (3, 7, {"now_ns": 7, "verb": "expire"}),
    ]
    assert ledger.journal(start_seq=3, limit=5)[0].seq == 3


def test_commands_and_entries_commit_together_or_not_at_all(ledger: Ledger) -> None:
    with pytest.raises(BalanceError):
        ledger.append(
            commands=[(1, {"verb": "new_order"})],
            entries=[entries.withdrawal("ann", 5, key="wd", ts_ns=1)],
        )
    assert ledger.journal() == []
    result = ledger.append(
        commands=[(1, {"verb": "deposit"})], entries=[entries.deposit("ann", 5, key="d", ts_ns=1)]
    )
    assert result.command_seqs == [1] and result.receipts[0].seq == 1


_REFUSE_POSTINGS = {
    "sqlite": [
        "CREATE TRIGGER refuse_postings BEFORE INSERT ON ledger_posting "
        "BEGIN SELECT RAISE(ABORT, 'postings refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_postings() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'postings refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_postings BEFORE INSERT ON ledger_posting "
        "FOR EACH ROW EXECUTE FUNCTION refuse_postings()",
    ],
}


def test_a_database_error_in_the_append_is_sqlalchemys_and_writes_nothing(
    ledger: Ledger, dialect: str
) -> None:
    """The append's statements go to the driver itself; its errors still arrive as
    SQLAlchemy's (which the CLI reports as one line), and the transaction is rolled back."""
    ledger.append(commands=[(1, {"verb": "deposit"})],
                  entries=[entries.deposit("ann", 5, key="d-1", ts_ns=1)])  # fmt: skip
    with ledger.engine.begin() as connection:
        for statement in _REFUSE_POSTINGS[dialect]:
            connection.exec_driver_sql(statement)
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="postings refused"):
        ledger.append(commands=[(2, {"verb": "deposit"})],
                      entries=[entries.deposit("ann", 5, key="d-2", ts_ns=2)])  # fmt: skip
    assert [record.seq for record in ledger.journal()] == [1]
    assert entry_count(ledger) == 1
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER refuse_postings" + (
            " ON ledger_posting" if dialect == "postgresql" else ""))  # fmt: skip
    ledger.append(commands=[(2, {"verb": "deposit"})],
                  entries=[entries.deposit("ann", 5, key="d-2", ts_ns=2)])  # fmt: skip
    assert ledger.balance(accounts.cash("ann"), "cash") == 10


def test_floats_in_commands_are_refused(ledger: Ledger) -> None:
    with pytest.raises(EntryError, match="float"):
        ledger.append_commands([(1, {"price": 1.5})])


def test_oversized_batches_are_refused(ledger: Ledger) -> None:
    too_many = [
        entries.deposit("ann", 1, key=f"d{i}", ts_ns=1) for i in range(MAX_BATCH_ENTRIES + 1)
    ]
    with pytest.raises(EntryError, match="at most"):
        ledger.append_entries(too_many)


def test_rebuilt_projection_equals_the_incremental_one(ledger: Ledger) -> None:
    funded_ledger(ledger, "ann", "bob")
    ledger.append_entries(
        [trade(1), trade(2, buyer="bob"), trade(3, buyer="bob", seller="ann", primary=False)]
    )
    incremental = ledger.balances()
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM ledger_balance")
    assert ledger.balances() == {}
    ledger.rebuild_balances()
    assert ledger.balances() == incremental


def test_commits_are_durable_by_configuration(ledger: Ledger, dialect: str) -> None:
    with ledger.engine.connect() as connection:
        if dialect == "sqlite":
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        else:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_migrations_run_twice_leave_the_schema_as_is(ledger: Ledger) -> None:
    ledger.append_entries([entries.deposit("ann", 5, key="d", ts_ns=1)])
    Ledger.open(ledger.engine)
    assert entry_count(ledger) == 1
    tables = set(sqlalchemy.inspect(ledger.engine).get_table_names())
    assert {"ledger_journal", "ledger_entry", "ledger_posting", "ledger_balance"} <= tables


def test_a_refused_batch_leaves_no_trace_in_later_appends(ledger: Ledger) -> None:
    ledger.append_entries([entries.deposit("ann", 100, key="dep", ts_ns=1)])
    with pytest.raises(BalanceError):
        ledger.append_entries(
            [
                entries.withdrawal("ann", 60, key="wd-1", ts_ns=2),
                entries.withdrawal("ann", 60, key="wd-2", ts_ns=3),
            ]
        )
    ledger.append_entries([entries.withdrawal("ann", 100, key="wd-all", ts_ns=4)])
    assert ledger.balance(accounts.cash("ann"), "cash") == 0


def test_appends_by_another_writer_are_seen_before_the_next_append(
    ledger: Ledger, database_url: str
) -> None:
    other_engine = create_engine(database_url)
    try:
        other = Ledger(other_engine)
        ledger.append_entries([entries.deposit("ann", 100, key="dep", ts_ns=1)])
        other.append_entries([entries.withdrawal("ann", 100, key="wd", ts_ns=2)])
        with pytest.raises(BalanceError):
            ledger.append_entries([entries.withdrawal("ann", 50, key="wd-2", ts_ns=3)])
        ledger.append_entries([entries.deposit("ann", 7, key="dep-2", ts_ns=4)])
        assert ledger.balance(accounts.cash("ann"), "cash") == 7
        assert ledger.balances() == ledger.balances_from_postings()
    finally:
        other_engine.dispose()


def test_a_write_lock_not_taken_in_time_is_sqlalchemys_error_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``BEGIN IMMEDIATE`` goes to the driver itself; another process's write lock held past
    the busy timeout is still SQLAlchemy's ``OperationalError`` (which the CLI reports as one
    line), and the append writes nothing."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        ledger = Ledger.open(engine)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlalchemy.exc.OperationalError, match="locked"):
            ledger.append_entries([entries.deposit("ann", 5, key="d-1", ts_ns=1)])
        other.execute("ROLLBACK")
        other.close()
        assert entry_count(ledger) == 0
        ledger.append_entries([entries.deposit("ann", 5, key="d-1", ts_ns=1)])
        assert entry_count(ledger) == 1
    finally:
        engine.dispose()
