"""The baseline for the engine benchmark: a limit order book written the obvious way.

A ``SortedDict`` of price to a ``deque`` of orders per side, a dict of orders by id, the best
price read from the sorted dict on every step, cancels by ``deque.remove``. It handles limit
and market orders and cancels, and reports its fills as :class:`matching.Trade` events. It
has none of the engine's other features (validation, phases, STP, market data).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sortedcontainers import SortedDict

from matching import CancelOrder, OrderType, Side, SubmitOrder, Trade


# Identity equality, as a naive book written by hand compares its orders: a generated
# ``__eq__`` would make every ``deque.remove`` on cancel compare field tuples.
@dataclass(eq=False)
class NaiveOrder:
    order_id: int
    participant: str
    side: Side
    price: int | None
    quantity: int


class NaiveBook:
    """One instrument's book; ``apply`` takes the engine's ``SubmitOrder`` and ``CancelOrder``."""

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[int, NaiveOrder] = {}
        self.next_trade_id = 1

    def apply(self, command: SubmitOrder | CancelOrder) -> list[Trade]:
        if isinstance(command, CancelOrder):
            self.cancel(command.order_id)
            return []
        return self.submit(command)

    def submit(self, c: SubmitOrder) -> list[Trade]:
        order = NaiveOrder(c.order_id, c.participant, c.side, c.price_minor, c.quantity_units)
        trades = []
        if c.side == Side.BUY:
            while order.quantity > 0 and len(self.asks) > 0:
                best_price, queue = self.asks.peekitem(0)
                if order.price is not None and best_price > order.price:
                    break
                trades += self.fill(order, queue, best_price, c)
                if len(queue) == 0:
                    del self.asks[best_price]
        else:
            while order.quantity > 0 and len(self.bids) > 0:
                best_price, queue = self.bids.peekitem(-1)
                if order.price is not None and best_price < order.price:
                    break
                trades += self.fill(order, queue, best_price, c)
                if len(queue) == 0:
                    del self.bids[best_price]
        if order.quantity > 0 and c.order_type == OrderType.LIMIT:
            side = self.bids if c.side == Side.BUY else self.asks
            if order.price not in side:
                side[order.price] = deque()
            side[order.price].append(order)
            self.orders[order.order_id] = order
        return trades

    def fill(self, taker: NaiveOrder, queue: deque, price: int, c: SubmitOrder) -> list[Trade]:
        trades = []
        while taker.quantity > 0 and len(queue) > 0:
            maker = queue[0]
            quantity = min(taker.quantity, maker.quantity)
            taker.quantity -= quantity
            maker.quantity -= quantity
            buy, sell = (taker, maker) if taker.side == Side.BUY else (maker, taker)
            trades.append(
                Trade(self.next_trade_id, c.symbol, price, quantity, buy.order_id,
                      sell.order_id, buy.participant, sell.participant, taker.side, c.seq, c.ts)
            )  # fmt: skip
            self.next_trade_id += 1
            if maker.quantity == 0:
                queue.popleft()
                del self.orders[maker.order_id]
        return trades

    def cancel(self, order_id: int) -> None:
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        side = self.bids if order.side == Side.BUY else self.asks
        queue = side[order.price]
        queue.remove(order)
        if len(queue) == 0:
            del side[order.price]
