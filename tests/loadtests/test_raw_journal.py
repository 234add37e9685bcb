"""The raw journal insert that ``bench_exchange`` reports as the durable floor does the work
it claims: every row written, in WAL mode, chained exactly as the ledger chains its journal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.chain import GENESIS_HASH, chain_hash, command_document
from loadtests.raw_journal import ROWS_PER_COMMIT, raw_journal_rows, time_raw_journal


def test_raw_journal_rows_are_chained_as_the_ledger_chains_its_journal(tmp_path: Path) -> None:
    rows = raw_journal_rows(2 * ROWS_PER_COMMIT + 17)  # two full commits and a partial one
    path = tmp_path / "raw.db"

    assert time_raw_journal(path, rows) > 0

    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        stored = connection.execute("SELECT seq, ts_ns, command, hash FROM journal ORDER BY seq")
        previous = GENESIS_HASH
        count = 0
        for (seq, ts_ns, command, stored_hash), (row_ts_ns, row_command) in zip(
            stored, rows, strict=True
        ):
            count += 1
            assert (seq, ts_ns, command) == (count, row_ts_ns, row_command)
            previous = chain_hash(previous, command_document(seq, ts_ns, command))
            assert stored_hash == previous
        assert count == len(rows)
    finally:
        connection.close()
