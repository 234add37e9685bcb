"""The exchange end to end: the engine benchmark's order flow through the in-process sequencer.

    python -m loadtests.bench_exchange                   # 50,000 operations, 3 runs, SQLite
    python -m loadtests.bench_exchange --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m loadtests.bench_exchange --runs 1 --profile   # where the sequencer's time goes
    python -m loadtests.bench_exchange --facilities 1000    # with and without loan facilities

The stream is ``loadtests.bench_engine.generate_stream`` (seeded): limit, market and cancel
commands of 200 participants on one instrument. Each engine ``SubmitOrder`` becomes the
exchange's ``SubmitOrder`` (client order id ``o<engine order id>``; a GTD order's expiry, which
the engine stream gives in its own small clock, becomes a fixed time in 2096, so it never
expires during a run); each engine ``CancelOrder`` becomes the exchange's ``CancelOrder`` of
the exchange's id for that order. Every command goes through ``Sequencer.submit``:
validation, risk, the journal, matching, settlement entries, and a group commit that is
durable before the future resolves. The figure is commands acknowledged (committed, so
journalled) per second of wall time, from the moment the client threads are released to the
moment the last one has its last answer.

Setup, not timed, through the same sequencer: an admin, a provider, a reviewer, one product
approved by the reviewer, one transferable continuous instrument (``bench_engine.SYMBOL``,
tick 1, lot 1, issuance cap 10^9 units, fee 10 bp, no price band), and the 200 participants
(role ``market_maker``), each with 10^12 minor units of cash and 10^6 licence units bought
from the provider (one primary trade each, at the stream's mid price), so that every seller
in the stream resells a holding of its own: the flow is the secondary market the engine
stream describes, and the provider does not trade during the timed part. The setup's orders
take the exchange's first order ids, which is one reason why engine ids are not exchange ids.

Clients: ``--threads`` threads (8), each owning the participants whose index is its number
modulo the thread count, submit their participants' commands in stream order, keeping up to
``--window`` (64) unanswered commands each, so the sequencer has up to threads x window
commands to batch. A cancel needs the exchange's id of its order, which is in the answer to
that order's ``SubmitOrder`` (ids are assigned in the order the sequencer applies commands,
which interleaves the threads): the client waits for that answer first. The interleaving of
threads changes the order of commands across participants (by up to threads x window), so the
exchange's book does not evolve exactly as the engine's; some cancels then find their order
already filled, and some orders are refused. Every refusal is counted by reason and reported,
and so is every cancel not sent because its order had been refused.

The bare engine (``matching.Engine``, as ``bench_engine`` runs it) replays the same stream in
the same process after each exchange run. After each run, not timed: ``ledger.verify`` must
pass, the journal must hold exactly the setup's and the acknowledged commands, and the
exchange's invariants must hold.

With ``--facilities N`` every run is made twice in turn, without and with N loan facilities
live (``exchange.collateral``): a lender ("bank") lends to the stream's participants, round
robin, each facility pledging 1,000 units of its borrower's holding of the instrument (a
valuation posted at the mid price, range +-20%) and drawn to 40% LTV, so that every trade of
the stream is one the monitor looks at. The figure is the ratio of the two rates, with the
monitor's re-mark passes (a housekeeping command a second after trades in a pledged
instrument) counted in the journal check.

Where the time goes, in every run: the wall time of ``Exchange.execute`` and ``Ledger.append``
on the sequencer's thread (subclasses that add two clock reads per call), and the wall time of
the cyclic garbage collector, which runs in whichever thread allocates (measured: mostly the
sequencer's, inside ``execute``, since ``append`` pauses it) and stops every thread.
``Ledger.append`` is split further into the journal (commands serialised, chained and inserted),
the ledger entries and the commit, by timers installed around the store's functions. After
each run, the same process times the durable floor: a raw hash-chained journal insert of as
many rows (``loadtests.raw_journal``: ``sqlite3``, WAL, ``synchronous=FULL``, 200 rows a
commit), and reports the exchange's rate as a share of it (target >= 0.15).
``--profile`` also runs the sequencer's thread under cProfile (the client threads are not
profiled; the profiler roughly halves throughput) and prints the top functions by cumulative
time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ledger.store as ledger_store
from exchange import commands as c
from exchange.cli.serve import GC_THRESHOLD_OBJECTS
from exchange.errors import ExchangeError
from exchange.participants import new_api_key, secret_digest
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR, Exchange, Outcome
from exchange.writer import ProcessWriter
from ledger.database import create_engine
from ledger.store import AppendResult, Ledger
from ledger.verify import verify
from loadtests.bench_engine import MID_PRICE, PARTICIPANTS, SYMBOL, generate_stream, time_engine
from loadtests.bench_ledger import fresh_database
from loadtests.raw_journal import ROWS_PER_COMMIT, raw_journal_rows, time_raw_journal
from matching import (
    AddInstrument,
    CancelOrder,
    Engine,
    InstrumentSpec,
    Phase,
    Rejected,
    SubmitOrder,
    TimeInForce,
)
from matching import Trade as EngineTrade

ADMIN = "admin"
LENDER = "bank"
PLEDGED_UNITS = 1_000
PROVIDER = "provider"
REVIEWER = "reviewer"
ISSUANCE_CAP_UNITS = 10**9
LICENCES_PER_PARTICIPANT_UNITS = 10**6
CASH_PER_PARTICIPANT_MINOR = 10**12
FEE_RATE_BP = 10
# October 2096: a GTD expiry no run reaches (the engine stream's 10**15 is in its own clock).
GTD_EXPIRE_NS = 4 * 10**18
TARGET_ORDERS_PER_S = 25_000
# The exchange's rate as a share of the raw hash-chained journal insert's (loadtests/raw_journal).
TARGET_SHARE_OF_RAW_JOURNAL = 0.15
PROFILE_TOP_FUNCTIONS = 25

# One client step: (engine order id, the SubmitOrder or None for a cancel of that order, the
# actor, whether a later step cancels the order).
Step = tuple[int, c.SubmitOrder | None, str, bool]


# -- the stream, as exchange commands -------------------------------------------------------


def submit_order(order: SubmitOrder) -> c.SubmitOrder:
    """The exchange command for one engine ``SubmitOrder`` (the exchange assigns the id)."""
    return c.SubmitOrder(
        actor=order.participant,
        client_order_id=f"o{order.order_id}",
        order_id=0,
        symbol=order.symbol,
        side=order.side.value,
        order_type=order.order_type.value,
        price_minor=order.price_minor,
        quantity_units=order.quantity_units,
        tif=order.tif.value,
        expire_ns=GTD_EXPIRE_NS if order.tif is TimeInForce.GTD else None,
        post_only=order.post_only,
        stp=order.stp.value,
    )


def client_plans(stream: Sequence[SubmitOrder | CancelOrder], threads: int) -> list[list[Step]]:
    """The stream split by participant over ``threads`` clients, each in stream order."""
    client_of = {participant: i % threads for i, participant in enumerate(PARTICIPANTS)}
    cancelled = {command.order_id for command in stream if isinstance(command, CancelOrder)}
    plans: list[list[Step]] = [[] for _ in range(threads)]
    for command in stream:
        plan = plans[client_of[command.participant]]
        order_id, actor = command.order_id, command.participant
        if isinstance(command, SubmitOrder):
            plan.append((order_id, submit_order(command), actor, order_id in cancelled))
        else:
            plan.append((order_id, None, actor, False))
    return plans


# -- setup ---------------------------------------------------------------------------------


def _participant(participant_id: str, roles: list[str]) -> c.CreateParticipant:
    key = new_api_key()
    return c.CreateParticipant(
        OPERATOR, participant_id, participant_id, roles, key.key_id, secret_digest(key.secret)
    )


def set_up_market(sequencer: Sequencer, facilities: int = 0) -> int:
    """Participants, the instrument, cash and licences, and ``facilities`` loan facilities
    (see the module docstring).

    Returns the number of commands journalled. Commands are submitted from this one thread,
    so the sequencer applies them in this order.
    """
    journalled = 0

    def execute(command: c.Command) -> Outcome:
        nonlocal journalled
        outcome = sequencer.execute(command)
        assert outcome.command is not None
        journalled += 1
        return outcome

    execute(_participant(ADMIN, ["admin"]))
    execute(_participant(PROVIDER, ["provider"]))
    execute(_participant(REVIEWER, ["reviewer"]))
    create_product = c.CreateProduct(
        PROVIDER, "", "Benchmark data", "A product for the benchmark", "transport", "Zhejiang",
        1_000_000, "2024-01-01", "2025-01-01", "daily",
        {"completeness": 9000, "accuracy": 9000, "timeliness": 8000, "consistency": 9000},
        False, "general", False, "attested", 100_000,
    )  # fmt: skip
    product_id = execute(create_product).result.product_id
    checks = dict.fromkeys(
        ("classification", "desensitisation", "lifecycle_and_retention", "risk_controls"), True
    )
    execute(c.ReviewProduct(REVIEWER, product_id, "approved", checks, "fit to list"))
    list_instrument = c.ListInstrument(
        PROVIDER, SYMBOL, product_id, "non_exclusive", 12, "commercial", "domestic", True,
        1, 1, "continuous", ISSUANCE_CAP_UNITS, FEE_RATE_BP, None, None, "first_price",
    )  # fmt: skip
    execute(list_instrument)
    execute(c.SetPhase(ADMIN, SYMBOL, "continuous"))
    futures: list[Future[Outcome]] = []
    for participant in PARTICIPANTS:
        units = LICENCES_PER_PARTICIPANT_UNITS
        for command in (
            _participant(participant, ["market_maker"]),
            c.Deposit(ADMIN, participant, CASH_PER_PARTICIPANT_MINOR, "setup"),
            c.SubmitOrder(PROVIDER, f"setup-{participant}", 0, SYMBOL, "sell", "limit",
                          MID_PRICE, units, "GTC", None, False, "cancel_newest"),
            c.SubmitOrder(participant, "setup", 0, SYMBOL, "buy", "limit", MID_PRICE, units,
                          "IOC", None, False, "cancel_newest"),
        ):  # fmt: skip
            futures.append(sequencer.submit(command))
    for future in futures:
        assert future.result().command is not None
    journalled += len(futures)
    exchange = sequencer.exchange
    assert exchange.engine.open_order_count() == 0, "the setup's licence sales left orders"
    for participant in PARTICIPANTS:
        [(_symbol, _expires, units, _reserved)] = exchange.holdings_of(participant)
        assert units == LICENCES_PER_PARTICIPANT_UNITS, (participant, units)
    if facilities:
        journalled += open_facilities(execute, exchange, facilities)
    return journalled


def open_facilities(execute: Callable[[c.Command], Outcome], exchange: Exchange, count: int) -> int:
    """``count`` facilities from a lender to the stream's participants (module docstring);
    the number of commands journalled."""
    commands = 0

    def run(command: c.Command) -> Outcome:
        nonlocal commands
        commands += 1
        return execute(command)

    run(_participant(LENDER, ["lender"]))
    run(c.Deposit(ADMIN, LENDER, CASH_PER_PARTICIPANT_MINOR, "capital"))
    run(c.PostValuation(OPERATOR, SYMBOL, MID_PRICE, MID_PRICE * 8 // 10, MID_PRICE * 12 // 10,
                        5, "market"))  # fmt: skip
    maturity = time.time_ns() + 365 * 86_400 * 10**9
    for n in range(count):
        borrower = PARTICIPANTS[n % len(PARTICIPANTS)]
        offer = c.CreateFacility(
            LENDER, 0, borrower, CASH_PER_PARTICIPANT_MINOR, 500, maturity, 5_000, 6_500, 8_000,
            86_400, 3_600, {},
        )  # fmt: skip
        facility_id = run(offer).result.facility_id
        run(c.AcceptFacility(borrower, facility_id))
        [(_symbol, expires, _units, _reserved)] = exchange.holdings_of(borrower)
        run(c.PledgeLicences(borrower, facility_id, 0, SYMBOL, PLEDGED_UNITS, expires))
        value = exchange.collateral.facilities[facility_id].value_minor
        run(c.DrawLoan(borrower, facility_id, value * 4 // 10))
    return commands


# -- the clients ---------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What one client's commands came to."""

    acknowledged: int = 0  # committed: journalled, and the future holds the outcome
    not_journalled: int = 0  # answered as an idempotent retry (none expected)
    refused: Counter[str] = field(default_factory=Counter)  # "<command> <reason>" -> count
    cancels_not_sent: int = 0  # the order to cancel had been refused
    failure: BaseException | None = None

    def add(self, other: Tally) -> None:
        self.acknowledged += other.acknowledged
        self.not_journalled += other.not_journalled
        self.refused.update(other.refused)
        self.cancels_not_sent += other.cancels_not_sent


