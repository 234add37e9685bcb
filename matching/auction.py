"""Call-auction price determination: one uniform price that clears the most volume.

Pure functions over aggregated orders, so the rule can be read and tested on its own.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate


@dataclass(frozen=True, slots=True)
class Clearing:
    """The auction outcome: ``price`` is None when nothing can execute."""

    price: int | None
    volume: int
    imbalance: int  # buy volume minus sell volume at ``price`` (0 when there is no price)


class _Volumes:
    """Executable buy and sell volume at any price, by bisection over sorted limits.

    Market orders with a protection price count like limits at that price; those without
    one count at every price.
    """

    def __init__(
        self, buys: list[tuple[int | None, int]], sells: list[tuple[int | None, int]]
    ) -> None:
        self.unlimited_buy = sum(q for p, q in buys if p is None)
        self.unlimited_sell = sum(q for p, q in sells if p is None)
        buy_rows = sorted((p, q) for p, q in buys if p is not None)
        sell_rows = sorted((p, q) for p, q in sells if p is not None)
        self.buy_prices = [p for p, _ in buy_rows]
        # Suffix sums: volume of buys priced at or above buy_prices[i].
        self.buy_at_or_above = list(accumulate(q for _, q in reversed(buy_rows)))[::-1]
        self.sell_prices = [p for p, _ in sell_rows]
        self.sell_at_or_below = list(accumulate(q for _, q in sell_rows))

    def at(self, price: int) -> tuple[int, int]:
        i = bisect_left(self.buy_prices, price)
        buy = self.unlimited_buy + (self.buy_at_or_above[i] if i < len(self.buy_prices) else 0)
        j = bisect_right(self.sell_prices, price)
        sell = self.unlimited_sell + (self.sell_at_or_below[j - 1] if j else 0)
        return buy, sell


def clearing_price(
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    market_buys: list[tuple[int | None, int]],
    market_sells: list[tuple[int | None, int]],
    reference_price: int | None,
) -> Clearing:
    """Choose the uncrossing price among the limit prices in the book.

    ``bids``/``asks`` are (limit price, quantity) rows; ``market_*`` are (protection price or
    None, quantity). The rules, applied in order until one price remains:

    1. maximum executable volume;
    2. minimum surplus (|buy volume - sell volume|);
    3. market pressure: a buy surplus at every remaining price picks the highest, a sell
       surplus at every one the lowest;
    4. the reference price (last trade or auction price) decides among the highest remaining
       price with a buy surplus and the lowest with a sell surplus, or among all remaining
       prices when none has a surplus: the price equal to it, else the nearest, on an exact
       middle the higher; with no reference price, the higher.

    When no limit price executes anything but orders cross at the reference price (only
    market orders cross), they execute there.

    >>> clearing_price([(101, 5), (100, 5)], [(99, 4), (100, 4)], [], [], None)
    Clearing(price=100, volume=8, imbalance=2)
    """
    volumes = _Volumes([*bids, *market_buys], [*asks, *market_sells])
    rows = []  # (price, executable volume, surplus)
    for price in sorted({p for p, _ in bids} | {p for p, _ in asks}):
        buy, sell = volumes.at(price)
        rows.append((price, min(buy, sell), buy - sell))
    best_volume = max((v for _, v, _ in rows), default=0)
    if best_volume == 0:
        if reference_price is not None:
            buy, sell = volumes.at(reference_price)
            if min(buy, sell) > 0:
                return Clearing(reference_price, min(buy, sell), buy - sell)
        return Clearing(None, 0, 0)
    rows = [r for r in rows if r[1] == best_volume]
    least_surplus = min(abs(s) for _, _, s in rows)
    rows = [r for r in rows if abs(r[2]) == least_surplus]
    if all(s > 0 for _, _, s in rows):
        chosen = rows[-1]
    elif all(s < 0 for _, _, s in rows):
        chosen = rows[0]
    else:
        if least_surplus == 0:
            candidates = rows
        else:  # both signs remain: the highest buy-surplus and the lowest sell-surplus price
            candidates = [
                max((r for r in rows if r[2] > 0), key=lambda r: r[0]),
                min((r for r in rows if r[2] < 0), key=lambda r: r[0]),
            ]
        if reference_price is None:
            chosen = max(candidates, key=lambda r: r[0])
        else:
            ref = reference_price
            chosen = min(candidates, key=lambda r: (abs(r[0] - ref), -r[0]))
    return Clearing(chosen[0], chosen[1], chosen[2])
