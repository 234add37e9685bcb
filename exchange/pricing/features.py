"""Numeric encodings of products, terms and dates, shared by the index, the calibration, the
similarity and the factors, so that each attribute means the same number everywhere.

>>> month_number(dt.date(2026, 3, 9))
24314
>>> month_start(24314)
datetime.date(2026, 3, 1)
"""

from __future__ import annotations

import calendar
import datetime as dt

from exchange.catalogue import Exclusivity, Scope, Territory, UpdateFrequency

__all__ = [
    "FREQUENCY_RANK",
    "QUALITY_FLOOR",
    "SCOPE_RANK",
    "is_cross_border",
    "is_exclusive",
    "month_number",
    "month_position",
    "month_start",
]

# Freshest first: distances between frequencies are differences of ranks.
FREQUENCY_RANK = {
    UpdateFrequency.REAL_TIME: 0,
    UpdateFrequency.DAILY: 1,
    UpdateFrequency.MONTHLY: 2,
    UpdateFrequency.STATIC: 3,
}
# Narrowest use first.
SCOPE_RANK = {Scope.INTERNAL: 0, Scope.COMMERCIAL: 1, Scope.RESALE: 2}
# Quality ratios and logarithms treat scores below 1% as 1%: a score of 0 would make a ratio
# infinite, and no traded product is literally worthless on one dimension.
QUALITY_FLOOR = 0.01


def is_exclusive(exclusivity: Exclusivity) -> int:
    return int(exclusivity is Exclusivity.EXCLUSIVE)


def is_cross_border(territory: Territory) -> int:
    return int(territory is Territory.CROSS_BORDER)


def month_number(day: dt.date) -> int:
    """Months since January of year 0: consecutive calendar months are consecutive numbers."""
    return day.year * 12 + day.month - 1


def month_start(number: int) -> dt.date:
    """The first day of month ``number`` (inverse of ``month_number``)."""
    year, month0 = divmod(number, 12)
    return dt.date(year, month0 + 1, 1)


def month_position(day: dt.date) -> float:
    """``month_number`` plus the fraction of the month elapsed at the middle of ``day``:
    the continuous time axis on which the index is interpolated."""
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    return month_number(day) + (day.day - 0.5) / days_in_month