_ENGINE_REASON = re.compile(r"\(([A-Z_]+)\)$")


def _answer(kind: str, future: Future[Outcome], tally: Tally) -> None:
    error = future.exception()
    if error is None:
        if future.result().command is None:
            tally.not_journalled += 1
        else:
            tally.acknowledged += 1
    elif isinstance(error, ExchangeError):
        # A refusal passed through from the engine names the engine's reason at its end.
        engine_reason = _ENGINE_REASON.search(error.message)
        detail = f" ({engine_reason.group(1)})" if engine_reason else ""
        tally.refused[f"{kind} {error.reason}{detail}"] += 1
    else:
        raise error


def run_client(
    sequencer: Sequencer, plan: list[Step], window: int, go: threading.Barrier, tally: Tally
) -> None:
    """Submit ``plan`` in order, at most ``window`` unanswered; record every answer."""
    try:
        submit = sequencer.submit
        in_flight: deque[tuple[str, Future[Outcome]]] = deque()
        # Engine order id -> its SubmitOrder's future, kept only for orders to be cancelled.
        placed: dict[int, Future[Outcome]] = {}
        go.wait()
        for engine_order_id, order, actor, to_cancel in plan:
            if order is not None:
                future = submit(order)
                if to_cancel:
                    placed[engine_order_id] = future
                in_flight.append(("submit_order", future))
            else:
                submitted = placed.pop(engine_order_id)
                if submitted.exception() is not None:  # waits for the answer
                    tally.cancels_not_sent += 1
                    continue
                order_id = submitted.result().result.order_id
                in_flight.append(("cancel_order", submit(c.CancelOrder(actor, order_id))))
            if len(in_flight) > window:
                _answer(*in_flight.popleft(), tally)
        while in_flight:
            _answer(*in_flight.popleft(), tally)
    except BaseException as error:
        tally.failure = error
        raise


