"""k-anonymous aggregates: a cell of withheld confidential trades enters price discovery only
with enough trades from enough sellers, as one synthetic trade at its volume-weighted mean."""

from __future__ import annotations

from exchange import commands as c
from exchange.confidential_aggregates import (
    AGGREGATE_PREFIX,
    MIN_SELLERS,
    MIN_TRADES,
    Aggregate,
    aggregates,
    report_section,
)
from exchange.service import OPERATOR
from exchange.valuation_inputs import confidential_aggregates, copy_inputs
from tests.exchange.helpers import SYMBOL, Market, build_ready_market

BUYERS = ("ann", "bob", "cat", "dan")


def negotiated(market: Market, seller: str, buyer: str, price_minor: int, quantity: int) -> None:
    report = market.execute(
        c.ReportTrade(seller, 0, SYMBOL, "sell", buyer, price_minor, quantity)
    ).result
    market.execute(c.ConfirmTrade(buyer, report.report_id, 0))


# The first moment of the month after START_NS's (2023-11-14): the trades' month has ended.
NEXT_MONTH_NS = 1_701_388_800 * 1_000_000_000


def traded_market(trades: int, *, banded: bool = True, cap_units: int = 100) -> Market:
    """The provider sells to ann and bob, who resell: ``trades`` confidential trades (at most
    six) from three sellers once there are at least three. Every trade is large in scale and
    the instrument illiquid, so each waits four weeks; ``banded``, it is then published as a
    band and stays withheld."""
    market = Market()
    build_ready_market(market.execute, buyers=BUYERS)
    market.execute(c.SetPublicationPolicy("admin", SYMBOL, 1, 10, 60, 120, 28 * 86_400,
                                          cap_units, banded, 2))  # fmt: skip
    plan = [
        ("prov", "ann", 10_000, 6), ("prov", "bob", 12_000, 4), ("ann", "cat", 15_000, 2),
        ("bob", "dan", 11_000, 1), ("ann", "dan", 13_000, 1), ("prov", "cat", 9_000, 2),
    ]  # fmt: skip
    for seller, buyer, price, quantity in plan[:trades]:
        negotiated(market, seller, buyer, price, quantity)
    return market


def cells_of(market: Market, at_ns: int = NEXT_MONTH_NS) -> list[Aggregate]:
    """The aggregates once the exchange's time is ``at_ns``."""
    if market.exchange.last_ts_ns < at_ns:
        market.execute(c.Housekeeping(OPERATOR), at_ns=at_ns)
    return confidential_aggregates(market.exchange)


def test_a_cell_below_the_rule_is_suppressed() -> None:
    assert (MIN_TRADES, MIN_SELLERS) == (5, 3)
    assert cells_of(traded_market(4)) == []
    # Five trades but two sellers: still suppressed.
    market = traded_market(2)
    for price in (10_100, 10_200, 10_300):
        negotiated(market, "prov", "dan", price, 1)
    assert cells_of(market) == []


def test_a_cell_of_a_month_not_ended_is_suppressed() -> None:
    # Its mean and units before and after one more trade would give that trade's price.
    market = traded_market(5)
    assert cells_of(market, NEXT_MONTH_NS - 1) == []
    assert len(cells_of(market)) == 1


def test_a_cell_that_meets_the_rule_is_one_synthetic_trade_at_its_mean() -> None:
    market = traded_market(5)
    [aggregate] = cells_of(market)
    exchange = market.exchange
    units = 6 + 4 + 2 + 1 + 1
    notional = 10_000 * 6 + 12_000 * 4 + 15_000 * 2 + 11_000 + 13_000
    expected = (5, units, notional // units)
    assert (aggregate.trades, aggregate.units, aggregate.price_minor) == expected
    assert aggregate.aggregate_id.startswith(f"{AGGREGATE_PREFIX}transport:Zhejiang:")
    assert aggregate.month.day == 1
    products, tapes = copy_inputs(exchange)
    assert [p.product_id for p in products][-1] == aggregate.aggregate_id
    [(product_id, _, [(trade_id, price, quantity, _)])] = [t for t in tapes if t[2]]
    assert (product_id, trade_id, price, quantity) == (
        aggregate.aggregate_id, aggregate.aggregate_id, aggregate.price_minor, units,
    )  # fmt: skip
    section = report_section([aggregate], ["P000001", aggregate.aggregate_id], "transport")
    assert section["comparables"] == [{"aggregate": aggregate.aggregate_id, "trades": 5}]
    assert (section["trades_in_comparables"], section["trades_in_index"]) == (5, 5)


def test_a_trade_published_at_its_exact_price_leaves_the_aggregate() -> None:
    market = traded_market(6, banded=False)
    assert cells_of(market)[0].trades == 6
    desk = market.exchange.confidential
    last_ns = max(trade.publish_at_ns for trade in desk.trades.values())
    assert desk.withheld() and cells_of(market, last_ns) == []
    assert desk.withheld() == []


def test_a_trade_published_as_a_band_stays_in_the_aggregate() -> None:
    market = traded_market(5)
    last_ns = max(trade.publish_at_ns for trade in market.exchange.confidential.trades.values())
    [aggregate] = cells_of(market, last_ns)
    assert aggregate.trades == 5
    assert aggregates([], {}, {}, last_ns) == []


def test_each_trade_weighs_its_quantity_as_its_publication_would_show_it() -> None:
    [aggregate] = cells_of(traded_market(5, cap_units=2))
    shown = {10_000: 2, 12_000: 2, 15_000: 2, 11_000: 1, 13_000: 1}
    notional = sum(price * units for price, units in shown.items())
    assert (aggregate.units, aggregate.price_minor) == (8, notional // 8)
