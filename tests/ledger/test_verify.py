"""Verification recomputes everything and names exactly the row that was changed, in one
process or split into ranges between several."""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path

import pytest

from ledger import entries
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.rows import seq_bounds
from ledger.scan import _SQLITE_POSTINGS_SQL as SQLITE_POSTINGS_SQL
from ledger.store import Ledger
from ledger.verify import verify
from tests.ledger.helpers import funded_ledger, trade

MARKER = "deposit-reference-000"
# The module, which the package's ``verify`` function hides.
verification = importlib.import_module("ledger.verify")


@pytest.fixture(params=[1, 3], ids=["one-process", "three-processes"])
def workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Verification in one process, and in three over ranges as short as one row, so that
    even these small ledgers are cut, and a changed row falls at each kind of boundary."""
    monkeypatch.setattr(verification, "MIN_RANGE_ROWS", 1)
    return int(request.param)


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    """Eight entries; entry 5 carries a unique marker in its body."""
    funded_ledger(ledger, "ann", "bob")  # entries 1..3: issuance, deposits of ann and bob
    ledger.append_entries(  # entries 4 and 5
        [entries.withdrawal(who, 1, key=f"wd-{who}", ts_ns=3) for who in ("ann", "bob")]
    )
    ledger.append_entries(
        [
            entries.deposit("cy", 77, key="dep-cy", ts_ns=4, reference=MARKER),
            trade(1),
            trade(2, buyer="bob", seller="ann", primary=False),
        ]
    )
    ledger.append_commands([(1, {"verb": "new_order", "order_id": 1}), (2, {"verb": "cancel"})])
    return ledger


def allow_changes(ledger: Ledger, dialect: str, table: str) -> None:
    """Go behind the application's back: switch the append-only triggers off."""
    with ledger.engine.begin() as connection:
        if dialect == "sqlite":
            for operation in ("update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER {table}_no_{operation}")
        else:
            connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change")


def sqlite_file(ledger: Ledger, marker: str) -> tuple[int, bytearray]:
    """The SQLite database file's bytes, with every change in it (the engine is closed), and
    where ``marker`` first occurs in them."""
    ledger.engine.dispose()  # the last connection to close checkpoints the WAL into the file
    data = bytearray(Path(ledger.engine.url.database).read_bytes())
    return data.index(marker.encode()), data


def tamper(ledger: Ledger, dialect: str, table: str, sql: str) -> None:
    allow_changes(ledger, dialect, table)
    with ledger.engine.begin() as connection:
        assert connection.exec_driver_sql(sql).rowcount == 1


def test_an_untouched_ledger_verifies(filled: Ledger, workers: int) -> None:
    report = verify(filled, workers=workers)
    assert report.ok, report.problems
    assert (report.commands, report.entries, report.postings) == (2, 8, 22)
    assert report.digest == filled.digest()


def test_a_changed_posting_amount_is_named_by_its_entry(
    filled: Ledger, dialect: str, workers: int
) -> None:
    tamper(
        filled,
        dialect,
        "ledger_posting",
        "UPDATE ledger_posting SET amount_units = amount_units + 1 WHERE entry_seq = 7 AND idx = 0",
    )
    report = verify(filled, workers=workers)
    first = report.first_problem
    assert first is not None and first.seq == 7
    assert {str(p) for p in report.problems} >= {
        "ledger_entry seq 7: hash mismatch: the row or its postings changed",
        "ledger_entry seq 7: postings in cash sum to 1",
    }


def test_a_changed_body_is_named_by_its_entry(filled: Ledger, dialect: str, workers: int) -> None:
    tamper(
        filled,
        dialect,
        "ledger_entry",
        "UPDATE ledger_entry SET body = REPLACE(body, '77', '78') WHERE seq = 6",
    )
    report = verify(filled, workers=workers)
    assert [(p.table, p.seq) for p in report.problems] == [("ledger_entry", 6)]


def test_a_deleted_posting_is_named_by_its_entry(
    filled: Ledger, dialect: str, workers: int
) -> None:
    tamper(
        filled,
        dialect,
        "ledger_posting",
        "DELETE FROM ledger_posting WHERE entry_seq = 8 AND idx = 4",
    )
    assert verify(filled, workers=workers).first_problem.seq == 8


def test_of_two_changed_entries_the_first_is_named(
    filled: Ledger, dialect: str, workers: int
) -> None:
    """Each check names its first bad row only, wherever the ranges cut the ledger."""
    allow_changes(filled, dialect, "ledger_entry")
    allow_changes(filled, dialect, "ledger_journal")
    with filled.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE ledger_entry SET ts_ns = ts_ns + 1 WHERE seq IN (2, 7)")
        connection.exec_driver_sql("UPDATE ledger_journal SET ts_ns = ts_ns + 1")
    assert [str(p) for p in verify(filled, workers=workers).problems] == [
        "ledger_journal seq 1: hash mismatch: the row changed",
        "ledger_entry seq 2: hash mismatch: the row or its postings changed",
    ]


