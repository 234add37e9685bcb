"""A simple market maker on the dataex demo, built on the Python client (exchange.client).

It quotes a bid and an ask around a reference price, the book's mid or, in a book without
one, the last trade or else the market-approach valuation of the instrument's product, and
re-quotes whenever one of its quotes fills or the reference moves by a tick. Its inventory
is bounded: it stops bidding at ``--max-inventory`` licence units and asks only for units it
holds. Quotes are post-only, so it never takes liquidity; a quote that would cross is skipped
until the next re-quote. It runs for at most ``--seconds`` and sends at most ``--max-orders``
orders, then cancels what it left in the book and prints a summary.

Run the demo (``dataex serve --demo``), which prints a guest key, then::

    python examples/market_maker.py --key 'dxk_....'   # or DATAEX_API_KEY=... python ...

Exit status: 0 after a run, 2 for a bad argument or an exchange that refuses to start it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from exchange.client import ApiError, Client, Instrument, Order

DEMO_URL = "http://127.0.0.1:8000"
DEMO_SYMBOL = "ZJPARK.FLOW.NX12.COM"
EXIT_BAD_INPUT = 2


@dataclass(frozen=True, slots=True)
class Settings:
    url: str
    api_key: str
    symbol: str
    seconds: float
    max_orders: int
    half_spread_ticks: int
    quote_lots: int
    max_inventory_units: int
    requote_s: float  # the longest wait for a fill before the reference is read again


@dataclass(slots=True)
class Run:
    """What the run did, for its summary."""

    orders_sent: int = 0
    quotes_skipped: int = 0
    fills: int = 0
    bought_units: int = 0
    sold_units: int = 0
    resting: list[Order] = field(default_factory=list)


def to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    """``price`` on the tick grid, rounded down for a bid or up for an ask.

    >>> to_tick(Decimal("120.37"), Decimal("0.50"), ROUND_FLOOR)
    Decimal('120.00')
    >>> to_tick(Decimal("120.37"), Decimal("0.50"), ROUND_CEILING)
    Decimal('120.50')
    """
    return (price / tick).to_integral_value(rounding) * tick


def reference_price(client: Client, instrument: Instrument) -> Decimal:
    """The book's mid, else the last trade, else the product's valuation under the
    instrument's terms."""
    ticker = client.ticker(instrument["symbol"])
    if ticker["mid"] is not None:
        return ticker["mid"]
    if ticker["last"] is not None:
        return ticker["last"]
    terms = {name: instrument[name]  # type: ignore[literal-required]
             for name in ("exclusivity", "duration_months", "scope", "territory")}  # fmt: skip
    report = client.valuation(terms, product_id=instrument["product_id"])
    return Decimal(report["value"])


def held_units(client: Client, symbol: str) -> int:
    """Licence units of ``symbol`` free to sell (held, less what open sells reserve)."""
    return sum(h["units"] - h["reserved_units"] for h in client.balances()["holdings"]
               if h["symbol"] == symbol)  # fmt: skip


