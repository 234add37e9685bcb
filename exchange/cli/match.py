"""``dataex match``: run an order-flow file through the matching engine, no database.

The imperative shell around ``exchange.orderflow`` and ``matching.Engine``: it reads the
files, applies each command, streams the outputs and prints a summary. Outputs are written
beside their targets under temporary names and moved into place only when the whole file
has run, so a bad row leaves no half-written trades file behind.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from exchange.cli.files import check_distinct, fail
from exchange.orderflow import (
    BOOK_COLUMNS,
    TRADE_COLUMNS,
    FlowTally,
    Listing,
    OrderFlowError,
    book_rows,
    event_line,
    read_instruments,
    read_order_flow,
    trade_row,
)
from exchange.whole_files import replacing_text
from matching import Engine, Trade

T = TypeVar("T")


def match(
    orders: Annotated[
        Path,
        typer.Argument(metavar="ORDERS.csv", help="Order-flow file (docs/order-flow-format.md)."),
    ],
    trades_out: Annotated[
        Path, typer.Option("--trades-out", metavar="TRADES.csv", help="Write the trades here.")
    ],
    book_out: Annotated[
        Path | None,
        typer.Option("--book-out", metavar="BOOK.csv", help="Write the final book here."),
    ] = None,
    events_out: Annotated[
        Path | None,
        typer.Option(
            "--events-out", metavar="EVENTS.jsonl", help="Write every event here, one per line."
        ),
    ] = None,
    instruments: Annotated[
        Path | None,
        typer.Option(
            "--instruments",
            metavar="INSTRUMENTS.csv",
            help="Tick, lot, mode, band and opening phase per symbol.",
        ),
    ] = None,
) -> None:
    """Match an order-flow file and write its trades (and optionally the book and events).

    Exits 2, with one 'error:' line naming the file and line, when an input cannot be read.
    Orders the engine rejects are not errors: they are counted and processing goes on.
    """
    outputs = [p for p in (trades_out, book_out, events_out) if p is not None]
    check_distinct([orders, *([instruments] if instruments else []), *outputs])
    for output in outputs:
        if not output.parent.is_dir():
            fail(f"{output}: directory {output.parent} does not exist")
    listings: dict[str, Listing] = {}
    if instruments is not None:
        listings = _guarded(instruments, lambda: read_instruments(instruments))
    engine = Engine()
    tally = FlowTally()

    def run() -> None:
        with ExitStack() as stack:
            trades_file = stack.enter_context(replacing_text(trades_out))
            trades = csv.writer(trades_file, lineterminator="\n")
            trades.writerow(TRADE_COLUMNS)
            events = None if events_out is None else stack.enter_context(replacing_text(events_out))
            for line, command in read_order_flow(orders, listings):
                try:
                    emitted = engine.apply(command)
                except Exception:
                    # An exception from the pure engine is a bug in it, not in the file: say
                    # where it happened and keep the traceback for whoever fixes it.
                    typer.echo(f"error: the engine failed on {orders}:{line}: {command}", err=True)
                    raise
                tally.record(line, command, emitted)
                trades.writerows(trade_row(e) for e in emitted if isinstance(e, Trade))
                if events is not None:
                    events.write("".join(event_line(line, command.seq, e) for e in emitted))
            if book_out is not None:
                book_file = stack.enter_context(replacing_text(book_out))
                book = csv.writer(book_file, lineterminator="\n")
                book.writerow(BOOK_COLUMNS)
                book.writerows(book_rows(engine))

    _guarded(orders, run)
    for text in summary_lines(tally, engine, str(orders)):
        typer.echo(text)


def summary_lines(tally: FlowTally, engine: Engine, source: str) -> Iterator[str]:
    """The end-of-run summary as plain text lines."""
    yield f"rows:     {tally.rows}"
    yield f"orders:   {tally.orders_accepted} accepted, {tally.orders_rejected} rejected"
    yield f"trades:   {tally.trades}, volume {tally.volume}"
    if tally.rejections:
        yield "rejections by reason:"
        for reason, count in sorted(tally.rejections.items()):
            yield f"  {reason.value:<45} {count}"
        listed = len(tally.first_rejections)
        total = sum(tally.rejections.values())
        yield f"rejected rows{f' (first {listed} of {total})' if listed < total else ''}:"
        for line, rejected in tally.first_rejections:
            order = "" if rejected.order_id is None else f"order {rejected.order_id} "
            yield f"  {source}:{line}: {order}{rejected.reason.value}"
    yield f"{'symbol':<24} {'phase':<10} {'trades':>7} {'volume':>9} {'last price':>11}"
    for symbol in engine.symbols():
        symbol_tally = tally.symbols.get(symbol)
        trades = symbol_tally.trades if symbol_tally else 0
        volume = symbol_tally.volume if symbol_tally else 0
        last = symbol_tally.last_price if symbol_tally else None
        last_text = "-" if last is None else str(last)
        phase = engine.phase(symbol).value
        yield f"{symbol:<24} {phase:<10} {trades:>7} {volume:>9} {last_text:>11}"


def _guarded(path: Path, action: Callable[[], T]) -> T:
    """Run ``action`` that reads ``path``, turning file errors into one line and exit 2."""
    try:
        return action()
    except OrderFlowError as error:
        fail(f"{path}:{error.line}: {error.message}")
    except OSError as error:
        # A failed read names its file; a failed write (a full disk) may name none.
        fail(f"{error.filename}: {error.strerror}" if error.filename else str(error))