def test_a_changed_journal_command_is_named(filled: Ledger, dialect: str, workers: int) -> None:
    tamper(
        filled,
        dialect,
        "ledger_journal",
        "UPDATE ledger_journal SET command = REPLACE(command, 'cancel', 'cancal') WHERE seq = 2",
    )
    report = verify(filled, workers=workers)
    assert [str(p) for p in report.problems] == [
        "ledger_journal seq 2: hash mismatch: the row changed"
    ]


def test_a_projection_that_disagrees_with_the_postings_is_named(
    filled: Ledger, workers: int
) -> None:
    with filled.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_balance SET balance_units = balance_units + 1 "
            "WHERE account = 'exchange:fees'"
        )
    report = verify(filled, workers=workers)
    assert [str(p) for p in report.problems] == [
        "ledger_balance exchange:fees cash: projection says 11, postings sum to 10"
    ]


def test_one_byte_changed_in_the_sqlite_file_is_named(
    filled: Ledger, dialect: str, workers: int
) -> None:
    if dialect != "sqlite":
        pytest.skip("edits the database file")
    offset, data = sqlite_file(filled, MARKER)
    assert data.count(MARKER.encode()) == 1
    data[offset + len(MARKER) - 1] ^= 0x01  # "...000" becomes "...001"
    Path(filled.engine.url.database).write_bytes(bytes(data))
    report = verify(filled, workers=workers)
    assert [str(p) for p in report.problems] == [
        "ledger_entry seq 6: hash mismatch: the row or its postings changed"
    ]


@pytest.mark.parametrize(
    ("marker", "problem"),
    [
        (MARKER, "ledger_entry seq 6: body is not UTF-8 text"),
        ('"cancel"', "ledger_journal seq 2: command is not UTF-8 text"),
        (
            "participant:cy:cash",
            "ledger_entry seq 6: a posting's account is not UTF-8 text",
        ),
    ],
)
def test_text_made_not_utf8_in_the_sqlite_file_is_named(
    filled: Ledger, dialect: str, workers: int, marker: str, problem: str
) -> None:
    """A byte that makes text invalid UTF-8 cannot be read as text: the row is named all
    the same, and the verification has no digest to give."""
    if dialect != "sqlite":
        pytest.skip("edits the database file; PostgreSQL refuses text that is not UTF-8")
    offset, data = sqlite_file(filled, marker)
    data[offset + 1] = 0xFF  # never part of UTF-8
    Path(filled.engine.url.database).write_bytes(bytes(data))
    report = verify(filled, workers=workers)
    assert [str(p) for p in report.problems] == [problem]
    assert report.digest is None


def test_a_balance_made_not_utf8_is_named(filled: Ledger, dialect: str, workers: int) -> None:
    if dialect != "sqlite":
        pytest.skip("PostgreSQL refuses text that is not UTF-8")
    with filled.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_balance SET account = CAST(X'FF' AS TEXT) || account "
            "WHERE account = 'exchange:fees'"
        )
    report = verify(filled, workers=workers)
    assert [str(p) for p in report.problems] == [
        "ledger_balance \ufffdexchange:fees cash: account or asset is not UTF-8 text"
    ]


def test_inclusion_and_consistency_proofs_check_against_digests(filled: Ledger) -> None:
    old = filled.digest()
    filled.append_entries([entries.deposit("dee", 1, key="late", ts_ns=9)])
    new = filled.digest()
    for seq in range(1, new.tree_size + 1):
        proof, entry = filled.inclusion_proof(seq)
        verify_inclusion(leaf_hash(entry.document), proof, new)
    verify_consistency(filled.consistency_proof(old.tree_size), old, new)


def test_a_posting_without_its_entry_is_named(filled: Ledger, dialect: str, workers: int) -> None:
    insert = (
        "INSERT INTO ledger_posting (entry_seq, idx, account, asset, amount_units) "
        "VALUES (99, 0, 'exchange:fees', 'cash', 5)"
    )
    if dialect == "sqlite":
        # A bare connection does not enforce foreign keys: SQLite enables them per connection.
        bare = sqlite3.connect(filled.engine.url.database)
        bare.execute(insert)
        bare.commit()
        bare.close()
    else:
        # The replica role skips foreign-key checks (and triggers not enabled ALWAYS).
        with filled.engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            connection.exec_driver_sql(insert)
    report = verify(filled, workers=workers)
    assert "ledger_posting entry_seq 99: posting of a missing entry" in {
        str(p) for p in report.problems
    }


