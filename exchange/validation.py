"""Field checks of the exchange's commands and the limits they enforce.

Every command arrives as plain JSON values (from the API, the CLI, a scenario file or the
journal), so each field is checked here before the state machine uses it. A failed check
raises :class:`~exchange.errors.ExchangeError` with ``VALIDATION_INVALID`` and a message that
names the field; nothing has changed by then.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Final, TypeVar

from exchange.errors import ExchangeError, Reason

__all__ = [
    "MAX_CLIENT_ORDER_ID",
    "MAX_DURATION_MONTHS",
    "MAX_FEE_RATE_BP",
    "MAX_NAME",
    "MAX_OPEN_ORDERS_PER_PARTICIPANT",
    "MAX_QUANTITY_UNITS",
    "MAX_RECORD_COUNT",
    "MAX_TEXT",
    "QUALITY_DIMENSIONS",
    "enum_member",
    "integer",
    "invalid",
    "text",
]

# A participant's open orders are bounded so that one participant cannot grow the book,
# the self-cross scan or a cancel-all without limit.
MAX_OPEN_ORDERS_PER_PARTICIPANT: Final = 1_000
MAX_TEXT: Final = 4_000
MAX_NAME: Final = 200
MAX_CLIENT_ORDER_ID: Final = 64
MAX_DURATION_MONTHS: Final = 240
MAX_FEE_RATE_BP: Final = 1_000
MAX_RECORD_COUNT: Final = 10**15
# Prices, quantities and times stay within 62 bits so products of two never leave int64.
MAX_QUANTITY_UNITS: Final = 2**62
QUALITY_DIMENSIONS: Final = ("completeness", "accuracy", "timeliness", "consistency")

E = TypeVar("E", bound=StrEnum)


def invalid(message: str) -> ExchangeError:
    """The error of a field that fails its check."""
    return ExchangeError(Reason.VALIDATION_INVALID, message)


@functools.cache
def _members(kind: type[E]) -> dict[str, E]:
    return {member.value: member for member in kind}


def enum_member(kind: type[E], value: object, what: str) -> E:
    """``value`` as a member of ``kind``; a member passes as itself.

    >>> from matching import Side
    >>> enum_member(Side, "buy", "side") is Side.BUY
    True
    """
    # A dictionary lookup: calling the enum class costs more, and every order makes several.
    member = _members(kind).get(value) if isinstance(value, str) else None
    if member is None:
        choices = ", ".join(member.value for member in kind)
        raise invalid(f"{what} {value!r} is not one of: {choices}")
    return member


def text(value: object, what: str, limit: int, *, required: bool = True) -> str:
    """``value`` if it is text of at most ``limit`` characters (and not blank if required)."""
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise invalid(f"{what} must be {'non-empty ' if required else ''}text of at most {limit}")
    return value


def integer(value: object, what: str, low: int, high: int) -> int:
    """``value`` if it is an integer (not a bool) in ``low..high``."""
    if type(value) is not int or not low <= value <= high:
        raise invalid(f"{what} must be an integer in {low}..{high}, got {value!r}")
    return value
