"""The simulated traders, one class each, and the context they read.

An agent is a participant's strategy. Each tick the runner calls :meth:`Agent.act`, which
reads the market through :class:`~exchange.simulation.view.MarketView` and returns the
commands it wants to send, in order; the runner submits them through the sequencer (the same
validation, compliance gate, risk checks, journal and settlement as any client) and hands
each answer back through :meth:`Agent.on_result`. Every random choice comes from the agent's
own seeded stream, so an agent's decisions depend only on the seed and what it has seen.

Rules (docs/simulation.md, "Agents", says why):

- :class:`Provider` sells new licences of its instruments, pricing from cost: ask = unit cost
  x markup, unit cost = the product's cost basis x the licence-terms multiplier of the cost
  approach. It learns from fills: each requote raises the markup by ``learning_rate`` if
  anything sold since the last, and cuts it by as much once nothing has sold for
  ``patience_ticks`` (once per such spell; within ``min_markup``..``max_markup``).
- :class:`Buyer` is zero-intelligence constrained (Gode and Sunder 1993): a private value per
  instrument, ``v = true value x exp(value_dispersion x z)`` with ``z`` drawn once; on acting,
  a bid uniform in [``min_bid_fraction`` x v, v], never above v, for at most the units it still
  wants, within what is left of its budget and its available cash. With ``resell`` (and a
  transferable licence it holds) it is a ZI-C seller half the time: an ask uniform in
  [v, v / ``min_bid_fraction``], never below v. With ``rotate``, once it holds all it wants
  of an instrument it follows another instead, so demand keeps arriving.
- :class:`MarketMaker` quotes both sides around a reference price (the cost approach's
  value, moved towards each new trade price by ``ema_weight``), skewed against its inventory
  (``skew_bp_per_unit``) and within ``max_inventory_units``; it sells only licences it holds.
- :class:`NoiseTrader` acts with a probability scaled by the market's shared attention (a
  persistent random level, so activity clusters; counted at most ``ATTENTION_CAP``), buying
  or selling at random, aggressively (a marketable IOC order) or passively (a limit order
  some ticks from the reference). With ``trend_weight`` it is a chartist too: it buys with
  probability 1/2 + ``trend_weight`` after the last price rose over ``trend_ticks`` ticks,
  1/2 - ``trend_weight`` after it fell.
- :class:`Lender` holds a loan facility on the exchange (``exchange.collateral``) with its
  borrower, and plays the borrower's side of it too: offer, accept, pledge unsold licences,
  draw to ``draw_share`` of the initial LTV once the exchange has valued the pledge, spend
  ``spend_share`` of the loan (withdrawn from the exchange); on a margin call, cure by
  repaying or pledging more when the borrower's cash or unsold licences allow. It records
  the facility's alerts, its daily LTV and each liquidation beside the true values.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Any

from exchange import commands as cmd
from exchange.errors import ExchangeError
from exchange.facility import ltv_bp
from exchange.pricing import (
    DEFAULT_PARAMETERS,
    cost_approach,
    product_from_catalogue,
    terms_from_catalogue,
)
from exchange.pricing.cost_income import terms_multiplier
from exchange.service import Exchange, Outcome
from exchange.simulation.scenario import (
    BuyerParams,
    LenderParams,
    ListingSpec,
    MarketMakerParams,
    NoiseParams,
    ProviderParams,
)
from exchange.simulation.truth import TrueValues
from exchange.simulation.view import MarketView

__all__ = [
    "Agent",
    "AgentContext",
    "Buyer",
    "Lender",
    "MarketMaker",
    "NoiseTrader",
    "Provider",
]

STP = "cancel_newest"
# Attention above four times its mean counts as four (a noise trader's chance per tick is
# activity x attention); with the liquid scenario's log-sd of attention, about 0.64, that
# clips about one tick in 160.
ATTENTION_CAP = 4.0
# The cost approach's range parameter, irrelevant to the value an agent reads from it.
_COST_LOG_SD = 0.6


class AgentContext:
    """What every agent may know: the market (through the view), the listings, the true
    values (only buyers read them: their private values are drawn around them), and the
    current tick, which the runner sets before each round."""

    def __init__(
        self,
        view: MarketView,
        listings: dict[str, ListingSpec],
        truth: TrueValues,
        tick_ns: int,
        product_ids: dict[str, str],
        desk: str = "",
    ) -> None:
        self.view = view
        self.desk = desk  # the exchange desk's participant (admin), which pays withdrawals
        self.listings = listings
        self.truth = truth
        self.tick_ns = tick_ns
        self.product_ids = product_ids  # scenario key -> the exchange's product id
        self.tick = 0
        self.day = 0
        self.now_ns = 0
        self.attention = 1.0
        self.date = dt.date(2000, 1, 1)

    @property
    def exchange(self) -> Exchange:
        return self.view.exchange


def _floor_to(price: float, tick: int) -> int:
    return int(price // tick) * tick


def _ceil_to(price: float, tick: int) -> int:
    return -int(-price // tick) * tick


def _lots(units: int, lot: int) -> int:
    return units // lot * lot


def _geometric(rng: random.Random, probability: float) -> int:
    """Ticks skipped before the next success of a coin of ``probability`` per tick."""
    if probability >= 1.0:
        return 0
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - probability))


class Agent:
    """One participant's strategy; see the module docstring for each kind's rule."""

    kind = "agent"
    # Quoting agents act first in each tick: their commands amend or cancel their own
    # resting orders, which must not be filled by another agent's order of the same tick
    # before the amend arrives (it would be refused as an order no longer open).
    quoting = False

    def __init__(self, participant: str, rng: random.Random) -> None:
        self.participant = participant
        self.rng = rng
        # The runner calls act() from this tick on; an agent that acts at a constant rate
        # draws its next tick (a geometric wait, the same law as a coin per tick) instead of
        # being asked every tick.
        self.wake_tick = 0
        self._next_client_id = 0
        self._last_trade_id = 0

    def start(self, context: AgentContext) -> None:
        """Called once, after the market is built and before the first tick."""

    def act(self, context: AgentContext) -> list[cmd.Command]:
        return []

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        """The answer to one of this agent's commands (``error`` if it was refused)."""

    def end_of_day(self, context: AgentContext) -> None:
        """Called after each day's close."""

    def endowment(self) -> list[tuple[str, int]]:
        """(symbol, units) this agent buys in the initial offering, before the first open."""
        return []

    # -- helpers -------------------------------------------------------------------------

    def client_id(self) -> str:
        self._next_client_id += 1
        return f"sim-{self._next_client_id}"

    def new_fills(self, context: AgentContext) -> list[Any]:
        fills = context.view.fills_since(self.participant, self._last_trade_id)
        if fills:
            self._last_trade_id = fills[-1].trade_id
        return fills

    def order(
        self,
        symbol: str,
        side: str,
        price_minor: int,
        units: int,
        tif: str = "GTC",
        expire_ns: int | None = None,
    ) -> cmd.SubmitOrder:
        return cmd.SubmitOrder(
            self.participant,
            self.client_id(),
            0,
            symbol,
            side,
            "limit",
            price_minor,
            units,
            tif,
            expire_ns,
            False,
            STP,
        )

    def _follow(
        self,
        context: AgentContext,
        follows: int,
        chosen: tuple[str, ...] = (),
        *,
        transferable_only: bool = False,
        rfq_only: bool = False,
    ) -> list[str]:
        """The instruments the agent trades: ``chosen`` if given, else ``follows`` drawn at
        random (0: all); only transferable ones for an agent that must be able to resell.
        The book's agents follow the instruments that trade on the book, the RFQ agents those
        listed ``rfq_only``."""
        symbols = [
            s
            for s, listing in context.listings.items()
            if listing.rfq_only == rfq_only
            and (not transferable_only or context.exchange.instruments[s].terms.transferable)
        ]
        if chosen:
            return [s for s in chosen if s in symbols]
        if 0 < follows < len(symbols):
            return sorted(self.rng.sample(symbols, follows), key=symbols.index)
        return symbols

    def _lifetime_ns(self, context: AgentContext, listing: ListingSpec, ticks: int) -> int:
        """A GTD expiry ``ticks`` ahead; at least one auction ahead in a call market, so an
        order always meets the next uncross."""
        if listing.trading_mode == "call_auction":
            ticks = max(ticks, listing.auction_every_ticks)
        return context.now_ns + ticks * context.tick_ns


