"""One test per engine behaviour, on small hand-made books."""

from __future__ import annotations

import pytest

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
    Engine,
    Event,
    Expire,
    InstrumentSpec,
    OrderType,
    Phase,
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

BUY, SELL = Side.BUY, Side.SELL
R = RejectReason


class Session:
    """An engine with one instrument, a clock and a sequence counter."""

    def __init__(self, spec: InstrumentSpec | None = None, phase: Phase = Phase.CONTINUOUS):
        self.engine = Engine()
        self.seq = 0
        self.symbol = (spec or InstrumentSpec("X")).symbol
        self.next_id = 1
        self.do(AddInstrument, spec or InstrumentSpec("X"), phase)

    def do(self, make, *args, **kwargs) -> list[Event]:
        self.seq += 1
        events = self.engine.apply(make(self.seq, self.seq * 10, *args, **kwargs))
        self.engine.check_invariants()
        return events

    def order(self, who: str, side: Side, quantity: int, price: int | None = None, **kw):
        order_id = kw.pop("order_id", None) or self.next_id
        self.next_id = max(self.next_id, order_id) + 1
        return self.do(
            SubmitOrder, order_id, who, self.symbol, side, quantity, price_minor=price, **kw
        )

    def market(self, who: str, side: Side, quantity: int, price: int | None = None, **kw):
        return self.order(who, side, quantity, price, order_type=OrderType.MARKET, **kw)


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def reasons(events: list[Event]) -> list:
    return [e.reason for e in events if isinstance(e, Rejected | Cancelled)]


# ------------------------------------------------------------------ orders


def test_limit_order_rests_and_publishes_its_level():
    s = Session()
    events = s.order("a", BUY, 5, 100)
    assert events == [
        Accepted(1, "a", "X", BUY, OrderType.LIMIT, 100, 5, TimeInForce.GTC),
        BookChanged("X", 100, 5, None, 0, ((BUY, 100, 5),)),
    ]
    assert s.engine.depth("X") == ([(100, 5)], [])


def test_crossing_order_trades_at_resting_prices_in_price_time_priority():
    s = Session()
    s.order("a", SELL, 3, 101)  # id 1
    s.order("b", SELL, 3, 100)  # id 2: better price, later
    s.order("c", SELL, 3, 100)  # id 3: same price, later still
    events = s.order("d", BUY, 7, 101)
    assert [(t.sell_order_id, t.price, t.quantity) for t in of(events, Trade)] == [
        (2, 100, 3),
        (3, 100, 3),
        (1, 101, 1),
    ]
    assert all(t.aggressor is BUY and t.buyer == "d" for t in of(events, Trade))
    assert events[-1] == BookChanged("X", None, 0, 101, 2, ((SELL, 100, 0), (SELL, 101, 2)))


def test_resting_remainder_of_a_crossing_order_becomes_the_best_bid():
    s = Session()
    s.order("a", SELL, 2, 100)
    events = s.order("b", BUY, 5, 101)
    assert events[-1] == BookChanged("X", 101, 3, None, 0, ((BUY, 101, 3), (SELL, 100, 0)))


def test_market_order_takes_liquidity_and_cancels_its_remainder():
    s = Session()
    s.order("a", BUY, 2, 99)
    events = s.market("b", SELL, 5)
    assert [(t.price, t.quantity) for t in of(events, Trade)] == [(99, 2)]
    assert of(events, Cancelled) == [Cancelled(2, "b", "X", 3, CancelReason.IOC_REMAINDER)]


def test_market_buy_needs_a_protection_price_unless_a_band_bounds_it():
    assert reasons(Session().market("a", BUY, 1)) == [R.VALIDATION_PROTECTION_PRICE_REQUIRED]
    banded = Session(InstrumentSpec("X", price_band_low=50, price_band_high=150))
    banded.order("a", SELL, 1, 150)
    assert of(banded.market("b", BUY, 1), Trade)[0].price == 150


