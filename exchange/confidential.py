"""Confidential trading: requests for quote and negotiated trades, settled at once and
published later, anonymised.

:class:`ConfidentialDesk` is the part of :class:`~exchange.service.Exchange` that applies
the confidential commands (``RequestQuote``, ``SubmitQuote``, ``AcceptQuote``,
``CancelRequest``, ``ReportTrade``, ``ConfirmTrade``, ``SetPublicationPolicy``). Like every
handler it checks everything first and raises :class:`ExchangeError` having changed nothing.

A trade agreed here passes the same risk checks as an order-book trade (the buyer's
available cash, the seller's free licence units from the issuance or one unexpired holding,
tick, lot, price band, a product not suspended, an instrument not halted) and settles into
one ledger entry of the same shape, keyed ``confidential_trade:<id>``: the ledger stays
complete and hash-chained. The trade never reaches the matching engine, so no book, tape,
ticker, bar, WebSocket message or export of engine events shows it. It is published when its
deferral ends (``exchange.publication``): the exchange's housekeeping, a journalled command,
appends it to the instrument's publication tape without its parties, with its price exact or
in a band, and, if exact, to the prints that bars and valuations read. Publication is a view:
it writes nothing to the ledger. Until then only its parties and the regulator see it.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from exchange import commands as cmd
from exchange.catalogue import Instrument, ProductStatus
from exchange.compliance import ComplianceDesk
from exchange.errors import ExchangeError, Reason
from exchange.marketdata import MarketData
from exchange.money import MAX_AMOUNT_MINOR, format_minor
from exchange.negotiated import CONFIRMATION_WINDOW_NS, ReportStatus, TradeReport
from exchange.participants import TRADING_ROLES, Participants, Role
from exchange.publication import (
    DEFAULT_POLICY,
    LIQUIDITY_WINDOW_NS,
    Deferral,
    PublicationPolicy,
    deferral_class,
    deferral_ns,
    price_band,
)
from exchange.rfq import (
    MAX_QUOTES_PER_REQUEST,
    MAX_REQUEST_DURATION_NS,
    MAX_RESPONDERS,
    QuoteRecord,
    QuoteStatus,
    RequestStatus,
    RfqRecord,
)
from exchange.risk import Risk
from exchange.settlement import Settlement
from exchange.validation import (
    MAX_CLIENT_ORDER_ID,
    MAX_QUANTITY_UNITS,
    enum_member,
    identifier_problem,
    integer,
    invalid,
    text,
)
from ledger import Entry, accounts, entries
from matching import Engine, Phase, Side

__all__ = [
    "COMMANDS",
    "LEDGER_KEY_PREFIX",
    "WITHHELD_VERBS",
    "ConfidentialDesk",
    "ConfidentialTrade",
    "PublishedTrade",
    "Venue",
]

# A participant's open requests and pending reports are bounded, so that no one can grow
# the state (or a responder's list of requests) without limit.
MAX_OPEN_PER_PARTICIPANT: Final = 100
_TRADING_HALTED = (Phase.HALTED, Phase.CLOSED)

COMMANDS: Final = (
    cmd.RequestQuote, cmd.SubmitQuote, cmd.AcceptQuote, cmd.CancelRequest, cmd.ReportTrade,
    cmd.ConfirmTrade, cmd.SetPublicationPolicy,
)  # fmt: skip

# What the research exports withhold (``exchange.research.tables``): every command of
# confidential trading but the public policies, and the ledger entries of its trades.
WITHHELD_VERBS: Final = frozenset(
    command.verb for command in COMMANDS if command is not cmd.SetPublicationPolicy
)
LEDGER_KEY_PREFIX: Final = "confidential_trade:"


class Venue:
    """How a confidential trade was agreed."""

    RFQ: Final = "rfq"
    NEGOTIATED: Final = "negotiated"


@dataclass(slots=True)
class ConfidentialTrade:
    """A settled confidential trade, as its parties and the regulator see it."""

    trade_id: int
    venue: str
    source_id: int  # the request for quote's id, or the report's
    symbol: str
    buyer: str
    seller: str
    price_minor: int
    quantity_units: int
    fee_minor: int
    primary: bool
    licence_expires_ns: int
    ts_ns: int
    deferral: Deferral
    publish_at_ns: int
    # How it will be published, decided with its time by the policy in force at settlement.
    band_figures: int  # significant figures of its price band; 0: the exact price
    quantity_cap_units: int
    publication_id: int | None = None
    price_published: bool = False  # published at its exact price, not as a band

    @property
    def notional_minor(self) -> int:
        return self.price_minor * self.quantity_units


@dataclass(frozen=True, slots=True)
class PublishedTrade:
    """A confidential trade as the public sees it once published: no parties, the price
    exact or as a band ``[low, high)``, the quantity capped."""

    publication_id: int
    symbol: str
    venue: str
    price_minor: int | None
    price_low_minor: int | None
    price_high_minor: int | None
    quantity_units: int
    quantity_capped: bool
    traded_ns: int
    published_ns: int
    deferral: Deferral


class ConfidentialDesk:
    def __init__(
        self,
        participants: Participants,
        compliance: ComplianceDesk,
        instruments: dict[str, Instrument],
        engine: Engine,
        risk: Risk,
        settlement: Settlement,
        market_data: MarketData,
    ) -> None:
        self.participants = participants
        self.compliance = compliance
        self.instruments = instruments
        self.engine = engine
        self.risk = risk
        self.settlement = settlement
        self.market_data = market_data
        self.policies: dict[str, PublicationPolicy] = {}
        self.rfqs: dict[int, RfqRecord] = {}
        self.quotes: dict[int, QuoteRecord] = {}
        self.reports: dict[int, TradeReport] = {}
        self.trades: dict[int, ConfidentialTrade] = {}
        # participant -> ids of the requests it made or was invited to, of the reports and
        # trades it is party to (ascending)
        self.rfqs_by_participant: defaultdict[str, list[int]] = defaultdict(list)
        self.reports_by_participant: defaultdict[str, list[int]] = defaultdict(list)
        self.trades_by_participant: defaultdict[str, list[int]] = defaultdict(list)
        # participant -> ids of its requests and reports not yet closed (some may have
        # expired or lapsed since: counted against the limit only while still live)
        self.open_by_participant: defaultdict[str, set[int]] = defaultdict(set)
        # (participant, its own id) -> (the command as first seen, without the ids the
        # exchange assigns, and its first result): a retry must match it field for field.
        self.client_requests: dict[tuple[str, str], tuple[cmd.RequestQuote, RfqRecord]] = {}
        self.client_quotes: dict[tuple[str, str], tuple[cmd.SubmitQuote, QuoteRecord]] = {}
        self.client_reports: dict[tuple[str, str], tuple[cmd.ReportTrade, TradeReport]] = {}
        self.unpublished: list[tuple[int, int]] = []  # (publish_at_ns, trade_id), a heap
        self.publications: dict[str, list[PublishedTrade]] = {}
        # symbol -> (publication id, price, published quantity, traded_ns) of each trade
        # published at an exact price, in trade time: prints for bars and valuation
        self.prints: dict[str, list[tuple[int, int, int, int]]] = {}
        self.published_count = 0
        self.next_rfq_id = 1
        self.next_quote_id = 1
        self.next_report_id = 1
        self.next_trade_id = 1

    # -- the entry point -------------------------------------------------------------------

    def execute(self, c: Any, ts: int, settled: list[Entry]) -> tuple[cmd.Command | None, Any]:
        """Check and apply a confidential command at ``ts``; the command as journalled
        (with the ids the exchange assigned) and the result. Ledger entries go to
        ``settled``, already posted to risk. A retry of a request, quote or report under
        its client id changes nothing: no command (nothing to journal) and the original
        result."""
        kind = type(c)
        if kind is cmd.RequestQuote:
            return self._request_quote(c, ts)
        if kind is cmd.SubmitQuote:
            return self._submit_quote(c, ts)
        if kind is cmd.AcceptQuote:
            return self._accept_quote(c, ts, settled)
        if kind is cmd.CancelRequest:
            return self._cancel_request(c, ts)
        if kind is cmd.ReportTrade:
            return self._report_trade(c, ts)
        if kind is cmd.ConfirmTrade:
            return self._confirm_trade(c, ts, settled)
        assert kind is cmd.SetPublicationPolicy, kind
        return self._set_policy(c)

    # -- requests for quote ----------------------------------------------------------------

    def _request_quote(self, c: cmd.RequestQuote,
                       ts: int) -> tuple[cmd.Command | None, RfqRecord]:  # fmt: skip
        requester = self._trader(c.actor)
        submitted = replace(c, rfq_id=0)
        first = _first(self.client_requests, requester, c.client_request_id,
                       "client_request_id", submitted, "request for quote")  # fmt: skip
        if first is not None:
            return None, _copy_rfq(first)
        instrument = self._tradeable(c.symbol)
        quantity = self._quantity(instrument, c.quantity_units)
        integer(c.deadline_ns, "deadline", 0, 2**63 - 1)
        if c.deadline_ns <= ts or c.deadline_ns > ts + MAX_REQUEST_DURATION_NS:
            raise ExchangeError(
                Reason.VALIDATION_DEADLINE,
                "a request's deadline must be in the future and within 7 days",
            )
        if type(c.all_eligible) is not bool or type(c.disclose_requester) is not bool:
            raise invalid("all_eligible and disclose_requester must be true or false")
        if type(c.responders) is not list:
            raise invalid("responders must be a list of participant ids")
        if c.all_eligible:
            if c.responders:
                raise invalid("name responders or ask all eligible ones, not both")
            responders = self._eligible(instrument, quantity, requester, ts)
        else:
            responders = self._invited(c.responders, requester)
        self._within_open_limit(requester, ts)
        rfq_id = self._assigned(c.rfq_id, self.next_rfq_id, "request")
        # Checks passed: from here on the command is applied.
        self.next_rfq_id = rfq_id + 1
        rfq = RfqRecord(rfq_id, requester, c.symbol, quantity, responders, c.all_eligible,
                        c.deadline_ns, c.disclose_requester, ts)  # fmt: skip
        self.rfqs[rfq_id] = rfq
        for participant in (requester, *responders):
            self.rfqs_by_participant[participant].append(rfq_id)
        self._prune_closed(requester, ts)
        self.open_by_participant[requester].add(rfq_id)
        if c.client_request_id is not None:
            self.client_requests[(requester, c.client_request_id)] = (submitted, _copy_rfq(rfq))
        return replace(c, rfq_id=rfq_id), _copy_rfq(rfq)

    def _invited(self, named: list[Any], requester: str) -> list[str]:
        if not named:
            raise invalid("name at least one responder, or ask all eligible ones")
        if len(named) > MAX_RESPONDERS:
            raise invalid(f"at most {MAX_RESPONDERS} responders")
        responders: list[str] = []
        for participant in named:
            known = self.participants.by_id.get(participant) if type(participant) is str else None
            # Any trader may be asked: whether one can sell is checked when it quotes, so a
            # request tells the requester nothing of others' holdings.
            if known is None or not known.has_any(TRADING_ROLES):
                raise ExchangeError(
                    Reason.VALIDATION_UNKNOWN_PARTICIPANT, f"no trader {participant!r} to ask"
                )
            if participant == requester:
                raise invalid("a request cannot ask its own requester")
            if participant not in responders:
                responders.append(participant)
        return responders

    def _eligible(self, instrument: Instrument, quantity: int, requester: str,
                  ts: int) -> list[str]:  # fmt: skip
        """Every trader but the requester able to sell ``quantity`` now, in id order."""
        eligible = []
        for participant in sorted(self.participants.by_id):
            trader = self.participants.by_id[participant]
            if participant == requester or not trader.has_any(TRADING_ROLES):
                continue
            if participant != instrument.provider and (
                (participant, instrument.symbol) not in self.risk.holdings
            ):
                continue
            try:
                self.risk.sell_source(participant, instrument, quantity, ts)
            except ExchangeError:
                continue
            eligible.append(participant)
        return eligible

    def _submit_quote(self, c: cmd.SubmitQuote,
                      ts: int) -> tuple[cmd.Command | None, QuoteRecord]:  # fmt: skip
        responder = self._trader(c.actor)
        submitted = replace(c, quote_id=0)
        first = _first(self.client_quotes, responder, c.client_quote_id, "client_quote_id",
                       submitted, "quote")  # fmt: skip
        if first is not None:
            return None, replace(first)
        rfq = self._rfq_for(responder, c.rfq_id)
        if responder not in rfq.responders:
            # The requester cannot quote on its own request; to it the request is known.
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only an invited responder quotes")
        self._open(rfq, ts)
        instrument = self._tradeable(rfq.symbol)
        price = self._price(instrument, c.price_minor, rfq.quantity_units)
        self.risk.sell_source(responder, instrument, rfq.quantity_units, ts)
        if len(rfq.quote_ids) >= MAX_QUOTES_PER_REQUEST:
            raise invalid(f"request {rfq.rfq_id} has taken its {MAX_QUOTES_PER_REQUEST} quotes")
        quote_id = self._assigned(c.quote_id, self.next_quote_id, "quote")
        self.next_quote_id = quote_id + 1
        for earlier in rfq.quote_ids:
            quote = self.quotes[earlier]
            if quote.responder == responder and quote.status is QuoteStatus.LIVE:
                quote.status = QuoteStatus.REPLACED
        quote = QuoteRecord(quote_id, rfq.rfq_id, responder, price, ts)
        self.quotes[quote_id] = quote
        rfq.quote_ids.append(quote_id)
        if c.client_quote_id is not None:
            self.client_quotes[(responder, c.client_quote_id)] = (submitted, replace(quote))
        return replace(c, quote_id=quote_id), replace(quote)

    def _accept_quote(self, c: cmd.AcceptQuote, ts: int,
                      settled: list[Entry]) -> tuple[cmd.Command, ConfidentialTrade]:  # fmt: skip
        requester = self._trader(c.actor)
        rfq = self._rfq_for(requester, c.rfq_id)
        if rfq.requester != requester:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the requester accepts a quote")
        self._open(rfq, ts)
        quote = self.quotes.get(c.quote_id) if type(c.quote_id) is int else None
        if quote is None or quote.rfq_id != rfq.rfq_id:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_QUOTE, f"request {rfq.rfq_id} has no quote {c.quote_id}"
            )
        if quote.status is not QuoteStatus.LIVE:
            raise ExchangeError(Reason.VALIDATION_QUOTE_NOT_LIVE, f"quote {quote.quote_id} "
                                f"is {quote.status}: accept the responder's latest")  # fmt: skip
        instrument = self._tradeable(rfq.symbol)
        trade = self._settle(
            c.trade_id, instrument, Venue.RFQ, rfq.rfq_id, requester, quote.responder,
            quote.price_minor, rfq.quantity_units, ts, settled,
        )  # fmt: skip
        rfq.status, rfq.trade_id, rfq.closed_ns = RequestStatus.ACCEPTED, trade.trade_id, ts
        for quote_id in rfq.quote_ids:
            other = self.quotes[quote_id]
            if other.status is QuoteStatus.LIVE:
                other.status = QuoteStatus.ACCEPTED if other is quote else QuoteStatus.NOT_SELECTED
        self.open_by_participant[requester].discard(rfq.rfq_id)
        return replace(c, trade_id=trade.trade_id), replace(trade)

    def _cancel_request(self, c: cmd.CancelRequest, ts: int) -> tuple[cmd.Command, RfqRecord]:
        requester = self._trader(c.actor)
        rfq = self._rfq_for(requester, c.rfq_id)
        if rfq.requester != requester:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the requester cancels a request")
        self._open(rfq, ts)
        rfq.status, rfq.closed_ns = RequestStatus.CANCELLED, ts
        for quote_id in rfq.quote_ids:
            if self.quotes[quote_id].status is QuoteStatus.LIVE:
                self.quotes[quote_id].status = QuoteStatus.NOT_SELECTED
        self.open_by_participant[requester].discard(rfq.rfq_id)
        return c, _copy_rfq(rfq)

    def _rfq_for(self, participant: str, rfq_id: Any) -> RfqRecord:
        """The request ``rfq_id`` if ``participant`` made it or was invited to it."""
        rfq = self.rfqs.get(rfq_id) if type(rfq_id) is int else None
        if rfq is None or not rfq.concerns(participant):
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_RFQ, f"no request for quote {rfq_id}")
        return rfq

    @staticmethod
    def _open(rfq: RfqRecord, ts: int) -> None:
        status = rfq.status_at(ts)
        if status is not RequestStatus.OPEN:
            raise ExchangeError(Reason.VALIDATION_RFQ_CLOSED,
                                f"request for quote {rfq.rfq_id} is {status}")  # fmt: skip

    # -- negotiated trades -----------------------------------------------------------------

    def _report_trade(self, c: cmd.ReportTrade,
                      ts: int) -> tuple[cmd.Command | None, TradeReport]:  # fmt: skip
        reporter = self._trader(c.actor)
        submitted = replace(c, report_id=0)
        first = _first(self.client_reports, reporter, c.client_report_id, "client_report_id",
                       submitted, "trade report")  # fmt: skip
        if first is not None:
            return None, replace(first)
        instrument = self._tradeable(c.symbol)
        side = enum_member(Side, c.side, "side")
        counterparty = self.participants.by_id.get(c.counterparty) if type(
            c.counterparty) is str else None  # fmt: skip
        if counterparty is None or not counterparty.has_any(TRADING_ROLES):
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_PARTICIPANT,
                                f"no trader {c.counterparty!r} to trade with")  # fmt: skip
        if c.counterparty == reporter:
            raise invalid("a trade needs two parties: the counterparty is the reporter")
        quantity = self._quantity(instrument, c.quantity_units)
        price = self._price(instrument, c.price_minor, quantity)
        if side is Side.SELL:
            # The reporter's own side is checked now, so that a report it could not settle
            # does not wait a day for its counterparty; the counterparty's at confirmation.
            self.risk.sell_source(reporter, instrument, quantity, ts)
        else:
            self.risk.require_cash(reporter, price * quantity)
        self._within_open_limit(reporter, ts)
        report_id = self._assigned(c.report_id, self.next_report_id, "report")
        self.next_report_id = report_id + 1
        report = TradeReport(report_id, reporter, c.counterparty, c.symbol, side, price,
                             quantity, ts, ts + CONFIRMATION_WINDOW_NS)  # fmt: skip
        self.reports[report_id] = report
        self.reports_by_participant[reporter].append(report_id)
        self.reports_by_participant[c.counterparty].append(report_id)
        self._prune_closed(reporter, ts)
        self.open_by_participant[reporter].add(-report_id)  # reports negative, requests not
        if c.client_report_id is not None:
            self.client_reports[(reporter, c.client_report_id)] = (submitted, replace(report))
        return replace(c, report_id=report_id), replace(report)

    def _confirm_trade(self, c: cmd.ConfirmTrade, ts: int,
                       settled: list[Entry]) -> tuple[cmd.Command, ConfidentialTrade]:  # fmt: skip
        confirmer = self._trader(c.actor)
        report = self.reports.get(c.report_id) if type(c.report_id) is int else None
        if report is None or confirmer not in (report.reporter, report.counterparty):
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_REPORT, f"no trade report {c.report_id}")
        if confirmer != report.counterparty:
            raise ExchangeError(
                Reason.AUTH_FORBIDDEN, "a report is confirmed by its counterparty, not its reporter"
            )
        status = report.status_at(ts)
        if status is not ReportStatus.PENDING:
            raise ExchangeError(Reason.VALIDATION_REPORT_CLOSED,
                                f"trade report {report.report_id} is {status}")  # fmt: skip
        instrument = self._tradeable(report.symbol)
        trade = self._settle(
            c.trade_id, instrument, Venue.NEGOTIATED, report.report_id, report.buyer,
            report.seller, report.price_minor, report.quantity_units, ts, settled,
        )  # fmt: skip
        report.status, report.trade_id = ReportStatus.CONFIRMED, trade.trade_id
        self.open_by_participant[report.reporter].discard(-report.report_id)
        return replace(c, trade_id=trade.trade_id), replace(trade)

    # -- settlement ------------------------------------------------------------------------

    def _settle(
        self, trade_id: int, instrument: Instrument, venue: str, source_id: int, buyer: str,
        seller: str, price: int, quantity: int, ts: int, settled: list[Entry],
    ) -> ConfidentialTrade:  # fmt: skip
        """Check both sides' risk, then settle the trade and decide when it is published."""
        for party in (buyer, seller):
            # A quote or report left by a participant an operator has since disabled.
            if self.participants.by_id[party].disabled:
                raise ExchangeError(Reason.AUTH_DISABLED, f"participant {party} is disabled")
        risk, symbol = self.risk, instrument.symbol
        notional = price * quantity
        risk.require_cash(buyer, notional)
        source, holding_expiry = risk.sell_source(seller, instrument, quantity, ts)
        trade_id = self._assigned(trade_id, self.next_trade_id, "trade")
        # Checks passed: from here on the trade is applied.
        self.next_trade_id = trade_id + 1
        primary = source == accounts.issuance(symbol)
        expires = instrument.expiry_ns(ts) if primary else holding_expiry
        assert expires is not None
        fee = instrument.fee_minor(notional)
        entry = entries.trade_settlement(
            trade_id=trade_id, symbol=symbol, buyer=buyer, seller=seller,
            price_minor_per_unit=price, quantity_units=quantity, fee_minor=fee,
            expires_at_ns=expires, primary=primary, ts_ns=ts, confidential=True,
        )  # fmt: skip
        risk.post(entry)
        settled.append(entry)
        if expires not in risk.holdings[(buyer, symbol)]:
            account = risk.add_holding(buyer, symbol, expires)
            heapq.heappush(self.settlement.licence_expiries, (expires, account, buyer, symbol))
        policy = self.policy(symbol)
        liquid = self._lit_trades_before(symbol, ts) >= policy.liquid_trades_30d
        trade = ConfidentialTrade(
            trade_id, venue, source_id, symbol, buyer, seller, price, quantity, fee, primary,
            expires, ts, deferral_class(policy, notional, liquid),
            ts + deferral_ns(policy, notional, liquid),
            policy.band_significant_figures
            if policy.band_large_in_scale and notional >= policy.large_in_scale_minor
            else 0,
            policy.quantity_cap_units,
        )  # fmt: skip
        self.trades[trade_id] = trade
        self.trades_by_participant[buyer].append(trade_id)
        self.trades_by_participant[seller].append(trade_id)
        heapq.heappush(self.unpublished, (trade.publish_at_ns, trade_id))
        return trade

    def _lit_trades_before(self, symbol: str, ts: int) -> int:
        """The instrument's order-book trades in the thirty days up to ``ts``."""
        history = self.market_data.history[symbol]  # in time order, as trades happen
        return len(history) - bisect_left(history, ts - LIQUIDITY_WINDOW_NS, key=_time_of)

    # -- publication -----------------------------------------------------------------------

    def policy(self, symbol: str) -> PublicationPolicy:
        return self.policies.get(symbol, DEFAULT_POLICY)

    def _set_policy(self, c: cmd.SetPublicationPolicy) -> tuple[cmd.Command, PublicationPolicy]:
        self.participants.actor(c.actor, [Role.ADMIN])
        if c.symbol not in self.instruments:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_INSTRUMENT, f"no instrument {c.symbol!r}")
        policy = PublicationPolicy(
            c.large_in_scale_minor, c.liquid_trades_30d, c.deferral_standard_s,
            c.deferral_large_or_illiquid_s, c.deferral_large_and_illiquid_s,
            c.quantity_cap_units, c.band_large_in_scale, c.band_significant_figures,
        ).checked()  # fmt: skip
        # Trades settled before keep the publication time, band and cap they were given.
        self.policies[c.symbol] = policy
        return c, policy

    def publication_due(self, now_ns: int) -> bool:
        return bool(self.unpublished) and self.unpublished[0][0] <= now_ns

    def publish_due(self, now_ns: int) -> list[PublishedTrade]:
        """Publish every trade whose deferral has ended by ``now_ns``; the publications."""
        published: list[PublishedTrade] = []
        while self.unpublished and self.unpublished[0][0] <= now_ns:
            _, trade_id = heapq.heappop(self.unpublished)
            trade = self.trades[trade_id]
            self.published_count += 1
            trade.publication_id = self.published_count
            low = high = None
            exact: int | None = trade.price_minor
            if trade.band_figures:
                low, high = price_band(trade.price_minor, trade.band_figures)
                exact = None
            capped = trade.quantity_units > trade.quantity_cap_units
            quantity = trade.quantity_cap_units if capped else trade.quantity_units
            publication = PublishedTrade(
                trade.publication_id, trade.symbol, trade.venue, exact, low, high, quantity,
                capped, trade.ts_ns, now_ns, trade.deferral,
            )  # fmt: skip
            self.publications.setdefault(trade.symbol, []).append(publication)
            if exact is not None:
                trade.price_published = True
                prints = self.prints.setdefault(trade.symbol, [])
                insort(prints, (trade.publication_id, exact, quantity, trade.ts_ns), key=_time_of)
            published.append(publication)
        return published

    # -- reads -----------------------------------------------------------------------------

    def rfqs_of(self, participant: str, *, everyone: bool, limit: int) -> list[RfqRecord]:
        """The most recent requests ``participant`` made or was invited to (every request,
        for the regulator: ``everyone``), newest first."""
        ids = sorted(self.rfqs, reverse=True) if everyone else reversed(
            self.rfqs_by_participant.get(participant, []))  # fmt: skip
        return [_copy_rfq(self.rfqs[rfq_id]) for _, rfq_id in zip(range(limit), ids, strict=False)]

    def rfq(self, participant: str, rfq_id: int, *, everyone: bool) -> RfqRecord | None:
        rfq = self.rfqs.get(rfq_id)
        if rfq is None or not (everyone or rfq.concerns(participant)):
            return None
        return _copy_rfq(rfq)

    def quotes_of(self, rfq: RfqRecord, viewer: str, *, everyone: bool) -> list[QuoteRecord]:
        """The quotes on ``rfq`` that ``viewer`` may see: all for its requester and the
        regulator, one's own for a responder."""
        return [
            replace(self.quotes[quote_id])
            for quote_id in rfq.quote_ids
            if everyone or viewer == rfq.requester or self.quotes[quote_id].responder == viewer
        ]

    def reports_of(self, participant: str, *, everyone: bool, limit: int) -> list[TradeReport]:
        ids = sorted(self.reports, reverse=True) if everyone else reversed(
            self.reports_by_participant.get(participant, []))  # fmt: skip
        return [replace(self.reports[i]) for _, i in zip(range(limit), ids, strict=False)]

    def trades_of(self, participant: str, *, everyone: bool,
                  limit: int) -> list[ConfidentialTrade]:  # fmt: skip
        ids = sorted(self.trades, reverse=True) if everyone else reversed(
            self.trades_by_participant.get(participant, []))  # fmt: skip
        return [replace(self.trades[i]) for _, i in zip(range(limit), ids, strict=False)]

    def withheld(self) -> list[ConfidentialTrade]:
        """The trades whose exact price the public has not seen (unpublished, or published
        as a band): they reach price discovery only in aggregates."""
        return [trade for trade in self.trades.values() if not trade.price_published]

    def published(self, symbol: str, limit: int) -> list[PublishedTrade]:
        """The ``limit`` most recent publications of ``symbol``, newest first."""
        tape = self.publications.get(symbol, [])
        return tape[: -limit - 1 : -1]

    # -- checks ----------------------------------------------------------------------------

    def _trader(self, actor: str) -> str:
        participant = self.participants.actor(actor, TRADING_ROLES)
        if participant is None:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "the operator does not trade")
        return participant.participant_id

    def _tradeable(self, symbol: Any) -> Instrument:
        instrument = self.instruments.get(symbol) if type(symbol) is str else None
        if instrument is None:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")
        if self.compliance.products[instrument.product_id].status is ProductStatus.SUSPENDED:
            raise ExchangeError(Reason.COMPLIANCE_SUSPENDED, f"{symbol}'s product is suspended")
        phase = self.engine.phase(symbol)
        if phase in _TRADING_HALTED:
            raise ExchangeError(Reason.VALIDATION_PHASE, f"{symbol} is {phase}: nothing trades")
        return instrument

    @staticmethod
    def _quantity(instrument: Instrument, quantity: Any) -> int:
        integer(quantity, "quantity", 1, MAX_QUANTITY_UNITS)
        if quantity % instrument.lot_size_units:
            raise ExchangeError(Reason.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE,
                                f"quantity {quantity} is not a multiple of {instrument.symbol}'s "
                                f"lot size {instrument.lot_size_units}")  # fmt: skip
        if quantity > instrument.issuance_cap_units:
            raise ExchangeError(Reason.VALIDATION_QUANTITY_ABOVE_MAXIMUM,
                                f"quantity {quantity} is above {instrument.symbol}'s issuance "
                                f"cap {instrument.issuance_cap_units}")  # fmt: skip
        return quantity  # type: ignore[no-any-return]

    @staticmethod
    def _price(instrument: Instrument, price: Any, quantity: int) -> int:
        integer(price, "price", 1, MAX_AMOUNT_MINOR // quantity)
        if price % instrument.tick_size_minor:
            raise ExchangeError(Reason.VALIDATION_PRICE_OFF_TICK,
                                f"price {format_minor(price)} is not on {instrument.symbol}'s "
                                f"tick grid: it must be a multiple of "
                                f"{format_minor(instrument.tick_size_minor)}")  # fmt: skip
        low, high = instrument.price_band_low_minor, instrument.price_band_high_minor
        if (low is not None and price < low) or (high is not None and price > high):
            raise ExchangeError(Reason.VALIDATION_PRICE_OUTSIDE_BAND,
                                f"price {format_minor(price)} is outside {instrument.symbol}'s "
                                "price band")  # fmt: skip
        return price  # type: ignore[no-any-return]

    @staticmethod
    def _assigned(journalled: Any, expected: int, what: str) -> int:
        """The id the exchange assigns; a journalled command must carry the same."""
        if journalled and journalled != expected:
            raise AssertionError(f"journal assigns {what} {journalled}, expected {expected}")
        return expected

    def _within_open_limit(self, participant: str, ts: int) -> None:
        keys = self.open_by_participant.get(participant, ())
        live = sum(1 for key in keys if self._live(key, ts))
        if live >= MAX_OPEN_PER_PARTICIPANT:
            raise ExchangeError(Reason.RISK_OPEN_REQUEST_LIMIT,
                                f"you have {live} open requests for quote and trade reports, "
                                f"the most allowed")  # fmt: skip

    def _live(self, key: int, ts: int) -> bool:
        if key > 0:
            return self.rfqs[key].status_at(ts) is RequestStatus.OPEN
        return self.reports[-key].status_at(ts) is ReportStatus.PENDING

    def _prune_closed(self, participant: str, ts: int) -> None:
        """Forget the participant's requests and reports that expired or lapsed by ``ts``."""
        keys = self.open_by_participant[participant]
        keys.difference_update([key for key in keys if not self._live(key, ts)])

    def check_invariants(self) -> None:
        """Every trade is published or waiting; each closed request or report has its trade."""
        waiting = {trade_id for _, trade_id in self.unpublished}
        for trade in self.trades.values():
            assert (trade.publication_id is None) == (trade.trade_id in waiting), trade
        assert self.published_count == sum(map(len, self.publications.values()))
        for rfq in self.rfqs.values():
            assert (rfq.status is RequestStatus.ACCEPTED) == (rfq.trade_id is not None), rfq
        for report in self.reports.values():
            assert (report.status is ReportStatus.CONFIRMED) == (report.trade_id is not None)


def _first(
    table: Mapping[tuple[str, str], tuple[Any, Any]], participant: str, client_id: object,
    what: str, submitted: cmd.Command, thing: str,
) -> Any:  # fmt: skip
    """The first result of ``participant``'s command under ``client_id``, if this one
    retries it; None if the id is new or absent. Like an order's ``client_order_id``, the
    same id for different content is refused, whatever happened since."""
    if client_id is None:
        return None
    client_id = text(client_id, what, MAX_CLIENT_ORDER_ID)
    problem = identifier_problem(client_id)
    if problem is not None:
        raise invalid(f"{what} {problem}")
    first = table.get((participant, client_id))
    if first is None:
        return None
    if first[0] != submitted:
        raise ExchangeError(Reason.VALIDATION_IDEMPOTENCY_CONFLICT,
                            f"{what} {client_id} was used for a different {thing}")  # fmt: skip
    return first[1]


def _time_of(row: tuple[int, int, int, int]) -> int:
    return row[3]


def _copy_rfq(rfq: RfqRecord) -> RfqRecord:
    return replace(rfq, responders=list(rfq.responders), quote_ids=list(rfq.quote_ids))
