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
# The search ranks only this many candidates per comparable wanted, unless they run short.
_SHORTLIST_PER_COMPARABLE = 4


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
    O(instruments of the category) plus a sort of a few times ``limit`` of them."""
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
    scores = similarity(subject, market.features.take(rows))
    own = products == own_row if own_row is not None else np.zeros(len(rows), dtype=bool)
    own_positions = np.empty(0, np.int64)
    if not target.exclude_own_trades:
        own_positions = np.flatnonzero(own)
        own_positions = own_positions[np.argsort(-scores[own_positions], kind="stable")]
        own_positions = own_positions[:MAX_OWN_INSTRUMENTS]
    eligible = np.flatnonzero((scores >= MIN_SIMILARITY) & ~own)
    # The best few times ``limit`` are enough unless one product holds many of them (at
    # most MAX_INSTRUMENTS_PER_PRODUCT of each are kept): then every eligible one is ranked.
    shortlist = _best(eligible, scores, _SHORTLIST_PER_COMPARABLE * limit)
    other_positions = _per_product(shortlist, products, limit)
    if len(other_positions) < limit and len(shortlist) < len(eligible):
        other_positions = _per_product(_best(eligible, scores, len(eligible)), products, limit)
    chosen_positions = np.concatenate([own_positions, other_positions]).astype(np.int64)
    chosen_rows = rows[chosen_positions]
    parts = similarity_parts(subject, market.features.take(chosen_rows))
    chosen: list[Comparable] = []
    for k, (position, row) in enumerate(zip(chosen_positions, chosen_rows, strict=True)):
        product_row = int(products[position])
        chosen.append(
            Comparable(
                instrument_row=int(row),
                product_id=market.products.records[product_row].product_id,
                terms=market.instruments.terms[row],
                price=float(snapshot.price[row]),
                price_date=dt.date.fromordinal(round(float(snapshot.mean_day[row]))),
                last_trade_date=dt.date.fromordinal(int(snapshot.last_day[row])),
                trades=int(snapshot.window_trades[row]),
                units=int(snapshot.window_units[row]),
                similarity=float(scores[position]),
                similarity_parts={part: float(values[k]) for part, values in parts.items()},
                own=k < len(own_positions),
            )
        )
    return chosen, len(rows)


def _best(positions: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` best of ``positions`` by score, best first (ties in position order)."""
    if count < len(positions):
        # argpartition's pick among tied scores at the cut is arbitrary; rank a stable sort
        # of the tie's whole score instead, so the result depends on the data alone.
        cut = np.partition(-scores[positions], count - 1)[count - 1]
        positions = positions[-scores[positions] <= cut]
    return positions[np.argsort(-scores[positions], kind="stable")][:count]


def _per_product(ranked: np.ndarray, products: np.ndarray, limit: int) -> np.ndarray:
    """The first ``limit`` of ``ranked``, at most ``MAX_INSTRUMENTS_PER_PRODUCT`` of any one
    product."""
    kept: list[int] = []
    per_product: dict[int, int] = {}
    for position in ranked.tolist():
        product_row = int(products[position])
        if per_product.get(product_row, 0) >= MAX_INSTRUMENTS_PER_PRODUCT:
            continue
        per_product[product_row] = per_product.get(product_row, 0) + 1
        kept.append(position)
        if len(kept) == limit:
            break
    return np.array(kept, dtype=np.int64)
