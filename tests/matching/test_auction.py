"""Call-auction clearing on hand-computed books, one per step of the price rule."""

from __future__ import annotations

from matching import (
    AddInstrument,
    AuctionResult,
    Clearing,
    Engine,
    InstrumentSpec,
    OrderType,
    Phase,
    Side,
    SubmitOrder,
    Trade,
    TradingMode,
    Uncross,
    clearing_price,
)


def test_step1_maximum_executable_volume_decides():
    # Volumes: at 99 buy 10 / sell 4 -> 4; at 100 buy 10 / sell 9 -> 9; at 101 buy 3 / sell 9.
    bids = [(101, 3), (100, 7)]
    asks = [(99, 4), (100, 5)]
    assert clearing_price(bids, asks, [], [], None) == Clearing(100, 9, 1)


def test_step2_minimum_surplus_breaks_a_volume_tie():
    # 100: buy 10 / sell 6 -> 6, surplus +4; 101: buy 6 / sell 8 -> 6, surplus -2.
    bids = [(101, 6), (100, 4)]
    asks = [(100, 6), (101, 2)]
    assert clearing_price(bids, asks, [], [], None) == Clearing(101, 6, -2)


def test_step3_buy_surplus_everywhere_takes_the_highest_price():
    # 100 and 102 both execute 5 with a buy surplus of 5: market pressure says the highest.
    assert clearing_price([(102, 10)], [(100, 5)], [], [], 101) == Clearing(102, 5, 5)


def test_step3_sell_surplus_everywhere_takes_the_lowest_price():
    assert clearing_price([(102, 5)], [(100, 10)], [], [], 101) == Clearing(100, 5, -5)


def test_step4_reference_price_picks_the_nearest_candidate():
    # 98 and 102 both execute 5 with no surplus; only limit prices are candidates.
    assert clearing_price([(102, 5)], [(98, 5)], [], [], 101) == Clearing(102, 5, 0)
    assert clearing_price([(102, 5)], [(98, 5)], [], [], 99) == Clearing(98, 5, 0)


def test_step4_reference_price_equal_to_a_candidate_wins():
    # Zero-quantity rows add 100 as a third candidate that also executes 5 with no surplus.
    result = clearing_price([(102, 5), (100, 0)], [(98, 5), (100, 0)], [], [], 100)
    assert result == Clearing(100, 5, 0)


def test_step4_exact_middle_takes_the_higher_price():
    assert clearing_price([(102, 5)], [(98, 5)], [], [], 100) == Clearing(102, 5, 0)


def test_step4_without_reference_price_takes_the_higher():
    assert clearing_price([(102, 5)], [(98, 5)], [], [], None) == Clearing(102, 5, 0)


def test_step4_mixed_surplus_chooses_between_the_bracketing_prices():
    # 100: buy 8 / sell 6 -> 6 (+2); 101: buy 6 / sell 8 -> 6 (-2); reference 103 is nearer 101.
    bids = [(101, 6), (100, 2)]
    asks = [(100, 6), (101, 2)]
    assert clearing_price(bids, asks, [], [], 103) == Clearing(101, 6, -2)
    assert clearing_price(bids, asks, [], [], 97) == Clearing(100, 6, 2)


def test_only_market_orders_trade_at_the_reference_price():
    assert clearing_price([], [], [(None, 4)], [(None, 3)], 250) == Clearing(250, 3, 1)
    assert clearing_price([], [], [(None, 4)], [(None, 3)], None) == Clearing(None, 0, 0)


def test_protection_price_bounds_a_market_order_in_the_auction():
    # The market buy will pay at most 99, so at the only limit price (100) it does not count.
    assert clearing_price([], [(100, 5)], [(99, 5)], [], None) == Clearing(None, 0, 0)
    assert clearing_price([], [(100, 5)], [(100, 5)], [], None) == Clearing(100, 5, 0)


def _auction_engine() -> Engine:
    engine = Engine()
    spec = InstrumentSpec("DATA.X", trading_mode=TradingMode.CALL_AUCTION)
    engine.apply(AddInstrument(1, 0, spec, Phase.AUCTION))
    return engine


def _order(seq, order_id, who, side, quantity, price=None, market=False):
    return SubmitOrder(
        seq, seq, order_id, who, "DATA.X", side, quantity, price_minor=price,
        order_type=OrderType.MARKET if market else OrderType.LIMIT,
    )  # fmt: skip


def test_uncross_fills_by_time_priority_at_the_clearing_price():
    engine = _auction_engine()
    engine.apply(_order(2, 1, "a", Side.BUY, 5, 100))
    engine.apply(_order(3, 2, "b", Side.BUY, 5, 100))
    engine.apply(_order(4, 3, "c", Side.SELL, 7, 100))
    events = engine.apply(Uncross(5, 5, "DATA.X"))
    assert events[0] == AuctionResult("DATA.X", 100, 7, 3, 5, 5)
    trades = [e for e in events if isinstance(e, Trade)]
    assert [(t.buy_order_id, t.quantity, t.price, t.aggressor) for t in trades] == [
        (1, 5, 100, None),
        (2, 2, 100, None),
    ]
    assert engine.open_order(2).remaining == 3  # type: ignore[union-attr]
    engine.check_invariants()


def test_indicative_price_is_the_uncross_result_before_the_uncross():
    engine = _auction_engine()
    engine.apply(_order(2, 1, "a", Side.BUY, 6, 101))
    engine.apply(_order(3, 2, "b", Side.SELL, 4, 99))
    assert engine.indicative_auction("DATA.X") == Clearing(101, 4, 2)
    events = engine.apply(Uncross(4, 4, "DATA.X"))
    assert events[0] == AuctionResult("DATA.X", 101, 4, 2, 4, 4)


def test_protected_market_sell_never_fills_ahead_of_a_cheaper_limit_sell():
    # The auction clears at 102 for 20; the sells at 95 and 100 must fill before the market
    # sell protected at 101, or a bid at 100 would be left crossing an ask at 100.
    engine = _auction_engine()
    engine.apply(_order(2, 1, "ann", Side.BUY, 20, 102))
    engine.apply(_order(3, 2, "bob", Side.SELL, 10, 101, market=True))
    engine.apply(_order(4, 3, "cat", Side.SELL, 10, 100))
    engine.apply(_order(5, 4, "dan", Side.SELL, 8, 95))
    engine.apply(_order(6, 5, "eve", Side.BUY, 3, 100))
    events = engine.apply(Uncross(7, 7, "DATA.X"))
    sellers = [(e.sell_order_id, e.quantity) for e in events if isinstance(e, Trade)]
    assert sellers == [(4, 8), (3, 10), (2, 2)]
    engine.check_invariants()
    bids, asks = engine.depth("DATA.X")
    assert bids == [(100, 3)] and asks == []


def test_unfilled_market_orders_are_cancelled_at_the_uncross():
    engine = _auction_engine()
    engine.apply(_order(2, 1, "a", Side.BUY, 5, 100, market=True))
    engine.apply(_order(3, 2, "b", Side.SELL, 3, 100))
    events = engine.apply(Uncross(4, 4, "DATA.X"))
    assert [type(e).__name__ for e in events] == [
        "AuctionResult",
        "Trade",
        "Cancelled",
        "BookChanged",
    ]
    assert engine.open_order(1) is None
