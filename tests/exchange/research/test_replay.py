"""Replay: a fresh exchange fed the journal reproduces the recorded settlement, and stops at
the first row that was changed, whether the journal is read in the replay's process or ahead
of it in another (``journal_of``: tiny batches, so that every test crosses several)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
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
from exchange.research.journal import RecordedCommand
from exchange.service import Exchange, Outcome
from ledger import (
    GENESIS_HASH,
    canonical_json,
    chain_hash,
    command_document,
    entries,
    entry_document,
)
from ledger.store import Ledger, StoredEntry
from tests.exchange.helpers import START_NS, assert_same_state
from tests.exchange.research.conftest import Recorded

# Commands a reading process sends at a time in these tests: the recorded market's journal
# then spans several batches.
TEST_BATCH_COMMANDS = 3

JournalOf = Callable[[Ledger], DatabaseJournal]


def read_ahead(ledger: Ledger) -> DatabaseJournal:
    return DatabaseJournal(ledger, min_read_ahead_commands=0, batch_commands=TEST_BATCH_COMMANDS)


@pytest.fixture(params=["in process", "read ahead"])
def journal_of(request: pytest.FixtureRequest) -> JournalOf:
    """How the database journal is read: here, or by another process, in batches."""
    return DatabaseJournal if request.param == "in process" else read_ahead


def open_ledger(recorded: Recorded) -> Ledger:
    return Ledger.open(recorded.url)


def test_replay_reproduces_the_recorded_settlement(
    recorded: Recorded, journal_of: JournalOf
) -> None:
    ledger = open_ledger(recorded)
    seen: list[int] = []
    report = replay(journal_of(ledger), progress=seen.append)
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
    recorded: Recorded, journal_of: JournalOf
) -> None:
    ledger = open_ledger(recorded)
    report = replay(journal_of(ledger), until=Until(seq=recorded.midpoint_seq))
    assert report.ok and report.stopped_at == Until(seq=recorded.midpoint_seq)
    assert report.head_seq == report.commands == recorded.midpoint_seq
    by_time = replay(journal_of(ledger), until=Until(ts_ns=recorded.midpoint_ns))
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


def test_a_changed_journal_row_stops_the_replay_at_that_row(
    sqlite_copy: Ledger, journal_of: JournalOf
) -> None:
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
    report = replay(journal_of(sqlite_copy))
    assert report.mismatch is not None
    assert report.mismatch.seq == seq
    assert "hash mismatch" in report.mismatch.what
    assert report.commands == seq - 1, "everything before the changed row was replayed"


def test_a_changed_entry_stops_the_replay_at_the_command_that_settled_it(
    sqlite_copy: Ledger, journal_of: JournalOf
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
    report = replay(journal_of(sqlite_copy))
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


def test_an_entry_no_command_settled_is_a_difference(
    sqlite_copy: Ledger, journal_of: JournalOf
) -> None:
    last = sqlite_copy.journal_head_seq()
    [receipt] = sqlite_copy.append_entries(
        [entries.deposit("ann", 5, key="rogue", ts_ns=START_NS + 10**15)]
    )
    report = replay(journal_of(sqlite_copy))
    assert report.mismatch is not None and report.mismatch.seq == last
    assert report.mismatch.what == (
        f"the record holds ledger entry {receipt.seq}, which the replay does not settle"
    )
    assert report.mismatch.recorded["key"] == "rogue"
    assert report.commands == last, "every command replayed"


def test_an_entry_missing_from_the_record_is_a_difference(
    sqlite_copy: Ledger, journal_of: JournalOf
) -> None:
    last_entry = sqlite_copy.size()
    allow_changes(sqlite_copy, "ledger_entry")
    allow_changes(sqlite_copy, "ledger_posting")
    with sqlite_copy.engine.begin() as connection:
        connection.exec_driver_sql(f"DELETE FROM ledger_posting WHERE entry_seq = {last_entry}")
        connection.exec_driver_sql(f"DELETE FROM ledger_entry WHERE seq = {last_entry}")
    report = replay(journal_of(sqlite_copy))
    last = sqlite_copy.journal_head_seq()
    assert report.mismatch is not None and report.mismatch.seq == last
    assert report.mismatch.what == "the replay settles 1 entries for this command, the record 0"
    assert report.mismatch.recorded == {"entry": "(none recorded)"}
    assert report.mismatch.replayed["key"].startswith("trade:")


# -- reading ahead -----------------------------------------------------------------------------


class Settled:
    """A listener noting which journal row settled each recorded entry."""

    def __init__(self) -> None:
        self.command_of_entry: dict[int, int] = {}

    def on_command(
        self,
        exchange: Exchange,
        record: RecordedCommand,
        outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:
        for stored in recorded:
            self.command_of_entry[stored.seq] = record.seq


def forge_entry(ledger: Ledger, seq: int, body_json: str) -> None:
    """Give entry ``seq`` another body and recompute the chain from it on, as a forger who
    knows the chain would: the hashes hold, the settlement differs."""
    allow_changes(ledger, "ledger_entry")
    with ledger.engine.begin() as connection:
        previous = connection.exec_driver_sql(
            f"SELECT chain_hash FROM ledger_entry WHERE seq = {seq - 1}"
        ).scalar_one()
        rows = connection.exec_driver_sql(
            f"SELECT seq, ts_ns, kind, key, body FROM ledger_entry WHERE seq >= {seq} ORDER BY seq"
        ).all()
        for entry_seq, ts_ns, kind, key, body in rows:
            body = body_json if entry_seq == seq else body
            postings = connection.exec_driver_sql(
                "SELECT account, asset, amount_units FROM ledger_posting "
                f"WHERE entry_seq = {entry_seq} ORDER BY idx"
            ).all()
            document = entry_document(
                entry_seq, ts_ns, kind, key, body, [tuple(p) for p in postings]
            )
            previous = chain_hash(previous, document)
            connection.exec_driver_sql(
                "UPDATE ledger_entry SET body = ?, chain_hash = ? WHERE seq = ?",
                (body, previous, entry_seq),
            )


def test_a_divergence_late_in_the_journal_is_named_exactly_when_read_ahead(
    sqlite_copy: Ledger,
) -> None:
    settled = Settled()
    assert replay(DatabaseJournal(sqlite_copy), listeners=[settled]).ok
    with sqlite_copy.engine.connect() as connection:
        entry_seq, body = connection.exec_driver_sql(
            "SELECT seq, body FROM ledger_entry WHERE kind = 'trade_settlement' "
            "ORDER BY seq DESC LIMIT 1"
        ).one()
    command_seq = settled.command_of_entry[entry_seq]
    assert command_seq > 2 * TEST_BATCH_COMMANDS, "past the first batches"
    forge_entry(sqlite_copy, entry_seq, body.replace('"fee_minor":', '"fee_minor":1'))

    here = replay(DatabaseJournal(sqlite_copy))
    ahead = replay(read_ahead(sqlite_copy))
    assert ahead.mismatch is not None
    assert ahead.mismatch.seq == command_seq
    assert ahead.mismatch.what.startswith(f"ledger entry {entry_seq}")
    assert "body" in ahead.mismatch.what
    assert ahead.mismatch.recorded["seq"] == str(entry_seq)
    assert ahead.commands == command_seq - 1
    assert ahead.mismatch == here.mismatch
    assert ahead.commands == here.commands and ahead.entries == here.entries


def test_a_late_changed_row_of_each_chain_is_named_as_in_one_process(
    sqlite_copy: Ledger,
) -> None:
    last = sqlite_copy.journal_head_seq()
    allow_changes(sqlite_copy, "ledger_journal")
    with sqlite_copy.engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE ledger_journal SET ts_ns = ts_ns + 1 WHERE seq = {last - 1}"
        )
    here = replay(DatabaseJournal(sqlite_copy))
    ahead = replay(read_ahead(sqlite_copy))
    assert ahead.mismatch is not None and ahead.mismatch.seq == last - 1
    assert ahead.mismatch.what == "journal row hash mismatch: the row changed"
    assert (ahead.mismatch, ahead.commands) == (here.mismatch, here.commands)


class Interrupt:
    """A listener that interrupts the replay at journal row ``at_seq``, as Ctrl-C would,
    noting the processes that were reading then."""

    def __init__(self, at_seq: int) -> None:
        self.at_seq = at_seq
        self.readers: list[multiprocessing.process.BaseProcess] = []

    def on_command(
        self,
        exchange: Exchange,
        record: RecordedCommand,
        outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:
        if record.seq == self.at_seq:
            self.readers = multiprocessing.active_children()
            raise KeyboardInterrupt


def test_an_interrupted_replay_stops_its_reading_process(recorded: Recorded) -> None:
    ledger = open_ledger(recorded)
    interrupt = Interrupt(at_seq=2 * TEST_BATCH_COMMANDS)
    with pytest.raises(KeyboardInterrupt):
        replay(read_ahead(ledger), listeners=[interrupt])
    assert interrupt.readers, "a reading process was running when the replay was interrupted"
    assert not multiprocessing.active_children()
    assert all(reader.exitcode is not None for reader in interrupt.readers)
    ledger.engine.dispose()


def test_a_difference_or_a_failed_read_stops_the_reading_process(sqlite_copy: Ledger) -> None:
    allow_changes(sqlite_copy, "ledger_journal")
    with sqlite_copy.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE ledger_journal SET ts_ns = ts_ns + 1 WHERE seq = 1")
    report = replay(read_ahead(sqlite_copy))
    assert report.mismatch is not None and report.mismatch.seq == 1
    assert not multiprocessing.active_children()

    with sqlite_copy.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE ledger_posting")
    with pytest.raises(Exception, match="ledger_posting") as here:
        replay(DatabaseJournal(sqlite_copy))
    with pytest.raises(type(here.value), match="ledger_posting"):
        replay(read_ahead(sqlite_copy))
    assert not multiprocessing.active_children()
