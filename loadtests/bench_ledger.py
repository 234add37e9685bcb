"""Ledger throughput: durable trade settlements per second, and verification per second.

Each run appends ``--batches`` batches of ``--batch-size`` trade settlements (one entry of
five postings each, one transaction per batch, durable on return) to a fresh database, then
verifies the whole ledger: in one process, then split between one process per CPU as
``dataex ledger verify`` does. The CPU time of the single-process verification is reported
per entry, the PostgreSQL server's processes included: on this machine's two CPUs, 200,000
entries/s cannot be reached by any split where it is above 10 µs. The baseline is the same
database's raw insert rate in the same run: plain rows of similar width into a table with no
index, trigger or hashing, committed per batch with the same durability. Figures are medians
over ``--runs`` runs.

    .venv/bin/python loadtests/bench_ledger.py                    # SQLite only
    .venv/bin/python loadtests/bench_ledger.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import sqlalchemy

from ledger import Entry, entries
from ledger.database import create_engine, scratch_schema
from ledger.store import Ledger
from ledger.verify import verify

SYMBOL = "BENCH.NX12"
PROVIDER = "provider"
BUYERS = 1_000
EXPIRES_AT_NS = 4_000_000_000_000_000_000
VERIFY_WORKERS = os.cpu_count() or 1  # as `dataex ledger verify` does by default


@contextmanager
def fresh_database(kind: str, postgres_url: str | None) -> Iterator[str]:
    """URL of an empty database, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    assert postgres_url is not None
    with scratch_schema(postgres_url, "ledger_bench") as url:
        yield url


def trade_batches(batches: int, batch_size: int) -> list[list[Entry]]:
    trade_id = 0
    out = []
    for _ in range(batches):
        batch = []
        for _ in range(batch_size):
            trade_id += 1
            batch.append(
                entries.trade_settlement(
                    trade_id=trade_id,
                    symbol=SYMBOL,
                    buyer=f"b{trade_id % BUYERS}",
                    seller=PROVIDER,
                    price_minor_per_unit=1_250,
                    quantity_units=1 + trade_id % 3,
                    fee_minor=12,
                    expires_at_ns=EXPIRES_AT_NS,
                    primary=True,
                    ts_ns=1_700_000_000_000_000_000 + trade_id,
                )
            )
        out.append(batch)
    return out


def fund(ledger: Ledger, total_units: int) -> None:
    opening: list[Entry] = [
        entries.licence_issuance(
            symbol=SYMBOL,
            provider=PROVIDER,
            units=total_units,
            issuance_cap_units=total_units,
            key="issue",
            ts_ns=1,
        )
    ]
    for buyer in range(BUYERS):
        opening.append(entries.deposit(f"b{buyer}", 10**12, key=f"dep-{buyer}", ts_ns=1))
    ledger.append_entries(opening)


def postgres_cpu_s() -> float:
    """CPU seconds used so far by the PostgreSQL server's processes on this machine, so that
    verification on PostgreSQL is charged for the server's work as well as the client's."""
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["name"] == "postgres" and times is not None:
            total += times.user + times.system
    return total


def raw_insert_rate(engine: sqlalchemy.Engine, rows_total: int, batch_rows: int) -> float:
    """Rows per second into an unindexed table, one durable commit per batch.

    Rows go in the way the ledger writes them: one prepared INSERT per row on SQLite, COPY
    on PostgreSQL.
    """
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE bench_raw (a BIGINT, b BIGINT, c VARCHAR(200), d VARCHAR(80), e BIGINT)"
        )
    rows = [
        (i, i % 5, f"participant:b{i % BUYERS}:cash", "cash", -i)
        for i in range(batch_rows)
    ]
    started = time.perf_counter()
    for _ in range(rows_total // batch_rows):
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                cursor = connection.connection.driver_connection.cursor()
                with cursor.copy("COPY bench_raw (a, b, c, d, e) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                connection.exec_driver_sql("INSERT INTO bench_raw VALUES (?, ?, ?, ?, ?)", rows)
    return rows_total / (time.perf_counter() - started)


def run_once(url: str, batches: int, batch_size: int) -> dict[str, float]:
    engine = create_engine(url)
    try:
        ledger = Ledger.open(engine)
        work = trade_batches(batches, batch_size)
        fund(ledger, total_units=3 * batches * batch_size)
        started = time.perf_counter()
        for batch in work:
            ledger.append_entries(batch)
        append_seconds = time.perf_counter() - started
        started, cpu_started, server_started = time.perf_counter(), time.process_time(), 0.0
        if engine.dialect.name == "postgresql":
            server_started = postgres_cpu_s()
        report = verify(ledger)
        verify_seconds = time.perf_counter() - started
        verify_cpu_s = time.process_time() - cpu_started
        if engine.dialect.name == "postgresql":
            verify_cpu_s += postgres_cpu_s() - server_started
        assert report.ok, report.problems
        started = time.perf_counter()
        split = verify(ledger, workers=VERIFY_WORKERS)
        split_seconds = time.perf_counter() - started
        assert split.ok and split.digest == report.digest, split.problems
        rows_per_entry = 6  # the entry row and its five postings
        raw_rows_per_second = raw_insert_rate(
            engine,
            rows_total=rows_per_entry * batches * batch_size,
            batch_rows=rows_per_entry * batch_size,
        )
        return {
            "settlements_per_s": batches * batch_size / append_seconds,
            "verify_entries_per_s": report.entries / verify_seconds,
            "verify_split_entries_per_s": report.entries / split_seconds,
            "verify_cpu_us_per_entry": verify_cpu_s / report.entries * 1e6,
            "raw_rows_per_s": raw_rows_per_second,
            "raw_equivalent_entries_per_s": raw_rows_per_second / rows_per_entry,
        }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DATAEX_TEST_POSTGRES_URL"),
        help="PostgreSQL server URL (default $DATAEX_TEST_POSTGRES_URL); omitted: SQLite only",
    )
    args = parser.parse_args()
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    print(
        f"{args.runs} runs x {args.batches} batches x {args.batch_size} trade settlements; medians"
    )
    columns = (
        "settlements/s",
        "raw rows/s",
        "raw rows/s / 6",
        "verify entries/s",
        f"in {VERIFY_WORKERS} processes",
        "verify CPU us/entry",
    )
    print(f"{'database':<11}" + "".join(f" {name:>17}" for name in columns))
    for kind in kinds:
        results = []
        for _ in range(args.runs):
            with fresh_database(kind, args.postgres) as url:
                results.append(run_once(url, args.batches, args.batch_size))
        median = {key: statistics.median(r[key] for r in results) for key in results[0]}
        keys = (
            "settlements_per_s",
            "raw_rows_per_s",
            "raw_equivalent_entries_per_s",
            "verify_entries_per_s",
            "verify_split_entries_per_s",
        )
        print(
            f"{kind:<11}"
            + "".join(f" {median[key]:>17,.0f}" for key in keys)
            + f" {median['verify_cpu_us_per_entry']:>19.1f}"
        )


if __name__ == "__main__":
    main()