def test_market_buy_never_pays_above_its_protection_price():
    s = Session()
    s.order("a", SELL, 2, 100)
    s.order("a", SELL, 2, 105)
    events = s.market("b", BUY, 4, 102)
    assert [(t.price, t.quantity) for t in of(events, Trade)] == [(100, 2)]
    assert of(events, Cancelled)[0].quantity == 2


def test_ioc_remainder_is_cancelled():
    s = Session()
    s.order("a", SELL, 2, 100)
    events = s.order("b", BUY, 5, 100, tif=TimeInForce.IOC)
    assert of(events, Cancelled) == [Cancelled(2, "b", "X", 3, CancelReason.IOC_REMAINDER)]
    assert s.engine.depth("X") == ([], [])


def test_fok_fills_completely_or_not_at_all():
    s = Session()
    s.order("a", SELL, 2, 100)
    s.order("a", SELL, 2, 101)
    killed = s.order("b", BUY, 5, 101, tif=TimeInForce.FOK)
    assert of(killed, Trade) == [] and reasons(killed) == [CancelReason.FOK_UNFILLED]
    assert s.engine.depth("X")[1] == [(100, 2), (101, 2)]
    filled = s.order("b", BUY, 4, 101, tif=TimeInForce.FOK)
    assert sum(t.quantity for t in of(filled, Trade)) == 4


def test_gtd_order_needs_a_future_expiry_and_expires_at_it():
    s = Session()
    assert reasons(s.order("a", BUY, 1, 100, tif=TimeInForce.GTD)) == [R.VALIDATION_EXPIRY_REQUIRED]
    assert reasons(s.order("a", BUY, 1, 100, tif=TimeInForce.GTD, expire_ts=0)) == [
        R.VALIDATION_EXPIRY_IN_PAST
    ]
    assert reasons(s.order("a", BUY, 1, 100, expire_ts=10_000)) == [R.VALIDATION_EXPIRY_WITHOUT_GTD]
    s.order("a", BUY, 1, 100, tif=TimeInForce.GTD, expire_ts=500, order_id=50)
    assert s.engine.apply(Expire(90, 499)) == []
    events = s.engine.apply(Expire(91, 500))
    assert events[0] == Cancelled(50, "a", "X", 1, CancelReason.EXPIRED)
    assert s.engine.open_order(50) is None


def test_next_expiry_is_the_earliest_live_gtd_order():
    s = Session()
    assert s.engine.next_expiry() is None
    s.order("a", BUY, 1, 100, tif=TimeInForce.GTD, expire_ts=500, order_id=50)
    s.order("b", SELL, 1, 200, tif=TimeInForce.GTD, expire_ts=700, order_id=51)
    s.order("c", BUY, 1, 90, tif=TimeInForce.GTD, expire_ts=900, order_id=52)
    assert s.engine.next_expiry() == 500
    s.order("d", SELL, 1, 100)  # fills order 50
    assert s.engine.next_expiry() == 700
    s.do(CancelOrder, 51, "b")
    assert s.engine.next_expiry() == 900
    s.engine.apply(Expire(99, 900))
    assert s.engine.next_expiry() is None


def test_day_orders_expire_at_the_close_and_gtc_orders_stay():
    s = Session()
    s.order("a", BUY, 1, 100, tif=TimeInForce.DAY)
    s.order("a", BUY, 1, 99)
    events = s.do(SetPhase, "X", Phase.CLOSED)
    assert of(events, Cancelled) == [Cancelled(1, "a", "X", 1, CancelReason.EXPIRED)]
    assert s.engine.open_order(2) is not None


def test_post_only_order_is_rejected_when_it_would_take():
    s = Session()
    s.order("a", SELL, 1, 100)
    assert reasons(s.order("b", BUY, 1, 100, post_only=True)) == [R.MATCHING_POST_ONLY_WOULD_TAKE]
    assert of(s.order("b", BUY, 1, 99, post_only=True), Accepted)


