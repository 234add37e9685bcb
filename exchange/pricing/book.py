"""Pure helpers over order-book depth: mid price, depth, imbalance.

Depth lists are ``(price, quantity)`` levels, best first, as the engine publishes them
(``Engine.depth``) or as a :class:`~exchange.pricing.records.BookSnapshot` holds them. The
best bid, ask and the auction's indicative price come from the engine itself.

>>> mid_price([(99, 5)], [(101, 1)])
100.0
>>> book_imbalance([(99, 3), (98, 1)], [(101, 1)])
0.6
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DEFAULT_IMBALANCE_LEVELS", "book_imbalance", "depth_units", "mid_price"]

Level = tuple[int | float, int]

# Imbalance looks at the best five levels a side by default: deeper orders say little about
# where the price goes next.
DEFAULT_IMBALANCE_LEVELS = 5


def mid_price(bids: Sequence[Level], asks: Sequence[Level]) -> float | None:
    """Mean of the best bid and best ask; None unless both sides have a level."""
    if not bids or not asks:
        return None
    return (bids[0][0] + asks[0][0]) / 2


def depth_units(levels: Sequence[Level], max_levels: int = DEFAULT_IMBALANCE_LEVELS) -> int:
    """Quantity resting on the best ``max_levels`` levels of one side."""
    return sum(quantity for _, quantity in levels[:max_levels])


def book_imbalance(
    bids: Sequence[Level], asks: Sequence[Level], max_levels: int = DEFAULT_IMBALANCE_LEVELS
) -> float | None:
    """``(bid depth - ask depth) / (bid depth + ask depth)`` over the best ``max_levels``
    levels: +1 is all demand, -1 all supply, 0 balanced; None for an empty book."""
    bid_units = depth_units(bids, max_levels)
    ask_units = depth_units(asks, max_levels)
    total = bid_units + ask_units
    return (bid_units - ask_units) / total if total else None
