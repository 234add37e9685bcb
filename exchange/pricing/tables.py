"""Columnar tables of products, instruments and trades: the records as numpy arrays, built
once per market so that the calibration and the similarity search are vectorised.

An instrument here is a product under one set of terms (``TermsRecord``): what the exchange
lists under a symbol, and what a file's trades of the same product and terms amount to.
Trades are sorted by instrument, then day, then their order in the input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from exchange.pricing.features import (
    FREQUENCY_RANK,
    QUALITY_FLOOR,
    SCOPE_RANK,
    is_cross_border,
    is_exclusive,
    month_number,
)
from exchange.pricing.records import ProductRecord, TermsRecord, TradeRecord

__all__ = ["InstrumentTable", "ProductTable", "TradeTable", "build_tables"]

# Limits: what one market may hold.
MAX_PRODUCTS = 1_000_000
MAX_TRADES = 5_000_000


@dataclass(frozen=True, slots=True)
class ProductTable:
    """One row per product; ``category`` and ``region`` are codes into the vocabularies."""

    records: tuple[ProductRecord, ...]
    row_of: dict[str, int]
    categories: tuple[str, ...]
    category: np.ndarray
    regions: tuple[str, ...]
    region: np.ndarray
    log_records: np.ndarray
    log_coverage: np.ndarray
    quality: np.ndarray  # (products, 4), floored at QUALITY_FLOOR
    frequency_rank: np.ndarray


@dataclass(frozen=True, slots=True)
class InstrumentTable:
    """One row per (product, terms) that traded."""

    product: np.ndarray  # row in ProductTable
    terms: tuple[TermsRecord, ...]
    row_of: dict[tuple[str, TermsRecord], int]
    exclusive: np.ndarray
    scope_rank: np.ndarray
    cross_border: np.ndarray
    duration_months: np.ndarray


@dataclass(frozen=True, slots=True)
class TradeTable:
    """One row per trade, sorted by (instrument, day); ``day`` is the date's ordinal."""

    trade_id: tuple[str, ...]
    instrument: np.ndarray
    day: np.ndarray
    month: np.ndarray
    price: np.ndarray
    quantity: np.ndarray

    def __len__(self) -> int:
        return len(self.price)

    def take(self, rows: np.ndarray) -> TradeTable:
        """The trades at ``rows`` (ascending, so the order is kept)."""
        return TradeTable(
            trade_id=tuple(self.trade_id[i] for i in rows),
            instrument=self.instrument[rows],
            day=self.day[rows],
            month=self.month[rows],
            price=self.price[rows],
            quantity=self.quantity[rows],
        )


def _codes(values: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    vocabulary = tuple(sorted(set(values)))
    code_of = {value: code for code, value in enumerate(vocabulary)}
    return vocabulary, np.fromiter((code_of[v] for v in values), dtype=np.int64, count=len(values))


def build_products(products: Iterable[ProductRecord]) -> ProductTable:
    """The product table; raises ValueError for an invalid record or a duplicate id."""
    records = tuple(products)
    if len(records) > MAX_PRODUCTS:
        raise ValueError(f"more than {MAX_PRODUCTS} products")
    row_of: dict[str, int] = {}
    for row, product in enumerate(records):
        problem = product.problem()
        if problem is not None:
            raise ValueError(f"product {product.product_id!r}: {problem}")
        if product.product_id in row_of:
            raise ValueError(f"product {product.product_id!r} appears twice")
        row_of[product.product_id] = row
    categories, category = _codes([p.category for p in records])
    regions, region = _codes([p.region for p in records])
    quality = np.array([p.quality() for p in records], dtype=np.float64).reshape(-1, 4)
    return ProductTable(
        records=records,
        row_of=row_of,
        categories=categories,
        category=category,
        regions=regions,
        region=region,
        log_records=np.log(np.array([p.record_count for p in records], dtype=np.float64)),
        log_coverage=np.log(np.array([p.coverage_months for p in records], dtype=np.float64)),
        quality=np.maximum(quality, QUALITY_FLOOR),
        frequency_rank=np.array(
            [FREQUENCY_RANK[p.update_frequency] for p in records], dtype=np.int64
        ),
    )


def build_tables(
    products: Iterable[ProductRecord], trades: Iterable[TradeRecord], as_of: dt.date | None = None
) -> tuple[ProductTable, InstrumentTable, TradeTable]:
    """Tables of the products, and of the trades on or before ``as_of`` (all when None) and
    their instruments. Raises ValueError for an invalid record, a duplicate product id or a
    trade of an unknown product."""
    product_table = build_products(products)
    instrument_row: dict[tuple[str, TermsRecord], int] = {}
    instrument_product: list[int] = []
    instrument_terms: list[TermsRecord] = []
    trade_ids: list[str] = []
    columns: list[tuple[int, int, float, int]] = []  # instrument, day, price, quantity
    for count, trade in enumerate(trades):
        if count >= MAX_TRADES:
            raise ValueError(f"more than {MAX_TRADES} trades")
        if as_of is not None and trade.traded_at > as_of:
            continue
        problem = trade.problem()
        if problem is not None:
            raise ValueError(f"trade {trade.trade_id!r}: {problem}")
        product_row = product_table.row_of.get(trade.product_id)
        if product_row is None:
            raise ValueError(f"trade {trade.trade_id!r}: unknown product {trade.product_id!r}")
        key = (trade.product_id, trade.terms)
        row = instrument_row.get(key)
        if row is None:
            row = instrument_row[key] = len(instrument_terms)
            instrument_product.append(product_row)
            instrument_terms.append(trade.terms)
        trade_ids.append(trade.trade_id)
        columns.append((row, trade.traded_at.toordinal(), trade.price, trade.quantity))
    table = np.array(columns, dtype=np.float64).reshape(-1, 4)
    instrument = table[:, 0].astype(np.int64)
    day = table[:, 1].astype(np.int64)
    order = np.lexsort((np.arange(len(day)), day, instrument))
    day = day[order]
    months = _months_of_days(day)
    instrument_table = InstrumentTable(
        product=np.array(instrument_product, dtype=np.int64),
        terms=tuple(instrument_terms),
        row_of=instrument_row,
        exclusive=np.array([is_exclusive(t.exclusivity) for t in instrument_terms], np.int64),
        scope_rank=np.array([SCOPE_RANK[t.scope] for t in instrument_terms], np.int64),
        cross_border=np.array([is_cross_border(t.territory) for t in instrument_terms], np.int64),
        duration_months=np.array([t.duration_months for t in instrument_terms], np.float64),
    )
    trade_table = TradeTable(
        trade_id=tuple(trade_ids[i] for i in order),
        instrument=instrument[order],
        day=day,
        month=months,
        price=table[order, 2],
        quantity=table[order, 3].astype(np.int64),
    )
    return product_table, instrument_table, trade_table


def _months_of_days(days: np.ndarray) -> np.ndarray:
    """``month_number`` of each day ordinal, computing each distinct day once."""
    unique, inverse = np.unique(days, return_inverse=True)
    months = np.array([month_number(dt.date.fromordinal(int(d))) for d in unique], np.int64)
    return months[inverse].reshape(days.shape)
