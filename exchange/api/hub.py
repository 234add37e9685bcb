"""Fan-out of committed events to WebSocket subscribers.

The sequencer calls :meth:`Hub.on_commit` on its own thread after each durable commit; the
hub hands the batch to the event loop, which turns it into messages for each market channel
(one per symbol: book changes, trades, auction results, phases, and confidential trades as
they are published), each private channel (one
per participant: its own order events and fills, and the alerts of the loan facilities it
lends or borrows under) and each fills channel (one per participant: its fills alone, the
drop copy of an order-entry session). A message is built only for a channel someone
subscribes to. A subscriber's queue is bounded, so that
one that falls behind cannot grow the server's memory: a market subscriber's queue is then
emptied and told to resync (:data:`RESYNC`: its stream sends a fresh snapshot and carries on),
a private or fills subscriber is disconnected. Nothing is dropped without saying so.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from exchange.commands import Housekeeping
from exchange.confidential import PublishedTrade
from exchange.facility import Alert
from exchange.money import format_minor
from exchange.orders import FillReport
from exchange.service import Outcome
from matching import (
    Accepted,
    Amended,
    AuctionResult,
    BookChanged,
    Cancelled,
    Event,
    PhaseChanged,
    Side,
    Trade,
    event_values,
)

from .schemas import iso

__all__ = ["CHANNELS", "MAX_SUBSCRIBER_QUEUE", "RESYNC", "Hub", "Subscriber"]

CHANNELS = ("market", "private", "fills")
MAX_SUBSCRIBER_QUEUE = 1_000
MAX_SUBSCRIBERS = 1_000
# In a market subscriber's queue, in place of the messages dropped when it overflowed.
RESYNC: dict[str, Any] = {"type": "resync", "reason": "too slow: messages were dropped"}
# A subscriber's queue: messages, then None when it was dropped for falling behind.
Subscriber = asyncio.Queue[dict[str, Any] | None]


def _price(minor: int | None) -> str | None:
    return None if minor is None else format_minor(minor)


class Hub:
    def __init__(
        self, facility_parties: Callable[[int], tuple[str, str] | None] | None = None
    ) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        # A facility's lender and borrower, who both get its alerts.
        self.facility_parties = facility_parties
        # Subscribers' queues by channel ("market", "private", "fills"), then symbol or
        # participant.
        self._channels: dict[str, defaultdict[str, set[Subscriber]]] = {
            channel: defaultdict(set) for channel in CHANNELS
        }
        self._market = self._channels["market"]
        self._private = self._channels["private"]
        self._fills = self._channels["fills"]
        # Changed on the event loop only; read by the sequencer's thread at each commit.
        self._subscribers = 0

    def subscriber_count(self) -> int:
        return self._subscribers

    def subscribe(self, channel: str, key: str) -> Subscriber:
        """A queue of messages for ``channel`` (one of :data:`CHANNELS`) and ``key``."""
        if self._subscribers >= MAX_SUBSCRIBERS:
            raise OverflowError("too many subscribers")
        queue: Subscriber = asyncio.Queue(MAX_SUBSCRIBER_QUEUE)
        self._channels[channel][key].add(queue)
        self._subscribers += 1
        return queue

    def unsubscribe(self, channel: str, key: str, queue: Subscriber) -> None:
        """Forget ``queue``; nothing if the hub dropped it already."""
        queues = self._channels[channel].get(key)
        if queues is not None and queue in queues:
            queues.discard(queue)
            self._subscribers -= 1

    def on_commit(self, committed: list[tuple[int, Outcome]]) -> None:
        """Called on the sequencer's thread."""
        loop = self.loop
        if loop is not None and not loop.is_closed() and self.subscriber_count():
            loop.call_soon_threadsafe(self._dispatch, committed)

    def _send(
        self, queues: set[Subscriber], message: dict[str, Any], *, resync: bool = False
    ) -> None:
        """Queue ``message`` for each subscriber. One whose queue is full fell too far behind:
        with ``resync`` its queue is emptied but for :data:`RESYNC`; otherwise it is
        unsubscribed and its task told to close (``None``)."""
        for queue in list(queues):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                if resync:
                    queue.put_nowait(RESYNC)
                else:
                    queues.discard(queue)
                    self._subscribers -= 1
                    queue.put_nowait(None)

    def _dispatch(self, committed: list[tuple[int, Outcome]]) -> None:
        market, private, fills = self._market, self._private, self._fills
        parties_of = self.facility_parties or _no_parties
        for seq, outcome in committed:
            if type(outcome.command) is Housekeeping:
                for published in outcome.result:
                    if market.get(published.symbol):
                        publication = publication_message(seq, published)
                        self._send(market[published.symbol], publication, resync=True)
            reports = {(r.fill.trade_id, r.fill.side): r for r in outcome.fills}
            for event in outcome.events:
                symbol = getattr(event, "symbol", None)
                if symbol is not None and market.get(symbol):
                    message = market_message(seq, event)
                    if message is not None:
                        self._send(market[symbol], message, resync=True)
                kind = type(event)
                if kind is Trade:
                    if (private.get(event.buyer) or private.get(event.seller)
                            or fills.get(event.buyer) or fills.get(event.seller)):  # fmt: skip
                        for participant, message in private_messages(seq, event, reports):
                            for queues in (private.get(participant), fills.get(participant)):
                                if queues:
                                    self._send(queues, message)
                elif kind is Accepted or kind is Cancelled or kind is Amended:
                    queues = private.get(event.participant)
                    if queues:
                        for _participant, message in private_messages(seq, event):
                            self._send(queues, message)
            for alert in outcome.alerts:
                for participant in parties_of(alert.facility_id) or ():
                    if private.get(participant):
                        self._send(private[participant], alert_message(seq, alert))


