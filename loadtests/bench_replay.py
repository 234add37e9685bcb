"""Benchmark of ``dataex replay``: a journal of 200,000+ commands replayed from SQLite.

    python -m loadtests.bench_replay                     # build the journal, time 3 replays
    python -m loadtests.bench_replay --keep /tmp/j.db    # keep (or reuse) the built journal
    python -m loadtests.bench_replay --keep /tmp/j.db --profile   # where the time goes

Setup, not timed: ``loadtests.bench_engine.generate_stream`` (seeded: limit, market and
cancel orders of 200 participants on one instrument, about 4,000 orders resting) goes through
the exchange's sequencer into a fresh SQLite database, as ``bench_exchange`` does: an admin,
a provider, a reviewer, one approved product, one continuous instrument (tick 1, lot 1,
issuance cap 10^9, fee 10 bp), and the 200 participants (market makers) each with 10^12
minor units of cash and 10^6 licence units bought from the provider, so that every sell in
the stream is a resale. One client thread submits the stream in order (up to 2,048
unanswered commands; a cancel waits for its order's answer, which holds the exchange's id),
so the exchange's book evolves exactly as the engine's. Refused commands (post-only orders
that would take) are not journalled. The journal must hold at least 200,000 commands.

Timed, in one process, each the median of ``--runs``:

- **replay**: ``exchange.research.replay`` over the database, exactly what ``dataex replay``
  does: read both chains in one snapshot and check every hash, execute every command in a
  fresh ``Exchange``, compare every settlement entry with the recorded one; the reading is
  done ahead, in a process of its own (``exchange.research.readahead``);
- **replay, one process**: the same with the reading done in this process, between commands;
- **read**: the reading, hash checking and parsing of the commands alone (no exchange);
- **execute**: ``Exchange.execute`` alone, on the commands already parsed, in memory;
- **engine**: the bare ``matching.Engine`` on the same orders (``bench_engine.time_engine``).

Each run times the replay and then the execution alone, so their ratio (the replay's rate
over the execution's) compares two figures taken seconds apart on a noisy machine; the
median of the runs' ratios is reported against the target.

``--profile`` runs one replay under cProfile and prints the top functions by own time, and
the exchange's mean microseconds per kind of command.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from exchange import commands as c
from exchange.commands import command_from_record
from exchange.errors import ExchangeError
from exchange.research import DatabaseJournal, replay
from exchange.research.journal import READ_AHEAD_BATCH_COMMANDS
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR, Exchange, Outcome
from ledger.rows import gc_paused
from ledger.store import Ledger
from loadtests.bench_engine import MID_PRICE, PARTICIPANTS, SYMBOL, generate_stream, time_engine
from matching import CancelOrder, SubmitOrder, TimeInForce

TARGET_COMMANDS_PER_S = 50_000
# The replay's rate over the rate of executing the same commands in memory.
TARGET_REPLAY_TO_EXECUTE = 0.8
# A replay in one process: the journal is read ahead only from this many commands on.
NEVER_READ_AHEAD = 10**12
MIN_JOURNAL_COMMANDS = 200_000
WINDOW_COMMANDS = 2_048
# A GTD expiry no run reaches (2096): the engine stream's own expiry is in its own clock.
GTD_EXPIRE_NS = 4 * 10**18
PROFILE_TOP_FUNCTIONS = 25


# -- building the journal (not timed) ---------------------------------------------------------


def _participant(participant_id: str, roles: list[str]) -> c.CreateParticipant:
    # Key ids from the participant id, a placeholder digest: nobody authenticates here.
    return c.CreateParticipant(
        OPERATOR, participant_id, participant_id, roles, f"k_{participant_id}", "0" * 64
    )


def set_up_market(sequencer: Sequencer) -> None:
    run = sequencer.execute
    run(_participant("admin", ["admin"]))
    run(_participant("provider", ["provider"]))
    run(_participant("reviewer", ["reviewer"]))
    quality = {"completeness": 9000, "accuracy": 9000, "timeliness": 8000, "consistency": 9000}
    create = c.CreateProduct(
        "provider", "", "Benchmark data", "A product for the benchmark", "transport",
        "Zhejiang", 1_000_000, "2024-01-01", "2025-01-01", "daily", quality, False, "general",
        False, "attested", 100_000,
    )  # fmt: skip
    product = run(create).result.product_id
    checks = dict.fromkeys(
        ("classification", "desensitisation", "lifecycle_and_retention", "risk_controls"), True
    )
    run(c.ReviewProduct("reviewer", product, "approved", checks, "fit to list"))
    listing = c.ListInstrument(
        "provider", SYMBOL, product, "non_exclusive", 12, "commercial", "domestic", True, 1, 1,
        "continuous", 10**9, 10, None, None, "first_price",
    )  # fmt: skip
    run(listing)
    run(c.SetPhase("admin", SYMBOL, "continuous"))
    futures = []
    for participant in PARTICIPANTS:
        for command in (
            _participant(participant, ["market_maker"]),
            c.Deposit("admin", participant, 10**12, "setup"),
            c.SubmitOrder("provider", f"setup-{participant}", 0, SYMBOL, "sell", "limit",
                          MID_PRICE, 10**6, "GTC", None, False, "cancel_newest"),
            c.SubmitOrder(participant, "setup", 0, SYMBOL, "buy", "limit", MID_PRICE, 10**6,
                          "IOC", None, False, "cancel_newest"),
        ):  # fmt: skip
            futures.append(sequencer.submit(command))
    for future in futures:
        assert future.result().command is not None


def submit_order(order: SubmitOrder) -> c.SubmitOrder:
    return c.SubmitOrder(
        order.participant, f"o{order.order_id}", 0, order.symbol, order.side.value,
        order.order_type.value, order.price_minor, order.quantity_units, order.tif.value,
        GTD_EXPIRE_NS if order.tif is TimeInForce.GTD else None, order.post_only,
        order.stp.value,
    )  # fmt: skip


def build_journal(path: Path, stream: Sequence[SubmitOrder | CancelOrder]) -> tuple[int, int]:
    """Run ``stream`` through a sequencer into a new SQLite database at ``path``; return the
    journalled and the refused command counts."""
    ledger = Ledger.open(f"sqlite:///{path}")
    sequencer = Sequencer(ledger, housekeeping=False).start()
    refused = 0
    try:
        set_up_market(sequencer)
        placed: dict[int, Future[Outcome]] = {}
        in_flight: deque[Future[Outcome]] = deque()
        for command in stream:
            if isinstance(command, SubmitOrder):
                future = sequencer.submit(submit_order(command))
                placed[command.order_id] = future
            else:
                submitted = placed.pop(command.order_id)
                if submitted.exception() is not None:
                    continue
                order_id = submitted.result().result.order_id
                future = sequencer.submit(c.CancelOrder(command.participant, order_id))
            in_flight.append(future)
            while len(in_flight) > WINDOW_COMMANDS:
                refused += _refused(in_flight.popleft())
        while in_flight:
            refused += _refused(in_flight.popleft())
    finally:
        sequencer.stop()
    journalled = ledger.journal_head_seq()
    ledger.engine.dispose()
    return journalled, refused


def _refused(future: Future[Outcome]) -> int:
    error = future.exception()
    if error is None:
        return 0
    if isinstance(error, ExchangeError):
        return 1
    raise error


# -- timing ------------------------------------------------------------------------------------


def time_replay(
    ledger: Ledger, *, read_ahead: bool = True, batch_commands: int = READ_AHEAD_BATCH_COMMANDS
) -> tuple[float, float, int, int]:
    """Elapsed and CPU seconds (this process) of one replay, its commands and its trades."""
    gc.collect()
    journal = (
        DatabaseJournal(ledger, batch_commands=batch_commands)
        if read_ahead
        else DatabaseJournal(ledger, min_read_ahead_commands=NEVER_READ_AHEAD)
    )
    cpu = time.process_time()
    report = replay(journal)
    cpu = time.process_time() - cpu
    assert report.ok, report.mismatch
    return report.elapsed_s, cpu, report.commands, report.trades


def time_read(ledger: Ledger) -> float:
    gc.collect()
    started = time.perf_counter()
    with gc_paused(), DatabaseJournal(ledger).open() as stream:
        for _ in stream.commands:
            pass
        assert stream.entries is not None
        for _ in stream.entries:
            pass
    return time.perf_counter() - started


def children_cpu_s() -> float:
    """User and system CPU seconds of this process's waited-for children (the replay's
    reader, joined when the replay ends; an export's writing process, joined when it ends)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_commands(ledger: Ledger) -> list[tuple[int, int, c.Command]]:
    commands = []
    start = 1
    while records := ledger.journal(start, 10_000):
        commands += [(r.seq, r.ts_ns, command_from_record(r.command)) for r in records]
        start = records[-1].seq + 1
    return commands