@pytest.mark.parametrize(
    ("mode", "cancelled_ids", "trades"),
    [
        (SelfTradePrevention.CANCEL_NEWEST, [2], 0),
        (SelfTradePrevention.CANCEL_OLDEST, [1], 1),
        (SelfTradePrevention.CANCEL_BOTH, [1, 2], 0),
        (SelfTradePrevention.NONE, [], 1),
    ],
)
def test_self_trade_prevention_modes(mode, cancelled_ids, trades):
    s = Session()
    s.order("a", SELL, 2, 100)  # id 1, own order at the front
    s.order("b", SELL, 2, 100, order_id=3)
    events = s.order("a", BUY, 2, 100, order_id=2, stp=mode)
    cancelled = of(events, Cancelled)
    assert [c.order_id for c in cancelled] == cancelled_ids
    assert all(c.reason is CancelReason.SELF_TRADE for c in cancelled)
    assert len(of(events, Trade)) == trades


def test_cancel_removes_the_order_and_only_its_owner_may_cancel():
    s = Session()
    s.order("a", BUY, 4, 100)
    assert s.do(CancelOrder, 1, "mallory") == [Rejected(1, None, R.MATCHING_UNKNOWN_ORDER)]
    events = s.do(CancelOrder, 1, "a")
    assert events == [
        Cancelled(1, "a", "X", 4, CancelReason.USER),
        BookChanged("X", None, 0, None, 0, ((BUY, 100, 0),)),
    ]
    assert s.do(CancelOrder, 1, "a") == [Rejected(1, None, R.MATCHING_UNKNOWN_ORDER)]


def test_amend_quantity_down_keeps_time_priority():
    s = Session()
    s.order("a", BUY, 5, 100)
    s.order("b", BUY, 5, 100)
    assert s.do(AmendOrder, 1, "a", quantity_units=3)[0] == Amended(1, "a", "X", 100, 3, 3, True)
    trades = of(s.order("c", SELL, 3, 100), Trade)
    assert [t.buy_order_id for t in trades] == [1]


def test_amend_quantity_up_loses_time_priority():
    s = Session()
    s.order("a", BUY, 5, 100)
    s.order("b", BUY, 5, 100)
    assert s.do(AmendOrder, 1, "a", quantity_units=6)[0] == Amended(1, "a", "X", 100, 6, 6, False)
    trades = of(s.order("c", SELL, 3, 100), Trade)
    assert [t.buy_order_id for t in trades] == [2]


def test_amend_to_a_crossing_price_trades_at_once():
    s = Session()
    s.order("a", SELL, 2, 101)
    s.order("b", BUY, 2, 99)
    events = s.do(AmendOrder, 2, "b", price_minor=101)
    assert [type(e) for e in events] == [Amended, Trade, BookChanged]
    assert of(events, Trade)[0].aggressor is BUY


def test_amend_must_leave_quantity_above_what_has_filled():
    s = Session()
    s.order("a", BUY, 5, 100)
    s.order("b", SELL, 3, 100)
    amend_below_filled = s.do(AmendOrder, 1, "a", quantity_units=3)
    assert reasons(amend_below_filled) == [R.MATCHING_AMEND_NOT_ABOVE_FILLED]
    assert s.do(AmendOrder, 1, "a", quantity_units=4)[0] == Amended(1, "a", "X", 100, 4, 1, True)


# ------------------------------------------------------------------ validation