class MarketMaker:
    def __init__(self, client: Client, settings: Settings, instrument: Instrument) -> None:
        self.client, self.settings, self.instrument = client, settings, instrument
        self.tick: Decimal = instrument["tick_size"]
        self.lot = instrument["lot_size"]
        self.run = Run()
        self.inventory_units = 0
        self.quoted_reference: Decimal | None = None
        # Client order ids unique to this run, so that a rerun never reads as a retry.
        self.prefix = f"mm-{time.time_ns():x}"

    def requote(self, reference: Decimal) -> None:
        """Replace the quotes with a bid and an ask around ``reference``."""
        if self.run.resting:
            self.client.cancel_all_orders(symbol=self.instrument["symbol"])
            self.run.resting.clear()
        half = self.tick * self.settings.half_spread_ticks
        size = self.lot * self.settings.quote_lots
        free = held_units(self.client, self.instrument["symbol"])
        if self.inventory_units + size <= self.settings.max_inventory_units:
            self.quote("buy", to_tick(reference - half, self.tick, ROUND_FLOOR), size)
        if free >= self.lot:
            self.quote("sell", to_tick(reference + half, self.tick, ROUND_CEILING),
                       min(size, free - free % self.lot))  # fmt: skip
        self.quoted_reference = reference

    def quote(self, side: str, price: Decimal, quantity: int) -> None:
        if self.run.orders_sent >= self.settings.max_orders or price <= 0:
            return
        self.run.orders_sent += 1
        try:
            order = self.client.submit_order(
                self.instrument["symbol"], side, quantity, price,  # type: ignore[arg-type]
                client_order_id=f"{self.prefix}-{self.run.orders_sent}", post_only=True,
            )  # fmt: skip
        except ApiError as error:
            # A quote that would take (the book moved) or that risk cannot cover waits for the
            # next re-quote; anything else is a fault of the run.
            if error.reason not in ("MATCHING_POST_ONLY_WOULD_TAKE", "RISK_INSUFFICIENT_CASH",
                                    "RISK_INSUFFICIENT_LICENCES"):  # fmt: skip
                raise
            self.run.quotes_skipped += 1
            return
        if order["status"] in ("open", "partially_filled"):
            self.run.resting.append(order)

    def on_fill(self, message: dict) -> None:
        self.run.fills += 1
        if message["side"] == "buy":
            self.run.bought_units += message["quantity"]
            self.inventory_units += message["quantity"]
        else:
            self.run.sold_units += message["quantity"]
            self.inventory_units -= message["quantity"]

    def trade(self) -> Run:
        """Quote until the time or the order budget is spent; leave nothing in the book."""
        settings = self.settings
        deadline = time.monotonic() + settings.seconds
        self.inventory_units = held_units(self.client, self.instrument["symbol"])
        with self.client.private_stream() as private:
            try:
                self.requote(reference_price(self.client, self.instrument))
                while time.monotonic() < deadline and self.run.orders_sent < settings.max_orders:
                    wait_s = min(settings.requote_s, max(0.0, deadline - time.monotonic()))
                    try:
                        message = private.receive(wait_s)
                    except TimeoutError:
                        message = None
                    filled = message is not None and message["type"] == "fill" and (
                        message["symbol"] == self.instrument["symbol"]
                    )
                    if filled:
                        self.on_fill(message)  # type: ignore[arg-type]
                    reference = reference_price(self.client, self.instrument)
                    if filled or self.quoted_reference is None or (
                        abs(reference - self.quoted_reference) >= self.tick
                    ):
                        self.requote(reference)
            finally:
                self.client.cancel_all_orders(symbol=self.instrument["symbol"])
        return self.run


def parse(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEMO_URL, help=f"the API (default {DEMO_URL})")
    parser.add_argument("--key", default=os.environ.get("DATAEX_API_KEY"),
                        help="your API key (default: $DATAEX_API_KEY)")  # fmt: skip
    parser.add_argument("--symbol", default=DEMO_SYMBOL)
    parser.add_argument("--seconds", type=float, default=60.0, help="run time (default 60)")
    parser.add_argument("--max-orders", type=int, default=200, help="order budget (default 200)")
    parser.add_argument("--half-spread-ticks", type=int, default=2)
    parser.add_argument("--quote-lots", type=int, default=1)
    parser.add_argument("--max-inventory", type=int, default=20, help="licence units")
    parser.add_argument("--requote-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("an API key is needed: --key or DATAEX_API_KEY")
    for name in ("seconds", "max_orders", "half_spread_ticks", "quote_lots", "max_inventory",
                 "requote_s"):  # fmt: skip
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return Settings(args.url, args.key, args.symbol, args.seconds, args.max_orders,
                    args.half_spread_ticks, args.quote_lots, args.max_inventory,
                    args.requote_s)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    settings = parse(argv)
    with Client(settings.url, settings.api_key) as client:
        try:
            instrument = client.instrument(settings.symbol)
            run = MarketMaker(client, settings, instrument).trade()
        except ApiError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    print(f"orders sent {run.orders_sent}, skipped {run.quotes_skipped}, fills {run.fills}, "
          f"bought {run.bought_units}, sold {run.sold_units} licence units")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
