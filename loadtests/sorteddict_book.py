"""The reference for the book-scale benchmark: a limit order book keyed by a ``SortedDict``.

The engine's book differs from it in its level-key index only. Both hold a dict of level key to
a FIFO queue per side, cancel lazily (the order's ``remaining`` drops to zero and its level's
total at once; the dead entry is skipped when it reaches the head of the queue) and index
orders by id; here the best level comes from ``SortedDict.peekitem`` and a level is added or
dropped through the ``SortedDict``. Fills are reported as :class:`matching.Trade` events, as
the engine reports them; there is no validation, phase, self-trade prevention or market data.
"""

from __future__ import annotations

from collections import deque

from sortedcontainers import SortedDict

from matching import CancelOrder, OrderType, Side, SubmitOrder, Trade


class RestingOrder:
    __slots__ = ("order_id", "participant", "price", "remaining", "side")

    def __init__(self, order_id: int, participant: str, side: Side, price: int, remaining: int):
        self.order_id = order_id
        self.participant = participant
        self.side = side
        self.price = price
        self.remaining = remaining


class SortedDictLevel:
    __slots__ = ("orders", "total")

    def __init__(self) -> None:
        self.orders: deque[RestingOrder] = deque()
        self.total = 0


class SortedDictBook:
    """One instrument's book; ``apply`` takes the engine's ``SubmitOrder`` and ``CancelOrder``.

    Level keys are the price for bids and minus the price for asks, so the best level of
    either side is the greatest key, ``peekitem(-1)``, as in the engine.
    """

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[int, RestingOrder] = {}
        self.next_trade_id = 1

    def apply(self, command: SubmitOrder | CancelOrder) -> list[Trade]:
        if type(command) is CancelOrder:
            self.cancel(command.order_id)
            return []
        return self.submit(command)  # type: ignore[arg-type]

    def submit(self, c: SubmitOrder) -> list[Trade]:
        is_buy = c.side is Side.BUY
        opposite = self.asks if is_buy else self.bids
        # Keys are "greater is better": the order crosses every opposite key >= threshold.
        if c.price_minor is None:
            threshold = None
        else:
            threshold = -c.price_minor if is_buy else c.price_minor
        left = c.quantity_units
        trades: list[Trade] = []
        while left and opposite:
            key, level = opposite.peekitem(-1)
            if threshold is not None and key < threshold:
                break
            queue = level.orders
            while queue and left:
                maker = queue[0]
                if not maker.remaining:
                    queue.popleft()
                    continue
                quantity = min(left, maker.remaining)
                left -= quantity
                maker.remaining -= quantity
                level.total -= quantity
                buy_id, sell_id = (
                    (c.order_id, maker.order_id) if is_buy else (maker.order_id, c.order_id)
                )
                buyer, seller = (
                    (c.participant, maker.participant)
                    if is_buy
                    else (maker.participant, c.participant)
                )
                trades.append(
                    Trade(self.next_trade_id, c.symbol, -key if is_buy else key, quantity,
                          buy_id, sell_id, buyer, seller, c.side, c.seq, c.ts)
                )  # fmt: skip
                self.next_trade_id += 1
                if not maker.remaining:
                    queue.popleft()
                    del self.orders[maker.order_id]
            if not level.total:
                del opposite[key]
        if left and c.order_type is OrderType.LIMIT and c.price_minor is not None:
            own = self.bids if is_buy else self.asks
            key = c.price_minor if is_buy else -c.price_minor
            level = own.get(key)
            if level is None:
                level = own[key] = SortedDictLevel()
            order = RestingOrder(c.order_id, c.participant, c.side, c.price_minor, left)
            level.orders.append(order)
            level.total += left
            self.orders[c.order_id] = order
        return trades

    def cancel(self, order_id: int) -> None:
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        own = self.bids if order.side is Side.BUY else self.asks
        key = order.price if order.side is Side.BUY else -order.price
        level = own[key]
        level.total -= order.remaining
        order.remaining = 0
        if not level.total:
            del own[key]