def _no_parties(facility_id: int) -> None:
    """A hub told of no facilities' parties sends their alerts to no one."""
    return None


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Enums as their values, prices as decimal strings."""
    out = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in values.items()}
    if "price" in out:
        out["price"] = _price(out["price"])
    return out


def market_message(seq: int, event: Event) -> dict[str, Any] | None:
    """The public message for ``event`` on its symbol's market channel, if it has one."""
    kind = type(event)
    if kind is BookChanged:
        return {
            "type": "book", "seq": seq, "symbol": event.symbol,
            "best_bid": _price(event.best_bid), "best_bid_quantity": event.best_bid_quantity,
            "best_ask": _price(event.best_ask), "best_ask_quantity": event.best_ask_quantity,
            "levels": [[side.value, format_minor(price), quantity]
                       for side, price, quantity in event.levels],
        }  # fmt: skip
    if kind is Trade:
        aggressor = None if event.aggressor is None else event.aggressor.value
        return {"type": "trade", "seq": seq, "trade_id": event.trade_id, "symbol": event.symbol,
                "price": format_minor(event.price), "quantity": event.quantity,
                "aggressor": aggressor, "time": iso(event.ts)}  # fmt: skip
    if kind is AuctionResult:
        # Field by field, as the trade's: the event's own time is nanoseconds.
        return {"type": "auction", "seq": seq, "symbol": event.symbol,
                "price": _price(event.price), "volume": event.volume,
                "imbalance": event.imbalance, "time": iso(event.ts)}  # fmt: skip
    if kind is PhaseChanged:
        return {"type": "phase", "seq": seq, **_plain(event_values(event))}
    return None


def publication_message(seq: int, published: PublishedTrade) -> dict[str, Any]:
    """A confidential trade published after its deferral: no parties (docs/confidential.md)."""
    return {
        "type": "publication", "seq": seq, "symbol": published.symbol,
        "publication_id": published.publication_id, "venue": published.venue,
        "price": _price(published.price_minor), "price_low": _price(published.price_low_minor),
        "price_high": _price(published.price_high_minor), "quantity": published.quantity_units,
        "quantity_capped": published.quantity_capped, "deferral": published.deferral.value,
        "trade_time": iso(published.traded_ns), "time": iso(published.published_ns),
    }  # fmt: skip


def alert_message(seq: int, alert: Alert) -> dict[str, Any]:
    """A loan facility's alert, for its lender and its borrower (exchange/facility.py)."""
    return {
        "type": "alert", "seq": seq, "alert_id": alert.alert_id,
        "facility_id": alert.facility_id, "reason": alert.reason.value, "time": iso(alert.ts_ns),
        "ltv_bp": alert.ltv_bp, "message": alert.message, "deadline": iso(alert.deadline_ns),
        "symbol": alert.symbol,
    }  # fmt: skip


def private_messages(
    seq: int, event: Event, reports: dict[tuple[int, Side], FillReport] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(participant, message) for each participant ``event`` concerns privately. A trade's
    fills carry what the settlement reported of each (``reports``, by trade id and side):
    the order's client id, the fee, maker or taker, and what was left of the order."""
    kind = type(event)
    if kind is Trade:
        trade = {"trade_id": event.trade_id, "symbol": event.symbol,
                 "price": format_minor(event.price), "quantity": event.quantity,
                 "time": iso(event.ts)}  # fmt: skip
        fills = []
        sides = ((event.buyer, Side.BUY, event.buy_order_id),
                 (event.seller, Side.SELL, event.sell_order_id))  # fmt: skip
        for participant, side, order_id in sides:
            message = {"type": "fill", "seq": seq, "side": side.value, "order_id": order_id,
                       **trade}  # fmt: skip
            report = None if reports is None else reports.get((event.trade_id, side))
            if report is not None:
                message["client_order_id"] = report.fill.client_order_id
                message["fee"] = format_minor(report.fill.fee_minor)
                message["liquidity"] = report.fill.liquidity
                message["remaining_quantity"] = report.remaining_units
            fills.append((participant, message))
        return fills
    if kind is Accepted or kind is Cancelled or kind is Amended:
        message = {"type": kind.__name__.lower(), "seq": seq, **_plain(event_values(event))}
        return [(event.participant, message)]
    return []
