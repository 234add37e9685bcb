"""The order book of one instrument: two sides of price levels, each a FIFO queue.

Each side keeps a dict of level key -> :class:`Level`, the keys in order in a
:class:`~matching.levelkeys.LevelKeys` (sorted chunks, greatest last), and its best level at
hand in ``best``, so the touch is one attribute read. The key is the price on the bid side and
minus the price on the ask side, so "better" is "greater" on both sides and one matching loop
serves both. A resting order holds its level, so a cancel looks nothing up.

A level's queue is a list read from ``head``: taking the oldest order moves ``head`` on, and the
taken prefix is cut off once it is most of the list (a list, not a deque: compiled, list
operations are direct C calls where a deque's are method lookups). Cancelled orders are
removed lazily: the order's ``remaining`` drops to zero, the level's total falls at once, and
the dead entry is skipped when it reaches the head of the queue, or swept when dead entries
outnumber live ones. Cancels are therefore O(1).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from matching.enums import Phase, SelfTradePrevention, Side, TimeInForce, TradingMode
from matching.instrument import InstrumentSpec
from matching.levelkeys import LevelKeys

BUY: Final = Side.BUY
SELL: Final = Side.SELL

# A level sweeps its dead entries when there are more than this many and more than live ones.
DEAD_ENTRIES_SWEEP_MIN: Final = 32
# A level cuts the taken prefix off its queue when it is this long and most of the queue.
TAKEN_ENTRIES_CUT_MIN: Final = 32


class Order:
    """A live order in a book. ``quantity`` is the total (after amends); filled + remaining."""

    __slots__ = (
        "expire_ts",
        "filled",
        "is_market",
        "level",
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
        # The level it rests at (kept after it leaves: a dead entry is still in the queue).
        self.level: Level | None = None


class Level:
    """The orders resting at one price, oldest first from ``orders[head]``. ``total`` counts
    live quantity only; ``dead`` counts the cancelled entries from ``head`` on."""

    __slots__ = ("dead", "head", "key", "orders", "price", "total")

    def __init__(self, price: int, key: int) -> None:
        self.price = price
        self.key = key
        self.orders: list[Order] = []
        self.head = 0
        self.total = 0
        self.dead = 0

    def sweep(self) -> None:
        """Drop the taken prefix and the dead entries (cancelled orders) from the queue."""
        self.orders = self.live()
        self.head = 0
        self.dead = 0

    def cut_taken(self) -> None:
        """Drop the taken prefix, once it is long enough to be worth the copy."""
        head = self.head
        if head > TAKEN_ENTRIES_CUT_MIN and 2 * head > len(self.orders):
            del self.orders[:head]
            self.head = 0

    def live(self) -> list[Order]:
        orders = self.orders
        return [orders[i] for i in range(self.head, len(orders)) if orders[i].remaining]


class HalfBook:
    """One side of a book. ``sign`` turns a price into a key: +1 for bids, -1 for asks."""

    __slots__ = ("best", "keys", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = 1 if side is Side.BUY else -1
        self.levels: dict[int, Level] = {}
        self.keys = LevelKeys()
        self.best: Level | None = None  # the level under the greatest key

    def add(self, order: Order) -> Level:
        """Append ``order`` at the back of its price level (created if needed); return it."""
        price = order.price
        assert price is not None  # market orders never rest in a half book
        key = price * self.sign
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(price, key)
            self.keys.add(key)
            best = self.best
            if best is None or key > best.key:
                self.best = level
        level.orders.append(order)
        level.total += order.remaining
        order.level = level
        return level

    def remove(self, order: Order) -> int:
        """Take ``order`` out of its level (lazily) and return the quantity it had left."""
        level = order.level
        assert level is not None
        quantity = order.remaining
        order.remaining = 0
        level.total -= quantity
        if level.total == 0:
            self.drop_level(level)
        else:
            level.dead += 1
            if (
                level.dead > DEAD_ENTRIES_SWEEP_MIN
                and level.dead > (len(level.orders) - level.head) // 2
            ):
                level.sweep()
        return quantity

    def drop_level(self, level: Level) -> None:
        """Forget an emptied level.

        Its queue is emptied too: each order in it holds the level, so an abandoned queue
        would be a reference cycle of the level and its spent orders, which only the cyclic
        collector frees, after walking it (and then every dropped level was most of what a
        collection walked). Emptied, the spent orders go by reference counting at once.
        """
        level.orders.clear()
        key = level.key
        del self.levels[key]
        keys = self.keys
        keys.remove(key)
        if level is self.best:
            self.best = self.levels[keys.best()] if keys.size else None

    def orders_in_priority(self) -> list[Order]:
        """Live orders, best price first, oldest first within a price."""
        levels = self.levels
        return [o for key in self.keys.descending() for o in levels[key].live()]

    def depth(self, max_levels: int) -> list[tuple[int, int]]:
        """(price, total) of the best ``max_levels`` levels (every level if negative)."""
        out: list[tuple[int, int]] = []
        levels = self.levels
        for key in self.keys.descending():
            if len(out) == max_levels:
                break
            level = levels[key]
            out.append((level.price, level.total))
        return out


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
        bid, ask = self.bids.best, self.asks.best
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
