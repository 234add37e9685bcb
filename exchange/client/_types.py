"""The shapes of the API's answers, as the client returns them: amounts are ``Decimal``,
times ISO 8601 strings, quantities ints. ``TypedDict``s, so a result is the decoded JSON
itself (nothing copied) and a type checker knows its fields; the OpenAPI document at
``/openapi.json`` is the full contract."""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

__all__ = [
    "ApiKeyIssued",
    "Balances",
    "Book",
    "BookLevel",
    "ConfidentialTrade",
    "Fill",
    "Holding",
    "Instrument",
    "Order",
    "Participant",
    "ParticipantAccount",
    "Product",
    "Quote",
    "Rfq",
    "Ticker",
    "TradePrint",
    "TradeReport",
]


class Order(TypedDict):
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    price: Decimal | None
    quantity: int
    filled_quantity: int
    remaining_quantity: int
    average_price: Decimal | None
    status: str  # open, partially_filled, filled, cancelled
    time_in_force: str
    expire_time: str | None
    post_only: bool
    cancel_reason: str | None
    created_at: str | None
    updated_at: str | None


class Fill(TypedDict):
    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    quantity: int
    fee: Decimal
    liquidity: str  # maker, taker or auction
    time: str | None


class Holding(TypedDict):
    symbol: str
    units: int
    reserved_units: int
    expires_at: str | None


class Balances(TypedDict):
    cash_available: Decimal
    cash_reserved: Decimal
    holdings: list[Holding]


class BookLevel(TypedDict):
    price: Decimal
    quantity: int


class Book(TypedDict):
    seq: int
    symbol: str
    phase: str
    bids: list[BookLevel]
    asks: list[BookLevel]
    indicative_price: Decimal | None
    indicative_volume: int


class TradePrint(TypedDict):
    trade_id: int
    symbol: str
    price: Decimal
    quantity: int
    aggressor: str | None
    time: str | None


class Ticker(TypedDict):
    symbol: str
    phase: str
    last: Decimal | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    vwap: Decimal | None
    volume: int
    trades: int
    best_bid: Decimal | None
    best_ask: Decimal | None
    mid: Decimal | None


class Instrument(TypedDict):
    symbol: str
    product_id: str
    provider: str
    exclusivity: str
    duration_months: int
    scope: str
    territory: str
    transferable: bool
    tick_size: Decimal
    lot_size: int
    trading_mode: str
    issuance_cap: int
    fee_rate_bp: int
    price_band_low: Decimal | None
    price_band_high: Decimal | None
    sealed_bid_pricing: str
    phase: str
    listed_at: str | None


class Product(TypedDict, total=False):  # the fields most read; /openapi.json has all
    product_id: str
    provider: str
    title: str
    category: str
    region: str
    status: str
    cost_basis: Decimal


class Participant(TypedDict):
    participant_id: str
    name: str
    roles: list[str]


class ParticipantAccount(Participant):
    status: str  # active or disabled
    key_id: str | None
    created_at: str | None
    disabled_at: str | None


class ApiKeyIssued(TypedDict):
    participant_id: str
    key_id: str
    api_key: str


class Quote(TypedDict):
    quote_id: int
    rfq_id: int
    responder: str
    price: Decimal
    status: str
    time: str | None


class Rfq(TypedDict):
    rfq_id: int
    symbol: str
    quantity: int
    deadline: str | None
    status: str
    requester: str | None
    responders: list[str] | None
    all_eligible: bool
    quotes: list[Quote]
    trade_id: int | None
    time: str | None


class TradeReport(TypedDict):
    report_id: int
    symbol: str
    reporter: str
    counterparty: str
    reporter_side: str
    price: Decimal
    quantity: int
    status: str
    confirm_by: str | None
    trade_id: int | None
    time: str | None


class ConfidentialTrade(TypedDict):
    trade_id: int
    venue: str
    symbol: str
    buyer: str
    seller: str
    price: Decimal
    quantity: int
    fee: Decimal
    deferral: str
    publish_at: str | None
    published: bool
    time: str | None
