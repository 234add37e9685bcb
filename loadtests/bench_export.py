"""Benchmark of ``dataex export --what all``: every research table from one replay, against
the replay alone, on a one-day liquid simulation.

    python -m loadtests.bench_export                         # simulate the day, time 3 runs
    python -m loadtests.bench_export --keep /tmp/liquid.db   # keep (or reuse) the database
    python -m loadtests.bench_export --keep /tmp/liquid.db --per-table   # and the old way
    python -m loadtests.bench_export --keep /tmp/liquid.db --row-costs   # and a row's costs
    python -m loadtests.bench_export --keep /tmp/liquid.db --writer-nice 0   # not lowered

Setup, not timed: ``scenarios/liquid.toml`` with seed 1 simulated for its one day into a fresh
SQLite database (about 138,000 journalled commands: 118,000 orders, 42,000 trades).

Timed, in one process, each run in this order, the median of ``--runs``:

- **replay**: ``exchange.research.replay`` over the database, exactly what ``dataex replay``
  does (read ahead in another process, execute every command, check every settlement entry);
- **export, Parquet**: ``export_tables`` of all six tables (trades, orders, events, book,
  ledger, journal) as Parquet datasets partitioned by date and symbol, into a new directory:
  what ``dataex export --what all --format parquet`` does;
- **export, CSV** (with ``--csv``): the same as CSV files.

Each run's ratio (an export's time over the replay's, taken seconds apart on a noisy
machine) is reported, and the median of the runs' ratios is held to the target: exporting
every table costs at most 1.5 replays. Beside the elapsed times, the CPU time of this process
(the one that executes the commands and builds the rows) and of its children (the journal's
read-ahead process, and the export's writing process, which writes every table's files:
``exchange/research/offload.py``), each over the replay's: what the replay's process adds,
and what the export's work costs in all, which a second core hides from the elapsed time.
``--per-table`` also times, once, the six tables exported one at a time (a replay each, as
``dataex export`` did before it took several).
"""

from __future__ import annotations

import argparse
import gc
import marshal
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from exchange.research import (
    TABLES,
    DatabaseJournal,
    Format,
    What,
    Window,
    collect,
    offload,
    replay,
)
from exchange.research.dataset import writing_dataset
from exchange.research.export import export_table, export_tables
from exchange.research.formats import TableWriter
from exchange.research.readahead import start_method
from exchange.research.tables import Row
from exchange.simulation import load_scenario, run_simulation
from ledger.rows import gc_paused
from ledger.store import Ledger
from loadtests.bench_replay import children_cpu_s

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "liquid.toml"
SEED = 1
# Exporting every table, over replaying alone.
TARGET_EXPORT_TO_REPLAY = 1.5
MIN_JOURNAL_COMMANDS = 100_000


def build_database(path: Path) -> None:
    result = run_simulation(
        load_scenario(SCENARIO, seed=SEED), SEED, database_url=f"sqlite:///{path}", check=False
    )
    print(f"simulated {SCENARIO.name}, seed {SEED}: {result.journal_commands:,} commands "
          f"in {result.wall_s:.0f} s")  # fmt: skip


def time_replay(ledger: Ledger) -> tuple[float, float, float]:
    """Elapsed and CPU seconds (this process, its children) of one replay."""
    gc.collect()
    started, cpu, children = time.perf_counter(), time.process_time(), children_cpu_s()
    report = replay(DatabaseJournal(ledger))
    assert report.ok, report.mismatch
    return (time.perf_counter() - started, time.process_time() - cpu,
            children_cpu_s() - children)  # fmt: skip


def time_export(ledger: Ledger, format: Format, directory: Path) -> tuple[float, float, float, int]:
    """Elapsed and CPU seconds (this process, its children) of one export of every table,
    and its rows."""
    gc.collect()
    paths = {what: directory / f"{what}.{format}" for what in What}
    started, cpu, children = time.perf_counter(), time.process_time(), children_cpu_s()
    result = export_tables(ledger, dict(paths), format, Window())
    return (time.perf_counter() - started, time.process_time() - cpu,
            children_cpu_s() - children, sum(result.rows.values()))  # fmt: skip


def time_per_table(ledger: Ledger, directory: Path) -> float:
    gc.collect()
    started = time.perf_counter()
    for what in What:
        export_table(ledger, what, Format.PARQUET, directory / f"{what}.parquet", Window())
    return time.perf_counter() - started