GRID = InstrumentSpec(
    "G", tick_size=5, lot_size=10, price_band_low=50, price_band_high=500, max_order_quantity=100
)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"quantity_units": 0}, R.VALIDATION_QUANTITY_NOT_POSITIVE),
        ({"quantity_units": -10}, R.VALIDATION_QUANTITY_NOT_POSITIVE),
        ({"quantity_units": 15}, R.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE),
        ({"quantity_units": 110}, R.VALIDATION_QUANTITY_ABOVE_MAXIMUM),
        ({"price_minor": None}, R.VALIDATION_PRICE_REQUIRED),
        ({"price_minor": 0}, R.VALIDATION_PRICE_NOT_POSITIVE),
        ({"price_minor": -5}, R.VALIDATION_PRICE_NOT_POSITIVE),
        ({"price_minor": 102}, R.VALIDATION_PRICE_OFF_TICK),
        ({"price_minor": 45}, R.VALIDATION_PRICE_OUTSIDE_BAND),
        ({"price_minor": 505}, R.VALIDATION_PRICE_OUTSIDE_BAND),
        ({"symbol": "NOPE"}, R.VALIDATION_UNKNOWN_INSTRUMENT),
        ({"tif": TimeInForce.IOC, "post_only": True}, R.VALIDATION_POST_ONLY_NEEDS_RESTING_LIMIT),
        ({"order_id": 1}, R.VALIDATION_DUPLICATE_ORDER_ID),
    ],
)
def test_validation_rejects_a_bad_order_with_its_reason(fields, reason):
    s = Session(GRID)
    s.order("a", BUY, 10, 100, order_id=1)
    values = {"order_id": 2, "symbol": "G", "quantity_units": 10, "price_minor": 100} | fields
    command = SubmitOrder(
        99, 990, values.pop("order_id"), "b", values.pop("symbol"), BUY,
        values.pop("quantity_units"), **values,
    )  # fmt: skip
    before = s.engine.state_hash()
    assert s.engine.apply(command) == [Rejected(command.order_id, command.symbol, reason)]
    assert s.engine.state_hash() == before  # a rejection changes nothing


# ------------------------------------------------------------------ phases


def test_pre_open_orders_rest_without_matching():
    s = Session(phase=Phase.PRE_OPEN)
    s.order("a", BUY, 5, 101)
    events = s.order("b", SELL, 5, 99)
    assert of(events, Trade) == []
    assert s.engine.depth("X") == ([(101, 5)], [(99, 5)])


def test_opening_auction_runs_when_continuous_trading_starts():
    s = Session(phase=Phase.PRE_OPEN)
    s.order("a", BUY, 5, 101)
    s.order("b", SELL, 3, 99)
    events = s.do(SetPhase, "X", Phase.CONTINUOUS)
    assert of(events, AuctionResult)[0].volume == 3
    assert [t.aggressor for t in of(events, Trade)] == [None]
    assert s.engine.phase("X") is Phase.CONTINUOUS
    assert s.engine.depth("X") == ([(101, 2)], [])


def test_halted_instrument_accepts_cancels_only():
    s = Session()
    s.order("a", BUY, 5, 100)
    s.do(SetPhase, "X", Phase.HALTED)
    assert reasons(s.order("b", SELL, 5, 100)) == [R.MATCHING_PHASE_REJECTS_ORDERS]
    assert reasons(s.do(AmendOrder, 1, "a", quantity_units=2)) == [R.MATCHING_PHASE_REJECTS_ORDERS]
    assert of(s.do(CancelOrder, 1, "a"), Cancelled)


def test_halt_with_cancel_resting_cancels_every_order():
    s = Session()
    s.order("a", BUY, 5, 100)
    s.order("b", SELL, 5, 101)
    events = s.do(SetPhase, "X", Phase.HALTED, cancel_resting=True)
    assert [(c.order_id, c.reason) for c in of(events, Cancelled)] == [
        (1, CancelReason.HALTED),
        (2, CancelReason.HALTED),
    ]
    assert s.engine.open_order_count() == 0


def test_call_auction_instrument_cannot_trade_continuously():
    s = Session(InstrumentSpec("C", trading_mode=TradingMode.CALL_AUCTION), Phase.AUCTION)
    assert reasons(s.do(SetPhase, "C", Phase.CONTINUOUS)) == [R.MATCHING_PHASE_NOT_IN_MODE]


def test_ioc_fok_and_post_only_are_refused_while_collecting():
    s = Session(phase=Phase.AUCTION)
    for kw in ({"tif": TimeInForce.IOC}, {"tif": TimeInForce.FOK}, {"post_only": True}):
        assert reasons(s.order("a", BUY, 1, 100, **kw)) == [R.MATCHING_ORDER_TYPE_NOT_ALLOWED]