# -- one run -------------------------------------------------------------------------------


class TimedExchange(Exchange):
    """The exchange, counting the wall time of ``execute`` (the sequencer's thread calls it)."""

    def __init__(self) -> None:
        super().__init__()
        self.execute_s = 0.0

    def execute(self, command: c.Command, seq: int, ts_ns: int) -> Outcome:
        started = time.perf_counter()
        try:
            return super().execute(command, seq, ts_ns)
        finally:
            self.execute_s += time.perf_counter() - started


class TimedLedger(Ledger):
    """The ledger, counting the wall time of ``append`` (each one a durable commit)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.append_s = 0.0
        self.appends = 0

    def append(self, **kwargs: Any) -> AppendResult:
        started = time.perf_counter()
        try:
            return super().append(**kwargs)
        finally:
            self.append_s += time.perf_counter() - started
            self.appends += 1


class StoreClock:
    """Wall time of the two halves of ``Ledger.append`` other than its commit: the journal
    (commands serialised, chained and inserted) and the ledger (entries checked, chained and
    inserted, balances updated). Installed around the store's own functions, in this process
    only; each call adds two clock reads (about 0.1 us)."""

    JOURNAL_FUNCTIONS = ("_prepare_command", "_write_commands")
    LEDGER_FUNCTIONS = ("_prepare_entry", "_write_entries")

    def __init__(self) -> None:
        self.journal_s = 0.0
        self.ledger_s = 0.0

    @contextmanager
    def installed(self) -> Iterator[StoreClock]:
        originals = {
            name: getattr(ledger_store, name)
            for name in (*self.JOURNAL_FUNCTIONS, *self.LEDGER_FUNCTIONS)
        }
        for name, function in originals.items():
            setattr(ledger_store, name, self._timed(function, name in self.JOURNAL_FUNCTIONS))
        try:
            yield self
        finally:
            for name, function in originals.items():
                setattr(ledger_store, name, function)

    def _timed(self, function: Callable[..., Any], journal: bool) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                if journal:
                    self.journal_s += time.perf_counter() - started
                else:
                    self.ledger_s += time.perf_counter() - started

        return timed


class GcClock:
    """Wall time spent in the cyclic collector (any thread: it stops them all)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full_collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full_collections += info["generation"] == 2


