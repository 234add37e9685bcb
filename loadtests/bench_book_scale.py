"""The engine's cost per operation as its book grows, beside a book keyed by a ``SortedDict``.

    python -m loadtests.bench_book_scale            # the full sweep, under a minute
    python -m loadtests.bench_book_scale --quick    # small books, a few seconds: checks it works

Two sweeps of one instrument's book: 10 to 100,000 price levels a side (4 resting orders a
level), and 1,000 to 1,000,000 resting orders (over 100 levels a side). Every resting order
is for one unit; bid levels sit on even ticks below the middle, ask levels on even ticks above.
On each book, in batches of ``--batch`` operations, each timed as a whole (median of
``--repeats`` batches, in microseconds per operation):

- add: a limit order at an existing level, drawn uniformly over the book's levels;
- add, new level: a limit order at an odd tick inside the book's range, so it opens a level;
- cancel: the orders of the first batch, in random order (their levels stay);
- cancel, level goes: the orders of the second, each the last of its level;
- aggressive match: market orders, half buys and half sells, each taking one resting order at
  the touch (orders consumed are put back, untimed, after the batch).

The engine (``matching.Engine``, with every feature on and every event emitted) and the
reference book (``loadtests/sorteddict_book.py``: the same lazy cancels and FIFO queues, levels
keyed by a ``SortedDict``) run the same commands, one after the other, on books built from the
same commands. Each book is built, then frozen out of the cyclic collector (``gc.freeze``), so
that a full collection over a million orders does not land in one batch and not another.
Writes a table to stdout and a plot to ``--plot`` (default ``docs/img/book_scale.png``).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.sorteddict_book import SortedDictBook
from matching import (
    AddInstrument,
    CancelOrder,
    Engine,
    InstrumentSpec,
    OrderType,
    Phase,
    Side,
    SubmitOrder,
    TimeInForce,
    is_compiled,
)

SYMBOL = "SCALE.NX12.COM"
MID_PRICE = 1_000_000  # room for 100,000 levels two ticks apart below it
MAKERS = [f"m{i}" for i in range(50)]
TAKER = "t"  # never a maker: no self-trade prevention in the way
OPERATIONS = ("add", "add, new level", "cancel", "cancel, level goes", "aggressive match")
BOOKS = ("engine", "SortedDict book")
ORDERS_PER_LEVEL = 4  # in the sweep over levels
LEVELS_PER_SIDE = 100  # in the sweep over orders

Command = SubmitOrder | CancelOrder


@dataclass(frozen=True)
class Shape:
    """A book to measure: price levels a side and resting orders in all."""

    levels_per_side: int
    resting_orders: int


@dataclass(frozen=True)
class Plan:
    levels_sweep: tuple[int, ...]
    orders_sweep: tuple[int, ...]
    batch: int
    repeats: int


FULL = Plan((10, 100, 1_000, 10_000, 100_000), (1_000, 10_000, 100_000, 1_000_000), 2_000, 7)
QUICK = Plan((10, 100, 1_000), (1_000, 10_000), 200, 3)


def level_price(side: Side, index: int) -> int:
    """The price of the ``index``-th level from the touch (0 is the best)."""
    return MID_PRICE - 2 * (index + 1) if side is Side.BUY else MID_PRICE + 2 * (index + 1)


class Flow:
    """Command factory with one id and sequence counter for every book built from it."""

    def __init__(self) -> None:
        self.next_id = 1

    def limit(self, side: Side, price: int, participant: str) -> SubmitOrder:
        order_id = self.next_id
        self.next_id += 1
        return SubmitOrder(
            order_id, order_id, order_id, participant, SYMBOL, side, 1, price_minor=price
        )

    def market(self, side: Side) -> SubmitOrder:
        order_id = self.next_id
        self.next_id += 1
        protection = 2 * MID_PRICE if side is Side.BUY else None
        return SubmitOrder(
            order_id, order_id, order_id, TAKER, SYMBOL, side, 1, price_minor=protection,
            order_type=OrderType.MARKET, tif=TimeInForce.IOC,
        )  # fmt: skip


def build_commands(shape: Shape, flow: Flow) -> list[Command]:
    """Resting orders spread round-robin over the levels of both sides."""
    levels = 2 * shape.levels_per_side
    commands: list[Command] = []
    for i in range(shape.resting_orders):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        index = (i // 2) % shape.levels_per_side
        commands.append(flow.limit(side, level_price(side, index), MAKERS[i % len(MAKERS)]))
    assert shape.resting_orders >= levels, "fewer orders than levels"
    return commands


def batches(shape: Shape, flow: Flow, batch: int, rng: random.Random) -> dict[str, list[Command]]:
    """One batch of commands for each operation, in the order they are to run."""

    def random_side() -> Side:
        return Side.BUY if rng.random() < 0.5 else Side.SELL

    adds = []
    for _ in range(batch):
        side = random_side()
        adds.append(flow.limit(side, level_price(side, rng.randrange(shape.levels_per_side)), "a"))
    # Odd ticks between the book's levels, each used once so each add opens its own level.
    new_prices = {
        Side.BUY: rng.sample(range(shape.levels_per_side), batch // 2),
        Side.SELL: rng.sample(range(shape.levels_per_side), batch - batch // 2),
    }
    opens = [
        flow.limit(side, level_price(side, index) + (1 if side is Side.BUY else -1), "a")
        for side, indexes in new_prices.items()
        for index in indexes
    ]
    rng.shuffle(opens)
    cancels: list[Command] = [CancelOrder(o.order_id, o.order_id, o.order_id, "a") for o in adds]
    rng.shuffle(cancels)
    closes: list[Command] = [CancelOrder(o.order_id, o.order_id, o.order_id, "a") for o in opens]
    rng.shuffle(closes)
    takes: list[Command] = [flow.market(Side.BUY if i % 2 else Side.SELL) for i in range(batch)]
    return {
        "add": list(adds),
        "cancel": cancels,
        "add, new level": list(opens),
        "cancel, level goes": closes,
        "aggressive match": takes,
    }


def refills(shape: Shape, flow: Flow, batch: int) -> list[Command]:
    """Put back the orders the aggressive batch takes: the first ones of each side's touch.

    The book's levels are filled round-robin, so level ``j`` holds ``per_level`` orders or one
    more; takers consume them best level first, and the refills rest at the back of the same
    levels, which keeps every level's count.
    """
    commands: list[Command] = []
    for side in (Side.BUY, Side.SELL):
        to_refill = batch // 2
        per_side = shape.resting_orders // 2 + (shape.resting_orders % 2 if side is Side.BUY else 0)
        for index in range(shape.levels_per_side):
            count = per_side // shape.levels_per_side + (index < per_side % shape.levels_per_side)
            for _ in range(min(count, to_refill)):
                commands.append(flow.limit(side, level_price(side, index), MAKERS[0]))
            to_refill -= min(count, to_refill)
            if not to_refill:
                break
    return commands


def engine_apply() -> Callable[[Command], object]:
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    return engine.apply


def reference_apply() -> Callable[[Command], object]:
    return SortedDictBook().apply


def timed(apply: Callable[[Command], object], commands: Sequence[Command]) -> float:
    """Microseconds per command."""
    start = time.perf_counter()
    for command in commands:
        apply(command)
    return (time.perf_counter() - start) / len(commands) * 1e6


def measure(shape: Shape, plan: Plan, seed: int) -> dict[str, dict[str, float]]:
    """Median microseconds per operation, by book then by operation."""
    flow = Flow()
    build = build_commands(shape, flow)
    rng = random.Random(seed)
    batch = min(plan.batch, shape.levels_per_side, shape.resting_orders // 2)
    rounds = [
        (batches(shape, flow, batch, rng), refills(shape, flow, batch)) for _ in range(plan.repeats)
    ]
    results: dict[str, dict[str, float]] = {}
    for name, make in (("engine", engine_apply), ("SortedDict book", reference_apply)):
        apply = make()
        for command in build:
            apply(command)
        gc.collect()
        gc.freeze()
        samples: dict[str, list[float]] = {op: [] for op in OPERATIONS}
        for ops, refill in rounds:
            for op, commands in ops.items():
                samples[op].append(timed(apply, commands))
            for command in refill:
                apply(command)
        results[name] = {op: statistics.median(values) for op, values in samples.items()}
        del apply
        gc.unfreeze()
        gc.collect()
    return results


def table(rows: list[tuple[str, Shape, dict[str, dict[str, float]]]]) -> str:
    header = "| sweep | levels a side | resting orders | book | " + " | ".join(OPERATIONS) + " |"
    lines = [header, "|" + " --- |" * 4 + " ---: |" * len(OPERATIONS)]
    for sweep, shape, results in rows:
        for book in BOOKS:
            cells = " | ".join(f"{results[book][op]:.2f}" for op in OPERATIONS)
            lines.append(
                f"| {sweep} | {shape.levels_per_side:,} | {shape.resting_orders:,} | {book} | "
                f"{cells} |"
            )
    return "\n".join(lines)


def plot(rows: list[tuple[str, Shape, dict[str, dict[str, float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    figure, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    colours = dict(zip(OPERATIONS, ("C0", "C1", "C2", "C3", "C4"), strict=True))
    for axis, sweep, x_label in (
        (axes[0], "levels", f"price levels a side ({ORDERS_PER_LEVEL} orders a level)"),
        (axes[1], "orders", f"resting orders ({LEVELS_PER_SIDE} levels a side)"),
    ):
        chosen = [(shape, results) for name, shape, results in rows if name == sweep]
        xs = [s.levels_per_side if sweep == "levels" else s.resting_orders for s, _ in chosen]
        for op in OPERATIONS:
            for book, style in zip(BOOKS, ("-", "--"), strict=True):
                ys = [results[book][op] for _, results in chosen]
                axis.plot(xs, ys, style, marker="o", color=colours[op], label=f"{op} ({book})")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.set_xlabel(x_label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("µs per operation (median)")
    axes[1].legend(fontsize=7, loc="upper left")
    build = "compiled" if is_compiled() else "pure Python"
    figure.suptitle(f"Cost per operation as the book grows: engine ({build}, solid) "
                    "against a SortedDict-keyed book (dashed)")  # fmt: skip
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(plan: Plan, seed: int, plot_path: Path) -> None:
    shapes = [("levels", Shape(n, 2 * n * ORDERS_PER_LEVEL)) for n in plan.levels_sweep]
    shapes += [("orders", Shape(LEVELS_PER_SIDE, n)) for n in plan.orders_sweep]
    rows = []
    for sweep, shape in shapes:
        start = time.perf_counter()
        results = measure(shape, plan, seed)
        rows.append((sweep, shape, results))
        print(
            f"  {shape.levels_per_side:>7,} levels a side, {shape.resting_orders:>9,} orders: "
            f"done in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
    print(table(rows))
    plot(rows, plot_path)
    print(f"plot: {plot_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small books only, in seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plot", type=Path, default=Path("docs/img/book_scale.png"))
    args = parser.parse_args(argv)
    build = "compiled (mypyc)" if is_compiled() else "pure Python"
    print(f"python {sys.version.split()[0]}, matching engine {build}")
    run(QUICK if args.quick else FULL, args.seed, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