def time_execute(commands: Sequence[tuple[int, int, c.Command]]) -> tuple[float, float]:
    """Elapsed and CPU seconds of executing ``commands`` in a fresh exchange, in memory."""
    gc.collect()
    exchange = Exchange()
    execute = exchange.execute
    started, cpu = time.perf_counter(), time.process_time()
    with gc_paused():
        for seq, ts_ns, command in commands:
            execute(command, seq, ts_ns)
    # The collector resumes with every object the execution made still young: its first
    # pass walks them all (a third of a second here). The replay pays that pass within its
    # elapsed time (its first allocation after resuming comes before its clock is read);
    # here it would fall just after the clock, so it is made at once, inside the span.
    gc.collect(0)
    return time.perf_counter() - started, time.process_time() - cpu


def execute_breakdown(commands: Sequence[tuple[int, int, c.Command]]) -> None:
    """Mean microseconds of ``Exchange.execute`` per kind of command (each call timed)."""
    exchange = Exchange()
    spent: defaultdict[str, float] = defaultdict(float)
    count: defaultdict[str, int] = defaultdict(int)
    clock = time.perf_counter
    with gc_paused():
        for seq, ts_ns, command in commands:
            started = clock()
            outcome = exchange.execute(command, seq, ts_ns)
            seconds = clock() - started
            kind = type(command).__name__
            if isinstance(command, c.SubmitOrder):
                trades = any(e.kind == "trade_settlement" for e in outcome.entries)
                kind = f"SubmitOrder {command.side}{' that trades' if trades else ''}"
            spent[kind] += seconds
            count[kind] += 1
    print("Exchange.execute, mean us per command (each call timed):")
    for kind in sorted(spent, key=lambda k: -spent[k]):
        if count[kind] >= 100:
            print(f"  {kind:32s} {count[kind]:>8,} x {spent[kind] / count[kind] * 1e6:7.1f} us")


