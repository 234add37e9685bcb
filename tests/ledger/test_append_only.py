"""The database itself refuses to change or remove ledger rows."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy
from sqlalchemy.exc import DBAPIError

from ledger import entries
from ledger.store import Ledger
from tests.ledger.helpers import funded_ledger, trade

APPEND_ONLY = {
    "ledger_journal": ("UPDATE ledger_journal SET ts_ns = ts_ns + 1", "seq = 1"),
    "ledger_entry": ("UPDATE ledger_entry SET body = '{}'", "seq = 1"),
    "ledger_posting": ("UPDATE ledger_posting SET amount_units = 1", "entry_seq = 1"),
}


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    funded_ledger(ledger, "ann")
    ledger.append(commands=[(1, {"verb": "new_order"})], entries=[trade(1)])
    return ledger


def run(ledger: Ledger, sql: str) -> None:
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql(sql)


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_update_is_refused(filled: Ledger, table: str) -> None:
    update, where = APPEND_ONLY[table]
    with pytest.raises(DBAPIError, match="append-only"):
        run(filled, f"{update} WHERE {where}")


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_delete_is_refused(filled: Ledger, table: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        run(filled, f"DELETE FROM {table}")


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_truncate_is_refused_on_postgresql(filled: Ledger, dialect: str, table: str) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; DELETE without WHERE is covered above")
    with pytest.raises(DBAPIError, match="append-only"):
        run(filled, f"TRUNCATE {table} CASCADE")


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_triggers_fire_under_the_replica_replication_role(
    filled: Ledger, dialect: str, table: str
) -> None:
    if dialect != "postgresql":
        pytest.skip("replication roles are PostgreSQL's")
    with pytest.raises(DBAPIError, match="append-only"), filled.engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql(f"DELETE FROM {table}")


def test_insert_or_replace_is_refused_on_sqlite(filled: Ledger, dialect: str) -> None:
    if dialect != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite's")
    # A bare connection, as a person with the sqlite3 shell would have: no pragmas set.
    database = filled.engine.url.database
    before = [filled.entry(seq) for seq in range(1, filled.size() + 1)]
    connection = sqlite3.connect(database)
    statements = [
        "INSERT OR REPLACE INTO ledger_entry SELECT * FROM ledger_entry WHERE seq = 1",
        "INSERT OR REPLACE INTO ledger_entry (seq, key, kind, ts_ns, body, chain_hash) "
        "SELECT 999, key, kind, ts_ns, body, chain_hash FROM ledger_entry WHERE seq = 1",
        "INSERT OR REPLACE INTO ledger_posting SELECT * FROM ledger_posting WHERE entry_seq = 1",
        "INSERT OR REPLACE INTO ledger_journal SELECT * FROM ledger_journal",
        "REPLACE INTO ledger_posting (entry_seq, idx, account, asset, amount_units) "
        "VALUES (1, 0, 'external:cash', 'cash', -1)",
    ]
    try:
        for statement in statements:
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                connection.execute(statement)
            connection.rollback()
    finally:
        connection.close()
    assert [filled.entry(seq) for seq in range(1, filled.size() + 1)] == before


def test_upsert_is_refused_on_postgresql(filled: Ledger, dialect: str) -> None:
    if dialect != "postgresql":
        pytest.skip("ON CONFLICT DO UPDATE is covered by INSERT OR REPLACE on SQLite")
    with pytest.raises(DBAPIError, match="append-only"):
        run(
            filled,
            "INSERT INTO ledger_entry SELECT * FROM ledger_entry WHERE seq = 1 "
            "ON CONFLICT (seq) DO UPDATE SET body = '{}'",
        )


def test_the_balance_projection_is_not_append_only(filled: Ledger) -> None:
    run(filled, "UPDATE ledger_balance SET balance_units = balance_units")
    assert sqlalchemy.inspect(filled.engine).has_table("ledger_balance")


def test_appending_still_works_after_refusals(filled: Ledger) -> None:
    with pytest.raises(DBAPIError):
        run(filled, "DELETE FROM ledger_posting")
    receipt = filled.append_entries([entries.deposit("bob", 5, key="late", ts_ns=9)])[0]
    assert receipt.seq == filled.size()
