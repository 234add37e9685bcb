"""Appends from several connections at once: each key once, the chain unbroken."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ledger import entries
from ledger.database import create_engine
from ledger.store import EntryReceipt, Ledger
from ledger.verify import verify
from tests.ledger.helpers import funded_ledger, trade

THREADS = 4


def in_threads(database_url: str, work: Callable[[Ledger, int], list[EntryReceipt]]) -> list:
    """Run ``work`` in THREADS threads, each with its own engine, started together."""
    engines = [create_engine(database_url) for _ in range(THREADS)]
    ledgers = [Ledger(engine) for engine in engines]
    start = threading.Barrier(THREADS)
    results: list = [None] * THREADS

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(ledgers[index], index)
        except BaseException as error:  # reported to the test below, not swallowed
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_concurrent_appends_of_one_key_make_exactly_one_entry(
    ledger: Ledger, database_url: str
) -> None:
    funded_ledger(ledger, "ann")
    before = ledger.size()
    results = in_threads(database_url, lambda other, _: other.append_entries([trade(42)]))
    receipts = [receipt for result in results for receipt in result]
    assert {r.seq for r in receipts} == {before + 1}
    assert sum(r.created for r in receipts) == 1
    assert ledger.size() == before + 1
    assert verify(ledger).ok


def test_concurrent_batches_get_dense_sequence_numbers_and_a_valid_chain(
    ledger: Ledger, database_url: str
) -> None:
    def work(other: Ledger, index: int) -> list[EntryReceipt]:
        receipts = []
        for round_number in range(5):
            batch = [
                entries.deposit(f"p{index}", 1, key=f"d-{index}-{round_number}-{i}", ts_ns=1)
                for i in range(10)
            ]
            receipts += other.append_entries(batch)
        return receipts

    results = in_threads(database_url, work)
    seqs = sorted(receipt.seq for result in results for receipt in result)
    assert seqs == list(range(1, THREADS * 50 + 1))
    report = verify(ledger)
    assert report.ok, report.problems