def profile_replay(ledger: Ledger) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(replay, DatabaseJournal(ledger))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(PROFILE_TOP_FUNCTIONS)
    print("one replay under cProfile, by own time:")
    print(out.getvalue())


def run(
    operations: int,
    runs: int,
    seed: int,
    keep: Path | None,
    profile: bool,
    batch_commands: int = READ_AHEAD_BATCH_COMMANDS,
) -> None:
    t0 = time.perf_counter()
    stream = generate_stream(operations, seed)
    print(f"stream: {len(stream):,} operations, seed {seed} (generated in "
          f"{time.perf_counter() - t0:.1f} s)")  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        path = keep or Path(directory) / "journal.db"
        if not path.exists():
            t0 = time.perf_counter()
            journalled, refused = build_journal(path, stream)
            print(f"journal: {journalled:,} commands through the sequencer ({refused:,} refused) "
                  f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        ledger = Ledger.open(f"sqlite:///{path}")
        journalled = ledger.journal_head_seq()
        assert journalled >= MIN_JOURNAL_COMMANDS, f"only {journalled:,} commands journalled"
        print(f"database: {path} ({path.stat().st_size / 2**20:.0f} MiB): {journalled:,} "
              f"commands, {ledger.size():,} entries")  # fmt: skip
        if profile:
            commands = load_commands(ledger)
            execute_breakdown(commands)
            profile_replay(ledger)
            ledger.engine.dispose()
            return
        commands = load_commands(ledger)
        rates: dict[str, list[float]] = defaultdict(list)
        cpu_us: dict[str, list[float]] = defaultdict(list)
        for i in range(runs):
            # CPU time beside wall time: what the replay's own process and its reader spend
            # a command, and whether the reader had a core of its own (wall ~ own CPU).
            # Each CPU time over the same span as its wall time (not the collections between).
            reader = children_cpu_s()
            seconds, own_s, replayed, trades = time_replay(ledger, batch_commands=batch_commands)
            cpu_us["replay's process"].append(own_s / replayed * 1e6)
            cpu_us["its reader"].append((children_cpu_s() - reader) / replayed * 1e6)
            rates["replay"].append(replayed / seconds)
            seconds, own_s = time_execute(commands)
            rates["execute"].append(journalled / seconds)
            cpu_us["execute alone"].append(own_s / journalled * 1e6)
            rates["ratio"].append(rates["replay"][-1] / rates["execute"][-1])
            rates["one process"].append(journalled / time_replay(ledger, read_ahead=False)[0])
            rates["read"].append(journalled / time_read(ledger))
            gc.collect()
            engine_seconds, _events = time_engine(stream)
            rates["engine"].append(len(stream) / engine_seconds)
            print(f"  run {i + 1}: replay {rates['replay'][-1]:>9,.0f} commands/s "
                  f"({replayed:,} commands, {trades:,} trades, {seconds:.1f} s); execute "
                  f"{rates['execute'][-1]:,.0f}/s; replay/execute {rates['ratio'][-1]:.3f}; "
                  f"in one process {rates['one process'][-1]:,.0f}/s; "
                  f"read {rates['read'][-1]:,.0f}/s; "
                  f"engine {rates['engine'][-1]:,.0f} ops/s")  # fmt: skip
            print("         CPU us/command: " + ", ".join(
                f"{name} {values[-1]:.1f}" for name, values in cpu_us.items()
            ) + f"; wall us/command: replay {1e6 / rates['replay'][-1]:.1f}")  # fmt: skip
        ledger.engine.dispose()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"median of {runs}:")
    print(f"  replay       {medians['replay']:>9,.0f} commands/s  (dataex replay: read ahead, "
          "execute, check)")  # fmt: skip
    print(f"  execute      {medians['execute']:>9,.0f} commands/s  (Exchange.execute alone, "
          "in memory)")  # fmt: skip
    print(f"  one process  {medians['one process']:>9,.0f} commands/s  (the replay reading "
          "between commands)")  # fmt: skip
    print(f"  read         {medians['read']:>9,.0f} commands/s  (both chains read and "
          "hash-checked, commands parsed)")  # fmt: skip
    print(f"  engine       {medians['engine']:>9,.0f} ops/s       (bare matching.Engine, "
          "same orders)")  # fmt: skip
    cpu = {name: statistics.median(values) for name, values in cpu_us.items()}
    print("  CPU us/command (medians): " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    # With a core free for the reader, the replay's rate is bounded by its own process's CPU.
    bound = cpu["execute alone"] / cpu["replay's process"]
    print(f"  with a core free for the reader, replay/execute could reach {bound:.3f} "
          "(execute's CPU over the replay process's)")  # fmt: skip
    ratio = medians["ratio"]
    met = "met" if ratio >= TARGET_REPLAY_TO_EXECUTE else "NOT met"
    print(f"replay/execute: {ratio:.3f} (median of the runs' ratios); target "
          f"{TARGET_REPLAY_TO_EXECUTE}: {met}")  # fmt: skip
    met = "met" if medians["replay"] >= TARGET_COMMANDS_PER_S else "NOT met"
    print(f"target {TARGET_COMMANDS_PER_S:,} commands/s: {met}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=205_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, help="build the journal here, or reuse it")
    parser.add_argument("--profile", action="store_true", help="profile one replay instead")
    parser.add_argument(
        "--batch-commands", type=int, default=READ_AHEAD_BATCH_COMMANDS,
        help="commands in each message from the reader (default: dataex replay's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}")
    run(args.operations, args.runs, args.seed, args.keep, args.profile, args.batch_commands)


if __name__ == "__main__":
    main()
