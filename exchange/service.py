"""The exchange's state machine: one method applies every command, in journal order.

``Exchange.execute(command, seq, ts_ns)`` is deterministic: the same commands at the same
sequence numbers and times give the same state, the same responses and the same ledger
entries. It first checks everything that could make the command fail and raises
:class:`ExchangeError` having changed nothing; only then does it change state, apply the
command to the matching engine, and return the ledger entries that settle what happened.
The sequencer journals the command and commits the entries; recovery replays the journal
through this same method. Reads (``order``, ``orders_of``, ``cash_of`` ...) are plain methods.

The parts it dispatches to, one concept each: ``participants`` (who may act),
``compliance`` (the catalogue and its gate), ``risk`` (balances and holds),
``engine`` (matching) and ``settlement`` (what the engine's events do).
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from exchange import commands as cmd
from exchange.catalogue import (
    DataProduct,
    Exclusivity,
    Instrument,
    LicenceTerms,
    ProductStatus,
    Scope,
    Territory,
)
from exchange.collateral import COMMANDS as COLLATERAL_COMMANDS
from exchange.collateral import CollateralDesk
from exchange.compliance import ComplianceDesk, ComplianceRecord
from exchange.confidential import COMMANDS as CONFIDENTIAL_COMMANDS
from exchange.confidential import ConfidentialDesk
from exchange.errors import ExchangeError, Reason
from exchange.facility import Alert
from exchange.marketdata import MarketData
from exchange.mass_quote import replace_quotes
from exchange.money import MAX_AMOUNT_MINOR, format_minor
from exchange.orders import Fill, FillQuery, FillReport, OrderQuery, OrderRecord
from exchange.participants import (
    MANAGING_COMMANDS,
    OPERATOR,
    TRADING_ROLES,
    Participant,
    Participants,
    Role,
)
from exchange.risk import Risk
from exchange.settlement import Settlement
from exchange.validation import (
    MAX_CLIENT_ORDER_ID,
    MAX_DURATION_MONTHS,
    MAX_FEE_RATE_BP,
    MAX_NAME,
    MAX_OPEN_ORDERS_PER_PARTICIPANT,
    MAX_QUANTITY_UNITS,
    enum_member,
    integer,
    invalid,
    text,
)
from ledger import Entry, entries
from matching import AddInstrument as EngineAddInstrument
from matching import AmendOrder as EngineAmendOrder
from matching import (
    AuctionResult,
    Engine,
    Event,
    Expire,
    OrderType,
    Phase,
    RejectReason,
    SealedBidPricing,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradingMode,
)
from matching import CancelOrder as EngineCancelOrder
from matching import SetPhase as EngineSetPhase
from matching import SubmitOrder as EngineSubmitOrder
from matching import Uncross as EngineUncross

__all__ = ["OPERATOR", "Exchange", "Outcome"]

_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.-]{1,31}")
_COLLECTING = (Phase.PRE_OPEN, Phase.AUCTION)
ALL_ORDERS = OrderQuery()
ALL_FILLS = FillQuery()


@dataclass(slots=True)
class Outcome:
    """What one command did: the command as journalled (``None`` for an idempotent retry,
    which journals nothing), the result for the caller, the entries to settle, the events."""

    command: cmd.Command | None
    result: Any = None
    entries: list[Entry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)  # of loan facilities, for both parties
    fills: list[FillReport] = field(default_factory=list)  # for drop copies, in trade order


class Exchange:
    def __init__(self) -> None:
        self.engine = Engine()
        self.risk = Risk()
        self.market_data = MarketData()
        self.participants = Participants()
        self.compliance = ComplianceDesk()
        self.instruments: dict[str, Instrument] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.orders_by_participant: defaultdict[str, list[int]] = defaultdict(list)
        self.open_orders: defaultdict[str, int] = defaultdict(int)
        # (participant, client order id) -> (the submission as journalled, and its first
        # result): a retry must match it field for field but the order id
        # (``commands.same_submission``). Kept as journalled, so that a replay builds no copy.
        self.client_orders: dict[tuple[str, str], tuple[cmd.SubmitOrder, OrderRecord]] = {}
        self.settlement = Settlement(
            self.orders, self.instruments, self.risk, self.market_data, self.open_orders
        )
        self.confidential = ConfidentialDesk(
            self.participants, self.compliance, self.instruments, self.engine, self.risk,
            self.settlement, self.market_data,
        )  # fmt: skip
        self.collateral = CollateralDesk(
            self.participants, self.compliance, self.instruments, self.engine, self.risk,
            self.settlement, self.market_data, self._liquidation_sell, self._cancel_buys,
            self._engine,
        )  # fmt: skip
        self.head_seq = 0
        self.last_ts_ns = 0
        self.entries_settled = 0  # ledger entries created by the commands applied so far
        self.next_order_id = 1
        self._handlers: dict[type, Callable[[Any, int, int], Outcome]] = {
            cmd.CreateParticipant: self._create_participant,
            **dict.fromkeys(MANAGING_COMMANDS, self._manage_participant),
            cmd.CreateProduct: self._create_product,
            cmd.ResubmitProduct: self._resubmit_product,
            cmd.ReviewProduct: self._review_product,
            cmd.RegulatorDecision: self._regulator_decision,
            cmd.SuspendProduct: self._suspend_product,
            cmd.ReinstateProduct: self._reinstate_product,
            cmd.ListInstrument: self._list_instrument,
            cmd.Deposit: self._deposit,
            cmd.Withdraw: self._withdraw,
            cmd.SubmitOrder: self._submit_order,
            cmd.CancelOrder: self._cancel_order,
            cmd.CancelAllOrders: self._cancel_all_orders,
            cmd.AmendOrder: self._amend_order,
            cmd.MassQuote: self._mass_quote,
            cmd.SetPhase: self._set_phase,
            cmd.Uncross: self._uncross,
            cmd.Housekeeping: self._housekeeping,
            **dict.fromkeys(CONFIDENTIAL_COMMANDS, self._confidential),
            **dict.fromkeys(COLLATERAL_COMMANDS, self._collateral),
        }

    @property
    def products(self) -> dict[str, DataProduct]:
        return self.compliance.products

    # -- the one entry point ---------------------------------------------------------------

    def execute(self, command: cmd.Command, seq: int, ts_ns: int) -> Outcome:
        """Check and apply ``command`` as journal entry ``seq`` at ``ts_ns``.

        Raises :class:`ExchangeError` (nothing changed) when the command is refused. An
        ``Outcome`` whose ``command`` is None journals nothing (an idempotent retry).
        """
        if seq != self.head_seq + 1:
            raise AssertionError(f"command {seq} applied after {self.head_seq}")
        if ts_ns < self.last_ts_ns:
            raise AssertionError(f"time went back from {self.last_ts_ns} to {ts_ns}")
        kind = type(command)
        handler = self._handlers.get(kind)
        if handler is None:
            raise invalid(f"unknown command {kind.__name__}")
        actor = self.participants.by_id.get(command.actor)
        if actor is not None and actor.disabled_ns is not None:
            # Sent before the participant was disabled, or by a connection that outlived it.
            raise ExchangeError(Reason.AUTH_DISABLED, f"participant {command.actor} is disabled")
        # By the command's type: comparing bound methods builds one and compares two fields.
        if kind is not cmd.Housekeeping and self.housekeeping_due(ts_ns):
            # Nothing may trade a lapsed licence or an expired order: expiries come first.
            raise ExchangeError(
                Reason.VALIDATION_HOUSEKEEPING_DUE,
                "expiries are due: housekeeping must run before this command",
            )
        outcome = handler(command, seq, ts_ns)
        if self.collateral.touched:
            # Trades in pledged instruments: their facilities to re-mark (exchange.collateral).
            self.collateral.on_trades(ts_ns)
        if outcome.command is not None:
            self.head_seq = seq
            self.last_ts_ns = ts_ns
            self.entries_settled += len(outcome.entries)
        return outcome

    def housekeeping_due(self, now_ns: int) -> bool:
        """Whether a GTD order or a licence has expired by ``now_ns`` and is still there.

        While it is, every other command is refused; the sequencer runs ``Housekeeping``
        before any command that arrives at such a time.
        """
        # The engine's expiry, which counts only orders still in the book: one that filled
        # or was cancelled before its time calls for no housekeeping.
        order_expiry = self.engine.next_expiry()
        lapsing = self.settlement.licence_expiries
        return (
            (order_expiry is not None and order_expiry <= now_ns)
            or bool(lapsing and lapsing[0][0] <= now_ns)
            or self.confidential.publication_due(now_ns)
            or self.collateral.due(now_ns)
        )

    # -- participants ----------------------------------------------------------------------

    def _create_participant(self, c: cmd.CreateParticipant, seq: int, ts: int) -> Outcome:
        self.participants.actor(c.actor, [Role.ADMIN])
        return Outcome(c, self.participants.create(c, ts))

    def _manage_participant(self, c: Any, seq: int, ts: int) -> Outcome:
        """Disable or enable a participant, rotate or revoke its key
        (``exchange.participants``). Disabling cancels the participant's open orders in the
        same command, as its cancel-all would: the result is then (participant, cancelled)."""
        journalled, participant = self.participants.manage(c, ts)
        outcome = Outcome(journalled, participant)
        if type(c) is cmd.DisableParticipant:
            cancelled = [] if journalled is None else self._cancel_open_orders(
                participant.participant_id, None, None, outcome, seq, ts
            )  # fmt: skip
            outcome.result = (participant, cancelled)
        return outcome

    def authenticate(self, key_id: str, secret: str) -> Participant | None:
        return self.participants.authenticate(key_id, secret)

    # -- catalogue and compliance ----------------------------------------------------------

    def _create_product(self, c: cmd.CreateProduct, seq: int, ts: int) -> Outcome:
        provider = self.participants.actor(c.actor, [Role.PROVIDER])
        if provider is None:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only a provider creates products")
        product = self.compliance.create(c, provider.participant_id, ts)
        # The journal records the id the exchange assigned.
        return Outcome(replace(c, product_id=product.product_id), product)

    def _resubmit_product(self, c: cmd.ResubmitProduct, seq: int, ts: int) -> Outcome:
        return Outcome(c, self.compliance.resubmit(c, seq, ts))

    def _review_product(self, c: cmd.ReviewProduct, seq: int, ts: int) -> Outcome:
        self.participants.actor(c.actor, [Role.REVIEWER])
        product, entry = self.compliance.review(c, seq, ts)
        return Outcome(c, product, [entry])

    def _regulator_decision(self, c: cmd.RegulatorDecision, seq: int, ts: int) -> Outcome:
        self.participants.actor(c.actor, [Role.REGULATOR])
        product, entry = self.compliance.regulator_decision(c, seq, ts)
        return Outcome(c, product, [entry])

    def _suspend_product(self, c: cmd.SuspendProduct, seq: int, ts: int) -> Outcome:
        self.participants.actor(c.actor, [Role.REGULATOR, Role.ADMIN])
        product = self.compliance.suspend(c, seq, ts)
        outcome = Outcome(c, product)
        for symbol in product.instruments:
            self._engine(EngineSetPhase(seq, ts, symbol, Phase.HALTED, cancel_resting=True),
                         outcome, ts)  # fmt: skip
        self.collateral.on_product(product.product_id, ts, outcome)
        return outcome

    def _reinstate_product(self, c: cmd.ReinstateProduct, seq: int, ts: int) -> Outcome:
        self.participants.actor(c.actor, [Role.REGULATOR, Role.ADMIN])
        product = self.compliance.reinstate(c, seq, ts)
        outcome = Outcome(c, product)
        for symbol in product.instruments:
            self._engine(EngineSetPhase(seq, ts, symbol, Phase.PRE_OPEN), outcome, ts)
        self.collateral.on_product(product.product_id, ts, outcome)
        return outcome

    def _list_instrument(self, c: cmd.ListInstrument, seq: int, ts: int) -> Outcome:
        product = self.compliance.product(c.product_id)
        actor = self.participants.actor(c.actor, [Role.PROVIDER, Role.ADMIN])
        if actor is not None and Role.ADMIN not in actor.roles and c.actor != product.provider:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the product's provider lists it")
        if product.status is not ProductStatus.APPROVED:
            raise ExchangeError(
                Reason.COMPLIANCE_NOT_APPROVED,
                f"product {product.product_id} is {product.status}: only an approved product "
                "lists instruments",
            )
        if not isinstance(c.symbol, str) or not _SYMBOL.fullmatch(c.symbol):
            raise invalid("symbol must be 2-32 upper-case letters, digits, '.' or '-'")
        if c.symbol in self.instruments:
            raise ExchangeError(Reason.VALIDATION_DUPLICATE, f"instrument {c.symbol} exists")
        terms = LicenceTerms(
            exclusivity=enum_member(Exclusivity, c.exclusivity, "exclusivity"),
            duration_months=integer(c.duration_months, "duration_months", 1, MAX_DURATION_MONTHS),
            scope=enum_member(Scope, c.scope, "scope"),
            territory=enum_member(Territory, c.territory, "territory"),
            transferable=bool(c.transferable),
        )
        tick = integer(c.tick_size_minor, "tick_size", 1, MAX_AMOUNT_MINOR)
        lot = integer(c.lot_size_units, "lot_size", 1, 10**9)
        cap = integer(c.issuance_cap_units, "issuance_cap", 1, 10**12)
        if cap % lot:
            raise invalid("issuance_cap must be a multiple of lot_size")
        exclusive = terms.exclusivity is Exclusivity.EXCLUSIVE
        if exclusive and cap != lot:
            raise invalid("an exclusive licence is issued once: issuance_cap must be one lot")
        listed = [self.instruments[s].terms.exclusivity for s in product.instruments]
        if (exclusive and listed) or Exclusivity.EXCLUSIVE in listed:
            raise invalid("a product licensed exclusively has no other instrument")
        band = []
        for value, what in ((c.price_band_low_minor, "price_band_low"),
                            (c.price_band_high_minor, "price_band_high")):  # fmt: skip
            if value is not None:
                integer(value, what, 1, MAX_AMOUNT_MINOR)
                if value % tick:
                    raise invalid(f"{what} is not on the tick grid")
            band.append(value)
        if band[0] is not None and band[1] is not None and band[0] > band[1]:
            raise invalid("price_band_low is above price_band_high")
        instrument = Instrument(
            symbol=c.symbol,
            product_id=product.product_id,
            provider=product.provider,
            terms=terms,
            tick_size_minor=tick,
            lot_size_units=lot,
            trading_mode=enum_member(TradingMode, c.trading_mode, "trading_mode"),
            issuance_cap_units=cap,
            fee_rate_bp=integer(c.fee_rate_bp, "fee_rate_bp", 0, MAX_FEE_RATE_BP),
            price_band_low_minor=band[0],
            price_band_high_minor=band[1],
            sealed_bid_pricing=enum_member(
                SealedBidPricing, c.sealed_bid_pricing, "sealed_bid_pricing"
            ),
            listed_ns=ts,
        )
        outcome = Outcome(c, instrument)
        self._engine(EngineAddInstrument(seq, ts, instrument.spec()), outcome, ts)
        self.instruments[c.symbol] = instrument
        product.instruments.append(c.symbol)
        self.market_data.add_instrument(c.symbol)
        self._emit(outcome, entries.licence_issuance(
            symbol=c.symbol, provider=product.provider, units=cap, issuance_cap_units=cap,
            key=f"issuance:{c.symbol}", ts_ns=ts,
        ))  # fmt: skip
        return outcome

    # -- cash ------------------------------------------------------------------------------

    def _cash_target(self, actor: str, participant_id: str, amount: int, reference: str) -> None:
        self.participants.actor(actor, [Role.ADMIN])
        if participant_id not in self.participants.by_id:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_PARTICIPANT, f"no participant {participant_id}"
            )
        integer(amount, "amount", 1, MAX_AMOUNT_MINOR)
        text(reference, "reference", MAX_NAME, required=False)

    def _deposit(self, c: cmd.Deposit, seq: int, ts: int) -> Outcome:
        self._cash_target(c.actor, c.participant_id, c.amount_minor, c.reference)
        if self.risk.cash_balance(c.participant_id) + c.amount_minor > MAX_AMOUNT_MINOR:
            raise invalid("the deposit would take the balance above the maximum")
        outcome = Outcome(c)
        self._emit(outcome, entries.deposit(
            c.participant_id, c.amount_minor, key=f"deposit:{seq}", ts_ns=ts,
            reference=c.reference or None,
        ))  # fmt: skip
        outcome.result = self.risk.cash_available(c.participant_id)
        return outcome

    def _withdraw(self, c: cmd.Withdraw, seq: int, ts: int) -> Outcome:
        self._cash_target(c.actor, c.participant_id, c.amount_minor, c.reference)
        # Only available cash leaves: what open buy orders hold stays.
        self.risk.require_cash(c.participant_id, c.amount_minor)
        outcome = Outcome(c)
        self._emit(outcome, entries.withdrawal(
            c.participant_id, c.amount_minor, key=f"withdrawal:{seq}", ts_ns=ts,
            reference=c.reference or None,
        ))  # fmt: skip
        outcome.result = self.risk.cash_available(c.participant_id)
        return outcome

    # -- orders ----------------------------------------------------------------------------

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")
        return instrument

    def _own_order(self, actor: str, order_id: int) -> OrderRecord:
        order = self.orders.get(order_id) if type(order_id) is int else None
        if order is None or order.participant != actor:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_ORDER, f"no order {order_id}")
        return order

    def _submit_order(self, c: cmd.SubmitOrder, seq: int, ts: int) -> Outcome:
        participant = self.participants.actor(c.actor, TRADING_ROLES)
        if participant is None:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "the operator does not trade")
        actor = participant.participant_id
        client_order_id = text(c.client_order_id, "client_order_id", MAX_CLIENT_ORDER_ID)
        previous = self.client_orders.get((actor, client_order_id))
        if previous is not None:
            if not cmd.same_submission(previous[0], c):
                raise ExchangeError(
                    Reason.VALIDATION_IDEMPOTENCY_CONFLICT,
                    f"client_order_id {client_order_id} was used for a different order",
                )
            return Outcome(None, previous[1])
        instrument = self._instrument(c.symbol)
        if self.compliance.products[instrument.product_id].status is ProductStatus.SUSPENDED:
            raise ExchangeError(Reason.COMPLIANCE_SUSPENDED, f"{c.symbol}'s product is suspended")
        try:
            # The four enumerated fields in one lookup; a miss is checked field by field.
            side, order_type, tif, stp = _ORDER_KINDS[(c.side, c.order_type, c.tif, c.stp)]
        except (KeyError, TypeError):
            side, order_type, tif, stp = _order_kinds(c)
        price, quantity = c.price_minor, c.quantity_units
        if price is not None:
            integer(price, "price", 1, MAX_QUANTITY_UNITS)
        if c.expire_ns is not None:
            integer(c.expire_ns, "expire_time", 1, MAX_QUANTITY_UNITS)
        integer(quantity, "quantity", 1, MAX_QUANTITY_UNITS)
        if self.open_orders[actor] >= MAX_OPEN_ORDERS_PER_PARTICIPANT:
            raise ExchangeError(
                Reason.RISK_OPEN_ORDER_LIMIT,
                f"at most {MAX_OPEN_ORDERS_PER_PARTICIPANT} open orders per participant",
            )
        order_id = self.next_order_id
        if c.order_id and c.order_id != order_id:
            raise AssertionError(f"journal assigns order {c.order_id}, expected {order_id}")
        post_only = bool(c.post_only)
        new_order = EngineSubmitOrder(
            seq, ts, order_id, actor, c.symbol, side, quantity, price, order_type, tif,
            c.expire_ns, post_only, stp,
        )  # fmt: skip
        rejected = self.engine.check(new_order)
        if rejected is not None:
            _refuse(rejected, instrument, price, quantity)
        self._refuse_self_cross(actor, c.symbol, side, price, order_type is _MARKET)
        record = OrderRecord(
            order_id, client_order_id, actor, c.symbol, side, order_type, price, quantity, tif,
            c.expire_ns, post_only, stp, ts, ts,
        )  # fmt: skip
        risk = self.risk
        if side is _BUY:
            # A market buy without a protection price has passed the engine's check only
            # because the band's top bounds it.
            hold_price = price if price is not None else instrument.price_band_high_minor
            assert hold_price is not None
            held = hold_price * quantity
            risk.require_cash(actor, held)
            record.hold_price_minor, record.held_minor = hold_price, held
            # Checks passed: from here on the command is applied.
            risk.cash_held[actor] += held
        else:
            account, expires = risk.sell_source(actor, instrument, quantity, ts)
            record.licence_account, record.licence_expires_ns = account, expires
            risk.licences_held[account] += quantity
        self.next_order_id = order_id + 1
        self.orders[order_id] = record
        self.orders_by_participant[actor].append(order_id)
        self.open_orders[actor] += 1
        # The journal records the id the exchange assigned.
        journalled = c if c.order_id else _assigned(c, order_id)
        outcome = Outcome(journalled)
        self._engine(new_order, outcome, ts)
        outcome.result = record.as_it_stands()
        self.client_orders[(actor, client_order_id)] = (journalled, outcome.result)
        return outcome

    def _refuse_self_cross(
        self, participant: str, symbol: str, side: Side, price: int | None, is_market: bool
    ) -> None:
        """In a call or sealed-bid phase, refuse an order that would cross the participant's
        own opposite order: the auction has no self-trade prevention, and a participant
        cannot settle with itself. (Continuous matching prevents self-trades itself.)"""
        if self.engine.phase(symbol) not in _COLLECTING:
            return
        for order_id in self.orders_by_participant.get(participant, ()):
            own = self.orders[order_id]
            if own.symbol != symbol or own.side is side or not own.is_open:
                continue
            own_market = own.order_type is OrderType.MARKET
            if is_market or own_market or own.price_minor is None or price is None:
                crosses = True
            else:
                buy, sell = (
                    (price, own.price_minor) if side is Side.BUY else (own.price_minor, price)
                )
                crosses = buy >= sell
            if crosses:
                raise ExchangeError(
                    Reason.RISK_SELF_TRADE,
                    f"this would cross your own order {order_id} in the auction",
                )

    def _cancel_order(self, c: cmd.CancelOrder, seq: int, ts: int) -> Outcome:
        order = self._own_order(c.actor, c.order_id)
        cancel = EngineCancelOrder(seq, ts, order.order_id, order.participant)
        if not order.is_open or self.engine.check(cancel) is not None:
            raise ExchangeError(
                Reason.VALIDATION_ORDER_NOT_OPEN, f"order {c.order_id} is {order.status}"
            )
        outcome = Outcome(c)
        self._engine(cancel, outcome, ts)
        outcome.result = order.as_it_stands()
        return outcome

    def _cancel_all_orders(self, c: cmd.CancelAllOrders, seq: int, ts: int) -> Outcome:
        """Cancel the participant's open orders matching ``c``, in order id order; the
        result is each as cancelled. Nothing to cancel journals nothing."""
        if c.actor != c.participant_id:
            # Another's orders: the admin's kill switch.
            self.participants.actor(c.actor, [Role.ADMIN])
        elif self.participants.actor(c.actor, TRADING_ROLES) is None:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "the operator does not trade")
        if c.participant_id not in self.participants.by_id:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_PARTICIPANT, f"no participant {c.participant_id!r}"
            )
        if c.symbol is not None:
            self._instrument(c.symbol)
        side = None if c.side is None else enum_member(Side, c.side, "side")
        outcome = Outcome(c)
        outcome.result = self._cancel_open_orders(
            c.participant_id, c.symbol, side, outcome, seq, ts
        )
        if not outcome.result:
            outcome.command = None
        return outcome

    def _cancel_open_orders(
        self, participant: str, symbol: str | None, side: Side | None, outcome: Outcome,
        seq: int, ts: int,
    ) -> list[OrderRecord]:
        """Cancel the participant's open orders (on ``symbol``, of ``side``, when given) in
        order id order, into ``outcome``; each as cancelled."""
        open_orders = [
            order for order_id in self.orders_by_participant.get(participant, ())
            if (order := self.orders[order_id]).is_open
            and (symbol is None or order.symbol == symbol)
            and (side is None or order.side is side)
        ]  # fmt: skip
        for order in open_orders:
            self._engine(EngineCancelOrder(seq, ts, order.order_id, order.participant), outcome, ts)
        return [order.copy() for order in open_orders]

    def _amend_order(self, c: cmd.AmendOrder, seq: int, ts: int) -> Outcome:
        order = self._own_order(c.actor, c.order_id)
        if not order.is_open:
            raise ExchangeError(
                Reason.VALIDATION_ORDER_NOT_OPEN, f"order {c.order_id} is {order.status}"
            )
        for value, what in ((c.price_minor, "price"), (c.quantity_units, "quantity")):
            if value is not None:
                integer(value, what, 1, MAX_QUANTITY_UNITS)
        amend = EngineAmendOrder(
            seq, ts, order.order_id, order.participant, c.price_minor, c.quantity_units
        )
        _refuse(self.engine.check(amend), self.instruments[order.symbol], c.price_minor,
                c.quantity_units)  # fmt: skip
        quantity = order.quantity_units if c.quantity_units is None else c.quantity_units
        remaining = quantity - order.filled_units
        if c.price_minor is not None:
            self._refuse_self_cross(order.participant, order.symbol, order.side, c.price_minor,
                                    order.order_type is OrderType.MARKET)  # fmt: skip
        risk = self.risk
        if order.side is Side.BUY:
            hold_price = order.hold_price_minor if c.price_minor is None else c.price_minor
            change = hold_price * remaining - order.held_minor
            if change > 0:
                risk.require_cash(order.participant, change)
            risk.cash_held[order.participant] += change
            order.hold_price_minor, order.held_minor = hold_price, hold_price * remaining
        else:
            extra = remaining - order.remaining_units
            account = order.licence_account
            assert account is not None
            if extra > risk.licences_free(account):
                raise ExchangeError(
                    Reason.RISK_INSUFFICIENT_LICENCES,
                    f"{risk.licences_free(account)} more licence units are free to sell",
                )
            risk.licences_held[account] += extra
        order.quantity_units = quantity
        if c.price_minor is not None:
            order.price_minor = c.price_minor
        outcome = Outcome(c)
        self._engine(amend, outcome, ts)
        outcome.result = order.copy()
        return outcome

    def _mass_quote(self, c: cmd.MassQuote, seq: int, ts: int) -> Outcome:
        """A market maker's quotes on one instrument replaced at once (``mass_quote``)."""
        outcome = Outcome(c)
        outcome.command, outcome.result = replace_quotes(self, c, seq, ts, outcome)
        return outcome

    # -- sessions --------------------------------------------------------------------------

    def _set_phase(self, c: cmd.SetPhase, seq: int, ts: int) -> Outcome:
        self.participants.actor(c.actor, [Role.ADMIN])
        instrument = self._instrument(c.symbol)
        phase = enum_member(Phase, c.phase, "phase")
        if phase is Phase.CONTINUOUS and instrument.trading_mode is not TradingMode.CONTINUOUS:
            raise ExchangeError(
                Reason.VALIDATION_PHASE,
                f"{c.symbol} trades by {instrument.trading_mode}, never continuously",
            )
        suspended = self.compliance.products[instrument.product_id].status
        if suspended is ProductStatus.SUSPENDED and phase is not Phase.HALTED:
            raise ExchangeError(Reason.COMPLIANCE_SUSPENDED, f"{c.symbol}'s product is suspended")
        outcome = Outcome(c)
        self._engine(EngineSetPhase(seq, ts, c.symbol, phase), outcome, ts)
        outcome.result = phase
        return outcome

    def _uncross(self, c: cmd.Uncross, seq: int, ts: int) -> Outcome:
        self.participants.actor(c.actor, [Role.ADMIN])
        self._instrument(c.symbol)
        if self.engine.phase(c.symbol) not in _COLLECTING:
            raise ExchangeError(
                Reason.VALIDATION_PHASE,
                f"{c.symbol} is {self.engine.phase(c.symbol)}: an uncross needs a call phase",
            )
        outcome = Outcome(c)
        self._engine(EngineUncross(seq, ts, c.symbol), outcome, ts)
        outcome.result = next((e for e in outcome.events if type(e) is AuctionResult), None)
        return outcome

    def _housekeeping(self, c: cmd.Housekeeping, seq: int, ts: int) -> Outcome:
        if c.actor != OPERATOR:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "housekeeping is the exchange's own")
        # Accepted even with nothing due (then it changes nothing): journals written before
        # closed orders stopped calling for housekeeping hold such commands, and must replay.
        outcome = Outcome(c)
        self._engine(Expire(seq, ts), outcome, ts)
        lapsing = self.settlement.licence_expiries
        lapsed = 0
        while lapsing and lapsing[0][0] <= ts:
            expires, account, holder, symbol = heapq.heappop(lapsing)
            for order_id in self.orders_by_participant[holder]:
                order = self.orders[order_id]
                if order.is_open and order.licence_account == account:
                    self._engine(EngineCancelOrder(seq, ts, order_id, holder), outcome, ts)
            units = self.risk.balances[account]
            if units > 0:
                self._emit(outcome, entries.licence_expiry(
                    symbol=symbol, holder=holder, expires_at_ns=expires, units=units,
                    key=f"expiry:{seq}:{lapsed}", ts_ns=ts,
                ))  # fmt: skip
                lapsed += 1
        # Pledged licences lapsing, the facilities' daily mark, deadlines and auctions.
        self.collateral.housekeeping(seq, ts, outcome)
        # Confidential trades whose deferral has ended: a view, with nothing to settle; the
        # publications are the result, for the market stream.
        outcome.result = self.confidential.publish_due(ts)
        return outcome

    # -- confidential trading --------------------------------------------------------------

    def _confidential(self, c: Any, seq: int, ts: int) -> Outcome:
        """Requests for quote, negotiated trades and publication policies
        (``exchange.confidential``): they never reach the matching engine."""
        outcome = Outcome(c)
        outcome.command, outcome.result = self.confidential.execute(c, ts, outcome.entries)
        return outcome

    # -- loan facilities and collateral ----------------------------------------------------

    def _collateral(self, c: Any, seq: int, ts: int) -> Outcome:
        """Facilities, pledges, valuations and attested updates (``exchange.collateral``)."""
        outcome = Outcome(c)
        outcome.result = self.collateral.execute(c, seq, ts, outcome)
        return outcome

    def _liquidation_sell(
        self, participant: str, symbol: str, account: str, expires_ns: int | None, units: int,
        price: int, seq: int, ts: int, outcome: Outcome,
    ) -> int:  # fmt: skip
        """Place the collateral desk's sell order of pledged licences for the borrower, in
        an auction phase: a GTC limit at the reserve, delivering from ``account``."""
        order_id = self.next_order_id
        client_order_id = f"liquidation-{seq}-{order_id}"
        new_order = EngineSubmitOrder(
            seq, ts, order_id, participant, symbol, Side.SELL, units, price, OrderType.LIMIT,
            TimeInForce.GTC, None, False, SelfTradePrevention.CANCEL_NEWEST,
        )  # fmt: skip
        rejected = self.engine.check(new_order)
        assert rejected is None, rejected
        record = OrderRecord(
            order_id, client_order_id, participant, symbol, Side.SELL, OrderType.LIMIT, price,
            units, TimeInForce.GTC, None, False, SelfTradePrevention.CANCEL_NEWEST, ts, ts,
        )  # fmt: skip
        record.licence_account, record.licence_expires_ns = account, expires_ns
        self.risk.licences_held[account] += units
        self.next_order_id = order_id + 1
        self.orders[order_id] = record
        self.orders_by_participant[participant].append(order_id)
        self.open_orders[participant] += 1
        self._engine(new_order, outcome, ts)
        return order_id

    def _cancel_buys(
        self, participant: str, symbol: str, seq: int, ts: int, outcome: Outcome
    ) -> None:
        for order_id in self.orders_by_participant.get(participant, ()):
            order = self.orders[order_id]
            if order.is_open and order.symbol == symbol and order.side is Side.BUY:
                self._engine(EngineCancelOrder(seq, ts, order_id, participant), outcome, ts)

    # -- applying engine commands ----------------------------------------------------------

    def _emit(self, outcome: Outcome, entry: Entry) -> None:
        self.risk.post(entry)
        outcome.entries.append(entry)

    def _engine(self, command: Any, outcome: Outcome, ts: int) -> None:
        """Apply an engine command that was checked to succeed, and settle its events."""
        events = self.engine.apply(command)
        self.settlement.apply(events, outcome.entries, ts, outcome.fills)
        outcome.events.extend(events)

    # -- reads -----------------------------------------------------------------------------

    def orders_of(
        self, participant: str, *, open_only: bool, after_id: int, limit: int,
        query: OrderQuery = ALL_ORDERS,
    ) -> list[OrderRecord]:
        """A participant's orders with id above ``after_id`` matching ``query``, oldest first
        (a page). Orders are created in id order at non-decreasing times, so the scan stops
        at the first order created at or after ``query.before_ns``."""
        page: list[OrderRecord] = []
        ids = self.orders_by_participant.get(participant, [])
        start = bisect_right(ids, after_id)  # ids are ascending
        orders = self.orders
        if query.from_ns is not None:
            start = max(start, bisect_left(
                ids, query.from_ns, key=lambda order_id: orders[order_id].created_ns
            ))  # fmt: skip
        for order_id in ids[start:]:
            order = orders[order_id]
            if query.before_ns is not None and order.created_ns >= query.before_ns:
                break
            if (open_only and not order.is_open) or not query.matches(order):
                continue
            page.append(order.copy())
            if len(page) == limit:
                break
        return page

    def order(self, participant: str, order_id: int) -> OrderRecord | None:
        order = self.orders.get(order_id)
        return order.copy() if order is not None and order.participant == participant else None

    def order_by_client_id(self, participant: str, client_order_id: str) -> OrderRecord | None:
        """The participant's order submitted under ``client_order_id``, as it stands now."""
        submitted = self.client_orders.get((participant, client_order_id))
        return None if submitted is None else self.orders[submitted[1].order_id].copy()

    def fills_of(
        self, participant: str, *, after_trade_id: int, limit: int, query: FillQuery = ALL_FILLS
    ) -> list[Fill]:
        """A participant's fills of trades after ``after_trade_id`` matching ``query``,
        oldest first (a page)."""
        fills = self.settlement.fills.get(participant, [])
        # Fills are appended as trades happen, so their trade ids and times ascend.
        start = bisect_right(fills, after_trade_id, key=lambda fill: fill.trade_id)
        if query.from_ns is not None:
            start = max(start, bisect_left(fills, query.from_ns, key=lambda fill: fill.ts_ns))
        if query == FillQuery(from_ns=query.from_ns):  # nothing else to filter: a slice
            return fills[start : start + limit]
        page: list[Fill] = []
        for fill in fills[start:]:
            if query.before_ns is not None and fill.ts_ns >= query.before_ns:
                break
            if query.matches(fill):
                page.append(fill)
                if len(page) == limit:
                    break
        return page

    def compliance_history(self, product_id: str) -> list[ComplianceRecord]:
        return list(self.compliance.history.get(product_id, ()))

    def cash_of(self, participant: str) -> tuple[int, int]:
        """(available, held by open buy orders) cash in minor units."""
        return self.risk.cash_available(participant), self.risk.cash_held[participant]

    def holdings_of(self, participant: str) -> list[tuple[str, int, int, int]]:
        """(symbol, expires_ns, units, units held by open sells) of each holding."""
        rows = []
        risk = self.risk
        # By instrument, not over every holder's holdings: a read of one participant's
        # balances should not grow with the number of participants.
        for symbol in self.instruments:
            by_expiry = risk.holdings.get((participant, symbol))
            if not by_expiry:
                continue
            for expires_ns, account in sorted(by_expiry.items()):
                units = risk.balances[account]
                if units:
                    rows.append((symbol, expires_ns, units, risk.licences_held[account]))
        return sorted(rows)

    def check_invariants(self) -> None:
        """Holds equal what the open orders hold; the engine agrees with the records."""
        self.engine.check_invariants()
        self.risk.check_invariants()
        self.participants.check_invariants()
        self.confidential.check_invariants()
        self.collateral.check_invariants()
        cash_held: defaultdict[str, int] = defaultdict(int)
        licences_held: defaultdict[str, int] = defaultdict(int)
        for order in self.orders.values():
            live = self.engine.open_order(order.order_id)
            assert order.is_open == (live is not None), order
            if live is not None:
                assert live.remaining == order.remaining_units, (live.remaining, order)
            if order.side is Side.BUY:
                assert order.held_minor == order.hold_price_minor * order.remaining_units
                cash_held[order.participant] += order.held_minor
            elif order.is_open:
                licences_held[order.licence_account] += order.remaining_units  # type: ignore[index]
        for participant in self.participants.by_id:
            assert cash_held[participant] == self.risk.cash_held[participant], participant
        for account, units in self.risk.licences_held.items():
            assert units == licences_held[account], account


