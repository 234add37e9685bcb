"""Decimal amounts at the API edge, integers everywhere else.

Cash and prices are integers in minor currency units (fen: 1 CNY = 100 minor units); a price
is minor units per licence unit. Participants write decimals as strings in currency units
("12.50"). This module is the one place that converts, and it never rounds: an amount with
more decimal places than the currency has, or a price off the instrument's tick grid, is an
error that says so.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = [
    "MAX_AMOUNT_MINOR",
    "MINOR_DIGITS",
    "AmountError",
    "format_minor",
    "parse_minor",
    "parse_price",
]

MINOR_DIGITS = 2
MINOR_PER_UNIT = 10**MINOR_DIGITS
# Every amount stays well inside a signed 64-bit integer even when multiplied by a quantity.
MAX_AMOUNT_MINOR = 10**15
MAX_AMOUNT_TEXT = 32


class AmountError(ValueError):
    """A decimal amount that cannot be represented exactly in minor units."""


def parse_minor(text: str, what: str = "amount") -> int:
    """``"12.34"`` -> ``1234``: a positive decimal string in currency units to minor units.

    >>> parse_minor("12.5")
    1250
    """
    if not isinstance(text, str) or not text or len(text) > MAX_AMOUNT_TEXT:
        raise AmountError(f'{what} must be a decimal string such as "12.50"')
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AmountError(f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise AmountError(f"{what} {text!r} is not a finite number")
    minor = value * MINOR_PER_UNIT
    if minor != minor.to_integral_value():
        raise AmountError(f"{what} {text} has more than {MINOR_DIGITS} decimal places")
    if minor <= 0:
        raise AmountError(f"{what} {text} must be positive")
    if minor > MAX_AMOUNT_MINOR:
        raise AmountError(f"{what} {text} is above the maximum {format_minor(MAX_AMOUNT_MINOR)}")
    return int(minor)


def parse_price(text: str, tick_size_minor: int, what: str = "price") -> int:
    """A price string to minor units per licence unit, which must lie on the tick grid.

    >>> parse_price("10.05", 5)
    1005
    """
    minor = parse_minor(text, what)
    if minor % tick_size_minor:
        raise AmountError(
            f"{what} {text} is not on the tick grid: it must be a multiple of "
            f"{format_minor(tick_size_minor)}"
        )
    return minor


def format_minor(minor: int) -> str:
    """``1234`` -> ``"12.34"``; exact, with the currency's number of decimal places.

    >>> format_minor(-5)
    '-0.05'
    """
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), MINOR_PER_UNIT)
    return f"{sign}{units}.{cents:0{MINOR_DIGITS}d}"
