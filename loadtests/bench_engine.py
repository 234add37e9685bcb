"""Benchmark of the matching engine against a naive reference book, in the same process.

    python -m loadtests.bench_engine                 # 300,000 operations, 5 runs each
    python -m loadtests.bench_engine --memory        # peak memory for 1,000,000 resting orders
    python -m loadtests.bench_engine --breakdown     # microseconds per kind of operation
    python -m loadtests.bench_engine --only engine   # one book alone, for an outside profiler

The stream is generated first (seeded), then timed: about 60% limit orders around the touch
(some 17% of them crossing), 25% cancels of live orders, 15% market orders, with the book
held near 4,000 resting orders over about 50 levels a side. The engine runs with every
feature on (validation, self-trade prevention, GTD and post-only orders, market data events);
the naive book (``loadtests/naive_engine.py``) is a ``SortedDict`` of price to ``deque``.
Runs alternate between the two; the report gives each median and their ratio.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence

from loadtests.naive_engine import NaiveBook
from matching import (
    AddInstrument,
    CancelOrder,
    Engine,
    InstrumentSpec,
    OrderType,
    Phase,
    SelfTradePrevention,
    Side,
    SubmitOrder,
    TimeInForce,
    Trade,
    is_compiled,
)

SYMBOL = "BENCH.NX12.COM"
MID_PRICE = 10_000
TARGET_RESTING_ORDERS = 4_000
LEVELS_PER_SIDE = 50
PARTICIPANTS = [f"p{i}" for i in range(200)]


def generate_stream(operations: int, seed: int) -> list[SubmitOrder | CancelOrder]:
    """A seeded order flow; live orders are tracked by running the engine alongside."""
    rng = random.Random(seed)
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    live: list[int] = []  # ids of resting orders (stale ids are pruned when drawn)
    position: dict[int, int] = {}
    commands: list[SubmitOrder | CancelOrder] = []
    next_id = 1

    def push(command: SubmitOrder | CancelOrder) -> None:
        commands.append(command)
        for event in engine.apply(command):
            if isinstance(event, Trade):
                for order_id in (event.buy_order_id, event.sell_order_id):
                    if engine.open_order(order_id) is None:
                        position.pop(order_id, None)
        if isinstance(command, SubmitOrder) and engine.open_order(command.order_id) is not None:
            position[command.order_id] = len(live)
            live.append(command.order_id)

    def owner_of(order_id: int) -> str:
        order = engine.open_order(order_id)
        assert order is not None
        return order.participant

    def touch() -> tuple[int, int]:
        (bids, asks) = engine.depth(SYMBOL, 1)
        bid = bids[0][0] if bids else MID_PRICE - 1
        ask = asks[0][0] if asks else MID_PRICE + 1
        return bid, ask

    # Build the book up to its working size: resting limit orders over 50 levels a side.
    while engine.open_order_count() < TARGET_RESTING_ORDERS:
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        offset = rng.randrange(LEVELS_PER_SIDE)
        price = MID_PRICE - 1 - offset if side is Side.BUY else MID_PRICE + 1 + offset
        push(_limit(next_id, rng, side, price, len(commands)))
        next_id += 1

    while len(commands) < operations:
        draw = rng.random()
        seq = len(commands)
        if draw < 0.25:  # cancel a live order
            while True:
                order_id = live[rng.randrange(len(live))]
                if engine.open_order(order_id) is not None:
                    break
                live.remove(order_id)
            push(CancelOrder(seq, seq, order_id, owner_of(order_id)))
            continue
        bid, ask = touch()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if draw < 0.40:  # a market order, sized to hold the book near its target size
            pressure = engine.open_order_count() / TARGET_RESTING_ORDERS
            quantity = max(1, round(rng.randint(1, 12) * pressure**3))
            protection = MID_PRICE * 2 if side is Side.BUY else None
            push(
                SubmitOrder(seq, seq, next_id, rng.choice(PARTICIPANTS), SYMBOL, side, quantity,
                            price_minor=protection, order_type=OrderType.MARKET,
                            tif=TimeInForce.IOC)
            )  # fmt: skip
        elif rng.random() < 0.17:  # a crossing limit order
            price = ask + rng.randrange(3) if side is Side.BUY else bid - rng.randrange(3)
            push(_limit(next_id, rng, side, price, seq))
        else:  # a passive limit order near the touch
            offset = min(int(rng.expovariate(1 / 8)), LEVELS_PER_SIDE - 1)
            price = bid - offset if side is Side.BUY else ask + offset
            push(_limit(next_id, rng, side, price, seq))
        next_id += 1
        if len(live) > 4 * TARGET_RESTING_ORDERS:
            live = [i for i in live if engine.open_order(i) is not None]
    return commands


def _limit(order_id: int, rng: random.Random, side: Side, price: int, seq: int) -> SubmitOrder:
    draw = rng.random()
    tif, expire_ts, post_only = TimeInForce.GTC, None, False
    if draw < 0.05:
        tif, expire_ts = TimeInForce.GTD, 10**15
    elif draw < 0.10:
        tif = TimeInForce.DAY
    elif draw < 0.13:
        post_only = True
    stp = (
        SelfTradePrevention.CANCEL_OLDEST if rng.random() < 0.2
        else SelfTradePrevention.CANCEL_NEWEST
    )  # fmt: skip
    return SubmitOrder(
        seq, seq, order_id, rng.choice(PARTICIPANTS), SYMBOL, side, rng.randint(1, 10),
        price_minor=max(1, price), tif=tif, expire_ts=expire_ts, post_only=post_only, stp=stp,
    )  # fmt: skip


def time_engine(stream: Sequence[SubmitOrder | CancelOrder]) -> tuple[float, int]:
    apply = _fresh_engine().apply
    events = 0
    start = time.perf_counter()
    for command in stream:
        events += len(apply(command))
    return time.perf_counter() - start, events


def time_naive(stream: Sequence[SubmitOrder | CancelOrder]) -> tuple[float, int]:
    book = NaiveBook()
    apply = book.apply
    events = 0
    start = time.perf_counter()
    for command in stream:
        events += len(apply(command))
    return time.perf_counter() - start, events


def run(operations: int, runs: int, seed: int, only: str | None = None) -> None:
    """Time both books, alternating, or ``only`` one of them (``perf`` or ``py-spy`` attached
    from outside then sees that book's work and nothing of the other's)."""
    t0 = time.perf_counter()
    stream = generate_stream(operations, seed)
    summary = describe(stream)
    print(f"stream: {summary} (generated in {time.perf_counter() - t0:.1f} s)")
    timings: dict[str, list[float]] = {"engine": [], "naive": []}
    runners: dict[str, Callable[..., tuple[float, int]]] = {
        "engine": time_engine,
        "naive": time_naive,
    }
    for i in range(runs):
        order = ("engine", "naive") if i % 2 == 0 else ("naive", "engine")
        for name in order if only is None else (only,):
            gc.collect()
            seconds, events = runners[name](stream)
            timings[name].append(seconds)
            print(
                f"  run {i + 1} {name:6s} {len(stream) / seconds:>10,.0f} ops/s  ({events} events)"
            )
    if only is not None:
        print(f"{only} median: {len(stream) / statistics.median(timings[only]):,.0f} ops/s")
        return
    engine_s = statistics.median(timings["engine"])
    naive_s = statistics.median(timings["naive"])
    print(f"engine median: {len(stream) / engine_s:,.0f} ops/s")
    print(f"naive  median: {len(stream) / naive_s:,.0f} ops/s")
    print(f"ratio engine/naive (median of {runs}): {naive_s / engine_s:.2f}x")


def describe(stream: Sequence[SubmitOrder | CancelOrder]) -> str:
    cancels = sum(isinstance(c, CancelOrder) for c in stream)
    markets = sum(isinstance(c, SubmitOrder) and c.order_type is OrderType.MARKET for c in stream)
    limits = len(stream) - cancels - markets
    engine = _fresh_engine()
    crossing = 0
    for command in stream:
        events = engine.apply(command)
        if isinstance(command, SubmitOrder) and command.order_type is OrderType.LIMIT:
            crossing += any(isinstance(e, Trade) for e in events)
    bids, asks = engine.depth(SYMBOL, 10_000)
    return (
        f"{len(stream):,} ops: {limits / len(stream):.0%} limit ({crossing / limits:.0%} of them "
        f"trading), {cancels / len(stream):.0%} cancel, {markets / len(stream):.0%} market; "
        f"end book {engine.open_order_count():,} orders over {len(bids)} bid / {len(asks)} ask "
        f"levels"
    )


def breakdown(operations: int, runs: int, seed: int) -> None:
    """Median microseconds per operation, by kind, for both books (collector paused).

    Each ``apply`` is timed on its own, so the figures include ~0.1 us of timer overhead.
    """
    stream = generate_stream(operations, seed)
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    kinds = []
    for command in stream:
        trades = any(isinstance(e, Trade) for e in engine.apply(command))
        kind = "cancel" if isinstance(command, CancelOrder) else command.order_type.value
        kinds.append(kind + (" that trades" if trades else ""))
    counts = Counter(kinds)
    books: dict[str, Callable[[], Callable[..., object]]] = {
        "engine": lambda: _fresh_engine().apply,
        "naive": lambda: NaiveBook().apply,
    }
    for name, make in books.items():
        samples: dict[str, list[float]] = {}
        for _ in range(runs):
            apply = make()
            spent: dict[str, float] = {}
            clock = time.perf_counter
            gc.disable()
            for command, kind in zip(stream, kinds, strict=True):
                start = clock()
                apply(command)
                spent[kind] = spent.get(kind, 0.0) + clock() - start
            gc.enable()
            for kind, seconds in spent.items():
                samples.setdefault(kind, []).append(seconds / counts[kind] * 1e6)
        cells = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(samples.items()))
        print(f"{name:6s} us/op: {cells}")


def _fresh_engine() -> Engine:
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    return engine


def memory(resting_orders: int) -> None:
    """Peak resident memory of an engine holding ``resting_orders`` orders."""
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    rng = random.Random(1)
    for order_id in range(1, resting_orders + 1):
        side = Side.BUY if order_id % 2 else Side.SELL
        offset = rng.randrange(1000)
        price = MID_PRICE - 1 - offset if side is Side.BUY else MID_PRICE + 1 + offset
        engine.apply(
            SubmitOrder(order_id, order_id, order_id, PARTICIPANTS[order_id % 200], SYMBOL, side,
                        rng.randint(1, 10), price_minor=price)
        )  # fmt: skip
    after_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert engine.open_order_count() == resting_orders
    growth_mib = (after_kib - before_kib) / 1024
    print(f"{resting_orders:,} resting orders: peak RSS {after_kib / 1024:.0f} MiB")
    print(f"  +{growth_mib:.0f} MiB over the interpreter and imports")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--memory", action="store_true", help="measure memory instead")
    parser.add_argument("--breakdown", action="store_true", help="time each kind of operation")
    parser.add_argument("--resting-orders", type=int, default=1_000_000)
    parser.add_argument(
        "--only", choices=("engine", "naive"), help="time one book alone (for a profiler)"
    )
    args = parser.parse_args(argv)
    build = "compiled (mypyc)" if is_compiled() else "pure Python"
    print(f"python {sys.version.split()[0]}, matching engine {build}")
    if args.memory:
        memory(args.resting_orders)
    elif args.breakdown:
        breakdown(args.operations, args.runs, args.seed)
    else:
        run(args.operations, args.runs, args.seed, args.only)


if __name__ == "__main__":
    main()