# Every valid (side, order_type, time_in_force, self_trade_prevention) of an order as sent,
# to its members: one dictionary lookup instead of four enum conversions an order. "none"
# is absent, so that it is refused by ``_order_kinds`` in words.
_OrderKinds = tuple[Side, OrderType, TimeInForce, SelfTradePrevention]
_ORDER_KINDS: dict[tuple[str, str, str, str], _OrderKinds] = {
    (side.value, order_type.value, tif.value, stp.value): (side, order_type, tif, stp)
    for side in Side
    for order_type in OrderType
    for tif in TimeInForce
    for stp in SelfTradePrevention
    if stp is not SelfTradePrevention.NONE
}  # fmt: skip
_BUY = Side.BUY
_MARKET = OrderType.MARKET


def _order_kinds(c: cmd.SubmitOrder) -> _OrderKinds:
    """The enumerated fields of an order that ``_ORDER_KINDS`` does not hold: raises the
    error of the first field that is not valid."""
    side = enum_member(Side, c.side, "side")
    order_type = enum_member(OrderType, c.order_type, "order_type")
    tif = enum_member(TimeInForce, c.tif, "time_in_force")
    stp = enum_member(SelfTradePrevention, c.stp, "self_trade_prevention")
    if stp is SelfTradePrevention.NONE:
        raise invalid("self-trade prevention cannot be 'none': a self-trade cannot settle")
    raise AssertionError(f"{(side, order_type, tif, stp)} is missing from _ORDER_KINDS")


