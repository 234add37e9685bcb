"""The REST API, one function per endpoint: each builds the :class:`~._wire.Call` that the
sync and the async client send the same way. The functions' signatures are the clients'
methods' (``exchange/client/_clients.py`` binds them), so they are written once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from ._types import (
    ApiKeyIssued,
    Balances,
    Book,
    ConfidentialTrade,
    Fill,
    Instrument,
    Order,
    Participant,
    ParticipantAccount,
    Product,
    Quote,
    Rfq,
    Ticker,
    TradePrint,
    TradeReport,
)
from ._wire import Amount, Call, amount_text, iso_time, query

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["GTC", "DAY", "IOC", "FOK", "GTD"]
OrderStatusFilter = Literal["all", "open", "partially_filled", "filled", "cancelled"]


def _segment(text: str) -> str:
    """A path segment: an id is quoted, so that a '/' or '?' in it stays in the segment."""
    return quote(text, safe="")


# -- orders --------------------------------------------------------------------------------


def submit_order(
    symbol: str,
    side: Side,
    quantity: int,
    price: Amount | None = None,
    *,
    client_order_id: str,
    type: OrderType = "limit",
    time_in_force: TimeInForce = "GTC",
    expire_time: datetime | None = None,
    post_only: bool = False,
    self_trade_prevention: str | None = None,
) -> Call[Order]:
    """Submit an order; the answer once it is journalled (fills, rest or cancellation on
    arrival). A retry under the same ``client_order_id`` and content answers the original."""
    body: dict[str, Any] = {
        "client_order_id": client_order_id, "symbol": symbol, "side": side, "type": type,
        "price": None if price is None else amount_text(price, "price"), "quantity": quantity,
        "time_in_force": time_in_force, "post_only": post_only,
    }  # fmt: skip
    if expire_time is not None:
        body["expire_time"] = iso_time(expire_time)
    if self_trade_prevention is not None:
        body["self_trade_prevention"] = self_trade_prevention
    return Call("POST", "/v1/orders", body=body)


def cancel_order(order_id: int) -> Call[Order]:
    """Cancel what is left of one of your open orders."""
    return Call("DELETE", f"/v1/orders/{int(order_id)}")


def amend_order(
    order_id: int, *, price: Amount | None = None, quantity: int | None = None
) -> Call[Order]:
    """Change an open order's price and/or total quantity (a lower quantity keeps its time
    priority; a new price or a higher quantity loses it)."""
    body: dict[str, Any] = {}
    if price is not None:
        body["price"] = amount_text(price, "price")
    if quantity is not None:
        body["quantity"] = quantity
    return Call("PATCH", f"/v1/orders/{int(order_id)}", body=body)


def cancel_all_orders(symbol: str | None = None, side: Side | None = None) -> Call[list[Order]]:
    """Cancel all your open orders (on ``symbol``, of ``side``) as one command; each as
    cancelled, oldest first."""
    return Call("DELETE", "/v1/orders", query(symbol=symbol, side=side))


def mass_quote(symbol: str, quotes: Sequence[dict[str, Any]]) -> Call[dict[str, Any]]:
    """Replace your quotes on ``symbol`` with ``quotes`` (``exchange.client.quote`` makes
    each) in one command, all or none: the orders it cancelled and those it placed."""
    return Call("POST", "/v1/quotes", body={"symbol": symbol, "quotes": list(quotes)})


def order(order_id: int) -> Call[Order]:
    return Call("GET", f"/v1/orders/{int(order_id)}")


def order_by_client_id(client_order_id: str) -> Call[Order]:
    """Your order submitted under ``client_order_id``, as it stands now."""
    return Call("GET", f"/v1/orders/by-client-id/{_segment(client_order_id)}")


def orders(
    *,
    symbol: str | None = None,
    side: Side | None = None,
    status: OrderStatusFilter | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> Call[list[Order]]:
    """A page of your orders, oldest first (pass the last ``order_id`` as ``after``)."""
    return Call("GET", "/v1/orders", query(
        symbol=symbol, side=side, status=status, start_time=start_time, end_time=end_time,
        after=after, limit=limit,
    ))  # fmt: skip


# -- account -------------------------------------------------------------------------------


def fills(
    *,
    symbol: str | None = None,
    side: Side | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> Call[list[Fill]]:
    """A page of your fills, oldest first (pass the last ``trade_id`` as ``after``)."""
    return Call("GET", "/v1/fills", query(
        symbol=symbol, side=side, start_time=start_time, end_time=end_time, after=after,
        limit=limit,
    ))  # fmt: skip


def balances() -> Call[Balances]:
    """Your cash (available and reserved by open buys) and licence holdings."""
    return Call("GET", "/v1/balances")


def me() -> Call[Participant]:
    return Call("GET", "/v1/participants/me")


# -- market data, catalogue, valuations ----------------------------------------------------


def book(symbol: str, *, depth: int | None = None) -> Call[Book]:
    """The book's levels and the journal ``seq`` it reflects."""
    return Call("GET", f"/v1/market/{_segment(symbol)}/book", query(depth=depth))


