"""Events: the facts the engine reports, in the order they happened within a command.

Events are dataclasses with slots whose fields are ``Final``: read-only (mypy checks it, and a
compiled build enforces it), hashable, and equal only to an event of the same type with the
same values. Each writes its ``__init__`` out because, compiled, a written ``__init__`` is
native code and builds an event in a third of the time of a tuple, where the one dataclass
generates stays interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

from matching.enums import CancelReason, OrderType, Phase, RejectReason, Side, TimeInForce

# A touched level of a book: (side, price, total resting quantity after the command; 0 = gone).
LevelChange = tuple[Side, int, int]


@dataclass(init=False, slots=True, unsafe_hash=True)
class InstrumentAdded:
    symbol: Final[str]
    phase: Final[Phase]

    def __init__(self, symbol: str, phase: Phase) -> None:
        self.symbol = symbol
        self.phase = phase


@dataclass(init=False, slots=True, unsafe_hash=True)
class Accepted:
    order_id: Final[int]
    participant: Final[str]
    symbol: Final[str]
    side: Final[Side]
    order_type: Final[OrderType]
    price: Final[int | None]
    quantity: Final[int]
    tif: Final[TimeInForce]

    def __init__(
        self,
        order_id: int,
        participant: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        price: int | None,
        quantity: int,
        tif: TimeInForce,
    ) -> None:
        self.order_id = order_id
        self.participant = participant
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.price = price
        self.quantity = quantity
        self.tif = tif


@dataclass(init=False, slots=True, unsafe_hash=True)
class Rejected:
    """A command refused before it changed anything. ``order_id`` is None for non-order ones."""

    order_id: Final[int | None]
    symbol: Final[str | None]
    reason: Final[RejectReason]

    def __init__(self, order_id: int | None, symbol: str | None, reason: RejectReason) -> None:
        self.order_id = order_id
        self.symbol = symbol
        self.reason = reason


@dataclass(init=False, slots=True, unsafe_hash=True)
class Trade:
    """One execution. ``aggressor`` is the side of the incoming order, None in an auction."""

    trade_id: Final[int]
    symbol: Final[str]
    price: Final[int]
    quantity: Final[int]
    buy_order_id: Final[int]
    sell_order_id: Final[int]
    buyer: Final[str]
    seller: Final[str]
    aggressor: Final[Side | None]
    seq: Final[int]
    ts: Final[int]

    def __init__(
        self,
        trade_id: int,
        symbol: str,
        price: int,
        quantity: int,
        buy_order_id: int,
        sell_order_id: int,
        buyer: str,
        seller: str,
        aggressor: Side | None,
        seq: int,
        ts: int,
    ) -> None:
        self.trade_id = trade_id
        self.symbol = symbol
        self.price = price
        self.quantity = quantity
        self.buy_order_id = buy_order_id
        self.sell_order_id = sell_order_id
        self.buyer = buyer
        self.seller = seller
        self.aggressor = aggressor
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True, unsafe_hash=True)
class Cancelled:
    """An order left the book unfilled for ``quantity`` units."""

    order_id: Final[int]
    participant: Final[str]
    symbol: Final[str]
    quantity: Final[int]
    reason: Final[CancelReason]

    def __init__(
        self, order_id: int, participant: str, symbol: str, quantity: int, reason: CancelReason
    ) -> None:
        self.order_id = order_id
        self.participant = participant
        self.symbol = symbol
        self.quantity = quantity
        self.reason = reason


@dataclass(init=False, slots=True, unsafe_hash=True)
class Amended:
    order_id: Final[int]
    participant: Final[str]
    symbol: Final[str]
    price: Final[int | None]
    quantity: Final[int]
    remaining: Final[int]
    priority_kept: Final[bool]

    def __init__(
        self,
        order_id: int,
        participant: str,
        symbol: str,
        price: int | None,
        quantity: int,
        remaining: int,
        priority_kept: bool,
    ) -> None:
        self.order_id = order_id
        self.participant = participant
        self.symbol = symbol
        self.price = price
        self.quantity = quantity
        self.remaining = remaining
        self.priority_kept = priority_kept


@dataclass(init=False, slots=True, unsafe_hash=True)
class AuctionResult:
    """The outcome of an uncross. ``imbalance`` is buy minus sell volume at ``price``."""

    symbol: Final[str]
    price: Final[int | None]
    volume: Final[int]
    imbalance: Final[int]
    seq: Final[int]
    ts: Final[int]

    def __init__(
        self, symbol: str, price: int | None, volume: int, imbalance: int, seq: int, ts: int
    ) -> None:
        self.symbol = symbol
        self.price = price
        self.volume = volume
        self.imbalance = imbalance
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True, unsafe_hash=True)
class PhaseChanged:
    symbol: Final[str]
    phase: Final[Phase]

    def __init__(self, symbol: str, phase: Phase) -> None:
        self.symbol = symbol
        self.phase = phase


@dataclass(init=False, slots=True, unsafe_hash=True)
class BookChanged:
    """Market data after a command: the top of book and every level whose total changed."""

    symbol: Final[str]
    best_bid: Final[int | None]
    best_bid_quantity: Final[int]
    best_ask: Final[int | None]
    best_ask_quantity: Final[int]
    levels: Final[tuple[LevelChange, ...]]

    def __init__(
        self,
        symbol: str,
        best_bid: int | None,
        best_bid_quantity: int,
        best_ask: int | None,
        best_ask_quantity: int,
        levels: tuple[LevelChange, ...],
    ) -> None:
        self.symbol = symbol
        self.best_bid = best_bid
        self.best_bid_quantity = best_bid_quantity
        self.best_ask = best_ask
        self.best_ask_quantity = best_ask_quantity
        self.levels = levels


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


def event_values(event: Event) -> dict[str, object]:
    """The event's fields by name, in declaration order."""
    return {field.name: getattr(event, field.name) for field in fields(event)}


def event_to_dict(event: Event) -> dict[str, object]:
    """Plain-value form of an event, with its type under ``"event"``."""
    out: dict[str, object] = {"event": type(event).__name__}
    out.update(event_values(event))
    if isinstance(event, BookChanged):
        out["levels"] = [[str(side), price, qty] for side, price, qty in event.levels]
    return out