# ------------------------------------------------------------------ provider


@dataclass(slots=True)
class _Ask:
    symbol: str
    unit_cost_minor: float
    markup: float
    next_requote_tick: int
    order_id: int | None = None
    sold_units: int = 0
    last_fill_tick: int = 0


class Provider(Agent):
    kind = "provider"
    quoting = True

    def __init__(self, participant: str, rng: random.Random, params: ProviderParams) -> None:
        super().__init__(participant, rng)
        self.params = params
        self.asks: dict[str, _Ask] = {}

    def start(self, context: AgentContext) -> None:
        exchange = context.exchange
        for symbol in context.listings:
            instrument = exchange.instruments.get(symbol)
            if instrument is None or instrument.provider != self.participant:
                continue
            if context.listings[symbol].rfq_only:
                continue  # sold by quote only (RfqProvider)
            product = exchange.products[instrument.product_id]
            terms = terms_from_catalogue(instrument.terms)
            unit_cost = product.cost_basis_minor * terms_multiplier(terms, DEFAULT_PARAMETERS)
            self.asks[symbol] = _Ask(
                symbol,
                unit_cost,
                self.params.markup,
                next_requote_tick=self.rng.randrange(self.params.requote_ticks),
            )

    def act(self, context: AgentContext) -> list[cmd.Command]:
        if not self.asks:
            return []
        tick, params, view = context.tick, self.params, context.view
        for fill in self.new_fills(context):
            ask = self.asks.get(fill.symbol)
            if ask is not None:
                ask.sold_units += fill.quantity_units
                ask.last_fill_tick = tick
        commands: list[cmd.Command] = []
        for ask in self.asks.values():
            if ask.next_requote_tick > tick:
                continue
            ask.next_requote_tick = tick + params.requote_ticks
            order = view.order(ask.order_id) if ask.order_id is not None else None
            if ask.sold_units:
                # Buyers took licences at this price: try a little more.
                ask.markup = min(params.max_markup, ask.markup * (1 + params.learning_rate))
            elif tick - ask.last_fill_tick >= params.patience_ticks:
                ask.markup = max(params.min_markup, ask.markup * (1 - params.learning_rate))
                ask.last_fill_tick = tick  # one cut per patience spell
            ask.sold_units = 0
            listing = context.listings[ask.symbol]
            price = self.ask_price(ask, listing.tick_size_minor)
            if order is not None and order.is_open:
                if order.price_minor != price:
                    commands.append(cmd.AmendOrder(self.participant, order.order_id, price, None))
                continue
            ask.order_id = None
            units = _lots(min(params.ask_units, view.unsold(ask.symbol)), listing.lot_size_units)
            if units > 0:
                commands.append(self.order(ask.symbol, "sell", price, units))
        return commands

    @staticmethod
    def ask_price(ask: _Ask, tick: int) -> int:
        return max(tick, _ceil_to(ask.unit_cost_minor * ask.markup, tick))

    def opening_price(self, symbol: str, tick: int) -> int | None:
        """The price of the initial offering (the first ask), None if not its instrument."""
        ask = self.asks.get(symbol)
        return None if ask is None else self.ask_price(ask, tick)

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        if outcome is not None and type(command) is cmd.SubmitOrder:
            ask = self.asks.get(command.symbol)
            if ask is not None and command.client_order_id.startswith("sim-"):
                ask.order_id = outcome.result.order_id


