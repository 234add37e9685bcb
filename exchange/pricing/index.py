"""Price indices per data category over time, to bring a price from one date to another.

The index is hedonic, by time dummies: the calibration (``exchange.pricing.calibration``)
regresses every trade's log price on a level per (category, period) plus controls for what
was traded (scale, quality, freshness, coverage, region, licence terms). A category's index is
the exponential of its period levels, so a change in the mix of products traded from one
month to the next does not move it, which a chained index of average prices would do. Periods
without trades are bridged by a random-walk prior on consecutive levels (a smoothing penalty),
so a thin month borrows from its neighbours instead of jumping.

Between period centres the log index is interpolated linearly; before the first period and
after the last it stays flat (the index never extrapolates a trend). A category the index has
never seen has a flat index of 1.

This module holds the fitted index and answers questions about it; it does no fitting.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from exchange.pricing.features import month_position, month_start

__all__ = ["IndexPoint", "PriceIndex"]

# An index value is published relative to the first period, as 100.
INDEX_BASE = 100.0


@dataclass(frozen=True, slots=True)
class IndexPoint:
    """One period of a category index: its first day, the index (first period = 100) and
    the number of trades that period held (0 for a bridged period)."""

    period_start: dt.date
    value: float
    trades: int


@dataclass(frozen=True, slots=True)
class PriceIndex:
    """Log levels per category on a grid of periods of ``period_months`` months, the first
    starting at month number ``first_month`` (``features.month_number``)."""

    first_month: int
    period_months: int
    log_levels: dict[str, np.ndarray]
    trade_counts: dict[str, np.ndarray]

    @classmethod
    def flat(cls, first_month: int = 0) -> PriceIndex:
        """An index that never moves (no trades, or too few to fit one)."""
        return cls(first_month, 1, {}, {})

    @property
    def periods(self) -> int:
        return max((len(levels) for levels in self.log_levels.values()), default=0)

    def log_level(self, category: str, day: dt.date) -> float:
        """The category's log index on ``day`` (0 for an unknown category)."""
        levels = self.log_levels.get(category)
        if levels is None or len(levels) == 0:
            return 0.0
        position = (month_position(day) - self.first_month) / self.period_months - 0.5
        return float(np.interp(position, np.arange(len(levels)), levels))

    def ratio(self, category: str, from_day: dt.date, to_day: dt.date) -> float:
        """``I(to_day) / I(from_day)``: what a price on ``from_day`` is worth on ``to_day``.

        >>> index = PriceIndex(24300, 1, {"energy": np.log([1.0, 1.1])}, {})
        >>> round(index.ratio("energy", dt.date(2025, 1, 16), dt.date(2025, 3, 20)), 6)
        1.1
        """
        return math.exp(self.log_level(category, to_day) - self.log_level(category, from_day))

    def points(self, category: str) -> list[IndexPoint]:
        """The category's index per period, the first period = 100; empty if unknown."""
        levels = self.log_levels.get(category)
        if levels is None or len(levels) == 0:
            return []
        counts = self.trade_counts.get(category, np.zeros(len(levels), dtype=np.int64))
        return [
            IndexPoint(
                month_start(self.first_month + period * self.period_months),
                INDEX_BASE * math.exp(float(levels[period] - levels[0])),
                int(counts[period]),
            )
            for period in range(len(levels))
        ]

    def value(self, category: str, day: dt.date) -> float:
        """The category's index on ``day`` on the published scale (first period = 100)."""
        levels = self.log_levels.get(category)
        if levels is None or len(levels) == 0:
            return INDEX_BASE
        return INDEX_BASE * math.exp(self.log_level(category, day) - float(levels[0]))
