"""The durable floor under the exchange: a hash-chained journal written with nothing else.

``bench_exchange`` times this beside every exchange run, so the exchange's rate can be read
as a share of what durability itself allows on the same machine in the same minutes. It is
the least a journal of the exchange's kind must do: Python's ``sqlite3`` (no SQLAlchemy), WAL,
``synchronous=FULL`` (as the ledger opens SQLite), one row a command (sequence number, time,
the command as canonical JSON, the SHA-256 chain hash), committed in batches of
``ROWS_PER_COMMIT`` rows, the group commit's batch size in the exchange runs.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     rows = raw_journal_rows(50)
    ...     seconds = time_raw_journal(pathlib.Path(directory) / "raw.db", rows)
    >>> seconds > 0, len(rows)
    (True, 50)
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Final

ROWS_PER_COMMIT: Final = 200
GENESIS_HASH: Final = bytes(32)


def raw_journal_rows(count: int) -> list[tuple[int, str]]:
    """``count`` (time in ns, canonical JSON) rows shaped like the exchange's order commands."""
    rows = []
    for i in range(count):
        command = {
            "verb": "submit_order", "participant": f"p{i % 200}", "symbol": "BENCH.NX12.COM",
            "side": "buy" if i % 2 else "sell", "order_type": "limit",
            "price_minor": 10_000 + i % 50, "quantity_units": 1 + i % 10, "tif": "GTC",
            "client_order_id": f"o{i}", "post_only": False, "stp": "cancel_newest",
        }  # fmt: skip
        rows.append((1_700_000_000_000_000_000 + i, _canonical(command)))
    return rows


def time_raw_journal(path: Path, rows: list[tuple[int, str]]) -> float:
    """Seconds to append ``rows`` to a fresh journal at ``path``, chained and durable."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(
            "CREATE TABLE journal (seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, "
            "command TEXT NOT NULL, hash BLOB NOT NULL)"
        )
        sha256 = hashlib.sha256
        previous = GENESIS_HASH
        started = time.perf_counter()
        for start in range(0, len(rows), ROWS_PER_COMMIT):
            batch = []
            for seq, (ts_ns, command) in enumerate(
                rows[start : start + ROWS_PER_COMMIT], start=start + 1
            ):
                # The same chain as the ledger's: the previous hash, then the row's document.
                document = f'{{"command":{command},"seq":{seq},"ts_ns":{ts_ns}}}'.encode()
                previous = sha256(previous + document).digest()
                batch.append((seq, ts_ns, command, previous))
            connection.execute("BEGIN")
            connection.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", batch)
            connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
