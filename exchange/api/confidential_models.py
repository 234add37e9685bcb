"""The API's request and response models of confidential trading (requests for quote,
negotiated trades, their publication), and the views that fill them for one viewer.

A view shows a viewer only what it may learn (docs/confidential.md): a responder never sees
the requester unless it disclosed itself, nor another responder's quote; a requester never
sees whom an all-eligible request reached, only who quoted; a published trade shows no party.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints

from exchange.confidential import ConfidentialTrade, PublishedTrade
from exchange.money import format_minor
from exchange.negotiated import TradeReport
from exchange.publication import Deferral, PublicationPolicy
from exchange.rfq import MAX_RESPONDERS, QuoteRecord, RequestStatus, RfqRecord
from exchange.validation import MAX_CLIENT_ORDER_ID
from matching import Side

from .schemas import DecimalString, Identifier, Quantity, Request, _identifier, iso

__all__ = [
    "ConfidentialTradePublic",
    "PolicyPublic",
    "PolicySet",
    "PublishedTradePublic",
    "QuoteAccept",
    "QuoteCreate",
    "QuotePublic",
    "RfqCreate",
    "RfqPublic",
    "TradeReportCreate",
    "TradeReportPublic",
    "policy_view",
    "published_view",
    "quote_view",
    "report_view",
    "rfq_view",
    "trade_view",
]


def _money(minor: int | None) -> str | None:
    return None if minor is None else format_minor(minor)


# -- requests ------------------------------------------------------------------------------

# An id the client gives a request, quote or report, under the rules of a client_order_id:
# a retry under it answers the original and journals nothing; other content under it is a 409.
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CLIENT_ORDER_ID),
                     AfterValidator(_identifier)]  # fmt: skip
_RETRY = ("Your own id for it: a retry with the same content answers the original; other "
          "content under it is a 409")  # fmt: skip


class RfqCreate(Request):
    symbol: Identifier
    quantity: Quantity
    responders: Annotated[list[Identifier], Field(max_length=MAX_RESPONDERS)] = Field(
        default_factory=list,
        description="Participants to ask; leave empty and set all_eligible to ask every "
        "participant able to sell (whom it reaches is not shown to you)",
    )
    all_eligible: StrictBool = False
    deadline: datetime = Field(description="Quotes and acceptance until then (at most 7 days)")
    disclose_requester: StrictBool = Field(
        default=False, description="Show the responders who asks (hidden by default)"
    )
    client_request_id: ClientId | None = Field(default=None, description=_RETRY)


class QuoteCreate(Request):
    price: DecimalString
    client_quote_id: ClientId | None = Field(default=None, description=_RETRY)


class QuoteAccept(Request):
    quote_id: int = Field(strict=True, ge=1)


class TradeReportCreate(Request):
    symbol: Identifier
    side: Side = Field(description="Your side of the trade")
    counterparty: Identifier
    price: DecimalString
    quantity: Quantity
    client_report_id: ClientId | None = Field(default=None, description=_RETRY)


class PolicySet(Request):
    large_in_scale: DecimalString = Field(description="Notional from which a trade is large")
    liquid_trades_30d: int = Field(strict=True, ge=0, le=1_000_000)
    deferral_standard_s: int = Field(strict=True, ge=0)
    deferral_large_or_illiquid_s: int = Field(strict=True, ge=0)
    deferral_large_and_illiquid_s: int = Field(strict=True, ge=0)
    quantity_cap: int = Field(strict=True, ge=1, le=10**12)
    band_large_in_scale: StrictBool
    band_significant_figures: int = Field(strict=True, ge=1, le=6)


# -- responses -----------------------------------------------------------------------------


class QuotePublic(BaseModel):
    quote_id: int
    rfq_id: int
    responder: str
    price: str
    status: str
    time: str | None


class RfqPublic(BaseModel):
    rfq_id: int
    symbol: str
    quantity: int
    deadline: str | None
    status: RequestStatus
    requester: str | None = Field(description="Shown to a responder only if disclosed")
    responders: list[str] | None = Field(
        description="Shown to the requester for a request to named responders"
    )
    all_eligible: bool
    quotes: list[QuotePublic] = Field(description="Every quote for the requester; your own "
                                      "for a responder")  # fmt: skip
    trade_id: int | None = Field(description="The trade, for its parties")
    time: str | None


class TradeReportPublic(BaseModel):
    report_id: int
    symbol: str
    reporter: str
    counterparty: str
    reporter_side: Side
    price: str
    quantity: int
    status: str
    confirm_by: str | None
    trade_id: int | None
    time: str | None


class ConfidentialTradePublic(BaseModel):
    """A confidential trade as its parties and the regulator see it."""

    trade_id: int
    venue: str
    symbol: str
    buyer: str
    seller: str
    price: str
    quantity: int
    fee: str
    deferral: Deferral
    publish_at: str | None
    published: bool
    time: str | None


class PublishedTradePublic(BaseModel):
    """A confidential trade once published: no parties; the price exact, or a band."""

    publication_id: int
    symbol: str
    venue: str
    price: str | None = Field(description="The exact price, when the policy publishes it")
    price_low: str | None = Field(description="The band's low end (inclusive)")
    price_high: str | None = Field(description="The band's high end (exclusive)")
    quantity: int
    quantity_capped: bool = Field(description="The trade was larger than the quantity shown")
    deferral: Deferral
    trade_time: str | None
    published_time: str | None


class PolicyPublic(BaseModel):
    symbol: str
    large_in_scale: str
    liquid_trades_30d: int
    deferral_standard_s: int
    deferral_large_or_illiquid_s: int
    deferral_large_and_illiquid_s: int
    quantity_cap: int
    band_large_in_scale: bool
    band_significant_figures: int


# -- views ---------------------------------------------------------------------------------


def quote_view(quote: QuoteRecord) -> QuotePublic:
    return QuotePublic(quote_id=quote.quote_id, rfq_id=quote.rfq_id, responder=quote.responder,
                       price=format_minor(quote.price_minor), status=quote.status,
                       time=iso(quote.created_ns))  # fmt: skip


def rfq_view(
    rfq: RfqRecord, quotes: list[QuoteRecord], viewer: str, *, regulator: bool, now_ns: int
) -> RfqPublic:
    """``rfq`` as ``viewer`` may see it (``quotes``: those it may see)."""
    requester = viewer == rfq.requester
    party = requester or regulator
    if regulator or (requester and not rfq.all_eligible):
        responders: list[str] | None = list(rfq.responders)
    else:
        responders = None
    traded = rfq.trade_id is not None and (
        party or any(q.status == "accepted" and q.responder == viewer for q in quotes)
    )
    return RfqPublic(
        rfq_id=rfq.rfq_id, symbol=rfq.symbol, quantity=rfq.quantity_units,
        deadline=iso(rfq.deadline_ns), status=rfq.status_at(now_ns),
        requester=rfq.requester if party or rfq.disclose_requester else None,
        responders=responders, all_eligible=rfq.all_eligible,
        quotes=[quote_view(q) for q in quotes], trade_id=rfq.trade_id if traded else None,
        time=iso(rfq.created_ns),
    )  # fmt: skip


def report_view(report: TradeReport, now_ns: int) -> TradeReportPublic:
    return TradeReportPublic(
        report_id=report.report_id, symbol=report.symbol, reporter=report.reporter,
        counterparty=report.counterparty, reporter_side=report.reporter_side,
        price=format_minor(report.price_minor), quantity=report.quantity_units,
        status=report.status_at(now_ns), confirm_by=iso(report.confirm_by_ns),
        trade_id=report.trade_id, time=iso(report.created_ns),
    )  # fmt: skip


def trade_view(trade: ConfidentialTrade) -> ConfidentialTradePublic:
    return ConfidentialTradePublic(
        trade_id=trade.trade_id, venue=trade.venue, symbol=trade.symbol, buyer=trade.buyer,
        seller=trade.seller, price=format_minor(trade.price_minor),
        quantity=trade.quantity_units, fee=format_minor(trade.fee_minor),
        deferral=trade.deferral, publish_at=iso(trade.publish_at_ns),
        published=trade.publication_id is not None, time=iso(trade.ts_ns),
    )  # fmt: skip


def published_view(published: PublishedTrade) -> PublishedTradePublic:
    return PublishedTradePublic(
        publication_id=published.publication_id, symbol=published.symbol,
        venue=published.venue, price=_money(published.price_minor),
        price_low=_money(published.price_low_minor), price_high=_money(published.price_high_minor),
        quantity=published.quantity_units, quantity_capped=published.quantity_capped,
        deferral=published.deferral, trade_time=iso(published.traded_ns),
        published_time=iso(published.published_ns),
    )  # fmt: skip


def policy_view(symbol: str, policy: PublicationPolicy) -> PolicyPublic:
    return PolicyPublic(
        symbol=symbol, large_in_scale=format_minor(policy.large_in_scale_minor),
        liquid_trades_30d=policy.liquid_trades_30d,
        deferral_standard_s=policy.deferral_standard_s,
        deferral_large_or_illiquid_s=policy.deferral_large_or_illiquid_s,
        deferral_large_and_illiquid_s=policy.deferral_large_and_illiquid_s,
        quantity_cap=policy.quantity_cap_units, band_large_in_scale=policy.band_large_in_scale,
        band_significant_figures=policy.band_significant_figures,
    )  # fmt: skip
