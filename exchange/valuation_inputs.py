"""The exchange's catalogue and trade history as the plain records ``exchange.pricing`` values.

The pricing maths never reads the exchange; this module is the one adapter between them, used
by the API (``/v1/valuations``, comparables, indices) and by ``dataex value product``.
"""

from __future__ import annotations

import datetime as dt

from exchange.confidential_aggregates import Aggregate, aggregates
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

__all__ = [
    "PricingInputs",
    "book_snapshot",
    "confidential_aggregates",
    "copy_inputs",
    "pricing_records",
    "records_from",
    "utc_today",
]

BOOK_LEVELS = 10


# Each instrument's product, terms and trade history: (trade id, price, quantity, time). A
# confidential trade published at its exact price is there too, under ``published:<id>``.
TapeCopy = list[tuple[str, TermsRecord, list[tuple[int | str, int, int, int]]]]
PricingInputs = tuple[list[ProductRecord], TapeCopy]


def copy_inputs(exchange: Exchange) -> PricingInputs:
    """Every product of the catalogue as a record, and a copy of every instrument's trade
    history: the part of :func:`pricing_records` that must run under the sequencer's lock,
    kept short (a list copy per instrument) so that trading does not wait for the rest.

    Confidential trades enter on their own only once published at an exact price, with the
    quantity as published (``exchange.confidential``); before that, or published as a band,
    only as k-anonymous aggregates (``exchange.confidential_aggregates``)."""
    products = [product_from_catalogue(p) for p in exchange.products.values()]
    tapes: TapeCopy = []
    prints = exchange.confidential.prints
    for symbol, history in exchange.market_data.history.items():
        instrument = exchange.instruments[symbol]
        terms = terms_from_catalogue(instrument.terms)
        trades: list[tuple[int | str, int, int, int]] = list(history)
        trades += [(f"published:{pid}", price, quantity, ts)
                   for pid, price, quantity, ts in prints.get(symbol, ())]  # fmt: skip
        tapes.append((instrument.product_id, terms, trades))
    # Confidential trades whose exact price is not public, only as k-anonymous aggregates:
    # a synthetic product each, with one synthetic trade on the first day of its month.
    for aggregate in confidential_aggregates(exchange):
        products.append(aggregate.product)
        month_ns = int(dt.datetime.combine(aggregate.month, dt.time(), dt.UTC).timestamp())
        tapes.append((aggregate.aggregate_id, aggregate.terms, [(
            aggregate.aggregate_id, aggregate.price_minor, aggregate.units,
            month_ns * 1_000_000_000,
        )]))  # fmt: skip
    return products, tapes


def confidential_aggregates(exchange: Exchange) -> list[Aggregate]:
    """The k-anonymous aggregates of the confidential trades the public has no exact price
    of (``exchange.confidential_aggregates``); read under the sequencer's lock."""
    withheld = exchange.confidential.withheld()
    if not withheld:
        return []
    instruments = exchange.instruments
    product_of = {symbol: exchange.products[i.product_id] for symbol, i in instruments.items()}
    terms_of = {symbol: instrument.terms for symbol, instrument in instruments.items()}
    return aggregates(withheld, product_of, terms_of, exchange.last_ts_ns)


def records_from(inputs: PricingInputs) -> tuple[list[ProductRecord], list[TradeRecord]]:
    """The records of :func:`copy_inputs`' copy; needs no lock."""
    products, tapes = inputs
    trades = [
        trade_from_tape(trade_id, product_id, terms, price_minor, quantity, ts_ns)
        for product_id, terms, history in tapes
        for trade_id, price_minor, quantity, ts_ns in history
    ]
    return products, trades


def pricing_records(exchange: Exchange) -> tuple[list[ProductRecord], list[TradeRecord]]:
    """Every product of the catalogue, and every trade of every instrument, as records.

    Read it under the sequencer's lock; the records are copies.
    """
    return records_from(copy_inputs(exchange))


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
