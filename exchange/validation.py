"""Field checks of the exchange's commands and the limits they enforce.

Every command arrives as plain JSON values (from the API, the CLI, a scenario file or the
journal), so each field is checked here before the state machine uses it. A failed check
raises :class:`~exchange.errors.ExchangeError` with ``VALIDATION_INVALID`` and a message that
names the field; nothing has changed by then.
"""

from __future__ import annotations

import functools
import re
import unicodedata
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
    "free_text_problem",
    "identifier_problem",
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


# Characters that change how the text around them is displayed, not what it says: the
# Unicode Bidi_Control set (embeddings, overrides, isolates and marks). An identifier or a
# name holding one can be shown as something it is not ("Trojan Source").
BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                 "\u2066\u2067\u2068\u2069")  # fmt: skip
# Control characters, line and paragraph separators, and surrogates (which JSON's \u escapes
# can carry alone, and no UTF-8 text can hold).
_NOT_TEXT_CATEGORIES: Final = frozenset({"Cc", "Zl", "Zp", "Cs"})
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


def identifier_problem(value: str) -> str | None:
    """What makes ``value`` unfit as an identifier a client chooses (a ``client_order_id``, a
    symbol, a participant or product id), or None: identifiers are printable ASCII (space to
    ``~``) without surrounding spaces, so they read, compare and log as what they are.

    >>> identifier_problem("my-order 1") is None
    True
    >>> identifier_problem(" a")
    'must not start or end with a space'
    >>> identifier_problem("a\\u202eb")
    'must be printable ASCII: U+202E is not'
    """
    if not _PRINTABLE_ASCII.fullmatch(value):
        bad = next(ch for ch in value if not " " <= ch <= "~")
        return f"must be printable ASCII: U+{ord(bad):04X} is not"
    if value != value.strip(" "):
        return "must not start or end with a space"
    return None


def free_text_problem(value: str, *, multiline: bool = False) -> str | None:
    """What makes ``value`` unfit as free text (a name, a title, a note), or None: any
    Unicode but control characters (tabs and line breaks too, unless ``multiline``), line
    or paragraph separators, lone surrogates and bidirectional controls.

    >>> free_text_problem("杭州银行") is None
    True
    >>> free_text_problem("two\\nlines")
    'must not hold the control character U+000A'
    >>> free_text_problem("two\\nlines", multiline=True) is None
    True
    """
    for ch in value:
        if ch in BIDI_CONTROLS:
            return f"must not hold the bidirectional control U+{ord(ch):04X}"
        if unicodedata.category(ch) in _NOT_TEXT_CATEGORIES and not (multiline and ch in "\n\t"):
            return f"must not hold the control character U+{ord(ch):04X}"
    return None
