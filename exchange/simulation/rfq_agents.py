"""Agents that trade valuable products only by request for quote (docs/confidential.md).

An instrument listed with ``rfq_only`` never trades on the order book: the book's agents
leave it alone (``Agent._follow``, ``Provider``), and it changes hands only through these
two, whose trades settle at once and reach the public late and anonymised, as the exchange's
publication policy says (``exchange.publication``). They are the owners of the simulation's
most valuable data and its buyers, who will not trade in public.

- :class:`RfqBuyer` has a private value per instrument, ``v = true value x
  exp(value_dispersion x z)`` with ``z`` drawn once (as :class:`~exchange.simulation.agents.Buyer`).
  On acting (a coin of ``activity`` per tick) with no request open, it asks every eligible
  seller for ``request_units`` of one instrument it still wants (it holds fewer than
  ``max_units``), the deadline ``response_ticks`` + 1 ticks ahead, without disclosing itself.
  ``response_ticks`` later it accepts the cheapest live quote at or below ``v`` that its cash
  and budget cover, or else withdraws the request.
- :class:`RfqProvider` answers every open request it is invited to for its own instruments,
  once, at unit cost x markup (the cost approach's unit cost, as the book's provider prices
  its asks). It learns from the outcome: an accepted quote raises its markup for that
  instrument by ``learning_rate``, a request closed without taking its quote cuts it by as
  much (within ``min_markup``..``max_markup``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from exchange import commands as cmd
from exchange.errors import ExchangeError
from exchange.pricing import DEFAULT_PARAMETERS, terms_from_catalogue
from exchange.pricing.cost_income import terms_multiplier
from exchange.rfq import QuoteStatus, RequestStatus
from exchange.service import Outcome
from exchange.simulation.agents import Agent, AgentContext, _ceil_to, _geometric, _lots
from exchange.simulation.scenario import RfqBuyerParams, RfqProviderParams

__all__ = ["RfqBuyer", "RfqProvider"]

# Limit: the requests a provider reads per tick (newest first); a request further back has
# been answered or has closed.
REQUESTS_READ = 50
NEVER = 2**62


@dataclass(slots=True)
class _Request:
    symbol: str
    private_value_minor: float
    decide_tick: int
    rfq_id: int | None = None


class RfqBuyer(Agent):
    kind = "rfq_buyer"

    def __init__(
        self, participant: str, rng: random.Random, params: RfqBuyerParams, budget_minor: int
    ) -> None:
        super().__init__(participant, rng)
        self.params = params
        self.budget_minor = budget_minor
        self.spent_minor = 0
        self.follows: list[str] = []
        self.value_z: dict[str, float] = {}
        self.request: _Request | None = None
        self.accepted = 0  # requests that traded
        self.withdrawn = 0  # requests closed without a trade
        self.accepting: dict[int, int] = {}  # quote id -> notional, until answered

    def start(self, context: AgentContext) -> None:
        self.follows = self._follow(
            context, self.params.follows, self.params.instruments, rfq_only=True
        )
        self.value_z = {symbol: self.rng.gauss(0.0, 1.0) for symbol in self.follows}

    def act(self, context: AgentContext) -> list[cmd.Command]:
        params, rng, tick = self.params, self.rng, context.tick
        if not self.follows or params.activity <= 0:
            self.wake_tick = NEVER
            return []
        if self.request is not None:
            if self.request.rfq_id is None:  # refused: ask again later
                self.request = None
            else:
                return self._decide(context, self.request)
        self.wake_tick = tick + 1 + _geometric(rng, params.activity)
        wanted = [
            symbol
            for symbol in self.follows
            if context.view.licences(self.participant, symbol, context.now_ns)[0] < params.max_units
        ]
        if not wanted:
            self.wake_tick = NEVER  # it holds all it wants
            return []
        symbol = wanted[rng.randrange(len(wanted))]
        listing = context.listings[symbol]
        units = _lots(params.request_units, listing.lot_size_units)
        if units <= 0:
            return []
        value = context.truth.value_minor(symbol) * math.exp(
            params.value_dispersion * self.value_z[symbol]
        )
        self.request = _Request(symbol, value, tick + params.response_ticks)
        self.wake_tick = self.request.decide_tick
        deadline_ns = context.now_ns + (params.response_ticks + 1) * context.tick_ns
        return [cmd.RequestQuote(self.participant, 0, symbol, units, [], True, deadline_ns, False)]

    def _decide(self, context: AgentContext, request: _Request) -> list[cmd.Command]:
        """Accept the cheapest acceptable quote on the open request, or withdraw it."""
        assert request.rfq_id is not None
        self.request = None
        self.wake_tick = context.tick + 1 + _geometric(self.rng, self.params.activity)
        desk = context.exchange.confidential
        rfq = desk.rfq(self.participant, request.rfq_id, everyone=False)
        assert rfq is not None
        if rfq.status_at(context.now_ns) is not RequestStatus.OPEN:
            self.withdrawn += 1
            return []
        available, reserved = context.view.cash(self.participant)
        budget_left = min(self.budget_minor - self.spent_minor - reserved, available)
        live = [
            quote
            for quote in desk.quotes_of(rfq, self.participant, everyone=False)
            if quote.status is QuoteStatus.LIVE
            and quote.price_minor <= request.private_value_minor
            # The fee comes on top of the price: keep its room (at most 10% in any scenario).
            and quote.price_minor * rfq.quantity_units * 1.1 <= budget_left
        ]
        if not live:
            self.withdrawn += 1
            return [cmd.CancelRequest(self.participant, rfq.rfq_id)]
        best = min(live, key=lambda quote: (quote.price_minor, quote.quote_id))
        self.accepted += 1
        self.spent_minor += best.price_minor * rfq.quantity_units
        self.accepting[best.quote_id] = best.price_minor * rfq.quantity_units
        return [cmd.AcceptQuote(self.participant, rfq.rfq_id, best.quote_id, 0)]

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        if type(command) is cmd.RequestQuote and self.request is not None:
            if outcome is not None:
                self.request.rfq_id = outcome.result.rfq_id
            else:
                # No eligible seller, or another refusal: nothing is open, ask again later.
                self.request = None
        elif type(command) is cmd.AcceptQuote:
            notional = self.accepting.pop(command.quote_id)
            if outcome is None:
                # The trade did not settle (cash, or the seller sold meanwhile): nothing
                # spent, and the request stays open until its deadline.
                self.accepted -= 1
                self.withdrawn += 1
                self.spent_minor -= notional


@dataclass(slots=True)
class _Book:
    """One instrument the provider sells by quote."""

    unit_cost_minor: float
    markup: float


class RfqProvider(Agent):
    kind = "rfq_provider"
    quoting = True  # answers before the buyers of the same tick decide

    def __init__(self, participant: str, rng: random.Random, params: RfqProviderParams) -> None:
        super().__init__(participant, rng)
        self.params = params
        self.instruments: dict[str, _Book] = {}
        self.quoted: dict[int, str] = {}  # rfq id -> symbol, requests it answered, still open
        self.quote_ids: dict[int, int] = {}  # rfq id -> its quote's id
        self.sold = 0  # quotes accepted
        self.passed_over = 0  # requests closed without taking its quote

    def start(self, context: AgentContext) -> None:
        exchange = context.exchange
        for symbol, listing in context.listings.items():
            instrument = exchange.instruments.get(symbol)
            if not listing.rfq_only or instrument is None:
                continue
            if instrument.provider != self.participant:
                continue
            product = exchange.products[instrument.product_id]
            terms = terms_from_catalogue(instrument.terms)
            unit_cost = product.cost_basis_minor * terms_multiplier(terms, DEFAULT_PARAMETERS)
            self.instruments[symbol] = _Book(unit_cost, self.params.markup)

    def act(self, context: AgentContext) -> list[cmd.Command]:
        if not self.instruments:
            self.wake_tick = NEVER
            return []
        self.wake_tick = context.tick + 1
        desk, now, params = context.exchange.confidential, context.now_ns, self.params
        for rfq_id in list(self.quoted):
            rfq = desk.rfq(self.participant, rfq_id, everyone=False)
            assert rfq is not None
            if rfq.status_at(now) is RequestStatus.OPEN:
                continue
            book = self.instruments[self.quoted.pop(rfq_id)]
            quote_id = self.quote_ids.pop(rfq_id, None)
            if (
                rfq.status is RequestStatus.ACCEPTED
                and quote_id is not None
                and any(
                    q.quote_id == quote_id and q.status is QuoteStatus.ACCEPTED
                    for q in desk.quotes_of(rfq, self.participant, everyone=False)
                )
            ):
                self.sold += 1
                book.markup = min(params.max_markup, book.markup * (1 + params.learning_rate))
            else:
                self.passed_over += 1
                book.markup = max(params.min_markup, book.markup * (1 - params.learning_rate))
        commands: list[cmd.Command] = []
        for rfq in desk.rfqs_of(self.participant, everyone=False, limit=REQUESTS_READ):
            if (
                rfq.requester == self.participant
                or rfq.rfq_id in self.quoted
                or rfq.symbol not in self.instruments
                or rfq.status_at(now) is not RequestStatus.OPEN
            ):
                continue
            book = self.instruments[rfq.symbol]
            tick = context.listings[rfq.symbol].tick_size_minor
            price = max(tick, _ceil_to(book.unit_cost_minor * book.markup, tick))
            self.quoted[rfq.rfq_id] = rfq.symbol
            commands.append(cmd.SubmitQuote(self.participant, rfq.rfq_id, 0, price))
        return commands

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        if type(command) is cmd.SubmitQuote and outcome is not None:
            self.quote_ids[command.rfq_id] = outcome.result.quote_id
