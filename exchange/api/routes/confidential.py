"""Confidential trading: requests for quote, negotiated trades, and their publication.

Requests, quotes, reports and unpublished trades are seen only by those they concern and by
the regulator; another participant's is a 404, exactly as if it did not exist. Publications
(``/market/{symbol}/publications``) and the publication policies are public. Commands flow
one way, as orders do: the route converts the body and submits it, reading nothing first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from exchange import commands as cmd
from exchange.money import parse_minor
from exchange.participants import TRADING_ROLES, Participant, Role
from exchange.service import Exchange

from ..bodies import StrictJsonRoute
from ..confidential_models import (
    ConfidentialTradePublic,
    PolicyPublic,
    PolicySet,
    PublishedTradePublic,
    QuoteAccept,
    QuoteCreate,
    QuotePublic,
    RfqCreate,
    RfqPublic,
    TradeReportCreate,
    TradeReportPublic,
    policy_view,
    published_view,
    quote_view,
    report_view,
    rfq_view,
    trade_view,
)
from ..deps import RuntimeDep, requires
from ..errors import ApiError
from ..runtime import Runtime
from ..schemas import SymbolPath, error_responses

router = APIRouter(tags=["confidential trading"], route_class=StrictJsonRoute)
Trader = Annotated[Participant, Depends(requires(*TRADING_ROLES))]
# Reads: the parties, and the regulator, who supervises every trade.
Reader = Annotated[Participant, Depends(requires(*TRADING_ROLES, Role.REGULATOR))]
Admin = Annotated[Participant, Depends(requires(Role.ADMIN))]
Limit = Annotated[int, Query(ge=1, le=500)]

_WRITE = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
_READ = error_responses(401, 403, 404, 422, 429)


def _nanoseconds(moment: datetime, what: str) -> int:
    if moment.tzinfo is None:
        raise ApiError(422, f"{what} needs a time zone (e.g. 2026-12-01T00:00:00Z)",
                       "VALIDATION_INVALID")  # fmt: skip
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _regulator(me: Participant) -> bool:
    return Role.REGULATOR in me.roles


def _now(runtime: Runtime, exchange: Exchange) -> int:
    """The time a request's or a report's status is read at: the sequencer's clock, never
    before the last command (whose time the state has seen)."""
    return max(runtime.sequencer.clock(), exchange.last_ts_ns)


def _rfq(runtime: Runtime, me: Participant, rfq_id: int) -> RfqPublic:
    def read(exchange: Exchange) -> RfqPublic:
        desk, everyone = exchange.confidential, _regulator(me)
        rfq = desk.rfq(me.participant_id, rfq_id, everyone=everyone)
        if rfq is None:
            raise ApiError(404, f"no request for quote {rfq_id}", "VALIDATION_UNKNOWN_RFQ")
        quotes = desk.quotes_of(rfq, me.participant_id, everyone=everyone)
        return rfq_view(rfq, quotes, me.participant_id, regulator=everyone,
                        now_ns=_now(runtime, exchange))  # fmt: skip

    return runtime.read(read)


# -- requests for quote --------------------------------------------------------------------


@router.post("/rfqs", status_code=201, response_model=RfqPublic, responses=_WRITE)
async def request_quote(body: RfqCreate, me: Trader, runtime: RuntimeDep) -> RfqPublic:
    """Ask named participants, or every one able to sell, for a price, until ``deadline``.
    Retrying with the same ``client_request_id`` and content returns the original response;
    other content under it is a 409."""
    outcome = await runtime.execute(request_quote_command(body, me))
    return requested_view(outcome.result, me)


def request_quote_command(body: RfqCreate, me: Participant) -> cmd.RequestQuote:
    """The command a request for quote makes (the order-entry session's too)."""
    return cmd.RequestQuote(
        me.participant_id, 0, body.symbol, body.quantity, list(body.responders),
        body.all_eligible, _nanoseconds(body.deadline, "deadline"), body.disclose_requester,
        body.client_request_id,
    )  # fmt: skip


def requested_view(rfq: Any, me: Participant) -> RfqPublic:
    """A request as it was created (or first created, for a retry): no quotes yet."""
    return rfq_view(rfq, [], me.participant_id, regulator=False, now_ns=rfq.created_ns)


@router.get("/rfqs", response_model=list[RfqPublic], responses=_READ)
async def list_rfqs(me: Reader, runtime: RuntimeDep, limit: Limit = 100) -> list[RfqPublic]:
    """The requests you made or were asked to quote on (every request, for the regulator),
    newest first."""

    def read(exchange: Exchange) -> list[RfqPublic]:
        desk, everyone, now = exchange.confidential, _regulator(me), _now(runtime, exchange)
        return [
            rfq_view(rfq, desk.quotes_of(rfq, me.participant_id, everyone=everyone),
                     me.participant_id, regulator=everyone, now_ns=now)
            for rfq in desk.rfqs_of(me.participant_id, everyone=everyone, limit=limit)
        ]  # fmt: skip

    return runtime.read(read)


@router.get("/rfqs/{rfq_id}", response_model=RfqPublic, responses=_READ)
async def read_rfq(rfq_id: int, me: Reader, runtime: RuntimeDep) -> RfqPublic:
    return _rfq(runtime, me, rfq_id)


@router.post("/rfqs/{rfq_id}/quotes", status_code=201, response_model=QuotePublic,
             responses=_WRITE)  # fmt: skip
async def submit_quote(
    rfq_id: int, body: QuoteCreate, me: Trader, runtime: RuntimeDep
) -> QuotePublic:
    """Quote on a request you were asked to; a newer quote replaces your earlier one.
    Retrying with the same ``client_quote_id`` and content returns the original response."""
    outcome = await runtime.execute(submit_quote_command(rfq_id, body, me))
    return quote_view(outcome.result)


def submit_quote_command(rfq_id: int, body: QuoteCreate, me: Participant) -> cmd.SubmitQuote:
    price = parse_minor(body.price, "price")
    return cmd.SubmitQuote(me.participant_id, rfq_id, 0, price, body.client_quote_id)


@router.post("/rfqs/{rfq_id}/accept", status_code=201, response_model=ConfidentialTradePublic,
             responses=_WRITE)  # fmt: skip
async def accept_quote(
    rfq_id: int, body: QuoteAccept, me: Trader, runtime: RuntimeDep
) -> ConfidentialTradePublic:
    """Accept one quote on your request: it trades and settles at once."""
    outcome = await runtime.execute(cmd.AcceptQuote(me.participant_id, rfq_id, body.quote_id, 0))
    return trade_view(outcome.result)


@router.delete("/rfqs/{rfq_id}", response_model=RfqPublic, responses=_WRITE)
async def cancel_request(rfq_id: int, me: Trader, runtime: RuntimeDep) -> RfqPublic:
    """Withdraw your open request; its quotes are not selected."""
    await runtime.execute(cmd.CancelRequest(me.participant_id, rfq_id))
    return _rfq(runtime, me, rfq_id)


# -- negotiated trades ---------------------------------------------------------------------


@router.post("/trade-reports", status_code=201, response_model=TradeReportPublic,
             responses=_WRITE)  # fmt: skip
async def report_trade(
    body: TradeReportCreate, me: Trader, runtime: RuntimeDep
) -> TradeReportPublic:
    """Report a trade agreed off the exchange; it settles once the counterparty confirms
    (within a day). Retrying with the same ``client_report_id`` and content returns the
    original response."""
    outcome = await runtime.execute(cmd.ReportTrade(
        me.participant_id, 0, body.symbol, body.side, body.counterparty,
        parse_minor(body.price, "price"), body.quantity, body.client_report_id,
    ))  # fmt: skip
    return report_view(outcome.result, outcome.result.created_ns)


@router.get("/trade-reports", response_model=list[TradeReportPublic], responses=_READ)
async def list_reports(
    me: Reader, runtime: RuntimeDep, limit: Limit = 100
) -> list[TradeReportPublic]:
    """The reports you made or are the counterparty of (all, for the regulator)."""

    def read(exchange: Exchange) -> list[TradeReportPublic]:
        now = _now(runtime, exchange)
        reports = exchange.confidential.reports_of(
            me.participant_id, everyone=_regulator(me), limit=limit
        )
        return [report_view(report, now) for report in reports]

    return runtime.read(read)


@router.post("/trade-reports/{report_id}/confirm", status_code=201,
             response_model=ConfidentialTradePublic, responses=_WRITE)  # fmt: skip
async def confirm_trade(report_id: int, me: Trader, runtime: RuntimeDep) -> ConfidentialTradePublic:
    """Confirm a trade reported with you as counterparty: it settles at once."""
    outcome = await runtime.execute(cmd.ConfirmTrade(me.participant_id, report_id, 0))
    return trade_view(outcome.result)


@router.get("/confidential-trades", response_model=list[ConfidentialTradePublic],
            responses=_READ)  # fmt: skip
async def my_confidential_trades(
    me: Reader, runtime: RuntimeDep, limit: Limit = 100
) -> list[ConfidentialTradePublic]:
    """Your confidential trades (all of them, for the regulator), newest first, published
    or not."""
    trades = runtime.read(lambda exchange: exchange.confidential.trades_of(
        me.participant_id, everyone=_regulator(me), limit=limit
    ))  # fmt: skip
    return [trade_view(trade) for trade in trades]


# -- publication ---------------------------------------------------------------------------


@router.get("/market/{symbol}/publications", response_model=list[PublishedTradePublic],
            tags=["market data"], responses=error_responses(404, 422))  # fmt: skip
async def publications(
    symbol: SymbolPath, runtime: RuntimeDep, limit: Limit = 100
) -> list[PublishedTradePublic]:
    """Confidential trades published after their deferral, newest first: no parties, the
    price exact or a band, the quantity capped (docs/confidential.md)."""

    def read(exchange: Exchange) -> list[PublishedTradePublic]:
        if symbol not in exchange.instruments:
            raise ApiError(404, f"no instrument {symbol}", "NOT_FOUND")
        return [published_view(p) for p in exchange.confidential.published(symbol, limit)]

    return runtime.read(read)


@router.get("/instruments/{symbol}/publication-policy", response_model=PolicyPublic,
            responses=error_responses(404, 422))  # fmt: skip
async def read_policy(symbol: SymbolPath, runtime: RuntimeDep) -> PolicyPublic:
    """When and how the instrument's confidential trades are published (public)."""

    def read(exchange: Exchange) -> PolicyPublic:
        if symbol not in exchange.instruments:
            raise ApiError(404, f"no instrument {symbol}", "NOT_FOUND")
        return policy_view(symbol, exchange.confidential.policy(symbol))

    return runtime.read(read)


@router.put("/instruments/{symbol}/publication-policy", response_model=PolicyPublic,
            responses=_WRITE)  # fmt: skip
async def set_policy(
    symbol: SymbolPath, body: PolicySet, me: Admin, runtime: RuntimeDep
) -> PolicyPublic:
    """Set the instrument's publication policy; trades settled before keep their times."""
    outcome = await runtime.execute(cmd.SetPublicationPolicy(
        me.participant_id, symbol, parse_minor(body.large_in_scale, "large_in_scale"),
        body.liquid_trades_30d, body.deferral_standard_s, body.deferral_large_or_illiquid_s,
        body.deferral_large_and_illiquid_s, body.quantity_cap, body.band_large_in_scale,
        body.band_significant_figures,
    ))  # fmt: skip
    return policy_view(symbol, outcome.result)
