"""Events: the facts the engine reports, in the order they happened within a command.

Events are named tuples: immutable, and the cheapest typed record CPython builds. The
engine's hot path builds them with ``tuple.__new__(Event, values)``, which skips the Python
level ``__new__``; everyone else uses the ordinary keyword constructor. Unlike plain named
tuples, two events are equal only if they are of the same type.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from matching.enums import CancelReason, OrderType, Phase, RejectReason, Side, TimeInForce


def _same_event(self: tuple[Any, ...], other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)  # type: ignore[arg-type]


def _different_event(self: tuple[Any, ...], other: object) -> bool:
    return not _same_event(self, other)


# A touched level of a book: (side, price, total resting quantity after the command; 0 = gone).
LevelChange = tuple[Side, int, int]


class InstrumentAdded(NamedTuple):
    symbol: str
    phase: Phase


class Accepted(NamedTuple):
    order_id: int
    participant: str
    symbol: str
    side: Side
    order_type: OrderType
    price: int | None
    quantity: int
    tif: TimeInForce


class Rejected(NamedTuple):
    """A command refused before it changed anything. ``order_id`` is None for non-order ones."""

    order_id: int | None
    symbol: str | None
    reason: RejectReason


class Trade(NamedTuple):
    """One execution. ``aggressor`` is the side of the incoming order, None in an auction."""

    trade_id: int
    symbol: str
    price: int
    quantity: int
    buy_order_id: int
    sell_order_id: int
    buyer: str
    seller: str
    aggressor: Side | None
    seq: int
    ts: int


class Cancelled(NamedTuple):
    """An order left the book unfilled for ``quantity`` units."""

    order_id: int
    participant: str
    symbol: str
    quantity: int
    reason: CancelReason


class Amended(NamedTuple):
    order_id: int
    participant: str
    symbol: str
    price: int | None
    quantity: int
    remaining: int
    priority_kept: bool


class AuctionResult(NamedTuple):
    """The outcome of an uncross. ``imbalance`` is buy minus sell volume at ``price``."""

    symbol: str
    price: int | None
    volume: int
    imbalance: int
    seq: int
    ts: int


class PhaseChanged(NamedTuple):
    symbol: str
    phase: Phase


class BookChanged(NamedTuple):
    """Market data after a command: the top of book and every level whose total changed."""

    symbol: str
    best_bid: int | None
    best_bid_quantity: int
    best_ask: int | None
    best_ask_quantity: int
    levels: tuple[LevelChange, ...]


Event = (
    InstrumentAdded
    | Accepted
    | Rejected
    | Trade
    | Cancelled
    | Amended
    | AuctionResult
    | PhaseChanged
    | BookChanged
)


# Equality by type and value (a Trade never equals a Cancelled with the same fields).
for _event_type in (
    InstrumentAdded, Accepted, Rejected, Trade, Cancelled, Amended, AuctionResult, PhaseChanged,
    BookChanged,
):  # fmt: skip
    _event_type.__eq__ = _same_event  # type: ignore[method-assign,assignment]
    _event_type.__ne__ = _different_event  # type: ignore[method-assign,assignment]
    _event_type.__hash__ = tuple.__hash__  # type: ignore[method-assign,assignment]


def event_to_dict(event: Event) -> dict[str, object]:
    """Plain-value form of an event, with its type under ``"event"``."""
    out: dict[str, object] = {"event": type(event).__name__}
    out.update(event._asdict())
    if isinstance(event, BookChanged):
        out["levels"] = [[str(side), price, qty] for side, price, qty in event.levels]
    return out
