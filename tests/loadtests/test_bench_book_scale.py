"""The book-scale benchmark runs end to end in its quick mode and writes its plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.bench_book_scale import (
    OPERATIONS,
    QUICK,
    SYMBOL,
    Flow,
    Shape,
    build_commands,
    main,
    refills,
)
from loadtests.sorteddict_book import SortedDictBook
from matching import AddInstrument, Engine, InstrumentSpec, Phase, Side


def test_quick_run_prints_every_operation_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "book_scale.png"
    assert main(["--quick", "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| sweep"))
    assert all(operation in header for operation in OPERATIONS)
    rows = [line for line in out.splitlines() if line.startswith(("| levels", "| orders"))]
    shapes = len(QUICK.levels_sweep) + len(QUICK.orders_sweep)
    assert len(rows) == 2 * shapes  # the engine and the reference book for each shape


def test_refills_put_back_what_the_aggressive_batch_takes() -> None:
    shape = Shape(levels_per_side=3, resting_orders=20)
    flow = Flow()
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    reference = SortedDictBook()
    for command in build_commands(shape, flow):
        engine.apply(command)
        reference.apply(command)
    before = engine.depth(SYMBOL, 10)
    takes = [flow.market(Side.BUY if i % 2 else Side.SELL) for i in range(8)]
    for command in takes + refills(shape, flow, 8):
        engine.apply(command)
        reference.apply(command)
    engine.check_invariants()
    assert engine.depth(SYMBOL, 10) == before
    bids = [(key, level.total) for key, level in reversed(reference.bids.items())]
    asks = [(-key, level.total) for key, level in reversed(reference.asks.items())]
    assert (bids, asks) == before
