"""Preparing a market for valuations on one date, once: the tables, the calibration, the
market itself and then its back-tested range.

The order is the point of this module: the range is calibrated by valuing traded products on
the market (``exchange.pricing.interval``), so the market is built first, with its range
unscaled, and the calibrated range is then passed in (``Market.with_range``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from exchange.pricing.calibration import calibrate
from exchange.pricing.factors import DEFAULT_PARAMETERS, FactorParameters
from exchange.pricing.interval import calibrate_range
from exchange.pricing.market import Market
from exchange.pricing.records import ProductRecord, TradeRecord
from exchange.pricing.tables import build_tables

__all__ = ["prepare_market"]


def prepare_market(
    products: Iterable[ProductRecord],
    trades: Iterable[TradeRecord],
    *,
    as_of: dt.date | None = None,
    defaults: FactorParameters = DEFAULT_PARAMETERS,
) -> Market:
    """Tables, calibration, cost statistics and the back-tested range for valuations on
    ``as_of`` (by default the day of the last trade). Trades after ``as_of`` are ignored.
    Raises ValueError for an invalid record, a duplicate product, a trade of an unknown
    product, or no ``as_of`` and no trades to take it from. O(trades) plus the calibration's
    solve and ``BACKTEST_PRODUCTS`` valuations (and, on a small market, the cross-fitted
    back-test's ``CROSS_FIT_FOLDS`` calibrations)."""
    # One canonical order, so that the same trades in any order give the same market (the
    # tables number instruments by first appearance, and ties anywhere downstream would
    # otherwise follow that numbering).
    trade_list = sorted(trades, key=_canonical)
    if as_of is None:
        if not trade_list:
            raise ValueError("as_of is needed when there are no trades")
        as_of = max(trade.traded_at for trade in trade_list)
    product_table, instrument_table, trade_table = build_tables(products, trade_list, as_of)
    calibration = calibrate(product_table, instrument_table, trade_table, as_of, defaults)
    market = Market(product_table, instrument_table, trade_table, calibration, as_of)
    return market.with_range(calibrate_range(market, trade_list, defaults))


def _canonical(trade: TradeRecord) -> tuple[object, ...]:
    terms = trade.terms
    return (
        trade.traded_at, trade.product_id, terms.exclusivity.value, terms.duration_months,
        terms.scope.value, terms.territory.value, trade.trade_id, trade.price, trade.quantity,
    )  # fmt: skip