def trades(
    symbol: str, *, before: int | None = None, limit: int | None = None
) -> Call[list[TradePrint]]:
    """The trade tape, newest first (page back with the last ``trade_id`` as ``before``)."""
    return Call("GET", f"/v1/market/{_segment(symbol)}/trades", query(before=before, limit=limit))


def ticker(symbol: str) -> Call[Ticker]:
    return Call("GET", f"/v1/market/{_segment(symbol)}/ticker")


def bars(
    symbol: str, *, interval: str | None = None, start: str | None = None, end: str | None = None
) -> Call[list[dict[str, Any]]]:
    """OHLCV bars (``interval`` 1m … 1d)."""
    return Call("GET", f"/v1/instruments/{_segment(symbol)}/bars",
                query(interval=interval, start=start, end=end))  # fmt: skip


def instruments() -> Call[list[Instrument]]:
    return Call("GET", "/v1/instruments")


def instrument(symbol: str) -> Call[Instrument]:
    return Call("GET", f"/v1/instruments/{_segment(symbol)}")


def products(*, after: str | None = None, limit: int | None = None) -> Call[list[Product]]:
    return Call("GET", "/v1/products", query(after=after, limit=limit))


def product(product_id: str) -> Call[Product]:
    return Call("GET", f"/v1/products/{_segment(product_id)}")


def valuation(
    terms: dict[str, Any],
    *,
    product_id: str | None = None,
    product: dict[str, Any] | None = None,
    as_of: str | None = None,
    income: dict[str, Any] | None = None,
) -> Call[dict[str, Any]]:
    """Value a catalogue product (``product_id``) or one described by its attributes
    (``product``) under licence ``terms`` (exclusivity, duration_months, scope, territory):
    the auditable report, its amounts as ``Decimal``."""
    body = {"product_id": product_id, "product": product, "terms": terms, "as_of": as_of,
            "income": income}  # fmt: skip
    return Call("POST", "/v1/valuations", body={k: v for k, v in body.items() if v is not None})


def comparables(
    product_id: str, *, limit: int | None = None, **terms: Any
) -> Call[list[dict[str, Any]]]:
    """The traded instruments most like ``product_id`` under ``terms`` (query parameters)."""
    return Call("GET", f"/v1/products/{_segment(product_id)}/comparables",
                query(limit=limit, **terms))  # fmt: skip


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/health")


# -- confidential trading ------------------------------------------------------------------


def request_quote(
    symbol: str,
    quantity: int,
    deadline: datetime,
    *,
    responders: Sequence[str] = (),
    all_eligible: bool = False,
    disclose_requester: bool = True,
    client_request_id: str | None = None,
) -> Call[Rfq]:
    """Ask ``responders`` (or everyone able to sell, with ``all_eligible``) for a price,
    answerable until ``deadline``."""
    body: dict[str, Any] = {
        "symbol": symbol, "quantity": quantity, "responders": list(responders),
        "all_eligible": all_eligible, "deadline": iso_time(deadline),
        "disclose_requester": disclose_requester,
    }  # fmt: skip
    if client_request_id is not None:
        body["client_request_id"] = client_request_id
    return Call("POST", "/v1/rfqs", body=body)


