"""Replay: a fresh exchange fed the journal reproduces the recorded settlement, and stops at
the first row that was changed."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from exchange.research import (
    DatabaseJournal,
    InputError,
    JournalFile,
    Until,
    What,
    Window,
    export_table,
    parse_until,
    replay,
)
from exchange.research.formats import Format
from ledger import GENESIS_HASH, canonical_json, chain_hash, command_document, entries
from ledger.store import Ledger
from tests.exchange.helpers import START_NS, assert_same_state
from tests.exchange.research.conftest import Recorded


def open_ledger(recorded: Recorded) -> Ledger:
    return Ledger.open(recorded.url)


def test_replay_reproduces_the_recorded_settlement(recorded: Recorded) -> None:
    ledger = open_ledger(recorded)
    seen: list[int] = []
    report = replay(DatabaseJournal(ledger), progress=seen.append)
    assert report.ok, report.mismatch
    assert report.settlement_checked
    assert report.commands == recorded.commands == report.head_seq
    assert report.entries == recorded.entries
    assert report.trades == recorded.trades > 0
    assert report.state_hash() == recorded.state_hash
    assert_same_state(report.exchange, recorded.exchange)
    report.exchange.check_invariants()
    assert seen[-1] == recorded.commands
    ledger.engine.dispose()


def test_replay_until_a_sequence_number_leaves_the_exchange_as_it_was_then(
    recorded: Recorded,
) -> None:
    ledger = open_ledger(recorded)
    report = replay(DatabaseJournal(ledger), until=Until(seq=recorded.midpoint_seq))
    assert report.ok and report.stopped_at == Until(seq=recorded.midpoint_seq)
    assert report.head_seq == report.commands == recorded.midpoint_seq
    by_time = replay(DatabaseJournal(ledger), until=Until(ts_ns=recorded.midpoint_ns))
    assert by_time.ok and by_time.head_seq == recorded.midpoint_seq
    assert by_time.state_hash() == report.state_hash() != recorded.state_hash
    ledger.engine.dispose()


def test_until_reads_a_sequence_number_or_a_time() -> None:
    assert parse_until("42") == Until(seq=42)
    assert parse_until("1970-01-01T00:00:01Z") == Until(ts_ns=1_000_000_000)
    assert parse_until("1970-01-01 08:00:01+08:00") == Until(ts_ns=1_000_000_000)
    with pytest.raises(InputError, match="neither a sequence number nor"):
        parse_until("yesterday")


# -- tampering ---------------------------------------------------------------------------------


def allow_changes(ledger: Ledger, table: str) -> None:
    """Go behind the ledger's back: drop SQLite's append-only triggers on ``table``."""
    with ledger.engine.begin() as connection:
        for operation in ("update", "delete"):
            connection.exec_driver_sql(f"DROP TRIGGER {table}_no_{operation}")


def seq_of(ledger: Ledger, client_order_id: str) -> int:
    records = ledger.journal(1, 1_000)
    return next(r.seq for r in records if r.command.get("client_order_id") == client_order_id)


def test_a_changed_journal_row_stops_the_replay_at_that_row(sqlite_copy: Ledger) -> None:
    seq = seq_of(sqlite_copy, "a1")  # ann's buy of 4, which trades
    allow_changes(sqlite_copy, "ledger_journal")
    with sqlite_copy.engine.begin() as connection:
        row = connection.exec_driver_sql(
            f"SELECT command FROM ledger_journal WHERE seq = {seq}"
        ).scalar_one()
        changed = row.replace('"quantity_units":4', '"quantity_units":9')
        assert changed != row
        connection.exec_driver_sql(
            "UPDATE ledger_journal SET command = ? WHERE seq = ?", (changed, seq)
        )
    report = replay(DatabaseJournal(sqlite_copy))
    assert report.mismatch is not None
    assert report.mismatch.seq == seq
    assert "hash mismatch" in report.mismatch.what
    assert report.commands == seq - 1, "everything before the changed row was replayed"


def test_a_changed_entry_stops_the_replay_at_the_command_that_settled_it(
    sqlite_copy: Ledger,
) -> None:
    allow_changes(sqlite_copy, "ledger_entry")
    with sqlite_copy.engine.begin() as connection:
        seq, body = connection.exec_driver_sql(
            "SELECT seq, body FROM ledger_entry WHERE kind = 'trade_settlement' ORDER BY seq"
        ).first()
        connection.exec_driver_sql(
            "UPDATE ledger_entry SET body = ? WHERE seq = ?",
            (body.replace('"fee_minor":', '"fee_minor":1'), seq),
        )
    report = replay(DatabaseJournal(sqlite_copy))
    assert report.mismatch is not None
    changed = "hash mismatch: the entry or its postings changed"
    assert report.mismatch.what == f"ledger entry {seq}: {changed}"
    assert report.mismatch.seq == seq_of(sqlite_copy, "a1"), "the first trade"


def export_journal(ledger: Ledger, path: Path) -> list[dict]:
    export_table(ledger, What.JOURNAL, Format.JSONL, path, Window())
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_lines(path: Path, lines: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def test_the_exported_journal_replays_like_the_database(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    ledger = open_ledger(recorded_sqlite)
    export_journal(ledger, tmp_path / "journal.jsonl")
    report = replay(JournalFile(tmp_path / "journal.jsonl"))
    assert report.ok, report.mismatch
    assert report.settlement_checked
    assert (report.commands, report.entries, report.trades) == (
        recorded_sqlite.commands, recorded_sqlite.entries, recorded_sqlite.trades,
    )  # fmt: skip
    assert report.state_hash() == recorded_sqlite.state_hash
    ledger.engine.dispose()


def test_a_journal_file_without_entries_replays_but_checks_no_settlement(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    ledger = open_ledger(recorded_sqlite)
    lines = export_journal(ledger, tmp_path / "journal.jsonl")
    for line in lines:
        del line["entries"]
    write_lines(tmp_path / "bare.jsonl", lines)
    report = replay(JournalFile(tmp_path / "bare.jsonl"))
    assert report.ok and not report.settlement_checked
    assert report.state_hash() == recorded_sqlite.state_hash
    ledger.engine.dispose()


def is_order(line: dict, client_order_id: str) -> bool:
    return line["command"].get("client_order_id") == client_order_id


def rehash(lines: list[dict]) -> None:
    """Recompute every journal hash, as a forger who knows the chain would."""
    previous = GENESIS_HASH
    for line in lines:
        document = command_document(line["seq"], line["ts_ns"], canonical_json(line["command"]))
        previous = chain_hash(previous, document)
        line["chain_hash"] = previous.hex()


def test_a_tampered_journal_file_stops_at_the_tampered_row(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    ledger = open_ledger(recorded_sqlite)
    lines = export_journal(ledger, tmp_path / "journal.jsonl")
    ledger.engine.dispose()
    index = next(i for i, line in enumerate(lines) if is_order(line, "a1"))
    seq = lines[index]["seq"]  # ann's buy, which trades
    assert lines[index]["command"]["price_minor"] == 510_00
    lines[index]["command"]["price_minor"] = 520_00
    write_lines(tmp_path / "tampered.jsonl", lines)
    report = replay(JournalFile(tmp_path / "tampered.jsonl"))
    assert report.mismatch is not None and report.mismatch.seq == seq
    assert "hash mismatch" in report.mismatch.what

    # A forger who rewrites the chain passes the hash check, not the settlement check: one
    # more unit bought trades a quantity other than the recorded trade's. (The new limit
    # alone would replay: the trade's price is the resting sell's, and holds are not ledger
    # facts, so the journal's chain is what records a limit.)
    lines[index]["command"]["quantity_units"] += 1
    rehash(lines)
    write_lines(tmp_path / "forged.jsonl", lines)
    report = replay(JournalFile(tmp_path / "forged.jsonl"))
    assert report.mismatch is not None and report.mismatch.seq == seq
    assert report.mismatch.what.startswith("ledger entry")
    assert "body" in report.mismatch.what and "postings" in report.mismatch.what
    assert report.mismatch.recorded["key"] == report.mismatch.replayed["key"]
    assert report.mismatch.recorded["key"].startswith("trade:")
    assert report.commands == seq - 1


def test_a_command_the_replay_refuses_is_a_difference(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    ledger = open_ledger(recorded_sqlite)
    lines = export_journal(ledger, tmp_path / "journal.jsonl")
    ledger.engine.dispose()
    index = next(i for i, line in enumerate(lines) if line["command"]["verb"] == "cancel_order")
    lines[index]["command"]["order_id"] = 999
    rehash(lines)
    write_lines(tmp_path / "forged.jsonl", lines)
    report = replay(JournalFile(tmp_path / "forged.jsonl"))
    assert report.mismatch is not None and report.mismatch.seq == lines[index]["seq"]
    assert report.mismatch.what == "the replayed exchange refused it"
    assert "no order 999" in report.mismatch.replayed["outcome"]


def test_a_journal_file_must_start_at_the_first_command(tmp_path: Path) -> None:
    line = {"seq": 2, "ts_ns": 1, "command": {"verb": "housekeeping"}, "chain_hash": "00" * 32}
    write_lines(tmp_path / "late.jsonl", [line])
    with pytest.raises(InputError, match=r"late\.jsonl:1: the journal starts at seq 2"):
        replay(JournalFile(tmp_path / "late.jsonl"))


def test_an_entry_no_command_settled_is_a_difference(sqlite_copy: Ledger) -> None:
    last = sqlite_copy.journal_head_seq()
    [receipt] = sqlite_copy.append_entries(
        [entries.deposit("ann", 5, key="rogue", ts_ns=START_NS + 10**15)]
    )
    report = replay(DatabaseJournal(sqlite_copy))
    assert report.mismatch is not None and report.mismatch.seq == last
    assert report.mismatch.what == (
        f"the record holds ledger entry {receipt.seq}, which the replay does not settle"
    )
    assert report.mismatch.recorded["key"] == "rogue"
    assert report.commands == last, "every command replayed"


def test_an_entry_missing_from_the_record_is_a_difference(sqlite_copy: Ledger) -> None:
    last_entry = sqlite_copy.size()
    allow_changes(sqlite_copy, "ledger_entry")
    allow_changes(sqlite_copy, "ledger_posting")
    with sqlite_copy.engine.begin() as connection:
        connection.exec_driver_sql(f"DELETE FROM ledger_posting WHERE entry_seq = {last_entry}")
        connection.exec_driver_sql(f"DELETE FROM ledger_entry WHERE seq = {last_entry}")
    report = replay(DatabaseJournal(sqlite_copy))
    last = sqlite_copy.journal_head_seq()
    assert report.mismatch is not None and report.mismatch.seq == last
    assert report.mismatch.what == "the replay settles 1 entries for this command, the record 0"
    assert report.mismatch.recorded == {"entry": "(none recorded)"}
    assert report.mismatch.replayed["key"].startswith("trade:")