def _assigned(c: cmd.SubmitOrder, order_id: int) -> cmd.SubmitOrder:
    """``c`` with the order id the exchange assigned, built directly: ``dataclasses.replace``
    looks the fields up on every call, which cost a fifth of the time an order spent here."""
    return cmd.SubmitOrder(
        c.actor, c.client_order_id, order_id, c.symbol, c.side, c.order_type, c.price_minor,
        c.quantity_units, c.tif, c.expire_ns, c.post_only, c.stp,
    )  # fmt: skip


def _refuse(
    reason: RejectReason | None, instrument: Instrument, price: int | None, quantity: int | None
) -> None:
    """Raise the engine's rejection as the exchange's error, in words."""
    if reason is None:
        return
    words = reason.value.split("_", 1)[1].lower().replace("_", " ")
    # The engine's reason under its own name, but for the few the exchange names itself.
    code = Reason.__members__.get(reason.name)
    if reason is RejectReason.VALIDATION_PRICE_OFF_TICK and price is not None:
        words = (
            f"price {format_minor(price)} is not on {instrument.symbol}'s tick grid: it must "
            f"be a multiple of {format_minor(instrument.tick_size_minor)}"
        )
    elif reason is RejectReason.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE and quantity is not None:
        words = (
            f"quantity {quantity} is not a multiple of {instrument.symbol}'s lot size "
            f"{instrument.lot_size_units}"
        )
    elif reason is RejectReason.VALIDATION_AMEND_CHANGES_NOTHING:
        words = "an amendment changes price, quantity or both"
    elif reason is RejectReason.VALIDATION_PROTECTION_PRICE_REQUIRED:
        code = Reason.RISK_PROTECTION_PRICE_REQUIRED
        words = "a market buy needs a protection price (the most it may pay)"
    elif reason is RejectReason.MATCHING_UNKNOWN_ORDER:
        code = Reason.VALIDATION_UNKNOWN_ORDER
    elif reason is RejectReason.MATCHING_PHASE_REJECTS_ORDERS:
        code = Reason.VALIDATION_PHASE
    assert code is not None, f"{reason} is not one of the exchange's reasons"
    raise ExchangeError(code, f"{words} ({code})")