class ProfiledSequencer(Sequencer):
    """A sequencer whose thread runs under ``profiler`` (cProfile sees one thread only)."""

    def __init__(self, *args: object, profiler: cProfile.Profile, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.profiler = profiler

    def _run(self) -> None:
        self.profiler.runcall(super()._run)


@dataclass(slots=True)
class RunResult:
    seconds: float
    tally: Tally
    batches: int
    trades: int
    journalled: int
    execute_s: float  # the sequencer's time in Exchange.execute
    append_s: float  # ... and in Ledger.append
    appends: int
    journal_s: float  # ... of which in writing the journal (StoreClock)
    ledger_s: float  # ... and in writing the ledger entries
    gc_s: float  # the collector's time, all threads
    full_collections: int


def run_exchange(
    url: str, plans: list[list[Step]], window: int, profiler: cProfile.Profile | None,
    writer: str = "inline", facilities: int = 0,
) -> RunResult:  # fmt: skip
    database = create_engine(url)
    try:
        ledger = TimedLedger.open(database)
        setup = Sequencer(ledger, TimedExchange()).start()
        setup_commands = set_up_market(setup, facilities)
        setup.stop()
        exchange = setup.exchange
        assert isinstance(exchange, TimedExchange)
        setup_fills = sum(len(fills) for fills in exchange.settlement.fills.values())
        # A fresh sequencer on the same state, so that its batch count and its profile cover
        # the timed part only.
        # Batches made durable on the sequencer's thread, as the server does by default, or
        # by a writer process (whose appends the parent's timer cannot see).
        batch_writer = ProcessWriter(ledger) if writer == "process" else None
        if profiler is None:
            sequencer = Sequencer(ledger, exchange, writer=batch_writer).start()
        else:
            sequencer = ProfiledSequencer(
                ledger, exchange, profiler=profiler, writer=batch_writer
            ).start()
        tallies = [Tally() for _ in plans]
        go = threading.Barrier(len(plans) + 1)
        clients = [
            threading.Thread(
                target=run_client, args=(sequencer, plan, window, go, tally), name=f"client-{i}"
            )
            for i, (plan, tally) in enumerate(zip(plans, tallies, strict=True))
        ]
        for client in clients:
            client.start()
        # The stream and the plans are the benchmark's, not the exchange's: frozen, the
        # collector skips them, as it would in a server that never held them.
        gc.collect()
        gc.freeze()
        gc_clock = GcClock()
        gc.callbacks.append(gc_clock)
        exchange.execute_s, ledger.append_s, ledger.appends = 0.0, 0.0, 0
        with StoreClock().installed() as store_clock:
            go.wait()
            started = time.perf_counter()
            for client in clients:
                client.join()
            seconds = time.perf_counter() - started
        gc.callbacks.remove(gc_clock)
        gc.unfreeze()
        sequencer.stop()
        total = Tally()
        for tally in tallies:
            if tally.failure is not None:
                raise RuntimeError("a client failed") from tally.failure
            total.add(tally)
        # Checks, not timed.
        report = verify(ledger)
        assert report.ok, report.first_problem
        housekeeping = sum(
            record.command["verb"] == "housekeeping"
            for record in ledger.journal(setup_commands + 1, report.commands)
        )
        assert report.commands == setup_commands + total.acknowledged + housekeeping, (
            f"journal holds {report.commands} commands; {setup_commands} setup, "
            f"{total.acknowledged} acknowledged and {housekeeping} housekeeping"
        )
        exchange.check_invariants()
        fills = sum(len(fills) for fills in exchange.settlement.fills.values()) - setup_fills
        return RunResult(
            seconds, total, sequencer.batches, fills // 2, report.commands, exchange.execute_s,
            ledger.append_s, ledger.appends, store_clock.journal_s, store_clock.ledger_s,
            gc_clock.seconds, gc_clock.full_collections,
        )  # fmt: skip
    finally:
        database.dispose()


def engine_outcomes(stream: Sequence[SubmitOrder | CancelOrder]) -> Counter[str]:
    """Trades and rejections (by reason) of the bare engine on ``stream``."""
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    counts: Counter[str] = Counter()
    for command in stream:
        for event in engine.apply(command):
            if type(event) is EngineTrade:
                counts["trades"] += 1
            elif type(event) is Rejected:
                counts[f"rejected {event.reason}"] += 1
    return counts


def run(
    operations: int, runs: int, seed: int, threads: int, window: int, database: str | None,
    profile: bool, writer: str = "inline", facilities: int = 0,
) -> None:  # fmt: skip
    t0 = time.perf_counter()
    stream = generate_stream(operations, seed)
    plans = client_plans(stream, threads)
    cancels = sum(isinstance(command, CancelOrder) for command in stream)
    bare = engine_outcomes(stream)
    rejected = ", ".join(f"{k} x {v:,}" for k, v in sorted(bare.items()) if k != "trades")
    print(
        f"stream: {len(stream):,} operations ({cancels:,} cancels), seed {seed}, generated in "
        f"{time.perf_counter() - t0:.1f} s; the bare engine makes {bare['trades']:,} trades "
        f"and rejects: {rejected or 'nothing'}"
    )
    kind = "sqlite" if database is None else "postgresql"
    print(f"database: {kind}; {threads} client threads, window {window} commands each; "
          f"journal writer: {writer}")  # fmt: skip
    exchange_rates: list[float] = []
    engine_rates: list[float] = []
    batch_counts: list[int] = []
    batch_sizes: list[float] = []
    raw_rates: list[float] = []
    shares: list[float] = []
    profiler = cProfile.Profile() if profile else None
    monitored_rates: list[float] = []
    for i in range(runs):
        # With facilities, every other run measures them first, so that neither order wins.
        if facilities and i % 2:
            monitored_rates.append(run_monitored(url_kind=(kind, database), plans=plans,
                                                 window=window, writer=writer,
                                                 facilities=facilities))  # fmt: skip
        with fresh_database(kind, database) as url:
            result = run_exchange(url, plans, window, profiler, writer)
        if facilities and not i % 2:
            monitored_rates.append(run_monitored(url_kind=(kind, database), plans=plans,
                                                 window=window, writer=writer,
                                                 facilities=facilities))  # fmt: skip
        gc.collect()
        engine_seconds, _events = time_engine(stream)
        tally = result.tally
        rate = tally.acknowledged / result.seconds
        exchange_rates.append(rate)
        engine_rates.append(len(stream) / engine_seconds)
        raw_rates.append(raw_journal_rate(tally.acknowledged))
        shares.append(rate / raw_rates[-1])
        batch_counts.append(result.batches)
        batch_sizes.append(tally.acknowledged / result.batches)
        refused = sum(tally.refused.values())
        print(
            f"  run {i + 1}: exchange {rate:>8,.0f} orders/s ({tally.acknowledged:,} "
            f"acknowledged in {result.seconds:.2f} s, {refused:,} refused, "
            f"{tally.cancels_not_sent:,} cancels not sent, {result.trades:,} trades); "
            f"{result.batches:,} batches, {batch_sizes[-1]:.1f} commands/batch; "
            f"engine {engine_rates[-1]:,.0f} ops/s"
        )
        for reason, count in sorted(tally.refused.items()):
            print(f"      refused: {reason} x {count:,}")
        if tally.not_journalled:
            print(f"      answered as retries, not journalled: {tally.not_journalled:,}")
        per_command_us = 1e6 / tally.acknowledged
        print(
            f"      sequencer: Exchange.execute {result.execute_s:.2f} s "
            f"({result.execute_s * per_command_us:.0f} us/command), Ledger.append "
            + (f"{result.append_s:.2f} s ({result.append_s * 1e3 / result.appends:.1f} ms x "
               f"{result.appends} commits, {result.append_s * per_command_us:.0f} us/command); "
               if result.appends else "in the writer process; ")
            +
            f"garbage collector (stops every thread) {result.gc_s:.2f} s "
            f"({result.full_collections} full collections)"
        )
        if result.appends:
            print(
                f"      per command: execute {result.execute_s * per_command_us:.1f} us, "
                f"journal {result.journal_s * per_command_us:.1f} us, ledger entries "
                f"{result.ledger_s * per_command_us:.1f} us, commit and the rest of the append "
                f"{(result.append_s - result.journal_s - result.ledger_s) * per_command_us:.1f}"
                f" us"
            )
        print(
            f"      raw hash-chained journal insert (sqlite3, WAL, synchronous=FULL, "
            f"{ROWS_PER_COMMIT} rows a commit): {raw_rates[-1]:,.0f} rows/s; the exchange is "
            f"{shares[-1]:.3f} of it"
        )
        print(
            f"      checks: verify ok, journal {result.journalled:,} commands = setup + "
            f"acknowledged, invariants hold"
        )
    exchange_median = statistics.median(exchange_rates)
    engine_median = statistics.median(engine_rates)
    met = "met" if exchange_median >= TARGET_ORDERS_PER_S else "NOT met"
    print(
        f"exchange median: {exchange_median:,.0f} orders/s durable on {kind}; "
        f"{statistics.median(batch_counts):,.0f} batches of "
        f"{statistics.median(batch_sizes):.1f} commands (medians)"
    )
    print(f"engine   median: {engine_median:,.0f} ops/s")
    print(
        f"ratio exchange/engine (median of {runs}): {exchange_median / engine_median:.3f} "
        f"(the exchange is {engine_median / exchange_median:.1f}x slower)"
    )
    print(f"target {TARGET_ORDERS_PER_S:,} orders/s: {met}")
    share = statistics.median(shares)
    print(
        f"raw journal insert median: {statistics.median(raw_rates):,.0f} rows/s; the exchange's "
        f"share of it (median of {runs}): {share:.3f} (target >= {TARGET_SHARE_OF_RAW_JOURNAL}: "
        f"{'met' if share >= TARGET_SHARE_OF_RAW_JOURNAL else 'NOT met'})"
    )
    if facilities:
        monitored = statistics.median(monitored_rates)
        print(
            f"with {facilities:,} facilities live: median {monitored:,.0f} orders/s, "
            f"{monitored / exchange_median:.3f} of the rate without (target >= 0.90: "
            f"{'met' if monitored >= 0.9 * exchange_median else 'NOT met'})"
        )
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(PROFILE_TOP_FUNCTIONS)
        print("the sequencer's thread by cumulative time (cProfile, every run):")
        print(out.getvalue())


def raw_journal_rate(rows: int) -> float:
    """Rows a second of the raw hash-chained journal insert (``loadtests.raw_journal``), on a
    fresh SQLite file, for as many rows as the exchange run acknowledged commands."""
    with tempfile.TemporaryDirectory() as directory:
        return rows / time_raw_journal(Path(directory) / "raw.db", raw_journal_rows(rows))


def run_monitored(
    url_kind: tuple[str, str | None], plans: list[list[Step]], window: int, writer: str,
    facilities: int,
) -> float:  # fmt: skip
    """One run with ``facilities`` live; its rate, printed."""
    with fresh_database(*url_kind) as url:
        result = run_exchange(url, plans, window, None, writer, facilities)
    rate = result.tally.acknowledged / result.seconds
    print(f"  with {facilities:,} facilities live: exchange {rate:>8,.0f} orders/s "
          f"({result.tally.acknowledged:,} acknowledged in {result.seconds:.2f} s)")  # fmt: skip
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--window", type=int, default=64, help="unanswered commands per client")
    parser.add_argument(
        "--database",
        help="PostgreSQL server URL; the run uses a fresh schema (default: SQLite temp file)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the sequencer thread")
    parser.add_argument(
        "--writer", choices=("inline", "process"), default="inline",
        help="journal writer: on the sequencer's thread, as the server runs by default, or "
        "a process of its own (DATAEX_JOURNAL_WRITER=process)",
    )  # fmt: skip
    parser.add_argument(
        "--facilities", type=int, default=0,
        help="also run each time with this many loan facilities live, and compare",
    )  # fmt: skip
    parser.add_argument(
        "--serve-gc",
        action="store_true",
        help="set the collector's threshold as `dataex serve` does (default: Python's)",
    )
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}")
    if args.serve_gc:
        gc.set_threshold(GC_THRESHOLD_OBJECTS, 50, 100)
    print(f"collector thresholds {gc.get_threshold()}")
    run(
        args.operations, args.runs, args.seed, args.threads, args.window, args.database,
        args.profile, args.writer, args.facilities,
    )  # fmt: skip


if __name__ == "__main__":
    main()
