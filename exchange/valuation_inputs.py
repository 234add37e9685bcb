"""The exchange's catalogue and trade history as the plain records ``exchange.pricing`` values.

The pricing maths never reads the exchange; this module is the one adapter between them, used
by the API (``/v1/valuations``, comparables, indices) and by ``dataex value product``.
"""

from __future__ import annotations

import datetime as dt

from exchange.money import MINOR_DIGITS
from exchange.pricing import (
    BookSnapshot,
    ProductRecord,
    TermsRecord,
    TradeRecord,
    product_from_catalogue,
    trade_from_tape,
)
from exchange.pricing.records import terms_from_catalogue
from exchange.service import Exchange

__all__ = ["book_snapshot", "pricing_records", "utc_today"]

BOOK_LEVELS = 10


def pricing_records(exchange: Exchange) -> tuple[list[ProductRecord], list[TradeRecord]]:
    """Every product of the catalogue, and every trade of every instrument, as records.

    Read it under the sequencer's lock; the records are copies.
    """
    products = [product_from_catalogue(p) for p in exchange.products.values()]
    trades: list[TradeRecord] = []
    for symbol, history in exchange.market.history.items():
        instrument = exchange.instruments[symbol]
        terms = terms_from_catalogue(instrument.terms)
        for trade_id, price_minor, quantity, ts_ns in history:
            trades.append(
                trade_from_tape(trade_id, instrument.product_id, terms, price_minor, quantity,
                                ts_ns)
            )  # fmt: skip
    return products, trades


def book_snapshot(exchange: Exchange, product_id: str, terms: TermsRecord) -> BookSnapshot | None:
    """The depth of the listed instrument of ``product_id`` under ``terms``, if there is one."""
    for symbol in exchange.products[product_id].instruments:
        if terms_from_catalogue(exchange.instruments[symbol].terms) == terms:
            bids, asks = exchange.engine.depth(symbol, BOOK_LEVELS)
            scale = 10**MINOR_DIGITS
            return BookSnapshot(
                tuple((price / scale, quantity) for price, quantity in bids),
                tuple((price / scale, quantity) for price, quantity in asks),
            )
    return None


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
