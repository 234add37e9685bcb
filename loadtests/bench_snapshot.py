"""Snapshots: what writing and reading the exchange's state costs, against replaying the journal.

    python -m loadtests.bench_snapshot                     # 20,000 orders, medians of 5
    python -m loadtests.bench_snapshot --orders 50000 --runs 7

The state: ``bench_exchange``'s market (its setup, through the sequencer, on a scratch SQLite
database), then the first ``--orders`` orders of the engine benchmark's stream (its cancels
left out, so the book keeps what rests), submitted through the sequencer as a server would
(the few it refuses are left out). Timed, each ``--runs`` times, in this process:
``dump_state`` of that state (the compressed data-only document the sequencer stores),
``load_state`` of the document (which ends with the state's invariant checks), and recovery
from the journal alone
(``recover(…, verify_first=False, use_snapshot=False)``: every journalled command executed
again, the work a snapshot spares). Medians; the ratio that matters is a snapshot's load
against the replay it replaces, both measured here in one process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from exchange.errors import ExchangeError
from exchange.recovery import recover
from exchange.sequencer import Sequencer
from exchange.service import Exchange
from exchange.snapshot import dump_state, load_state
from ledger.database import create_engine
from ledger.store import Ledger
from loadtests.bench_engine import generate_stream
from loadtests.bench_exchange import set_up_market, submit_order
from matching import SubmitOrder

DEFAULT_ORDERS = 20_000
DEFAULT_RUNS = 5
STREAM_SEED = 11


def _median_s(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def build_state(ledger: Ledger, orders: int) -> tuple[Exchange, int]:
    """The benchmark's market and ``orders`` orders of the stream; the state and the number
    of commands journalled."""
    sequencer = Sequencer(ledger, Exchange()).start()
    try:
        journalled = set_up_market(sequencer)
        stream = [command for command in generate_stream(orders * 2, STREAM_SEED)
                  if isinstance(command, SubmitOrder)][:orders]  # fmt: skip
        # Submitted from this one thread, so applied in stream order; batched as a server's.
        futures = [sequencer.submit(submit_order(order)) for order in stream]
        for future in futures:
            try:
                future.result()
            except ExchangeError:
                continue  # refused (a post-only order that would take): not journalled
            journalled += 1
    finally:
        sequencer.stop()
    return sequencer.exchange, journalled


def run(orders: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dataex-bench-snapshot-") as scratch:
        database = create_engine(f"sqlite:///{Path(scratch) / 'snapshot.db'}")
        try:
            ledger = Ledger.open(database)
            exchange, journalled = build_state(ledger, orders)
            document = dump_state(exchange)
            assert load_state(document).head_seq == exchange.head_seq
            dump_s = _median_s(lambda: dump_state(exchange), runs)
            load_s = _median_s(lambda: load_state(document), runs)
            replay_s = _median_s(
                lambda: recover(ledger, verify_first=False, use_snapshot=False), runs
            )
        finally:
            database.dispose()
    open_orders = exchange.engine.open_order_count()
    print(f"state: {journalled:,} journalled commands, {open_orders:,} open orders, "
          f"document {len(document) / 1024:,.0f} KiB compressed")  # fmt: skip
    print(f"dump_state:  {dump_s * 1000:8.1f} ms (median of {runs})")
    print(f"load_state:  {load_s * 1000:8.1f} ms (median of {runs})")
    print(f"replay:      {replay_s * 1000:8.1f} ms (median of {runs}; the journal, no snapshot)")
    print(f"load / replay: {load_s / replay_s:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_snapshot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS, help="orders after setup")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed runs of each")
    arguments = parser.parse_args(argv)
    if arguments.orders < 1 or arguments.runs < 1:
        parser.error("--orders and --runs must be at least 1")
    run(arguments.orders, arguments.runs)


if __name__ == "__main__":
    main()
