"""The exchange's record of each order and fill, as participants see them.

The engine keeps only live orders; the exchange keeps every order (with its status, fills and
what risk holds for it) so that a participant can list and read its own, and every fill.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter

from matching import OrderType, SelfTradePrevention, Side, TimeInForce

__all__ = ["Fill", "FillQuery", "FillReport", "OrderQuery", "OrderRecord", "OrderStatus"]


class OrderStatus(StrEnum):
    OPEN = "open"  # resting, nothing filled yet
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"  # by its owner, the exchange, expiry, or IOC/FOK/self-trade rules


@dataclass(slots=True)
class OrderRecord:
    order_id: int
    client_order_id: str
    participant: str
    symbol: str
    side: Side
    order_type: OrderType
    price_minor: int | None  # the limit, or a market order's protection price
    quantity_units: int  # total, after amends
    tif: TimeInForce
    expire_ns: int | None
    post_only: bool
    stp: SelfTradePrevention
    created_ns: int
    updated_ns: int
    filled_units: int = 0
    filled_notional_minor: int = 0
    cancelled_units: int = 0
    cancel_reason: str | None = None
    status: OrderStatus = OrderStatus.OPEN
    # Risk: a buy holds hold_price_minor x remaining of its cash; a sell holds its
    # remaining units of licence_account (the issuance account or one holding).
    hold_price_minor: int = 0
    held_minor: int = 0
    licence_account: str | None = None
    licence_expires_ns: int | None = None

    @property
    def remaining_units(self) -> int:
        return self.quantity_units - self.filled_units - self.cancelled_units

    @property
    def is_open(self) -> bool:
        return self.status is OrderStatus.OPEN or self.status is OrderStatus.PARTIALLY_FILLED

    def copy(self) -> OrderRecord:
        """The record as it stands, for a response that must not change with later fills.
        (``dataclasses.replace`` does the same at several times the cost, and every order
        command makes one.)"""
        return OrderRecord(*_ORDER_RECORD_FIELDS(self))

    def as_it_stands(self) -> OrderRecord:
        """The record as it stands, for the response to the command that changed it: a copy
        of an open order, which later fills change; a closed order itself, as nothing
        changes a filled or cancelled order again (and most orders a command answers for,
        taken at once or cancelled, are closed: no copy to make)."""
        status = self.status
        if status is OrderStatus.FILLED or status is OrderStatus.CANCELLED:
            return self
        return self.copy()


_ORDER_RECORD_FIELDS = attrgetter(*(f.name for f in fields(OrderRecord)))


@dataclass(frozen=True, slots=True)
class Fill:
    """One side of a trade, as its participant sees it."""

    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    price_minor: int
    quantity_units: int
    fee_minor: int  # paid by the seller
    liquidity: str  # "maker", "taker" or "auction"
    ts_ns: int


@dataclass(frozen=True, slots=True)
class FillReport:
    """A fill with what was left of its order right after it: a line of a drop copy. Made
    as the trade settles and handed on with the command's outcome, never kept."""

    participant: str
    fill: Fill
    remaining_units: int


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Which of a participant's orders a listing shows: each field that is not None must
    match. Times are of the order's creation, ``from_ns`` inclusive, ``before_ns`` exclusive."""

    symbol: str | None = None
    side: Side | None = None
    statuses: frozenset[OrderStatus] | None = None
    from_ns: int | None = None
    before_ns: int | None = None

    def matches(self, order: OrderRecord) -> bool:
        return (
            (self.symbol is None or order.symbol == self.symbol)
            and (self.side is None or order.side is self.side)
            and (self.statuses is None or order.status in self.statuses)
            and (self.from_ns is None or order.created_ns >= self.from_ns)
            and (self.before_ns is None or order.created_ns < self.before_ns)
        )


@dataclass(frozen=True, slots=True)
class FillQuery:
    """Which of a participant's fills a listing shows: each field that is not None must
    match. Times are of the trade, ``from_ns`` inclusive, ``before_ns`` exclusive."""

    symbol: str | None = None
    side: Side | None = None
    from_ns: int | None = None
    before_ns: int | None = None

    def matches(self, fill: Fill) -> bool:
        return (
            (self.symbol is None or fill.symbol == self.symbol)
            and (self.side is None or fill.side is self.side)
            and (self.from_ns is None or fill.ts_ns >= self.from_ns)
            and (self.before_ns is None or fill.ts_ns < self.before_ns)
        )
