"""What travels on the wire: decimal amounts both ways, the one error type, and each
endpoint as a :class:`Call` that the sync and the async client send alike.

Amounts go out as decimal strings made from :class:`~decimal.Decimal` (or a string or an
integer; a float is refused, since it cannot say ``0.10`` exactly), and come back as
``Decimal``: every field the API documents as an amount in currency units (:data:`AMOUNTS`)
is converted wherever it appears in an answer or a stream message. Nothing is rounded: the
server refuses an amount off the instrument's tick grid (422), and the client passes that on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Generic, TypeVar

__all__ = ["AMOUNTS", "Amount", "ApiError", "Call", "amount_text", "decimals"]

T = TypeVar("T")
Amount = Decimal | str | int

# The fields the API sends as decimal strings in currency units (exchange/api/views.py, the
# streams of exchange/api/hub.py, the valuation report's amounts). Other numbers (factors,
# weights, index points, quantities) are JSON numbers and stay as they come.
AMOUNTS: Final = frozenset({
    "price", "average_price", "fee", "amount", "cash_available", "cash_reserved",
    "tick_size", "price_band_low", "price_band_high", "cost_basis", "indicative_price",
    "last", "open", "high", "low", "close", "vwap", "best_bid", "best_ask", "mid",
    "price_low", "price_high", "large_in_scale", "value", "market_value", "market_low",
    "market_high", "concluded_value", "calibrated_cost_value", "cost_value", "income_value",
    "present_values", "adjusted_price", "contribution",
})  # fmt: skip
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class ApiError(Exception):
    """The exchange refused a request, or could not be reached.

    ``status`` is the HTTP status (None when no answer came: ``reason`` is then
    ``CONNECTION``, or ``CLOSED`` for a stream the server closed with its reason), ``reason``
    the API's error code (``RISK_INSUFFICIENT_CASH``, ``VALIDATION_PRICE_OFF_TICK``, …) and
    ``detail`` its message, for a person. ``retry_after_s`` is set on a 429."""

    def __init__(
        self, status: int | None, reason: str, detail: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}" if status is None else
                         f"{status} {reason}: {detail}")  # fmt: skip
        self.status, self.reason, self.detail = status, reason, detail
        self.retry_after_s = retry_after_s


def amount_text(value: Amount, what: str) -> str:
    """``value`` as the API's decimal string; ``TypeError`` for a float or a bool,
    ``ValueError`` for something that is not a finite amount.

    >>> amount_text(Decimal("12.50"), "price"), amount_text("7", "price"), amount_text(3, "x")
    ('12.50', '7', '3')
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"{what} must be a Decimal, a decimal string or an int, not "
                        f"{type(value).__name__}")  # fmt: skip
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} {value!r} is not a decimal amount") from None
    if not number.is_finite():
        raise ValueError(f"{what} {value!r} is not a decimal amount")
    return format(number, "f")


def decimals(value: Any) -> Any:
    """``value`` (decoded JSON) with every amount field's decimal string as a ``Decimal``,
    and each ``levels`` row of a book message (``[side, price, quantity]``) likewise."""
    if isinstance(value, list):
        return [decimals(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in AMOUNTS and isinstance(item, str | list):
            out[key] = _amount(item) if isinstance(item, str) else [_amount(i) for i in item]
        elif key == "levels" and isinstance(item, list):
            out[key] = [[row[0], _amount(row[1]), *row[2:]] if isinstance(row, list) and
                        len(row) >= 2 else decimals(row) for row in item]  # fmt: skip
        else:
            out[key] = decimals(item)
    return out


def _amount(text: Any) -> Any:
    return Decimal(text) if isinstance(text, str) and _DECIMAL.fullmatch(text) else text


def iso_time(time: datetime) -> str:
    """A time for the API: ISO 8601 with its zone (a naive time is refused here rather
    than guessed)."""
    if time.tzinfo is None:
        raise ValueError("a time needs a time zone (e.g. datetime.now(UTC))")
    return time.isoformat()


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request: method, path, query, JSON body, whether it needs the key, and how the
    decoded answer becomes the result."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None
    parse: Callable[[Any], T] = decimals  # type: ignore[assignment]


def query(**params: Any) -> dict[str, Any]:
    """The query parameters given (None means not given), times as ISO 8601."""
    return {
        name: iso_time(value) if isinstance(value, datetime) else value
        for name, value in params.items()
        if value is not None
    }


def error_of(status: int, body: Any, headers: Mapping[str, str]) -> ApiError:
    """The :class:`ApiError` for an error answer (the API's ``{"detail", "reason"}``)."""
    reason, detail = f"HTTP_{status}", ""
    if isinstance(body, dict):
        reason = str(body.get("reason") or reason)
        detail = str(body.get("detail") or "")
    retry = headers.get("retry-after")
    retry_after_s = float(retry) if retry is not None and retry.isdigit() else None
    return ApiError(status, reason, detail or f"HTTP {status}", retry_after_s)
