"""Public market data kept by the exchange: each instrument's trade tape, ticker and history.

All are projections of the engine's events and rebuilt with them on recovery. The tape (the
most recent trades, for display) is bounded; the history keeps every trade as a compact
``(trade_id, price_minor, quantity_units, ts_ns)`` tuple, for bars and valuation.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from matching import Side, Trade

__all__ = ["MAX_TAPE_TRADES", "MarketData", "TapeTrade", "Ticker"]

MAX_TAPE_TRADES = 10_000


@dataclass(frozen=True, slots=True)
class TapeTrade:
    trade_id: int
    symbol: str
    price_minor: int
    quantity_units: int
    aggressor: Side | None
    ts_ns: int


@dataclass(slots=True)
class Ticker:
    symbol: str
    last_price_minor: int | None = None
    open_price_minor: int | None = None
    high_price_minor: int | None = None
    low_price_minor: int | None = None
    volume_units: int = 0
    notional_minor: int = 0
    trade_count: int = 0
    last_trade_ns: int | None = None

    def vwap_minor(self) -> int | None:
        """Volume-weighted average price since listing, rounded down to the minor unit."""
        return self.notional_minor // self.volume_units if self.volume_units else None

    def add(self, price_minor: int, quantity_units: int, ts_ns: int) -> None:
        # Comparisons, not max() and min(): this runs at every trade.
        if self.open_price_minor is None:
            self.open_price_minor = self.high_price_minor = self.low_price_minor = price_minor
        else:
            if price_minor > self.high_price_minor:  # type: ignore[operator]
                self.high_price_minor = price_minor
            if price_minor < self.low_price_minor:  # type: ignore[operator]
                self.low_price_minor = price_minor
        self.last_price_minor = price_minor
        self.volume_units += quantity_units
        self.notional_minor += price_minor * quantity_units
        self.trade_count += 1
        self.last_trade_ns = ts_ns


class MarketData:
    def __init__(self) -> None:
        self.tapes: dict[str, deque[TapeTrade]] = {}
        self.tickers: dict[str, Ticker] = {}
        self.history: dict[str, list[tuple[int, int, int, int]]] = {}
        self.trade_count = 0

    def add_instrument(self, symbol: str) -> None:
        self.tapes[symbol] = deque(maxlen=MAX_TAPE_TRADES)
        self.tickers[symbol] = Ticker(symbol)
        self.history[symbol] = []

    def on_trade(self, trade: Trade, ts_ns: int) -> None:
        self.tapes[trade.symbol].append(
            TapeTrade(trade.trade_id, trade.symbol, trade.price, trade.quantity,
                      trade.aggressor, ts_ns)
        )  # fmt: skip
        self.tickers[trade.symbol].add(trade.price, trade.quantity, ts_ns)
        self.history[trade.symbol].append((trade.trade_id, trade.price, trade.quantity, ts_ns))
        self.trade_count += 1

    def tape(self, symbol: str, limit: int, before_trade_id: int | None = None) -> list[TapeTrade]:
        """The ``limit`` most recent trades of ``symbol`` (of those with an id below
        ``before_trade_id``, if given), newest first: a page of the tape, whose next page is
        before the last trade id of this one."""
        tape = self.tapes[symbol]
        # Trade ids ascend along the tape.
        end = len(tape) if before_trade_id is None else bisect_left(
            tape, before_trade_id, key=lambda trade: trade.trade_id
        )  # fmt: skip
        return [tape[i] for i in range(end - 1, max(end - limit, 0) - 1, -1)]