def rfqs(*, limit: int | None = None) -> Call[list[Rfq]]:
    return Call("GET", "/v1/rfqs", query(limit=limit))


def rfq(rfq_id: int) -> Call[Rfq]:
    return Call("GET", f"/v1/rfqs/{int(rfq_id)}")


def submit_quote(rfq_id: int, price: Amount, *, client_quote_id: str | None = None) -> Call[Quote]:
    """A responder's price for a request (it replaces the responder's earlier quote)."""
    body: dict[str, Any] = {"price": amount_text(price, "price")}
    if client_quote_id is not None:
        body["client_quote_id"] = client_quote_id
    return Call("POST", f"/v1/rfqs/{int(rfq_id)}/quotes", body=body)


def accept_quote(rfq_id: int, quote_id: int) -> Call[ConfidentialTrade]:
    return Call("POST", f"/v1/rfqs/{int(rfq_id)}/accept", body={"quote_id": quote_id})


def cancel_request(rfq_id: int) -> Call[Rfq]:
    return Call("DELETE", f"/v1/rfqs/{int(rfq_id)}")


def report_trade(
    symbol: str, side: Side, counterparty: str, price: Amount, quantity: int,
    *, client_report_id: str | None = None,
) -> Call[TradeReport]:  # fmt: skip
    """Report a trade agreed off the exchange (``side`` is yours); it settles when the
    counterparty confirms it."""
    body: dict[str, Any] = {"symbol": symbol, "side": side, "counterparty": counterparty,
                            "price": amount_text(price, "price"), "quantity": quantity}  # fmt: skip
    if client_report_id is not None:
        body["client_report_id"] = client_report_id
    return Call("POST", "/v1/trade-reports", body=body)


def trade_reports(*, limit: int | None = None) -> Call[list[TradeReport]]:
    return Call("GET", "/v1/trade-reports", query(limit=limit))


def confirm_trade(report_id: int) -> Call[ConfidentialTrade]:
    return Call("POST", f"/v1/trade-reports/{int(report_id)}/confirm")


def confidential_trades(*, limit: int | None = None) -> Call[list[ConfidentialTrade]]:
    return Call("GET", "/v1/confidential-trades", query(limit=limit))


# -- operators (admin) ---------------------------------------------------------------------


def create_participant(participant_id: str, name: str, roles: Sequence[str]) -> Call[Any]:
    """Create a participant; the answer holds its API key, shown only once."""
    return Call("POST", "/v1/participants",
                body={"participant_id": participant_id, "name": name, "roles": list(roles)})


def participants(
    *,
    role: str | None = None,
    status: Literal["active", "disabled"] | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> Call[list[ParticipantAccount]]:
    return Call("GET", "/v1/participants", query(role=role, status=status, after=after,
                                                 limit=limit))  # fmt: skip


def disable_participant(participant_id: str, *, reason: str = "") -> Call[ParticipantAccount]:
    """Disable a participant: its key stops working and its open orders are cancelled."""
    return Call("POST", f"/v1/participants/{_segment(participant_id)}/disable",
                body={"reason": reason})  # fmt: skip


def enable_participant(participant_id: str, *, reason: str = "") -> Call[ParticipantAccount]:
    return Call("POST", f"/v1/participants/{_segment(participant_id)}/enable",
                body={"reason": reason})  # fmt: skip


def rotate_api_key(participant_id: str) -> Call[ApiKeyIssued]:
    """A new key for the participant, shown once; the old one stops working at once."""
    return Call("POST", f"/v1/participants/{_segment(participant_id)}/api-key")


def revoke_api_key(participant_id: str, key_id: str) -> Call[ParticipantAccount]:
    return Call("DELETE",
                f"/v1/participants/{_segment(participant_id)}/api-key/{_segment(key_id)}")


def deposit(participant_id: str, amount: Amount, *, reference: str = "") -> Call[dict[str, Any]]:
    return Call("POST", "/v1/deposits", body={
        "participant_id": participant_id, "amount": amount_text(amount, "amount"),
        "reference": reference,
    })  # fmt: skip