def test_uncross_outside_a_collecting_phase_is_rejected():
    s = Session()
    assert reasons(s.do(Uncross, "X")) == [R.MATCHING_UNCROSS_NOT_IN_PHASE]


# ------------------------------------------------------------------ sealed bids


def sealed(pricing: SealedBidPricing) -> Session:
    spec = InstrumentSpec("EX", trading_mode=TradingMode.SEALED_BID, sealed_bid_pricing=pricing)
    s = Session(spec, Phase.AUCTION)
    s.order("provider", SELL, 1, 1_000)  # the exclusive licence, reserve 1,000
    return s


def test_sealed_bids_are_invisible_until_the_close():
    s = sealed(SealedBidPricing.FIRST_PRICE)
    events = s.order("a", BUY, 1, 1_500)
    assert of(events, BookChanged) == []
    assert s.engine.depth("EX") == ([], [])
    assert s.engine.indicative_auction("EX") is None


def test_sealed_bid_first_price_winner_pays_its_own_bid():
    s = sealed(SealedBidPricing.FIRST_PRICE)
    s.order("a", BUY, 1, 1_200)
    s.order("b", BUY, 1, 1_500)
    events = s.do(SetPhase, "EX", Phase.CLOSED)
    (trade,) = of(events, Trade)
    assert (trade.buyer, trade.price) == ("b", 1_500)
    assert [c.order_id for c in of(events, Cancelled)] == [2]  # the losing bid expires


def test_sealed_bid_second_price_winner_pays_the_second_highest_bid():
    s = sealed(SealedBidPricing.SECOND_PRICE)
    s.order("a", BUY, 1, 1_200)
    s.order("b", BUY, 1, 1_500)
    (trade,) = of(s.do(Uncross, "EX"), Trade)
    assert (trade.buyer, trade.price) == ("b", 1_200)


def test_sealed_bid_second_price_with_a_single_bid_pays_the_reserve():
    s = sealed(SealedBidPricing.SECOND_PRICE)
    s.order("a", BUY, 1, 1_500)
    (trade,) = of(s.do(Uncross, "EX"), Trade)
    assert trade.price == 1_000


def test_sealed_bid_tie_goes_to_the_earliest_bid():
    s = sealed(SealedBidPricing.FIRST_PRICE)
    s.order("a", BUY, 1, 1_300)
    s.order("b", BUY, 1, 1_300)
    (trade,) = of(s.do(Uncross, "EX"), Trade)
    assert trade.buyer == "a"


def test_sealed_bid_below_the_reserve_does_not_win():
    s = sealed(SealedBidPricing.FIRST_PRICE)
    s.order("a", BUY, 1, 900)
    events = s.do(Uncross, "EX")
    assert of(events, Trade) == []
    assert of(events, AuctionResult)[0].volume == 0
    assert s.engine.open_order(1) is not None  # the licence is still offered


# ------------------------------------------------------------------ structure


def test_many_cancels_at_one_level_are_swept_and_keep_the_book_consistent():
    s = Session()
    for _ in range(200):
        s.order("a", BUY, 1, 100)
    for order_id in range(1, 200):
        s.do(CancelOrder, order_id, "a")
    assert s.engine.depth("X") == ([(100, 1)], [])
    trades = of(s.order("b", SELL, 1, 100), Trade)
    assert trades[0].buy_order_id == 200


def test_same_commands_give_the_same_events_and_state_hash():
    from loadtests.bench_engine import SYMBOL, generate_stream

    stream = generate_stream(6_000, seed=7)
    runs = []
    for _ in range(2):
        engine = Engine()
        engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
        events = [engine.apply(c) for c in stream]
        engine.check_invariants()
        runs.append((events, engine.state_hash()))
    assert runs[0] == runs[1]
    other = Engine()
    other.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    for command in generate_stream(6_000, seed=8):
        other.apply(command)
    assert other.state_hash() != runs[0][1]
