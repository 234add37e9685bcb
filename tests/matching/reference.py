"""A deliberately simple model of the matching engine, for differential testing.

It keeps every live order in one list and answers every question by sorting and scanning
that list: no price levels, no lazy deletion, no cached best prices, no fast paths. Market
data is always the difference of the aggregated book before and after a command. What it
shares with the engine is only the specification (commands, events, enums and the documented
rules), so a disagreement points at a bug in one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from matching import (
    Accepted,
    AddInstrument,
    Amended,
    AmendOrder,
    AuctionResult,
    BookChanged,
    Cancelled,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    Expire,
    InstrumentAdded,
    InstrumentSpec,
    OrderType,
    Phase,
    PhaseChanged,
    Rejected,
    RejectReason,
    SealedBidPricing,
    SelfTradePrevention,
    SetPhase,
    Side,
    SubmitOrder,
    TimeInForce,
    Trade,
    TradingMode,
    Uncross,
)

R = RejectReason
COLLECTING = (Phase.PRE_OPEN, Phase.AUCTION)


@dataclass
class ModelOrder:
    order_id: int
    participant: str
    symbol: str
    side: Side
    price: int | None  # limit, or a market order's protection price (None: unprotected)
    quantity: int
    remaining: int
    filled: int
    tif: TimeInForce
    expire_ts: int | None
    stp: SelfTradePrevention
    is_market: bool
    post_only: bool
    priority: int


@dataclass
class ModelInstrument:
    spec: InstrumentSpec
    phase: Phase
    reference_price: int | None = None


class ReferenceEngine:
    def __init__(self) -> None:
        self.instruments: dict[str, ModelInstrument] = {}
        self.orders: list[ModelOrder] = []
        self.used_ids: set[int] = set()
        self.next_trade_id = 1
        self.next_priority = 1

    # ---------------------------------------------------------------- helpers

    def book_orders(self, symbol: str, side: Side) -> list[ModelOrder]:
        """Live limit orders of one side in priority: best price, then time."""
        orders = [
            o for o in self.orders if o.symbol == symbol and o.side == side and not o.is_market
        ]
        sign = -1 if side == Side.BUY else 1
        return sorted(orders, key=lambda o: (sign * o.price, o.priority))  # type: ignore[operator]

    def market_orders(self, symbol: str, side: Side) -> list[ModelOrder]:
        """Resting market orders (auction phases only), by time."""
        orders = [o for o in self.orders if o.symbol == symbol and o.side == side and o.is_market]
        return sorted(orders, key=lambda o: o.priority)

    def auction_fill_order(self, symbol: str, side: Side, price: int) -> list[ModelOrder]:
        """Who fills first at an auction price: unprotected market orders by time, then
        everything priced (protection prices included) by price, then time."""
        sign = -1 if side == Side.BUY else 1
        unprotected = [o for o in self.market_orders(symbol, side) if o.price is None]
        priced = [
            o for o in self.orders
            if o.symbol == symbol and o.side == side and o.price is not None
            and sign * o.price <= sign * price
        ]  # fmt: skip
        priced.sort(key=lambda o: (sign * o.price, o.priority))  # type: ignore[operator]
        return unprotected + priced

    def levels(self, symbol: str) -> dict[tuple[Side, int], int]:
        out: dict[tuple[Side, int], int] = {}
        for o in self.orders:
            if o.symbol == symbol and not o.is_market:
                key = (o.side, o.price)
                out[key] = out.get(key, 0) + o.remaining  # type: ignore[index]
        return out

    def publish(self, symbol: str, before: dict[tuple[Side, int], int], events: list) -> None:
        inst = self.instruments[symbol]
        if inst.spec.trading_mode is TradingMode.SEALED_BID:
            return
        after = self.levels(symbol)
        keys = sorted(set(before) | set(after))
        changes = tuple(
            (s, p, after.get((s, p), 0))
            for s, p in keys
            if before.get((s, p), 0) != after.get((s, p), 0)
        )
        if not changes:
            return
        bids = [p for (s, p) in after if s == Side.BUY]
        asks = [p for (s, p) in after if s == Side.SELL]
        best_bid = max(bids) if bids else None
        best_ask = min(asks) if asks else None
        events.append(
            BookChanged(
                symbol,
                best_bid,
                after[(Side.BUY, best_bid)] if best_bid is not None else 0,
                best_ask,
                after[(Side.SELL, best_ask)] if best_ask is not None else 0,
                changes,
            )
        )

    def remove(self, order: ModelOrder) -> int:
        self.orders.remove(order)
        quantity = order.remaining
        order.remaining = 0
        return quantity

    def trade(self, symbol, price, quantity, buyer, seller, aggressor, seq, ts, events) -> None:
        events.append(
            Trade(self.next_trade_id, symbol, price, quantity, buyer.order_id, seller.order_id,
                  buyer.participant, seller.participant, aggressor, seq, ts)
        )  # fmt: skip
        self.next_trade_id += 1
        for o in (buyer, seller):
            o.remaining -= quantity
            o.filled += quantity
            if o.remaining == 0 and o in self.orders:
                self.orders.remove(o)

    @staticmethod
    def price_problem(spec: InstrumentSpec, price: int) -> RejectReason | None:
        if price <= 0:
            return R.VALIDATION_PRICE_NOT_POSITIVE
        if price % spec.tick_size:
            return R.VALIDATION_PRICE_OFF_TICK
        if spec.price_band_low is not None and price < spec.price_band_low:
            return R.VALIDATION_PRICE_OUTSIDE_BAND
        if spec.price_band_high is not None and price > spec.price_band_high:
            return R.VALIDATION_PRICE_OUTSIDE_BAND
        return None

    @staticmethod
    def crosses(taker_side: Side, limit: int | None, resting_price: int) -> bool:
        if taker_side == Side.BUY:
            return resting_price <= limit  # type: ignore[operator]
        return limit is None or resting_price >= limit

    # ---------------------------------------------------------------- commands

    def apply(self, c: Command) -> list[Event]:
        handler = {
            AddInstrument: self.add_instrument,
            SubmitOrder: self.new_order,
            CancelOrder: self.cancel,
            AmendOrder: self.amend,
            Expire: self.expire,
            Uncross: self.uncross_command,
            SetPhase: self.set_phase,
        }[type(c)]
        return handler(c)

    def add_instrument(self, c: AddInstrument) -> list[Event]:
        symbol = c.spec.symbol
        if symbol in self.instruments:
            return [Rejected(None, symbol, R.VALIDATION_DUPLICATE_INSTRUMENT)]
        if c.spec.problem() is not None:
            return [Rejected(None, symbol, R.VALIDATION_INVALID_INSTRUMENT)]
        if c.phase == Phase.CONTINUOUS and c.spec.trading_mode != TradingMode.CONTINUOUS:
            return [Rejected(None, symbol, R.MATCHING_PHASE_NOT_IN_MODE)]
        self.instruments[symbol] = ModelInstrument(c.spec, c.phase)
        return [InstrumentAdded(symbol, c.phase)]

    def order_problem(self, inst: ModelInstrument, c: SubmitOrder) -> RejectReason | None:
        spec = inst.spec
        if c.quantity_units <= 0:
            return R.VALIDATION_QUANTITY_NOT_POSITIVE
        if c.quantity_units % spec.lot_size:
            return R.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE
        if c.quantity_units > spec.max_order_quantity:
            return R.VALIDATION_QUANTITY_ABOVE_MAXIMUM
        market = c.order_type == OrderType.MARKET
        if c.price_minor is None:
            if not market:
                return R.VALIDATION_PRICE_REQUIRED
            if c.side == Side.BUY and spec.price_band_high is None:
                return R.VALIDATION_PROTECTION_PRICE_REQUIRED
        elif (problem := self.price_problem(spec, c.price_minor)) is not None:
            return problem
        if c.tif == TimeInForce.GTD:
            if c.expire_ts is None:
                return R.VALIDATION_EXPIRY_REQUIRED
            if c.expire_ts <= c.ts:
                return R.VALIDATION_EXPIRY_IN_PAST
        elif c.expire_ts is not None:
            return R.VALIDATION_EXPIRY_WITHOUT_GTD
        if c.post_only and (market or c.tif in (TimeInForce.IOC, TimeInForce.FOK)):
            return R.VALIDATION_POST_ONLY_NEEDS_RESTING_LIMIT
        if c.order_id in self.used_ids:
            return R.VALIDATION_DUPLICATE_ORDER_ID
        if inst.phase == Phase.CONTINUOUS:
            return None
        if inst.phase in COLLECTING:
            sealed = spec.trading_mode == TradingMode.SEALED_BID
            if c.tif in (TimeInForce.IOC, TimeInForce.FOK) or c.post_only or (market and sealed):
                return R.MATCHING_ORDER_TYPE_NOT_ALLOWED
            return None
        return R.MATCHING_PHASE_REJECTS_ORDERS

    def new_order(self, c: SubmitOrder) -> list[Event]:
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return [Rejected(c.order_id, c.symbol, R.VALIDATION_UNKNOWN_INSTRUMENT)]
        problem = self.order_problem(inst, c)
        if problem is not None:
            return [Rejected(c.order_id, c.symbol, problem)]
        market = c.order_type == OrderType.MARKET
        price = c.price_minor
        if market and price is None:
            spec = inst.spec
            price = spec.price_band_high if c.side == Side.BUY else spec.price_band_low
        opposite = self.book_orders(c.symbol, Side.SELL if c.side == Side.BUY else Side.BUY)
        opposite_limits = [o for o in opposite if not o.is_market]
        if (
            c.post_only
            and inst.phase == Phase.CONTINUOUS
            and opposite_limits
            and self.crosses(c.side, price, opposite_limits[0].price)  # type: ignore[arg-type]
        ):
            return [Rejected(c.order_id, c.symbol, R.MATCHING_POST_ONLY_WOULD_TAKE)]
        self.used_ids.add(c.order_id)
        order = ModelOrder(
            c.order_id, c.participant, c.symbol, c.side, price, c.quantity_units,
            c.quantity_units, 0, c.tif, c.expire_ts, c.stp, market, c.post_only, self.next_priority,
        )  # fmt: skip
        self.next_priority += 1
        events: list[Event] = [
            Accepted(c.order_id, c.participant, c.symbol, c.side, c.order_type, c.price_minor,
                     c.quantity_units, c.tif)
        ]  # fmt: skip
        before = self.levels(c.symbol)
        if inst.phase != Phase.CONTINUOUS:
            self.orders.append(order)
            self.publish(c.symbol, before, events)
            return events
        if c.tif == TimeInForce.FOK and not self.can_fill(order):
            events.append(
                Cancelled(
                    c.order_id, c.participant, c.symbol, c.quantity_units, CancelReason.FOK_UNFILLED
                )
            )
            return events
        self.take(inst, order, c.seq, c.ts, events)
        if order.remaining:
            if market or c.tif in (TimeInForce.IOC, TimeInForce.FOK):
                events.append(
                    Cancelled(c.order_id, c.participant, c.symbol, order.remaining,
                              CancelReason.IOC_REMAINDER)
                )  # fmt: skip
            else:
                self.orders.append(order)
        self.publish(c.symbol, before, events)
        return events

    def can_fill(self, taker: ModelOrder) -> bool:
        available = 0
        for maker in self.book_orders(taker.symbol, _other(taker.side)):
            if not self.crosses(taker.side, taker.price, maker.price):  # type: ignore[arg-type]
                break
            if taker.stp != SelfTradePrevention.NONE and maker.participant == taker.participant:
                if taker.stp == SelfTradePrevention.CANCEL_OLDEST:
                    continue
                break
            available += maker.remaining
        return available >= taker.remaining

    def take(self, inst: ModelInstrument, taker: ModelOrder, seq: int, ts: int, events) -> None:
        for maker in self.book_orders(taker.symbol, _other(taker.side)):
            if not taker.remaining:
                break
            if not self.crosses(taker.side, taker.price, maker.price):  # type: ignore[arg-type]
                break
            if taker.stp != SelfTradePrevention.NONE and maker.participant == taker.participant:
                if taker.stp in (
                    SelfTradePrevention.CANCEL_OLDEST,
                    SelfTradePrevention.CANCEL_BOTH,
                ):
                    quantity = self.remove(maker)
                    events.append(
                        Cancelled(maker.order_id, maker.participant, maker.symbol, quantity,
                                  CancelReason.SELF_TRADE)
                    )  # fmt: skip
                if taker.stp in (
                    SelfTradePrevention.CANCEL_NEWEST,
                    SelfTradePrevention.CANCEL_BOTH,
                ):
                    events.append(
                        Cancelled(taker.order_id, taker.participant, taker.symbol, taker.remaining,
                                  CancelReason.SELF_TRADE)
                    )  # fmt: skip
                    taker.remaining = 0
                    break
                continue
            quantity = min(taker.remaining, maker.remaining)
            buyer, seller = (taker, maker) if taker.side == Side.BUY else (maker, taker)
            self.trade(taker.symbol, maker.price, quantity, buyer, seller, taker.side, seq, ts,
                       events)  # fmt: skip
            inst.reference_price = maker.price

    def find(self, order_id: int, participant: str) -> ModelOrder | None:
        for o in self.orders:
            if o.order_id == order_id and o.participant == participant:
                return o
        return None

    def cancel(self, c: CancelOrder) -> list[Event]:
        order = self.find(c.order_id, c.participant)
        if order is None:
            return [Rejected(c.order_id, None, R.MATCHING_UNKNOWN_ORDER)]
        before = self.levels(order.symbol)
        quantity = self.remove(order)
        events: list[Event] = [
            Cancelled(order.order_id, order.participant, order.symbol, quantity, CancelReason.USER)
        ]
        self.publish(order.symbol, before, events)
        return events

    def amend(self, c: AmendOrder) -> list[Event]:
        order = self.find(c.order_id, c.participant)
        if order is None:
            return [Rejected(c.order_id, None, R.MATCHING_UNKNOWN_ORDER)]
        inst = self.instruments[order.symbol]
        spec = inst.spec
        problem = None
        if c.price_minor is None and c.quantity_units is None:
            problem = R.VALIDATION_AMEND_CHANGES_NOTHING
        elif c.quantity_units is not None and c.quantity_units <= 0:
            problem = R.VALIDATION_QUANTITY_NOT_POSITIVE
        elif c.quantity_units is not None and c.quantity_units % spec.lot_size:
            problem = R.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE
        elif c.quantity_units is not None and c.quantity_units > spec.max_order_quantity:
            problem = R.VALIDATION_QUANTITY_ABOVE_MAXIMUM
        elif c.price_minor is not None and order.is_market:
            problem = R.VALIDATION_AMEND_PRICE_OF_MARKET_ORDER
        elif c.price_minor is not None and self.price_problem(spec, c.price_minor) is not None:
            problem = self.price_problem(spec, c.price_minor)
        elif inst.phase in (Phase.HALTED, Phase.CLOSED):
            problem = R.MATCHING_PHASE_REJECTS_ORDERS
        elif c.quantity_units is not None and c.quantity_units <= order.filled:
            problem = R.MATCHING_AMEND_NOT_ABOVE_FILLED
        elif order.post_only and c.price_minor is not None and inst.phase == Phase.CONTINUOUS:
            opposite = [
                o for o in self.book_orders(order.symbol, _other(order.side)) if not o.is_market
            ]
            if opposite and self.crosses(order.side, c.price_minor, opposite[0].price):  # type: ignore[arg-type]
                problem = R.MATCHING_POST_ONLY_WOULD_TAKE
        if problem is not None:
            return [Rejected(c.order_id, order.symbol, problem)]
        price = order.price if c.price_minor is None else c.price_minor
        quantity = order.quantity if c.quantity_units is None else c.quantity_units
        before = self.levels(order.symbol)
        events: list[Event] = []
        if price == order.price and quantity <= order.quantity:
            order.remaining -= order.quantity - quantity
            order.quantity = quantity
            events.append(
                Amended(order.order_id, order.participant, order.symbol, order.price, quantity,
                        order.remaining, True)
            )  # fmt: skip
            self.publish(order.symbol, before, events)
            return events
        self.orders.remove(order)
        order.price = price
        order.quantity = quantity
        order.remaining = quantity - order.filled
        order.priority = self.next_priority
        self.next_priority += 1
        events.append(
            Amended(order.order_id, order.participant, order.symbol, price, quantity,
                    order.remaining, False)
        )  # fmt: skip
        if inst.phase == Phase.CONTINUOUS:
            self.take(inst, order, c.seq, c.ts, events)
        if order.remaining:
            self.orders.append(order)
        self.publish(order.symbol, before, events)
        return events

    def expire(self, c: Expire) -> list[Event]:
        due = sorted(
            (o for o in self.orders if o.expire_ts is not None and o.expire_ts <= c.ts),
            key=lambda o: (o.expire_ts, o.order_id),
        )
        symbols = list(dict.fromkeys(o.symbol for o in due))
        events: list[Event] = []
        for symbol in symbols:
            before = self.levels(symbol)
            for order in due:
                if order.symbol == symbol:
                    quantity = self.remove(order)
                    events.append(
                        Cancelled(order.order_id, order.participant, symbol, quantity,
                                  CancelReason.EXPIRED)
                    )  # fmt: skip
            self.publish(symbol, before, events)
        return events

    def uncross_command(self, c: Uncross) -> list[Event]:
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return [Rejected(None, c.symbol, R.VALIDATION_UNKNOWN_INSTRUMENT)]
        if inst.phase not in COLLECTING:
            return [Rejected(None, c.symbol, R.MATCHING_UNCROSS_NOT_IN_PHASE)]
        before = self.levels(c.symbol)
        events: list[Event] = []
        self.uncross(inst, c.seq, c.ts, events)
        self.publish(c.symbol, before, events)
        return events

    def set_phase(self, c: SetPhase) -> list[Event]:
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return [Rejected(None, c.symbol, R.VALIDATION_UNKNOWN_INSTRUMENT)]
        if c.phase == Phase.CONTINUOUS and inst.spec.trading_mode != TradingMode.CONTINUOUS:
            return [Rejected(None, c.symbol, R.MATCHING_PHASE_NOT_IN_MODE)]
        before = self.levels(c.symbol)
        events: list[Event] = []
        old = inst.phase
        if (
            c.phase != old
            and c.phase in (Phase.CONTINUOUS, Phase.CLOSED)
            and old != Phase.CONTINUOUS
        ):
            self.uncross(inst, c.seq, c.ts, events)
        if c.cancel_resting:
            for order in self.all_in_priority(c.symbol):
                quantity = self.remove(order)
                events.append(
                    Cancelled(order.order_id, order.participant, c.symbol, quantity,
                              CancelReason.HALTED)
                )  # fmt: skip
        if c.phase == Phase.CLOSED:
            for order in self.all_in_priority(c.symbol):
                if order.tif == TimeInForce.DAY or order.is_market:
                    quantity = self.remove(order)
                    events.append(
                        Cancelled(order.order_id, order.participant, c.symbol, quantity,
                                  CancelReason.EXPIRED)
                    )  # fmt: skip
        inst.phase = c.phase
        events.append(PhaseChanged(c.symbol, c.phase))
        self.publish(c.symbol, before, events)
        return events

    def all_in_priority(self, symbol: str) -> list[ModelOrder]:
        return (
            self.market_orders(symbol, Side.BUY)
            + self.book_orders(symbol, Side.BUY)
            + self.market_orders(symbol, Side.SELL)
            + self.book_orders(symbol, Side.SELL)
        )

    # ---------------------------------------------------------------- auctions

    def volumes(self, symbol: str, price: int) -> tuple[int, int]:
        buy = sum(
            o.remaining for o in self.orders
            if o.symbol == symbol and o.side == Side.BUY and (o.price is None or o.price >= price)
        )  # fmt: skip
        sell = sum(
            o.remaining for o in self.orders
            if o.symbol == symbol and o.side == Side.SELL and (o.price is None or o.price <= price)
        )  # fmt: skip
        return buy, sell

    def clearing(self, inst: ModelInstrument) -> tuple[int | None, int, int]:
        symbol = inst.spec.symbol
        prices = sorted({o.price for o in self.orders if o.symbol == symbol and not o.is_market})
        rows = []
        for p in prices:
            buy, sell = self.volumes(symbol, p)  # type: ignore[arg-type]
            rows.append((p, min(buy, sell), buy - sell))
        if not rows or max(r[1] for r in rows) == 0:
            ref = inst.reference_price
            if ref is not None:
                buy, sell = self.volumes(symbol, ref)
                if min(buy, sell):
                    return ref, min(buy, sell), buy - sell
            return None, 0, 0
        top = max(r[1] for r in rows)
        rows = [r for r in rows if r[1] == top]
        least = min(abs(r[2]) for r in rows)
        rows = [r for r in rows if abs(r[2]) == least]
        if all(r[2] > 0 for r in rows):
            return rows[-1]
        if all(r[2] < 0 for r in rows):
            return rows[0]
        if least == 0:
            candidates = rows
        else:
            candidates = [
                [r for r in rows if r[2] > 0][-1],
                next(r for r in rows if r[2] < 0),
            ]
        ref = inst.reference_price
        if ref is None:
            return candidates[-1]
        best = candidates[0]
        for r in candidates[1:]:
            d_best, d_r = abs(best[0] - ref), abs(r[0] - ref)
            if d_r < d_best or (d_r == d_best and r[0] > best[0]):
                best = r
        return best

    def uncross(self, inst: ModelInstrument, seq: int, ts: int, events: list) -> None:
        symbol = inst.spec.symbol
        if inst.spec.trading_mode == TradingMode.SEALED_BID:
            self.close_sealed(inst, seq, ts, events)
            return
        price, volume, imbalance = self.clearing(inst)
        events.append(AuctionResult(symbol, price, volume, imbalance, seq, ts))
        if volume:
            buyers = self.auction_fill_order(symbol, Side.BUY, price)  # type: ignore[arg-type]
            sellers = self.auction_fill_order(symbol, Side.SELL, price)  # type: ignore[arg-type]
            left = volume
            while left:
                buyer = next(o for o in buyers if o.remaining)
                seller = next(o for o in sellers if o.remaining)
                quantity = min(buyer.remaining, seller.remaining, left)
                self.trade(symbol, price, quantity, buyer, seller, None, seq, ts, events)
                left -= quantity
            inst.reference_price = price
        for side in (Side.BUY, Side.SELL):
            for o in self.market_orders(symbol, side):
                quantity = self.remove(o)
                events.append(
                    Cancelled(o.order_id, o.participant, symbol, quantity,
                              CancelReason.IOC_REMAINDER)
                )  # fmt: skip

    def close_sealed(self, inst: ModelInstrument, seq: int, ts: int, events: list) -> None:
        symbol = inst.spec.symbol
        bids = self.book_orders(symbol, Side.BUY)
        asks = self.book_orders(symbol, Side.SELL)
        left = {o.order_id: o.remaining for o in bids + asks}
        awards = []
        for bid in bids:
            for ask in asks:
                if bid.price < ask.price:  # type: ignore[operator]
                    break
                quantity = min(left[bid.order_id], left[ask.order_id])
                if quantity:
                    awards.append((bid, ask, quantity))
                    left[bid.order_id] -= quantity
                    left[ask.order_id] -= quantity
                if not left[bid.order_id]:
                    break
        losing = [o.price for o in bids if left[o.order_id]]
        second = losing[0] if losing else None
        first_wins = inst.spec.sealed_bid_pricing == SealedBidPricing.FIRST_PRICE
        priced = [
            (b, a, b.price if first_wins else max(a.price, second or 0), q) for b, a, q in awards
        ]  # type: ignore[type-var]
        price = priced[0][2] if priced else None
        volume = sum(q for *_, q in priced)
        if price is None:
            imbalance = 0
        else:
            buy = sum(o.remaining for o in bids if o.price >= price)  # type: ignore[operator]
            sell = sum(o.remaining for o in asks if o.price <= price)  # type: ignore[operator]
            imbalance = buy - sell
        events.append(AuctionResult(symbol, price, volume, imbalance, seq, ts))
        for bid, ask, award_price, quantity in priced:
            self.trade(symbol, award_price, quantity, bid, ask, None, seq, ts, events)
            inst.reference_price = award_price
        for bid in self.book_orders(symbol, Side.BUY):
            quantity = self.remove(bid)
            events.append(
                Cancelled(bid.order_id, bid.participant, symbol, quantity, CancelReason.EXPIRED)
            )


def _other(side: Side) -> Side:
    return Side.SELL if side == Side.BUY else Side.BUY