# Participant ids may hold any character but ':'. SQLite hands the scan each entry's postings
# as JSON, which escapes some of these; the canonical bytes must not depend on how.
ESCAPED_IDS = ('quo"te', "back\\slash", "zoë-日本", "tab\tnew\nline", "ctl\x01\x1f\x7f")


def test_identifiers_that_json_escapes_verify(ledger: Ledger, dialect: str, workers: int) -> None:
    # PostgreSQL text cannot hold NUL; SQLite's can.
    ids = ESCAPED_IDS + (("nul\x00",) if dialect == "sqlite" else ())
    funded_ledger(ledger, *ids)
    ledger.append_entries(
        [trade(n, buyer=buyer) for n, buyer in enumerate(ids, start=1)]
        + [entries.deposit(ids[0], 1, key="dep-again", ts_ns=30)]
    )
    report = verify(ledger, workers=workers)
    assert report.ok, report.problems
    assert report.digest == ledger.digest()
    for seq in range(1, report.entries + 1):
        proof, entry = ledger.inclusion_proof(seq)
        verify_inclusion(leaf_hash(entry.document), proof, report.digest)


def test_a_changed_posting_with_escaped_identifiers_is_named(
    ledger: Ledger, dialect: str, workers: int
) -> None:
    funded_ledger(ledger, *ESCAPED_IDS)
    ledger.append_entries([trade(1, buyer=ESCAPED_IDS[0])])
    seq = ledger.size()
    tamper(
        ledger,
        dialect,
        "ledger_posting",
        f"UPDATE ledger_posting SET account = account || 'x' WHERE entry_seq = {seq} AND idx = 0",
    )
    assert [str(p) for p in verify(ledger, workers=workers).problems][:1] == [
        f"ledger_entry seq {seq}: hash mismatch: the row or its postings changed"
    ]


@pytest.mark.parametrize("bounds", [(None, None), (None, 3), (2, 5)])
def test_sqlite_reads_postings_in_key_order_without_sorting(
    ledger: Ledger, dialect: str, bounds: tuple[int | None, int | None]
) -> None:
    """The scan's posting arrays come from one pass over the clustered table, in idx order,
    for the whole table and for a worker's range of it."""
    if dialect != "sqlite":
        pytest.skip("SQLite's query plan")
    funded_ledger(ledger, "ann")
    ledger.append_entries([trade(1)])
    sql = SQLITE_POSTINGS_SQL.format(where=seq_bounds("entry_seq", *bounds))
    with ledger.engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_missing_journal_row_is_named_wherever_it_is(
    filled: Ledger, dialect: str, workers: int
) -> None:
    """Rows 1 and 3 of three: a range of "rows 1 to 2" would miss the gap; the ledger with
    it is checked in one pass instead."""
    filled.append_commands([(3, {"verb": "cancel", "order_id": 1})])
    allow_changes(filled, dialect, "ledger_journal")
    with filled.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM ledger_journal WHERE seq = 2")
    assert [str(p) for p in verify(filled, workers=workers).problems] == [
        "ledger_journal seq 3: expected seq 2"
    ]


def test_a_missing_entry_is_named_in_one_range(ledger: Ledger, dialect: str, workers: int) -> None:
    """Sequence numbers with a gap cannot be cut into ranges by arithmetic: the entries are
    checked in one range, which names the row after the gap as one process does."""
    funded_ledger(ledger, "ann", "bob")
    ledger.append_entries([trade(1), trade(2)])
    allow_changes(ledger, dialect, "ledger_posting")
    allow_changes(ledger, dialect, "ledger_entry")
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM ledger_posting WHERE entry_seq = 4")
        connection.exec_driver_sql("DELETE FROM ledger_entry WHERE seq = 4")
    report = verify(ledger, workers=workers)
    assert str(report.first_problem) == "ledger_entry seq 5: expected seq 4"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_either_way_of_starting_workers_gives_the_same_report(
    filled: Ledger, dialect: str, monkeypatch: pytest.MonkeyPatch, start_method: str
) -> None:
    tamper(
        filled,
        dialect,
        "ledger_posting",
        "UPDATE ledger_posting SET amount_units = amount_units + 1 WHERE entry_seq = 7 AND idx = 0",
    )
    alone = verify(filled)
    monkeypatch.setattr(verification, "MIN_RANGE_ROWS", 1)
    monkeypatch.setattr(verification, "_start_method", lambda: start_method)
    split = verify(filled, workers=2)
    assert [str(p) for p in split.problems] == [str(p) for p in alone.problems]
    assert (split.commands, split.entries, split.postings, split.accounts, split.digest) == (
        alone.commands,
        alone.entries,
        alone.postings,
        alone.accounts,
        alone.digest,
    )