# ------------------------------------------------------------------ buyer (ZI-C)


class Buyer(Agent):
    kind = "buyer"

    def __init__(
        self, participant: str, rng: random.Random, params: BuyerParams, budget_minor: int
    ) -> None:
        super().__init__(participant, rng)
        self.params = params
        self.budget_minor = budget_minor
        self.spent_minor = 0
        self.follows: list[str] = []
        self.value_z: dict[str, float] = {}
        self.open_orders: dict[int, tuple[str, str]] = {}  # order id -> (symbol, side)

    def start(self, context: AgentContext) -> None:
        self.follows = self._follow(context, self.params.follows, self.params.instruments)
        # Private values: one relative deviation per instrument, drawn once.
        self.value_z = {symbol: self.rng.gauss(0.0, 1.0) for symbol in self.follows}
        exchange = context.exchange
        self.resellable = {
            symbol
            for symbol in self.follows
            if self.params.resell and exchange.instruments[symbol].terms.transferable
        }

    def endowment(self) -> list[tuple[str, int]]:
        units = self.params.initial_units
        return [(symbol, units) for symbol in self.follows] if units else []

    def act(self, context: AgentContext) -> list[cmd.Command]:
        params, rng = self.params, self.rng
        if not self.follows or params.activity <= 0:
            self.wake_tick = 2**62
            return []
        if context.tick == 0 and rng.random() >= params.activity:
            self.wake_tick = 1 + _geometric(rng, params.activity)
            return []
        self.wake_tick = context.tick + 1 + _geometric(rng, params.activity)
        view = context.view
        for fill in self.new_fills(context):
            notional = fill.price_minor * fill.quantity_units
            self.spent_minor += notional if fill.side == "buy" else fill.fee_minor - notional
        for order_id in [i for i in self.open_orders if not view.is_open(i)]:
            del self.open_orders[order_id]
        symbol = self.follows[rng.randrange(len(self.follows))]
        listing = context.listings[symbol]
        tick, lot = listing.tick_size_minor, listing.lot_size_units
        private_value = context.truth.value_minor(symbol) * math.exp(
            params.value_dispersion * self.value_z[symbol]
        )
        held, sellable = view.licences(self.participant, symbol, context.now_ns)
        draw = rng.random()  # drawn whatever the branch, so the stream stays aligned
        if symbol in self.resellable and sellable >= lot and draw < 0.5:
            # A ZI-C seller: never below the licence's value to it.
            price = _ceil_to(
                rng.uniform(private_value, private_value / params.min_bid_fraction), tick
            )
            units = _lots(min(params.order_units, sellable), lot)
            side = "sell"
        else:
            open_units = sum(
                view.order(i).remaining_units  # type: ignore[union-attr]
                for i, (s, side) in self.open_orders.items()
                if s == symbol and side == "buy"
            )
            wanted = params.max_units - held - open_units
            if wanted <= 0 and held >= params.max_units and params.rotate:
                self._rotate(context, symbol)
                return []
            units = _lots(min(params.order_units, wanted), lot)
            price = _floor_to(
                rng.uniform(params.min_bid_fraction * private_value, private_value), tick
            )
            side = "buy"
            if units <= 0 or price < tick:
                return []
            available, reserved = view.cash(self.participant)
            budget_left = min(self.budget_minor - self.spent_minor - reserved, available)
            affordable = _lots(max(0, budget_left) // price, lot)
            if affordable < units:
                units = affordable
        if units <= 0:
            return []
        for order_id, (own_symbol, own_side) in self.open_orders.items():
            if own_symbol == symbol and own_side != side:
                own = view.order(order_id)
                assert own is not None and own.price_minor is not None
                if (price >= own.price_minor) if side == "buy" else (price <= own.price_minor):
                    return []  # it would cross its own order
        expire = self._lifetime_ns(context, listing, params.order_lifetime_ticks)
        return [self.order(symbol, side, price, units, "GTD", expire)]

    def _rotate(self, context: AgentContext, symbol: str) -> None:
        """Having all it wants of ``symbol``, turn to an instrument it does not follow yet
        (with a fresh private value), so that demand keeps arriving in a thin market."""
        followed = set(self.follows)
        candidates = [
            s
            for s, listing in context.listings.items()
            if s not in followed and not listing.rfq_only
        ]
        if not candidates:
            return
        fresh = candidates[self.rng.randrange(len(candidates))]
        self.follows[self.follows.index(symbol)] = fresh
        self.value_z[fresh] = self.rng.gauss(0.0, 1.0)
        if self.params.resell and context.exchange.instruments[fresh].terms.transferable:
            self.resellable.add(fresh)

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        if outcome is not None and type(command) is cmd.SubmitOrder:
            record = outcome.result
            if record.is_open:
                self.open_orders[record.order_id] = (command.symbol, command.side)


# ------------------------------------------------------------------ market maker


@dataclass(slots=True)
class _Quote:
    symbol: str
    reference_minor: float | None
    trades_seen: int = 0
    bid_id: int | None = None
    ask_id: int | None = None
    next_requote_tick: int = 0


class MarketMaker(Agent):
    kind = "market_maker"
    quoting = True

    def __init__(
        self, participant: str, rng: random.Random, params: MarketMakerParams, budget_minor: int
    ) -> None:
        super().__init__(participant, rng)
        self.params = params
        self.budget_minor = budget_minor
        self.spent_minor = 0
        self.quotes: dict[str, _Quote] = {}

    def start(self, context: AgentContext) -> None:
        exchange = context.exchange
        # A market maker sells what it bought: only transferable licences can be made a
        # market in.
        chosen = self._follow(
            context, self.params.follows, self.params.instruments, transferable_only=True
        )
        for symbol in chosen:
            instrument = exchange.instruments.get(symbol)
            if instrument is None or instrument.provider == self.participant:
                continue
            # Before any trade, the cost approach is the one public estimate of value.
            product = product_from_catalogue(exchange.products[instrument.product_id])
            terms = terms_from_catalogue(instrument.terms)
            start = cost_approach(product, terms, DEFAULT_PARAMETERS, _COST_LOG_SD).value * 100
            self.quotes[symbol] = _Quote(
                symbol,
                start if start > 0 else None,
                next_requote_tick=self.rng.randrange(self.params.requote_ticks),
            )

    def act(self, context: AgentContext) -> list[cmd.Command]:
        params, view, tick_index = self.params, context.view, context.tick
        for fill in self.new_fills(context):
            if fill.side == "buy":
                self.spent_minor += fill.price_minor * fill.quantity_units
            else:
                self.spent_minor -= fill.price_minor * fill.quantity_units - fill.fee_minor
        commands: list[cmd.Command] = []
        for quote in self.quotes.values():
            if quote.next_requote_tick > tick_index:
                continue
            quote.next_requote_tick = tick_index + params.requote_ticks
            symbol = quote.symbol
            trades = view.trade_count(symbol)
            if trades != quote.trades_seen:
                last = view.last_price(symbol)
                assert last is not None
                quote.trades_seen = trades
                if quote.reference_minor is None:
                    quote.reference_minor = float(last)
                else:
                    quote.reference_minor += params.ema_weight * (last - quote.reference_minor)
            if quote.reference_minor is None:
                continue
            commands.extend(self._requote(context, quote))
        return commands

    def endowment(self) -> list[tuple[str, int]]:
        units = self.params.initial_units
        return [(symbol, units) for symbol in self.quotes] if units else []

    def _requote(self, context: AgentContext, quote: _Quote) -> list[cmd.Command]:
        params, view = self.params, context.view
        listing = context.listings[quote.symbol]
        tick, lot = listing.tick_size_minor, listing.lot_size_units
        held, sellable = view.licences(self.participant, quote.symbol, context.now_ns)
        assert quote.reference_minor is not None
        # The skew is relative to the price, so one setting suits any price level.
        excess = held - params.max_inventory_units / 2
        center = quote.reference_minor * (1 - params.skew_bp_per_unit * excess / 10_000)
        bid_price = max(tick, _floor_to(center - params.half_spread_ticks * tick, tick))
        ask_price = max(bid_price + tick, _ceil_to(center + params.half_spread_ticks * tick, tick))
        bid = view.order(quote.bid_id) if quote.bid_id is not None else None
        ask = view.order(quote.ask_id) if quote.ask_id is not None else None
        bid = bid if bid is not None and bid.is_open else None
        ask = ask if ask is not None and ask.is_open else None
        bid_units = _lots(min(params.quote_units, params.max_inventory_units - held), lot)
        ask_units = _lots(
            min(params.quote_units, sellable + (ask.remaining_units if ask else 0)), lot
        )
        available, reserved = view.cash(self.participant)
        budget_left = min(self.budget_minor - self.spent_minor - reserved, available)
        bid_side = self._side(quote, "buy", bid, bid_price, bid_units, budget_left)
        ask_side = self._side(quote, "sell", ask, ask_price, ask_units, 0)
        # Move the side that gets out of the way first, so the new bid never meets the old
        # ask (an auction refuses an order that crosses the participant's own).
        rising = ask is None or ask_price >= (ask.price_minor or 0)
        return ask_side + bid_side if rising else bid_side + ask_side

    def _side(
        self, quote: _Quote, side: str, order: Any, price: int, units: int, budget_left: int
    ) -> list[cmd.Command]:
        buying = side == "buy"
        if order is not None:
            if units <= 0:
                return [cmd.CancelOrder(self.participant, order.order_id)]
            if order.price_minor == price:
                return []
            extra = (price - order.price_minor) * order.remaining_units if buying else 0
            if extra > budget_left:
                return [cmd.CancelOrder(self.participant, order.order_id)]
            return [cmd.AmendOrder(self.participant, order.order_id, price, None)]
        if buying:
            units = min(units, max(0, budget_left) // price)
        if units <= 0:
            return []
        return [self.order(quote.symbol, side, price, units)]

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        if outcome is not None and type(command) is cmd.SubmitOrder:
            quote = self.quotes[command.symbol]
            if command.side == "buy":
                quote.bid_id = outcome.result.order_id
            else:
                quote.ask_id = outcome.result.order_id


# ------------------------------------------------------------------ noise trader


class NoiseTrader(Agent):
    kind = "noise"

    def __init__(
        self, participant: str, rng: random.Random, params: NoiseParams, budget_minor: int
    ) -> None:
        super().__init__(participant, rng)
        self.params = params
        self.budget_minor = budget_minor
        self.spent_minor = 0
        self.follows: list[str] = []
        self.open_orders: dict[int, tuple[str, str, int]] = {}  # id -> (symbol, side, price)

    def start(self, context: AgentContext) -> None:
        self.follows = self._follow(
            context, self.params.follows, self.params.instruments, transferable_only=True
        )

    def endowment(self) -> list[tuple[str, int]]:
        units = self.params.initial_units
        return [(symbol, units) for symbol in self.follows] if units else []

    def act(self, context: AgentContext) -> list[cmd.Command]:
        params, rng = self.params, self.rng
        # Thinning: candidate ticks come at the highest rate attention allows (a geometric
        # wait), and a candidate acts with the share of that rate attention gives now, so
        # each tick acts with probability activity x min(attention, ATTENTION_CAP).
        ceiling = min(1.0, params.activity * ATTENTION_CAP)
        if not self.follows or ceiling <= 0:
            self.wake_tick = 2**62
            return []
        self.wake_tick = context.tick + 1 + _geometric(rng, ceiling)
        chance = min(1.0, params.activity * min(context.attention, ATTENTION_CAP))
        if rng.random() * ceiling >= chance:
            return []
        view = context.view
        for fill in self.new_fills(context):
            notional = fill.price_minor * fill.quantity_units
            self.spent_minor += notional if fill.side == "buy" else fill.fee_minor - notional
        for order_id in [i for i in self.open_orders if not view.is_open(i)]:
            del self.open_orders[order_id]
        symbol = self.follows[rng.randrange(len(self.follows))]
        listing = context.listings[symbol]
        tick, lot = listing.tick_size_minor, listing.lot_size_units
        bid, ask = view.best(symbol)
        reference = view.reference(symbol)
        if reference is None:
            return []
        held, sellable = view.licences(self.participant, symbol, context.now_ns)
        buy_share = 0.5
        if params.trend_weight:
            # A chartist's tilt: buy more often after the price rose, sell after it fell.
            before = view.price_at(symbol, context.now_ns - params.trend_ticks * context.tick_ns)
            last = view.last_price(symbol)
            if before is not None and last is not None and last != before:
                buy_share += params.trend_weight if last > before else -params.trend_weight
        selling = sellable >= lot and (
            held >= params.max_inventory_units or rng.random() >= buy_share
        )
        units = lot * rng.randint(1, max(1, params.max_order_units // lot))
        aggressive = listing.trading_mode == "continuous" and rng.random() < params.aggressive_share
        offset = abs(rng.gauss(0.0, params.price_sd_ticks))
        if selling:
            units = min(units, _lots(sellable, lot))
            if aggressive and bid is not None:
                price, tif = max(tick, bid - tick * rng.randrange(3)), "IOC"
            else:
                price, tif = _ceil_to(reference + offset * tick, tick), "GTD"
        else:
            units = min(units, _lots(params.max_inventory_units - held, lot))
            if aggressive and ask is not None:
                price, tif = ask + tick * rng.randrange(3), "IOC"
            else:
                price, tif = _floor_to(reference - offset * tick, tick), "GTD"
            available, reserved = view.cash(self.participant)
            budget_left = min(self.budget_minor - self.spent_minor - reserved, available)
            units = min(units, _lots(max(0, budget_left) // max(price, 1), lot))
        if units <= 0 or price < tick:
            return []
        side = "sell" if selling else "buy"
        for own_symbol, own_side, own_price in self.open_orders.values():
            # An order that would cross one's own is refused in an auction and cancelled by
            # self-trade prevention in continuous trading: not worth sending.
            if (
                own_symbol == symbol
                and own_side != side
                and (
                    (side == "buy" and price >= own_price)
                    or (side == "sell" and price <= own_price)
                )
            ):
                return []
        expire = (
            self._lifetime_ns(context, listing, params.order_lifetime_ticks)
            if tif == "GTD"
            else None
        )
        return [self.order(symbol, side, price, units, tif, expire)]

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        if outcome is not None and type(command) is cmd.SubmitOrder:
            record = outcome.result
            if record.is_open:
                self.open_orders[record.order_id] = (
                    command.symbol,
                    command.side,
                    command.price_minor,
                )


# ------------------------------------------------------------------ lender


# A refused draw is asked again for this share of it.
DRAW_BACKOFF = 0.8
# A borrower attests its pledged products' updates this often: a session's first tick and
# six hours on keep each attestation within a day of the last.
ATTEST_EVERY_NS = 6 * 3_600 * 10**9


@dataclass(frozen=True, slots=True)
class AlertSeen:
    """A facility's alert as the lender saw it, beside the truth at that time: the LTV the
    debt would have against the true value of the pledged units (no haircut)."""

    day: int
    alert_id: int
    reason: str
    ltv_bp: int | None
    true_ltv_bp: int | None
    message: str


@dataclass(frozen=True, slots=True)
class LtvPoint:
    """A facility at the end of a day (money in minor units)."""

    day: int
    debt_minor: int
    collateral_minor: int  # the exchange's haircut value, cash margin included
    ltv_bp: int | None
    true_collateral_minor: int  # the pledged units at their true values
    true_ltv_bp: int | None


@dataclass(slots=True)
class LiquidationOutcome:
    """One auction of a facility's collateral against the truth (money in minor units)."""

    attempt: int
    day: int
    orders: dict[int, str]  # the auction's sell orders: id -> symbol
    offered_units: int
    reserve_minor: dict[str, int]  # per symbol, per unit
    true_unit_minor: dict[str, float]  # per symbol, when the auction started
    sold_units: int = 0
    proceeds_minor: int = 0  # net of fees
    true_value_sold_minor: float = 0.0  # the units sold at their true values at the uncross
    finished_day: int | None = None


class Lender(Agent):
    """A bank with one facility to ``params.borrower`` against the borrower's unsold
    licences, and the borrower's side of it: the bank offers, the borrower accepts,
    pledges, draws (once each pledged instrument has an exchange valuation) and spends the
    loan; on a margin call the borrower repays, or pledges more, if it can cure that way.
    The bank watches the facility's alerts and records them, its daily LTV and each
    liquidation's outcome beside the true values. It trades nothing itself: the exchange
    values, marks and liquidates."""

    kind = "lender"

    def __init__(self, participant: str, rng: random.Random, params: LenderParams) -> None:
        super().__init__(participant, rng)
        self.params = params
        self.facility_id: int | None = None
        self.offered = False
        self.pledged = False
        self.drawn_minor = 0
        self.draw_share = params.draw_share
        self.spent = False
        self.attested_ns: int | None = None
        self.top_up_left = params.top_up_units
        self.last_alert_id = 0
        self.alerts: list[AlertSeen] = []
        self.path: list[LtvPoint] = []
        self.liquidations: list[LiquidationOutcome] = []

    def act(self, context: AgentContext) -> list[cmd.Command]:
        params, desk = self.params, context.exchange.collateral
        if self.facility_id is None:
            if self.offered:
                return []
            self.offered = True
            return [self._offer(context)]
        f = desk.facilities[self.facility_id]
        self._watch(context, f)
        status = str(f.status)
        if self.pledged and (
            self.attested_ns is None or context.now_ns - self.attested_ns >= ATTEST_EVERY_NS
        ):
            # The borrower attests its pledged products' updates, as their frequency
            # promises (a real-time product's within a day).
            self.attested_ns = context.now_ns
            instruments = context.exchange.instruments
            products = sorted({instruments[s].product_id for s in context.listings
                               if s in {p.symbol for p in params.pledged}})  # fmt: skip
            return [cmd.AttestUpdate(params.borrower, product_id) for product_id in products]
        if status == "proposed":
            return [cmd.AcceptFacility(params.borrower, f.facility_id)]
        if status == "active" and not self.pledged:
            self.pledged = True
            return [
                cmd.PledgeLicences(params.borrower, f.facility_id, 0, p.symbol, units, None)
                for p in params.pledged
                if (units := self._pledgeable(context, p.symbol, p.units)) > 0
            ]
        if status == "active" and not self.drawn_minor:
            return self._draw(context, f)
        if self.drawn_minor and not self.spent:
            # The borrower spends the loan outside the exchange: the desk pays it out.
            self.spent = True
            amount = min(int(self.drawn_minor * params.spend_share),
                         context.view.cash(params.borrower)[0])  # fmt: skip
            if amount > 0:
                return [cmd.Withdraw(context.desk, params.borrower, amount, "loan spent")]
        if status == "margin_call":
            return self._cure(context, f)
        return []

    def _offer(self, context: AgentContext) -> cmd.CreateFacility:
        p = self.params
        return cmd.CreateFacility(
            self.participant, 0, p.borrower, p.limit_minor, p.rate_bp,
            context.now_ns + p.term_days * 86_400 * 10**9, round(p.loan_to_value * 10_000),
            round(p.margin_call_ltv * 10_000), round(p.liquidation_ltv * 10_000),
            round(p.cure_hours * 3_600), round(p.auction_hours * 3_600), {},
            client_facility_id=f"sim-{self.participant}",
        )  # fmt: skip

    def _pledgeable(self, context: AgentContext, symbol: str, units: int) -> int:
        listing = context.listings.get(symbol)
        if listing is None:
            return 0  # not listed (refused at the compliance gate)
        return _lots(min(units, context.view.unsold(symbol)), listing.lot_size_units)

    def _draw(self, context: AgentContext, f: Any) -> list[cmd.Command]:
        desk = context.exchange.collateral
        symbols = {p.symbol for p in f.pledges.values() if p.units}
        # A prudent borrower waits for the exchange to value what it pledged.
        if not symbols or any(symbol not in desk.valuations for symbol in symbols):
            return []
        room = f.value_minor * f.initial_ltv_bp // 10_000 - f.debt_minor
        amount = min(int(room * self.draw_share), f.limit_minor) // 100 * 100
        if amount <= 0:
            return []
        return [cmd.DrawLoan(self.params.borrower, f.facility_id, amount)]

    def _cure(self, context: AgentContext, f: Any) -> list[cmd.Command]:
        """Repay down to the initial LTV if the cash is there; else pledge more unsold
        licences while the borrower has any to give, repaying what it can beside."""
        borrower, debt, value = self.params.borrower, f.debt_minor, f.value_minor
        available, _held = context.view.cash(borrower)
        needed = max(0, debt - value * f.initial_ltv_bp // 10_000)
        repay = min(available, needed, debt)
        if repay and (debt - repay) * 10_000 < f.margin_call_ltv_bp * value:
            return [cmd.RepayLoan(borrower, f.facility_id, repay)]
        commands: list[cmd.Command] = []
        if self.top_up_left:
            for p in self.params.pledged:
                units = self._pledgeable(context, p.symbol, self.top_up_left)
                if units:
                    self.top_up_left -= units
                    commands.append(
                        cmd.PledgeLicences(borrower, f.facility_id, 0, p.symbol, units, None)
                    )
            if commands and repay:
                commands.append(cmd.RepayLoan(borrower, f.facility_id, repay))
        return commands

    def on_result(
        self, command: cmd.Command, outcome: Outcome | None, error: ExchangeError | None
    ) -> None:
        kind = type(command)
        if kind is cmd.DrawLoan and error is not None:
            # Marked again at the draw, the collateral was worth less: ask for less.
            self.draw_share *= DRAW_BACKOFF
        if outcome is None:
            return
        if kind is cmd.CreateFacility:
            self.facility_id = outcome.result.facility_id
        elif kind is cmd.DrawLoan:
            self.drawn_minor = command.amount_minor  # type: ignore[union-attr]

    # -- watching --------------------------------------------------------------------------

    def _true_collateral(self, context: AgentContext, f: Any) -> int:
        truth = context.truth
        return round(sum(p.units * truth.value_minor(p.symbol) for p in f.pledges.values()))

    def _watch(self, context: AgentContext, f: Any) -> None:
        """Record the facility's new alerts, and follow its liquidations."""
        for alert in f.alerts:
            if alert.alert_id <= self.last_alert_id:
                continue
            self.last_alert_id = alert.alert_id
            true_ltv = ltv_bp(f.debt_minor, self._true_collateral(context, f))
            self.alerts.append(AlertSeen(context.day, alert.alert_id, str(alert.reason),
                                         alert.ltv_bp, true_ltv, alert.message))  # fmt: skip
            if str(alert.reason) == "liquidation_started" and f.liquidation is not None:
                self._auction_started(context, f)
            elif str(alert.reason) == "liquidation_result" and self.liquidations:
                self._auction_finished(context, f)

    def _auction_started(self, context: AgentContext, f: Any) -> None:
        exchange, truth = context.exchange, context.truth
        liquidation = f.liquidation
        orders = {order_id: symbol for order_id, (_, symbol) in liquidation.orders.items()}
        self.liquidations.append(LiquidationOutcome(
            liquidation.attempt, context.day, orders,
            sum(exchange.orders[i].quantity_units for i in orders),
            {symbol: exchange.orders[i].price_minor for i, symbol in orders.items()},  # type: ignore[misc]
            {symbol: truth.value_minor(symbol) for symbol in orders.values()},
        ))  # fmt: skip

    def _auction_finished(self, context: AgentContext, f: Any) -> None:
        outcome = self.liquidations[-1]
        if outcome.finished_day is not None:
            return
        outcome.finished_day = context.day
        for fill in context.exchange.settlement.fills[f.borrower]:
            symbol = outcome.orders.get(fill.order_id)
            if symbol is not None:
                outcome.sold_units += fill.quantity_units
                outcome.proceeds_minor += fill.price_minor * fill.quantity_units - fill.fee_minor
                outcome.true_value_sold_minor += fill.quantity_units * context.truth.value_minor(
                    symbol
                )

    def end_of_day(self, context: AgentContext) -> None:
        if self.facility_id is None:
            return
        f = context.exchange.collateral.facilities[self.facility_id]
        self._watch(context, f)
        true_value = self._true_collateral(context, f) + f.margin_minor
        self.path.append(LtvPoint(context.day, f.debt_minor, f.value_minor, f.ltv_bp,
                                  true_value, ltv_bp(f.debt_minor, true_value)))  # fmt: skip
