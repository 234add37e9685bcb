"""The matching engine: commands in, events out, one book per instrument.

``Engine.apply(command) -> list[Event]`` is pure and deterministic: no I/O, no clock, no
randomness. Everything it needs (time, sequence numbers) arrives inside the commands, so the
same commands always give the same events, which is what replay and recovery rely on.

Within one command, events come in this order: ``Accepted`` (or a lone ``Rejected``), then
trades and cancellations as they happen, then ``PhaseChanged``, then one ``BookChanged`` per
book whose levels changed (none for sealed-bid books, which publish nothing but results).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from heapq import heappop, heappush
from typing import Any, Final

from matching.auction import Clearing, clearing_price
from matching.book import Book, HalfBook, Level, Order
from matching.commands import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Command,
    Expire,
    SetPhase,
    SubmitOrder,
    Uncross,
)
from matching.enums import (
    CancelReason,
    OrderType,
    Phase,
    RejectReason,
    SealedBidPricing,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradingMode,
)
from matching.events import (
    Accepted,
    Amended,
    AuctionResult,
    BookChanged,
    Cancelled,
    Event,
    InstrumentAdded,
    LevelChange,
    PhaseChanged,
    Rejected,
    Trade,
)
from matching.instrument import InstrumentSpec

# Constants are ``Final`` so that compiled code reads them from C statics, not the module dict.
BUY: Final = Side.BUY
SELL: Final = Side.SELL
MARKET: Final = OrderType.MARKET
GTD: Final = TimeInForce.GTD
IOC: Final = TimeInForce.IOC
FOK: Final = TimeInForce.FOK
DAY: Final = TimeInForce.DAY
CONTINUOUS: Final = Phase.CONTINUOUS
PRE_OPEN: Final = Phase.PRE_OPEN
AUCTION: Final = Phase.AUCTION
HALTED: Final = Phase.HALTED
CLOSED: Final = Phase.CLOSED
COLLECTING: Final = (PRE_OPEN, AUCTION)
STP_NONE: Final = SelfTradePrevention.NONE
STP_NEWEST: Final = SelfTradePrevention.CANCEL_NEWEST
STP_OLDEST: Final = SelfTradePrevention.CANCEL_OLDEST
STP_BOTH: Final = SelfTradePrevention.CANCEL_BOTH

# Enum members bound once: looking a member up on its class costs ~100 ns in the hot path.
USER: Final = CancelReason.USER
IOC_REMAINDER: Final = CancelReason.IOC_REMAINDER
FOK_UNFILLED: Final = CancelReason.FOK_UNFILLED
SELF_TRADE: Final = CancelReason.SELF_TRADE
EXPIRED: Final = CancelReason.EXPIRED
HALTED_BY_VENUE: Final = CancelReason.HALTED
R: Final = RejectReason


class Engine:
    """Order books for many instruments behind one ``apply``.

    >>> from matching import InstrumentSpec, AddInstrument, SubmitOrder, Side, Phase
    >>> e = Engine()
    >>> _ = e.apply(AddInstrument(1, 0, InstrumentSpec("X"), Phase.CONTINUOUS))
    >>> _ = e.apply(SubmitOrder(2, 0, 1, "a", "X", Side.SELL, 5, price_minor=100))
    >>> buy = SubmitOrder(3, 0, 2, "b", "X", Side.BUY, 3, price_minor=101)
    >>> [type(ev).__name__ for ev in e.apply(buy)]
    ['Accepted', 'Trade', 'BookChanged']
    """

    __slots__ = (
        "_books",
        "_gtd_expiries",
        "_next_priority",
        "_next_trade_id",
        "_orders",
        "_used_order_ids",
    )

    def __init__(self) -> None:
        self._books: dict[str, Book] = {}
        self._orders: dict[int, Order] = {}  # live orders by id
        self._used_order_ids: set[int] = set()  # every id ever accepted: ids are never reused
        self._gtd_expiries: list[tuple[int, int]] = []  # heap of (expire_ts, order_id)
        self._next_trade_id = 1
        self._next_priority = 1

    # ------------------------------------------------------------------ commands

    def apply(self, command: Command) -> list[Event]:
        """Apply one command and return the events it caused, in order."""
        # A chain of type tests, most frequent first: compiled, each branch is a direct call.
        if type(command) is SubmitOrder:
            return self._new_order(command)
        if type(command) is CancelOrder:
            return self._cancel(command)
        if type(command) is AmendOrder:
            return self._amend(command)
        if type(command) is Expire:
            return self._expire(command)
        if type(command) is Uncross:
            return self._uncross_command(command)
        if type(command) is SetPhase:
            return self._set_phase(command)
        if type(command) is AddInstrument:
            return self._add_instrument(command)
        raise TypeError(f"not an engine command: {command!r}")

    def _add_instrument(self, c: AddInstrument) -> list[Event]:
        symbol = c.spec.symbol
        if symbol in self._books:
            return [Rejected(None, symbol, R.VALIDATION_DUPLICATE_INSTRUMENT)]
        if c.spec.problem() is not None:
            return [Rejected(None, symbol, R.VALIDATION_INVALID_INSTRUMENT)]
        if c.phase is CONTINUOUS and c.spec.trading_mode is not TradingMode.CONTINUOUS:
            return [Rejected(None, symbol, R.MATCHING_PHASE_NOT_IN_MODE)]
        self._books[symbol] = Book(c.spec, c.phase)
        return [InstrumentAdded(symbol, c.phase)]

    def _new_order(self, c: SubmitOrder) -> list[Event]:
        # The hot path, written for speed: locals, and the common case (a limit order that
        # rests or trades in continuous trading) inlined.
        book = self._books.get(c.symbol)
        if book is None:
            return [Rejected(c.order_id, c.symbol, R.VALIDATION_UNKNOWN_INSTRUMENT)]
        # The order id as one int object, the key of the used-id set and the order index.
        # Typed ``Any`` on purpose: compiled, ``c.order_id`` is a native integer, and each use
        # of it as a key would allocate a new int object (order ids soon pass the small ints
        # Python keeps).
        key: Any = c.order_id
        reason = self._order_problem(book, c, key)
        if reason is not None:
            return [Rejected(c.order_id, c.symbol, reason)]
        side = c.side
        is_buy = side is BUY
        is_market = c.order_type is MARKET
        price = c.price_minor
        if is_market and price is None:
            spec = book.spec
            price = spec.price_band_high if is_buy else spec.price_band_low
        phase = book.phase
        if c.post_only and phase is CONTINUOUS and self._would_take(book, is_buy, price):
            return [Rejected(c.order_id, c.symbol, R.MATCHING_POST_ONLY_WOULD_TAKE)]

        order_id = c.order_id
        participant = c.participant
        symbol = c.symbol
        quantity = c.quantity_units
        tif = c.tif
        self._used_order_ids.add(key)
        priority = self._next_priority
        self._next_priority = priority + 1
        order = Order(
            order_id, participant, symbol, side, price, quantity, tif,
            c.expire_ts, c.stp, is_market, c.post_only, priority,
        )  # fmt: skip
        accepted = Accepted(
            order_id, participant, symbol, side, c.order_type, c.price_minor, quantity, tif
        )
        if phase is not CONTINUOUS:
            events: list[Event] = [accepted]
            self._collect(book, order, events)
            return events

        # Keys are "greater is better" on both sides: the order crosses keys >= threshold.
        # ``threshold`` is declared ``int`` so that, compiled, it is a native integer: derived
        # from the optional price it would stay a boxed object, compared by a generic call.
        threshold: int
        if is_buy:
            opposite = book.asks
            assert price is not None  # validation requires a protection price to buy at market
            threshold = -price
        else:
            opposite = book.bids
            threshold = 0 if price is None else price  # an unprotected market sell takes any bid
        best = opposite.best
        if best is None or best.key < threshold:
            # Nothing to take, the usual case: the events are built as one list of their
            # final length rather than grown.
            if tif is FOK:
                return [accepted, Cancelled(order_id, participant, symbol, quantity, FOK_UNFILLED)]
            if is_market or tif is IOC:
                return [accepted, Cancelled(order_id, participant, symbol, quantity, IOC_REMAINDER)]
            level = self._rest_limit(book, order, c.expire_ts, key)
            if book.hidden:
                return [accepted]
            return [accepted, self._book_changed(book, (_level_change(side, level),))]

        events = [accepted]
        if tif is FOK and not self._can_fill(book, order, threshold):
            events.append(Cancelled(order_id, participant, symbol, quantity, FOK_UNFILLED))
            return events
        visited = self._take(book, order, opposite, threshold, events, c.seq, c.ts)
        # Market data is built as a tuple from the start: no list to copy. Published levels
        # are bids first, each side in ascending price; a sell order walked the bids from the
        # highest down.
        changes: tuple[LevelChange, ...]
        if len(visited) == 1:
            changes = (_level_change(SELL if is_buy else BUY, visited[0]),)
        elif is_buy:
            changes = tuple([_level_change(SELL, lv) for lv in visited])
        else:
            changes = tuple([_level_change(BUY, lv) for lv in reversed(visited)])
        remaining = order.remaining
        if remaining:
            if is_market or tif is IOC or tif is FOK:
                events.append(Cancelled(order_id, participant, symbol, remaining, IOC_REMAINDER))
            else:
                entry = _level_change(side, self._rest_limit(book, order, c.expire_ts, key))
                if not changes:
                    changes = (entry,)
                elif is_buy:
                    changes = (entry, *changes)
                else:
                    changes = (*changes, entry)
        if changes and not book.hidden:
            events.append(self._book_changed(book, changes))
        return events

    def _rest_limit(self, book: Book, order: Order, expire_ts: int | None, key: Any) -> Level:
        """Rest a limit order at the back of its level in continuous trading (``_rest``, with
        the index inlined; ``key`` is its order id as an object); return the level."""
        level = (book.bids if order.side is BUY else book.asks).add(order)
        self._orders[key] = order
        if expire_ts is not None:
            heappush(self._gtd_expiries, (expire_ts, key))
        return level

    def _collect(self, book: Book, order: Order, events: list[Event]) -> None:
        """Rest an order without matching, as pre-open and auction phases do."""
        if order.is_market:
            (book.market_bids if order.side is BUY else book.market_asks).append(order)
            self._index(order)
        else:
            level = self._rest(book, order)
            if not book.hidden:
                events.append(self._book_changed(book, (_level_change(order.side, level),)))

    def _order_problem(self, book: Book, c: SubmitOrder, key: Any) -> RejectReason | None:
        """Validation of a new order, in a fixed order so the first problem is reported
        (``key``: its order id as an object, see ``_new_order``)."""
        spec = book.spec
        quantity = c.quantity_units
        if quantity <= 0:
            return R.VALIDATION_QUANTITY_NOT_POSITIVE
        if quantity % spec.lot_size:
            return R.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE
        if quantity > spec.max_order_quantity:
            return R.VALIDATION_QUANTITY_ABOVE_MAXIMUM
        is_market = c.order_type is MARKET
        if c.price_minor is None:
            if not is_market:
                return R.VALIDATION_PRICE_REQUIRED
            if c.side is BUY and spec.price_band_high is None:
                return R.VALIDATION_PROTECTION_PRICE_REQUIRED
        else:
            reason = _price_problem(spec, c.price_minor)
            if reason is not None:
                return reason
        tif = c.tif
        if tif is GTD:
            if c.expire_ts is None:
                return R.VALIDATION_EXPIRY_REQUIRED
            if c.expire_ts <= c.ts:
                return R.VALIDATION_EXPIRY_IN_PAST
        elif c.expire_ts is not None:
            return R.VALIDATION_EXPIRY_WITHOUT_GTD
        if c.post_only and (is_market or tif is IOC or tif is FOK):
            return R.VALIDATION_POST_ONLY_NEEDS_RESTING_LIMIT
        if key in self._used_order_ids:
            return R.VALIDATION_DUPLICATE_ORDER_ID
        phase = book.phase
        if phase is CONTINUOUS:
            return None
        if phase is PRE_OPEN or phase is AUCTION:
            if tif is IOC or tif is FOK or c.post_only or (is_market and book.hidden):
                return R.MATCHING_ORDER_TYPE_NOT_ALLOWED
            return None
        return R.MATCHING_PHASE_REJECTS_ORDERS

    def _cancel(self, c: CancelOrder) -> list[Event]:
        order_id = c.order_id
        orders = self._orders
        # One lookup that also unindexes: the usual cancel is valid, and a refused one puts
        # its order back (nothing reads the index in insertion order).
        order = orders.pop(order_id, None)
        if order is None:
            return [Rejected(order_id, None, R.MATCHING_UNKNOWN_ORDER)]
        if order.participant != c.participant:
            orders[order_id] = order
            return [Rejected(order_id, None, R.MATCHING_UNKNOWN_ORDER)]
        book = self._books[order.symbol]
        if order.is_market or book.hidden:
            orders[order_id] = order  # _unlink unindexes it
            before = book.depth_snapshot()
            quantity = self._unlink(book, order)
            events: list[Event] = [
                Cancelled(order_id, order.participant, order.symbol, quantity, USER)
            ]
            self._publish_diff(book, before, events)
            return events
        level = order.level
        assert level is not None  # a limit order in a book that publishes
        quantity = (book.bids if order.side is BUY else book.asks).remove(order)
        events = [Cancelled(order_id, order.participant, order.symbol, quantity, USER)]
        events.append(self._book_changed(book, (_level_change(order.side, level),)))
        return events

    def _amend(self, c: AmendOrder) -> list[Event]:
        order = self._orders.get(c.order_id)
        if order is None or order.participant != c.participant:
            return [Rejected(c.order_id, None, R.MATCHING_UNKNOWN_ORDER)]
        book = self._books[order.symbol]
        reason = self._amend_problem(book, order, c)
        if reason is not None:
            return [Rejected(c.order_id, order.symbol, reason)]
        price = order.price if c.price_minor is None else c.price_minor
        quantity = order.quantity if c.quantity_units is None else c.quantity_units
        events: list[Event] = []
        if price == order.price and quantity <= order.quantity:
            # Keeping priority changes at most the order's own level: publish just that one.
            reduction = order.quantity - quantity
            order.remaining -= reduction
            order.quantity = quantity
            events.append(
                Amended(order.order_id, order.participant, order.symbol, order.price,
                        quantity, order.remaining, True)
            )  # fmt: skip
            level = order.level
            if reduction and level is not None:  # a market order has no level
                level.total -= reduction
                if not book.hidden:
                    events.append(self._book_changed(book, (_level_change(order.side, level),)))
            return events
        before = book.depth_snapshot()
        # Losing priority: the order re-enters as a fresh entry at the back of its new level.
        # A new object, because the old one may stay in its old queue as a dead entry.
        self._unlink(book, order)
        priority = self._next_priority
        self._next_priority = priority + 1
        fresh = Order(
            order.order_id, order.participant, order.symbol, order.side, price, quantity,
            order.tif, order.expire_ts, order.stp, order.is_market, order.post_only, priority,
        )  # fmt: skip
        fresh.filled = order.filled
        fresh.remaining = quantity - order.filled
        events.append(
            Amended(fresh.order_id, fresh.participant, fresh.symbol, price, quantity,
                    fresh.remaining, False)
        )  # fmt: skip
        if book.phase is CONTINUOUS:
            if fresh.side is BUY:
                self._take(book, fresh, book.asks, -price, events, c.seq, c.ts)  # type: ignore[operator]
            else:
                self._take(book, fresh, book.bids, price, events, c.seq, c.ts)  # type: ignore[arg-type]
            if fresh.remaining:
                self._rest(book, fresh)
        elif fresh.is_market:
            (book.market_bids if fresh.side is BUY else book.market_asks).append(fresh)
            self._index(fresh)
        else:
            self._rest(book, fresh)
        self._publish_diff(book, before, events)
        return events

    def _amend_problem(self, book: Book, order: Order, c: AmendOrder) -> RejectReason | None:
        if c.price_minor is None and c.quantity_units is None:
            return R.VALIDATION_AMEND_CHANGES_NOTHING
        spec = book.spec
        if c.quantity_units is not None:
            if c.quantity_units <= 0:
                return R.VALIDATION_QUANTITY_NOT_POSITIVE
            if c.quantity_units % spec.lot_size:
                return R.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE
            if c.quantity_units > spec.max_order_quantity:
                return R.VALIDATION_QUANTITY_ABOVE_MAXIMUM
        if c.price_minor is not None:
            if order.is_market:
                return R.VALIDATION_AMEND_PRICE_OF_MARKET_ORDER
            reason = _price_problem(spec, c.price_minor)
            if reason is not None:
                return reason
        if book.phase is HALTED or book.phase is CLOSED:
            return R.MATCHING_PHASE_REJECTS_ORDERS
        if c.quantity_units is not None and c.quantity_units <= order.filled:
            return R.MATCHING_AMEND_NOT_ABOVE_FILLED
        if (
            order.post_only
            and c.price_minor is not None
            and book.phase is CONTINUOUS
            and self._would_take(book, order.side is BUY, c.price_minor)
        ):
            return R.MATCHING_POST_ONLY_WOULD_TAKE
        return None

    def _expire(self, c: Expire) -> list[Event]:
        due: dict[str, list[Order]] = {}  # by book, in order of each book's first expiry
        due_ids: set[int] = set()  # an amended order has one heap entry per (re)entry
        heap = self._gtd_expiries
        while heap and heap[0][0] <= c.ts:
            _, order_id = heappop(heap)
            order = self._orders.get(order_id)
            if order is None or order_id in due_ids:
                continue  # filled, cancelled, or already due
            due_ids.add(order_id)
            due.setdefault(order.symbol, []).append(order)
        events: list[Event] = []
        for symbol, orders in due.items():
            book = self._books[symbol]
            before = book.depth_snapshot()
            for order in orders:
                quantity = self._unlink(book, order)
                events.append(
                    Cancelled(order.order_id, order.participant, symbol, quantity, EXPIRED)
                )
            self._publish_diff(book, before, events)
        return events

    def _uncross_command(self, c: Uncross) -> list[Event]:
        book = self._books.get(c.symbol)
        if book is None:
            return [Rejected(None, c.symbol, R.VALIDATION_UNKNOWN_INSTRUMENT)]
        if book.phase not in COLLECTING:
            return [Rejected(None, c.symbol, R.MATCHING_UNCROSS_NOT_IN_PHASE)]
        before = book.depth_snapshot()
        events: list[Event] = []
        self._uncross(book, events, c.seq, c.ts)
        self._publish_diff(book, before, events)
        return events

    def _set_phase(self, c: SetPhase) -> list[Event]:
        book = self._books.get(c.symbol)
        if book is None:
            return [Rejected(None, c.symbol, R.VALIDATION_UNKNOWN_INSTRUMENT)]
        new, old = c.phase, book.phase
        if new is CONTINUOUS and book.spec.trading_mode is not TradingMode.CONTINUOUS:
            return [Rejected(None, c.symbol, R.MATCHING_PHASE_NOT_IN_MODE)]
        before = book.depth_snapshot()
        events: list[Event] = []
        # Entering continuous trading or the close from a non-trading phase is the opening
        # (or closing) auction: whatever crossed while orders were collected executes now.
        if new is not old and (new is CONTINUOUS or new is CLOSED) and old is not CONTINUOUS:
            self._uncross(book, events, c.seq, c.ts)
        if c.cancel_resting:
            for order in book.live_orders():
                quantity = self._unlink(book, order)
                events.append(
                    Cancelled(
                        order.order_id, order.participant, order.symbol, quantity, HALTED_BY_VENUE
                    )
                )
        if new is CLOSED:
            for order in book.live_orders():
                if order.tif is DAY or order.is_market:
                    quantity = self._unlink(book, order)
                    events.append(
                        Cancelled(order.order_id, order.participant, order.symbol, quantity,
                                  EXPIRED)
                    )  # fmt: skip
        book.phase = new
        events.append(PhaseChanged(c.symbol, new))
        self._publish_diff(book, before, events)
        return events

    # ------------------------------------------------------------------ matching

    def _take(
        self,
        book: Book,
        taker: Order,
        opposite: HalfBook,
        threshold: int,
        events: list[Event],
        seq: int,
        ts: int,
    ) -> list[Level]:
        """Match ``taker`` against ``opposite`` in price-time priority, down to the level key
        ``threshold`` (continuous trading).

        On return ``taker.remaining`` is what is left to rest or cancel; it is 0 when the
        taker filled completely or self-trade prevention cancelled it (event emitted here).
        Returns the opposite levels it changed, best first (a level emptied has total 0).
        """
        is_buy = taker.side is BUY
        visited = []
        index = self._orders
        symbol = taker.symbol
        me = taker.participant
        taker_id = taker.order_id
        stp = taker.stp
        stp_on = stp is not STP_NONE
        left = taker.remaining
        traded = 0
        trade_id = self._next_trade_id
        aggressor = taker.side
        last_maker: Order | None = None  # its price object becomes the reference price
        while True:
            level = opposite.best
            if level is None or level.key < threshold:
                break
            visited.append(level)
            total_at_visit = level.total
            queue = level.orders
            head = level.head
            end = len(queue)
            price = level.price
            while head < end:
                maker = queue[head]
                maker_left = maker.remaining
                if not maker_left:
                    head += 1
                    level.dead -= 1
                    continue
                if stp_on and maker.participant == me:
                    if stp is not STP_NEWEST:  # cancel oldest, or both
                        head += 1
                        maker.remaining = 0
                        level.total -= maker_left
                        del index[maker.order_id]
                        events.append(Cancelled(maker.order_id, me, symbol, maker_left, SELF_TRADE))
                    if stp is not STP_OLDEST:  # cancel newest, or both
                        events.append(Cancelled(taker_id, me, symbol, left, SELF_TRADE))
                        left = 0
                        if level.total == total_at_visit:
                            visited.pop()  # reached but unchanged: not market data
                        break
                    continue
                quantity = left if left < maker_left else maker_left
                left -= quantity
                traded += quantity
                maker_left -= quantity
                maker.remaining = maker_left
                maker.filled += quantity
                level.total -= quantity
                last_maker = maker
                if is_buy:
                    events.append(
                        Trade(trade_id, symbol, price, quantity, taker_id,
                              maker.order_id, me, maker.participant, aggressor, seq, ts)
                    )  # fmt: skip
                else:
                    events.append(
                        Trade(trade_id, symbol, price, quantity, maker.order_id,
                              taker_id, maker.participant, me, aggressor, seq, ts)
                    )  # fmt: skip
                trade_id += 1
                if not maker_left:
                    head += 1
                    del index[maker.order_id]
                if not left:
                    break
            level.head = head
            if level.total:
                level.cut_taken()
            else:
                opposite.drop_level(level)
            if not left:
                break
        if last_maker is not None:
            # The maker's own price object: compiled, the level's native price would be boxed
            # into a new int here.
            book.reference_price = last_maker.price
        self._next_trade_id = trade_id
        taker.filled += traded
        taker.remaining = left
        return visited

    def _can_fill(self, book: Book, taker: Order, threshold: int) -> bool:
        """Whether a FOK order would fill completely, given its self-trade prevention."""
        opposite = book.asks if taker.side is BUY else book.bids
        me, stp = taker.participant, taker.stp
        available = 0
        for key in opposite.keys.descending():
            if key < threshold:
                break
            for maker in opposite.levels[key].live():
                if stp is not STP_NONE and maker.participant == me:
                    if stp is STP_OLDEST:
                        continue  # it would be cancelled and matching would go on
                    return False  # matching would stop here, short of a full fill
                available += maker.remaining
                if available >= taker.remaining:
                    return True
        return False

    def _would_take(self, book: Book, is_buy: bool, price: int | None) -> bool:
        best = (book.asks if is_buy else book.bids).best
        if best is None:
            return False
        if price is None:
            return True
        return best.price <= price if is_buy else best.price >= price

    # ------------------------------------------------------------------ auctions

    def _uncross(self, book: Book, events: list[Event], seq: int, ts: int) -> None:
        """Execute everything that crosses at one price, then cancel unfilled market orders."""
        if book.hidden:
            self._close_sealed_bid(book, events, seq, ts)
            return
        result = self._clearing(book)
        events.append(
            AuctionResult(book.spec.symbol, result.price, result.volume, result.imbalance, seq, ts)
        )
        if result.volume:
            price = result.price
            assert price is not None
            buyers = _auction_priority(book.market_bids, book.bids, price, 1)
            sellers = _auction_priority(book.market_asks, book.asks, price, -1)
            self._allocate(book, buyers, sellers, price, result.volume, events, seq, ts)
            book.reference_price = price
        for order in [*book.market_bids, *book.market_asks]:
            quantity = self._unlink(book, order)
            events.append(
                Cancelled(order.order_id, order.participant, order.symbol, quantity,
                          IOC_REMAINDER)
            )  # fmt: skip

    def _clearing(self, book: Book) -> Clearing:
        return clearing_price(
            book.bids.depth(-1),
            book.asks.depth(-1),
            [(o.price, o.remaining) for o in book.market_bids],
            [(o.price, o.remaining) for o in book.market_asks],
            book.reference_price,
        )

    def _close_sealed_bid(self, book: Book, events: list[Event], seq: int, ts: int) -> None:
        """Award the sealed bids: highest bid first (earliest on a tie) against the lowest
        reserve; first price pays the bid, second price the highest bid left unfilled (or the
        reserve, whichever is higher). Unfilled bids expire; unsold offers stay."""
        bids = book.bids.orders_in_priority()
        asks = book.asks.orders_in_priority()
        awards: list[tuple[Order, Order, int]] = []
        bid_left = {o.order_id: o.remaining for o in bids}
        ask_left = {o.order_id: o.remaining for o in asks}
        i = j = 0
        while i < len(bids) and j < len(asks) and bids[i].price >= asks[j].price:  # type: ignore[operator]
            bid, ask = bids[i], asks[j]
            quantity = min(bid_left[bid.order_id], ask_left[ask.order_id])
            awards.append((bid, ask, quantity))
            bid_left[bid.order_id] -= quantity
            ask_left[ask.order_id] -= quantity
            if not bid_left[bid.order_id]:
                i += 1
            if not ask_left[ask.order_id]:
                j += 1
        second_price = next((o.price for o in bids if bid_left[o.order_id]), None)
        first_price_wins = book.spec.sealed_bid_pricing is SealedBidPricing.FIRST_PRICE
        symbol = book.spec.symbol
        priced: list[tuple[Order, Order, int, int]] = []
        for bid, ask, quantity in awards:
            assert bid.price is not None and ask.price is not None
            award_price = bid.price if first_price_wins else max(ask.price, second_price or 0)
            priced.append((bid, ask, award_price, quantity))
        price = priced[0][2] if priced else None
        volume = sum(q for _, _, _, q in priced)
        buy, sell = _volumes_at(book, price)
        events.append(AuctionResult(symbol, price, volume, buy - sell, seq, ts))
        for bid, ask, award_price, quantity in priced:
            self._execute(book, bid, ask, award_price, quantity, events, seq, ts)  # type: ignore[arg-type]
            book.reference_price = award_price
        for order in book.bids.orders_in_priority():
            quantity = self._unlink(book, order)
            events.append(Cancelled(order.order_id, order.participant, symbol, quantity, EXPIRED))

    def _allocate(
        self,
        book: Book,
        buyers: list[Order],
        sellers: list[Order],
        price: int,
        volume: int,
        events: list[Event],
        seq: int,
        ts: int,
    ) -> None:
        """Pair buyers and sellers, each in priority order, until ``volume`` has executed."""
        i = j = 0
        while volume:
            buyer, seller = buyers[i], sellers[j]
            quantity = min(buyer.remaining, seller.remaining, volume)
            self._execute(book, buyer, seller, price, quantity, events, seq, ts)
            volume -= quantity
            if not buyer.remaining:
                i += 1
            if not seller.remaining:
                j += 1

    def _execute(
        self,
        book: Book,
        buyer: Order,
        seller: Order,
        price: int,
        quantity: int,
        events: list[Event],
        seq: int,
        ts: int,
    ) -> None:
        """An auction execution (no aggressor) between two resting orders."""
        trade_id = self._next_trade_id
        self._next_trade_id = trade_id + 1
        events.append(
            Trade(trade_id, book.spec.symbol, price, quantity, buyer.order_id, seller.order_id,
                  buyer.participant, seller.participant, None, seq, ts)
        )  # fmt: skip
        for order in (buyer, seller):
            self._fill_resting(book, order, quantity)

    def _fill_resting(self, book: Book, order: Order, quantity: int) -> None:
        order.filled += quantity
        if order.is_market:
            order.remaining -= quantity
            if not order.remaining:
                (book.market_bids if order.side is BUY else book.market_asks).remove(order)
                del self._orders[order.order_id]
            return
        level = order.level
        assert level is not None
        order.remaining -= quantity
        level.total -= quantity
        if not order.remaining:
            del self._orders[order.order_id]
            if level.total:
                level.dead += 1
            else:
                book.half(order.side).drop_level(level)

    # ------------------------------------------------------------------ bookkeeping

    def _rest(self, book: Book, order: Order) -> Level:
        level = (book.bids if order.side is BUY else book.asks).add(order)
        self._index(order)
        return level

    def _index(self, order: Order) -> None:
        self._orders[order.order_id] = order
        if order.expire_ts is not None:
            heappush(self._gtd_expiries, (order.expire_ts, order.order_id))

    def _unlink(self, book: Book, order: Order) -> int:
        """Take a live order out of the book and the index; return its remaining quantity."""
        del self._orders[order.order_id]
        if order.is_market:
            (book.market_bids if order.side is BUY else book.market_asks).remove(order)
            quantity = order.remaining
            order.remaining = 0
            return quantity
        return book.half(order.side).remove(order)

    def _book_changed(self, book: Book, changes: tuple[LevelChange, ...]) -> BookChanged:
        """Market data: the top of book and ``changes`` (bids first, prices ascending)."""
        bid = book.bids.best
        ask = book.asks.best
        return BookChanged(
            book.spec.symbol,
            _price_object(bid) if bid else None,
            bid.total if bid else 0,
            _price_object(ask) if ask else None,
            ask.total if ask else 0,
            changes,
        )

    def _publish_diff(
        self, book: Book, before: dict[tuple[Side, int], int], events: list[Event]
    ) -> None:
        """Publish the levels whose totals differ from the ``before`` snapshot."""
        if book.hidden:
            return
        after = book.depth_snapshot()
        changes = [(s, p, after.get((s, p), 0)) for (s, p), q in before.items()
                   if after.get((s, p), 0) != q]  # fmt: skip
        changes += [(s, p, q) for (s, p), q in after.items() if (s, p) not in before]
        if changes:
            changes.sort()
            events.append(self._book_changed(book, tuple(changes)))

    # ------------------------------------------------------------------ queries

    def check(self, command: SubmitOrder | AmendOrder | CancelOrder) -> RejectReason | None:
        """The reason :meth:`apply` would reject ``command`` with, or None; changes nothing.

        Lets a caller refuse a command before journalling it: whatever passes here, ``apply``
        accepts (the engine is deterministic and nothing happens in between).
        """
        if type(command) is SubmitOrder:
            book = self._books.get(command.symbol)
            if book is None:
                return R.VALIDATION_UNKNOWN_INSTRUMENT
            reason = self._order_problem(book, command, command.order_id)
            if (
                reason is None
                and command.post_only
                and book.phase is CONTINUOUS
                and self._would_take(book, command.side is BUY, command.price_minor)
            ):
                return R.MATCHING_POST_ONLY_WOULD_TAKE
            return reason
        order = self._orders.get(command.order_id)
        if order is None or order.participant != command.participant:
            return R.MATCHING_UNKNOWN_ORDER
        if type(command) is AmendOrder:
            return self._amend_problem(self._books[order.symbol], order, command)
        return None

    def symbols(self) -> list[str]:
        return sorted(self._books)

    def instrument(self, symbol: str) -> InstrumentSpec:
        return self._books[symbol].spec

    def phase(self, symbol: str) -> Phase:
        return self._books[symbol].phase

    def reference_price(self, symbol: str) -> int | None:
        return self._books[symbol].reference_price

    def depth(self, symbol: str, max_levels: int = 10) -> tuple[list[tuple[int, int]], ...]:
        """(bids, asks) as (price, total quantity), best first, at most ``max_levels`` each.

        A sealed-bid book shows nothing before its close.
        """
        book = self._books[symbol]
        if book.hidden:
            return [], []
        return book.bids.depth(max_levels), book.asks.depth(max_levels)

    def indicative_auction(self, symbol: str) -> Clearing | None:
        """The price and volume an uncross would give now (None for sealed-bid books)."""
        book = self._books[symbol]
        return None if book.hidden else self._clearing(book)

    def open_order(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def next_expiry(self) -> int | None:
        """The earliest expiry time of a live GTD order, None without one: when an ``Expire``
        next has something to do. Entries of orders that have left the book are dropped."""
        heap, live = self._gtd_expiries, self._orders
        while heap and heap[0][1] not in live:
            heappop(heap)
        return heap[0][0] if heap else None

    def open_order_count(self) -> int:
        return len(self._orders)

    def state_hash(self) -> str:
        """SHA-256 over every book (phase, reference price, orders in priority order) and the
        counters: equal engines have equal hashes, whatever path led there."""
        h = hashlib.sha256()
        h.update(repr((self._next_trade_id, self._next_priority)).encode())
        for symbol in sorted(self._books):
            book = self._books[symbol]
            h.update(repr((symbol, str(book.phase), book.reference_price)).encode())
            for order in book.live_orders():
                h.update(
                    repr((order.order_id, str(order.side), order.price, order.quantity,
                          order.remaining, order.priority)).encode()
                )  # fmt: skip
        return h.hexdigest()

    def check_invariants(self) -> None:
        """Assert every structural invariant; raises AssertionError on the first broken one."""
        seen: set[int] = set()
        for symbol, book in self._books.items():
            for half in (book.bids, book.asks):
                half.keys.check_invariants()
                keys = half.keys.ascending()
                assert set(keys) == set(half.levels), "level keys and levels differ"
                best = half.levels[keys[-1]] if keys else None
                assert half.best is best, "best level is not the greatest key's"
                previous_priority = 0
                for key in keys:
                    level = half.levels[key]
                    assert level.key == key and level.price * half.sign == key, "level's key"
                    live = level.live()
                    assert live, "empty level kept"
                    assert level.total == sum(o.remaining for o in live), "level total drifted"
                    assert level.dead == len(level.orders) - level.head - len(live), (
                        "dead count drifted"
                    )
                    previous_priority = 0
                    for order in live:
                        assert order.priority > previous_priority, "time priority broken"
                        previous_priority = order.priority
                        assert order.price == level.price and order.side is half.side
                        assert order.level is level, "order does not hold its level"
                        assert not order.is_market
                        assert order.symbol == symbol
                        assert order.filled + order.remaining == order.quantity
                        assert self._orders.get(order.order_id) is order, "order not indexed"
                        seen.add(order.order_id)
            for queue in (book.market_bids, book.market_asks):
                assert not queue or book.phase not in (CONTINUOUS,), "market order resting"
                for order in queue:
                    assert order.is_market and order.remaining > 0
                    assert self._orders.get(order.order_id) is order
                    seen.add(order.order_id)
            # Books collecting for an auction may cross, and so may one halted while collecting.
            if (book.phase is CONTINUOUS or book.phase is CLOSED) and not book.hidden:
                assert not book.is_crossed(), f"book {symbol} crossed in {book.phase}"
        assert seen == set(self._orders), "index holds orders missing from the books"


def _price_object(level: Level) -> int | None:
    """``level.price`` as the int object its orders already hold (every entry of a level's
    queue, live or dead, has the level's price; a dropped level's queue is empty).

    Compiled, ``level.price`` is a native integer, and each use of it as an object (an event's
    field, a tuple's item) allocates a new one: prices are above the small ints Python keeps.
    """
    orders = level.orders
    return orders[-1].price if orders else level.price


def _level_change(side: Side, level: Level) -> Any:
    """Market data for one level, ``(side, price, total)``, built from objects.

    Typed ``Any`` on purpose: compiled, a ``LevelChange`` value is a C struct of native ints
    that is boxed (and its price allocated) each time it goes into a tuple; as an object the
    tuple is built once, around the price object the level's orders hold.
    """
    return (side, _price_object(level), level.total)


def _price_problem(spec: InstrumentSpec, price: int) -> RejectReason | None:
    if price <= 0:
        return R.VALIDATION_PRICE_NOT_POSITIVE
    if price % spec.tick_size:
        return R.VALIDATION_PRICE_OFF_TICK
    low, high = spec.price_band_low, spec.price_band_high
    if (low is not None and price < low) or (high is not None and price > high):
        return R.VALIDATION_PRICE_OUTSIDE_BAND
    return None


def _auction_priority(
    market: Iterable[Order], half: HalfBook, price: int, sign: int
) -> list[Order]:
    """The orders of one side that execute at ``price``, in the order they fill.

    Unprotected market orders come first, by time. A market order with a protection price
    ranks like a limit order at that price, so it can never fill ahead of a better-priced
    limit order and leave the book crossed; then price, then time.
    """
    eligible = [o for o in market if o.price is not None and o.price * sign >= price * sign]
    eligible += [o for o in half.orders_in_priority() if o.price * sign >= price * sign]  # type: ignore[operator]
    eligible.sort(key=lambda o: (-o.price * sign, o.priority))  # type: ignore[operator]
    return [o for o in market if o.price is None] + eligible


def _volumes_at(book: Book, price: int | None) -> tuple[int, int]:
    if price is None:
        return 0, 0
    buy = sum(total for p, total in book.bids.depth(-1) if p >= price)
    sell = sum(total for p, total in book.asks.depth(-1) if p <= price)
    return buy, sell