def row_costs(ledger: Ledger, directory: Path) -> None:
    """Print what handing on a row of the day's ``events`` costs, each way (µs a row, best of
    three): serialised for the writing process as it is (marshal at its default version) and
    as it could be (marshal version 2, pickle), and written as CSV (a row at a time, or a
    batch in one call) or as a Parquet dataset."""
    rows: list[Row] = []
    report = collect(ledger, {What.EVENTS: rows.append}, Window())
    assert report is not None  # holds the replayed exchange, whose values the rows share
    size = offload.ROWS_PER_MESSAGE
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]
    columns = TABLES[What.EVENTS]

    def csv(per_row: bool) -> None:
        with open(os.devnull, "wb") as file:
            writer = TableWriter(file, Format.CSV, columns)
            for batch in batches:
                if per_row:
                    for row in batch:
                        writer.write(row)
                else:
                    writer.write_rows(batch)
            writer.close()

    def parquet() -> None:
        out = Path(tempfile.mkdtemp(dir=directory))
        with writing_dataset(out / "events.parquet", columns) as writer:
            for batch in batches:
                writer.write_rows(batch)
        shutil.rmtree(out)

    ways = {
        "marshal (sent)": lambda: [marshal.dumps(b) for b in batches],
        "marshal version 2": lambda: [marshal.dumps(b, 2) for b in batches],
        "pickle": lambda: [pickle.dumps(b, pickle.HIGHEST_PROTOCOL) for b in batches],
        "CSV, a row at a time": lambda: csv(per_row=True),
        "CSV, a batch a call (written)": lambda: csv(per_row=False),
        "Parquet dataset (written)": parquet,
    }
    print(f"a row of events, {len(rows):,} rows in batches of {size:,} (best of 3):")
    with gc_paused():
        for name, way in ways.items():
            best = min(timed(way) for _ in range(3))
            print(f"  {name}: {best / len(rows) * 1e6:.2f} µs ({best:.2f} s)")


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run(runs: int, keep: Path | None, per_table: bool, with_csv: bool, costs: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = keep or Path(scratch) / "liquid.db"
        if not path.exists():
            build_database(path)
        ledger = Ledger.open(f"sqlite:///{path}")
        commands = ledger.journal_head_seq()
        assert commands >= MIN_JOURNAL_COMMANDS, f"only {commands:,} commands journalled"
        print(f"database: {path} ({path.stat().st_size / 2**20:.0f} MiB): {commands:,} "
              f"commands, {ledger.size():,} entries")  # fmt: skip
        times: dict[str, list[float]] = defaultdict(list)
        formats = (Format.PARQUET, Format.CSV) if with_csv else (Format.PARQUET,)
        for i in range(runs):
            replay_s, replay_cpu_s, replay_children_s = time_replay(ledger)
            times["replay"].append(replay_s)
            line = (f"  run {i + 1}: replay {replay_s:.2f} s (CPU {replay_cpu_s:.2f} s, "
                    f"children {replay_children_s:.2f} s)")  # fmt: skip
            for format in formats:
                out = Path(tempfile.mkdtemp(dir=scratch))
                seconds, cpu_s, children_s, rows = time_export(ledger, format, out)
                shutil.rmtree(out)
                ratio, cpu_ratio = seconds / replay_s, cpu_s / replay_cpu_s
                all_ratio = (cpu_s + children_s) / (replay_cpu_s + replay_children_s)
                times[f"export {format}"].append(seconds)
                times[f"ratio {format}"].append(ratio)
                times[f"cpu ratio {format}"].append(cpu_ratio)
                times[f"all cpu ratio {format}"].append(all_ratio)
                line += (f"; export all, {format} {seconds:.2f} s ({ratio:.2f}x; CPU "
                         f"{cpu_s:.2f} s, {cpu_ratio:.2f}x; children {children_s:.2f} s; in all "
                         f"{all_ratio:.2f}x; {rows:,} rows)")  # fmt: skip
            print(line, flush=True)
        if costs:
            row_costs(ledger, Path(scratch))
        if per_table:
            out = Path(tempfile.mkdtemp(dir=scratch))
            seconds = time_per_table(ledger, out)
            print(
                f"  six tables one at a time, Parquet: {seconds:.2f} s "
                f"({seconds / statistics.median(times['replay']):.2f}x the median replay)"
            )
        ledger.engine.dispose()
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"median of {runs}: replay {medians['replay']:.2f} s")
    for format in formats:
        ratio = medians[f"ratio {format}"]
        met = "met" if ratio <= TARGET_EXPORT_TO_REPLAY else "NOT met"
        print(f"export all ({format}): {medians[f'export {format}']:.2f} s; over the replay "
              f"{ratio:.2f} (median of the runs' ratios); target at most "
              f"{TARGET_EXPORT_TO_REPLAY}: {met}; CPU of this process over the replay's "
              f"{medians[f'cpu ratio {format}']:.2f}, of this process and its children "
              f"{medians[f'all cpu ratio {format}']:.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="simulate the day here, or reuse it")
    parser.add_argument(
        "--per-table", action="store_true", help="also time the tables one replay each"
    )
    parser.add_argument("--csv", action="store_true", help="also time the export as CSV")
    parser.add_argument(
        "--row-costs", action="store_true", help="also time each way of handing on a row"
    )
    parser.add_argument(
        "--writer-nice",
        type=int,
        default=offload.NICENESS,
        help="how much lower the writing process's priority is (nice(2))",
    )
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}; the writing process at nice {args.writer_nice}")
    # Read by the writing process when it starts, a fork of this one (one thread here).
    assert start_method() == "fork", "--writer-nice needs the writing process forked"
    offload.NICENESS = args.writer_nice
    run(args.runs, args.keep, args.per_table, args.csv, args.row_costs)


if __name__ == "__main__":
    main()
