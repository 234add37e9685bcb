"""Comparables: the traded instruments most like a target, best first.

Candidates are the instruments of the target's category with a trade on or before the
valuation date (``Market.snapshot``); each gets a similarity (``exchange.pricing.similarity``);
those below ``MIN_SIMILARITY`` are not comparable. The best ``limit`` are kept, at most
``MAX_INSTRUMENTS_PER_PRODUCT`` of any one product (instruments of one product share its
quirks, so more of them would add weight without adding evidence).

The target's own instruments (any licence terms) come first, unless the target asks to leave
them out: a prior sale of the subject is the strongest comparable. Up to
``MAX_OWN_INSTRUMENTS`` of them are kept, most similar terms first, whatever their similarity
and beside the ``limit`` others; they count toward ``MIN_COMPARABLES``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from exchange.pricing.market import InstrumentSnapshot, Market
from exchange.pricing.records import TargetSpec, TermsRecord
from exchange.pricing.similarity import similarity, similarity_parts

__all__ = [
    "MAX_COMPARABLES",
    "MAX_INSTRUMENTS_PER_PRODUCT",
    "MAX_OWN_INSTRUMENTS",
    "MIN_COMPARABLES",
    "MIN_SIMILARITY",
    "Comparable",
    "find_comparables",
]

MAX_COMPARABLES = 10
MIN_COMPARABLES = 3
MIN_SIMILARITY = 0.02
MAX_INSTRUMENTS_PER_PRODUCT = 2
MAX_OWN_INSTRUMENTS = 5


@dataclass(frozen=True, slots=True)
class Comparable:
    """A traded instrument and what it traded at: ``price`` is its VWAP over the comparable
    window, dated ``price_date`` (the window's volume-weighted mean day)."""

    instrument_row: int
    product_id: str
    terms: TermsRecord
    price: float
    price_date: dt.date
    last_trade_date: dt.date
    trades: int
    units: int
    similarity: float
    similarity_parts: dict[str, float]
    own: bool = False


def find_comparables(
    market: Market,
    target: TargetSpec,
    limit: int = MAX_COMPARABLES,
    snapshot: InstrumentSnapshot | None = None,
) -> tuple[list[Comparable], int]:
    """The subject's own instruments (at most ``MAX_OWN_INSTRUMENTS``) then the best other
    comparables (at most ``limit``), best first, and how many candidates were considered.
    O(instruments of the category) plus a sort."""
    if snapshot is None:
        snapshot = market.snapshot(target.as_of)
    code = market.category_code(target.product.category)
    rows = snapshot.by_category.get(code, np.empty(0, np.int64)) if code is not None else None
    if rows is None or len(rows) == 0:
        return [], 0
    products = market.instruments.product[rows]
    own_row = market.products.row_of.get(target.product.product_id)
    # The market's product of that id is the subject only when it is the same record (a
    # target described by attributes may reuse an id).
    if own_row is not None and market.products.records[own_row] != target.product:
        own_row = None
    subject = market.target_features(target.product, target.terms)
    candidates = market.features.take(rows)
    scores = similarity(subject, candidates)
    order = np.argsort(-scores, kind="stable")
    chosen: list[Comparable] = []
    own_chosen: list[Comparable] = []
    per_product: dict[int, int] = {}
    for position in order:
        score = float(scores[position])
        product_row = int(products[position])
        is_own = product_row == own_row
        if is_own:
            if target.exclude_own_trades or len(own_chosen) >= MAX_OWN_INSTRUMENTS:
                continue
        elif score < MIN_SIMILARITY or len(chosen) >= limit:
            if own_row is None or len(own_chosen) >= MAX_OWN_INSTRUMENTS:
                break
            continue
        elif per_product.get(product_row, 0) >= MAX_INSTRUMENTS_PER_PRODUCT:
            continue
        else:
            per_product[product_row] = per_product.get(product_row, 0) + 1
        row = int(rows[position])
        (own_chosen if is_own else chosen).append(
            Comparable(
                instrument_row=row,
                product_id=market.products.records[product_row].product_id,
                terms=market.instruments.terms[row],
                price=float(snapshot.price[row]),
                price_date=dt.date.fromordinal(round(float(snapshot.mean_day[row]))),
                last_trade_date=dt.date.fromordinal(int(snapshot.last_day[row])),
                trades=int(snapshot.window_trades[row]),
                units=int(snapshot.window_units[row]),
                similarity=score,
                similarity_parts=similarity_parts(subject, market.features.take(np.array([row]))),
                own=is_own,
            )
        )
    return own_chosen + chosen, len(rows)
