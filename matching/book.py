"""The order book of one instrument: two sides of price levels, each a FIFO queue.

Each side keeps a dict of level key -> :class:`Level` and a plain sorted list of the keys with
the best level last, so the best price is ``keys[-1]`` (O(1)), removing the best level is a
``pop()`` and adding a level is a ``bisect.insort`` over the few dozen levels a data-licence
book holds. The key is the price on the bid side and minus the price on the ask side, so
"better" is "greater" on both sides and one matching loop serves both.

Cancelled orders are removed lazily: the order's ``remaining`` drops to zero, the level's
total falls at once, and the dead entry is skipped (and dropped) when it reaches the head of
the queue, or swept when dead entries outnumber live ones. Cancels are therefore O(1).
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from typing import Final

from matching.enums import Phase, SelfTradePrevention, Side, TimeInForce, TradingMode
from matching.instrument import InstrumentSpec

BUY: Final = Side.BUY
SELL: Final = Side.SELL

# A level sweeps its dead entries when there are more than this many and more than live ones.
DEAD_ENTRIES_SWEEP_MIN: Final = 32


class Order:
    """A live order in a book. ``quantity`` is the total (after amends); filled + remaining."""

    __slots__ = (
        "expire_ts",
        "filled",
        "is_market",
        "order_id",
        "participant",
        "post_only",
        "price",
        "priority",
        "quantity",
        "remaining",
        "side",
        "stp",
        "symbol",
        "tif",
    )

    def __init__(
        self,
        order_id: int,
        participant: str,
        symbol: str,
        side: Side,
        price: int | None,
        quantity: int,
        tif: TimeInForce,
        expire_ts: int | None,
        stp: SelfTradePrevention,
        is_market: bool,
        post_only: bool,
        priority: int,
    ) -> None:
        self.order_id = order_id
        self.participant = participant
        self.symbol = symbol
        self.side = side
        # Limit price; for a market order its protection price, or None for none.
        self.price = price
        self.quantity = quantity
        self.remaining = quantity
        self.filled = 0
        self.tif = tif
        self.expire_ts = expire_ts
        self.stp = stp
        self.is_market = is_market
        self.post_only = post_only
        # Time priority: a global counter, renewed when an amend loses priority.
        self.priority = priority


class Level:
    """The orders resting at one price, oldest first. ``total`` counts live quantity only."""

    __slots__ = ("dead", "orders", "price", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.total = 0
        self.dead = 0

    def sweep(self) -> None:
        """Drop the dead entries (cancelled orders) from the queue."""
        self.orders = deque(o for o in self.orders if o.remaining)
        self.dead = 0

    def live(self) -> list[Order]:
        return [o for o in self.orders if o.remaining]


class HalfBook:
    """One side of a book. ``sign`` turns a price into a key: +1 for bids, -1 for asks."""

    __slots__ = ("keys", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = 1 if side is Side.BUY else -1
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def best(self) -> Level | None:
        return self.levels[self.keys[-1]] if self.keys else None

    def add(self, order: Order) -> Level:
        """Append ``order`` at the back of its price level (created if needed); return it."""
        key = order.price * self.sign  # type: ignore[operator]
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(order.price)  # type: ignore[arg-type]
            keys = self.keys
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        level.orders.append(order)
        level.total += order.remaining
        return level

    def remove(self, order: Order) -> int:
        """Take ``order`` out of its level (lazily) and return the quantity it had left."""
        key = order.price * self.sign  # type: ignore[operator]
        level = self.levels[key]
        quantity = order.remaining
        order.remaining = 0
        level.total -= quantity
        if level.total == 0:
            self.drop_level(key)
        else:
            level.dead += 1
            if level.dead > DEAD_ENTRIES_SWEEP_MIN and level.dead > len(level.orders) // 2:
                level.sweep()
        return quantity

    def drop_level(self, key: int) -> None:
        del self.levels[key]
        keys = self.keys
        if keys[-1] == key:
            keys.pop()
        else:
            keys.remove(key)

    def orders_in_priority(self) -> list[Order]:
        """Live orders, best price first, oldest first within a price."""
        return [o for key in reversed(self.keys) for o in self.levels[key].live()]

    def depth(self) -> list[tuple[int, int]]:
        """(price, total) of every level, best first."""
        return [(self.levels[k].price, self.levels[k].total) for k in reversed(self.keys)]


class Book:
    """Both sides of one instrument's book, its phase and its reference (last) price.

    Market orders rest only while the instrument collects orders for an auction; they wait in
    their own queues, ahead of every limit order.
    """

    __slots__ = (
        "asks",
        "bids",
        "hidden",
        "market_asks",
        "market_bids",
        "phase",
        "reference_price",
        "spec",
    )

    def __init__(self, spec: InstrumentSpec, phase: Phase) -> None:
        self.spec = spec
        self.phase = phase
        # Sealed-bid books publish nothing before the close.
        self.hidden = spec.trading_mode is TradingMode.SEALED_BID
        self.bids = HalfBook(Side.BUY)
        self.asks = HalfBook(Side.SELL)
        self.market_bids: deque[Order] = deque()
        self.market_asks: deque[Order] = deque()
        self.reference_price: int | None = None

    def half(self, side: Side) -> HalfBook:
        return self.bids if side is BUY else self.asks

    def is_crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid.price >= ask.price

    def depth_snapshot(self) -> dict[tuple[Side, int], int]:
        """(side, price) -> total of every level, to diff market data around rare commands."""
        snapshot = {(BUY, lv.price): lv.total for lv in self.bids.levels.values()}
        snapshot.update({(SELL, lv.price): lv.total for lv in self.asks.levels.values()})
        return snapshot

    def live_orders(self) -> list[Order]:
        return [
            *self.market_bids,
            *self.bids.orders_in_priority(),
            *self.market_asks,
            *self.asks.orders_in_priority(),
        ]
