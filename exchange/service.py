"""The exchange's state machine: catalogue, compliance gate, participants, risk and matching.

``Exchange.execute(command, seq, ts_ns)`` is deterministic: the same commands at the same
sequence numbers and times give the same state, the same responses and the same ledger
entries. It first checks everything that could make the command fail and raises
:class:`ExchangeError` having changed nothing; only then does it change state, apply the
command to the matching engine, and return the ledger entries that settle what happened.
The sequencer journals the command and commits the entries; recovery replays the journal
through this same method. Reads (``order``, ``orders_of``, ``book`` ...) are plain methods.
"""

from __future__ import annotations

import functools
import heapq
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from exchange import commands as cmd
from exchange.catalogue import (
    Category,
    Classification,
    DataProduct,
    Exclusivity,
    Instrument,
    LicenceTerms,
    ProductStatus,
    Quality,
    Scope,
    Territory,
    UpdateFrequency,
)
from exchange.errors import ExchangeError, Reason
from exchange.marketdata import MarketData
from exchange.money import MAX_AMOUNT_MINOR
from exchange.orders import Fill, OrderRecord, OrderStatus
from exchange.participants import TRADING_ROLES, Participant, Role
from exchange.risk import Risk
from ledger import ComplianceDecision, Entry, accounts, entries
from matching import AddInstrument as EngineAddInstrument
from matching import (
    Amend,
    Amended,
    AuctionResult,
    Cancel,
    Cancelled,
    Engine,
    Event,
    Expire,
    NewOrder,
    OrderType,
    Phase,
    Rejected,
    RejectReason,
    SealedBidPricing,
    SelfTradePrevention,
    Side,
    TimeInForce,
    Trade,
    TradingMode,
)
from matching import SetPhase as EngineSetPhase
from matching import Uncross as EngineUncross

__all__ = ["OPERATOR", "Exchange", "Outcome"]

# The exchange operator: the console (CLI bootstrap, the demo) and the exchange's own timer.
OPERATOR = "operator"
MAX_OPEN_ORDERS_PER_PARTICIPANT = 1_000
MAX_TEXT = 4_000
MAX_NAME = 200
MAX_CLIENT_ORDER_ID = 64
MAX_DURATION_MONTHS = 240
MAX_FEE_RATE_BP = 1_000
MAX_RECORD_COUNT = 10**15
COMPLIANCE_CHECKS = (
    "classification",
    "desensitisation",
    "lifecycle_and_retention",
    "risk_controls",
)
QUALITY_DIMENSIONS = ("completeness", "accuracy", "timeliness", "consistency")
_PARTICIPANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.-]{1,31}")
_COLLECTING = (Phase.PRE_OPEN, Phase.AUCTION)

E = TypeVar("E", bound=StrEnum)


@dataclass(slots=True)
class Outcome:
    """What one command did: the command as journalled (``None`` for an idempotent retry,
    which journals nothing), the result for the caller, the entries to settle, the events."""

    command: cmd.Command | None
    result: Any = None
    entries: list[Entry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ComplianceRecord:
    """One line of a product's compliance history."""

    seq: int
    ts_ns: int
    action: str  # review, regulator_decision, resubmitted, suspended, reinstated
    actor: str
    decision: str | None
    checks: dict[str, bool]
    opinion: str
    status_after: ProductStatus


def _invalid(message: str) -> ExchangeError:
    return ExchangeError(Reason.VALIDATION_INVALID, message)


@functools.cache
def _members(kind: type[E]) -> dict[str, E]:
    return {member.value: member for member in kind}


def _enum(kind: type[E], value: object, what: str) -> E:
    # A dictionary lookup: calling the enum class costs more, and every order makes four.
    member = _members(kind).get(value) if isinstance(value, str) else None
    if member is None:
        choices = ", ".join(member.value for member in kind)
        raise _invalid(f"{what} {value!r} is not one of: {choices}")
    return member


def _text(value: object, what: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise _invalid(f"{what} must be {'non-empty ' if required else ''}text of at most {limit}")
    return value


def _integer(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _invalid(f"{what} must be an integer in {low}..{high}, got {value!r}")
    return value


class Exchange:
    def __init__(self) -> None:
        self.engine = Engine()
        self.risk = Risk()
        self.market = MarketData()
        self.participants: dict[str, Participant] = {}
        self.participants_by_key: dict[str, Participant] = {}
        self.products: dict[str, DataProduct] = {}
        self.compliance_history: dict[str, list[ComplianceRecord]] = {}
        self.instruments: dict[str, Instrument] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.orders_by_participant: defaultdict[str, list[int]] = defaultdict(list)
        self.open_orders: defaultdict[str, int] = defaultdict(int)
        # (participant, client order id) -> (the submission's fingerprint, its first result)
        self.client_orders: dict[tuple[str, str], tuple[dict[str, Any], OrderRecord]] = {}
        self.fills: defaultdict[str, list[Fill]] = defaultdict(list)
        self.head_seq = 0
        self.last_ts_ns = 0
        self.entries_settled = 0  # ledger entries created by the commands applied so far
        self.next_product = 1
        self.next_order_id = 1
        self._licence_expiries: list[tuple[int, str, str, str]] = []  # (ns, account, who, sym)
        self._handlers: dict[type, Callable[[Any, int, int], Outcome]] = {
            cmd.CreateParticipant: self._create_participant,
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
            cmd.AmendOrder: self._amend_order,
            cmd.SetPhase: self._set_phase,
            cmd.Uncross: self._uncross,
            cmd.Housekeeping: self._housekeeping,
        }

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
        handler = self._handlers.get(type(command))
        if handler is None:
            raise _invalid(f"unknown command {type(command).__name__}")
        if handler != self._housekeeping and self.housekeeping_due(ts_ns):
            # Nothing may trade a lapsed licence or an expired order: expiries come first.
            raise ExchangeError(
                Reason.VALIDATION_HOUSEKEEPING_DUE,
                "expiries are due: housekeeping must run before this command",
            )
        outcome = handler(command, seq, ts_ns)
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
        return (order_expiry is not None and order_expiry <= now_ns) or bool(
            self._licence_expiries and self._licence_expiries[0][0] <= now_ns
        )

    # -- participants ----------------------------------------------------------------------

    def _actor(self, actor: str, roles: Iterable[Role]) -> Participant | None:
        """The acting participant if it holds one of ``roles``; None for the operator."""
        if actor == OPERATOR:
            return None
        participant = self.participants.get(actor)
        wanted = frozenset(roles)
        if participant is None or not participant.has_any(wanted):
            names = ", ".join(sorted(wanted))
            raise ExchangeError(Reason.AUTH_FORBIDDEN, f"this needs one of the roles: {names}")
        return participant

    def _create_participant(self, c: cmd.CreateParticipant, seq: int, ts: int) -> Outcome:
        self._actor(c.actor, [Role.ADMIN])
        if not isinstance(c.participant_id, str) or not _PARTICIPANT_ID.fullmatch(c.participant_id):
            raise _invalid(
                "participant id must be 1-32 lower-case letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if c.participant_id == OPERATOR or c.participant_id in self.participants:
            raise ExchangeError(
                Reason.VALIDATION_DUPLICATE, f"participant {c.participant_id} already exists"
            )
        name = _text(c.name, "name", MAX_NAME)
        if not c.roles:
            raise _invalid("a participant needs at least one role")
        roles = frozenset(_enum(Role, role, "role") for role in c.roles)
        if c.key_id in self.participants_by_key:
            raise ExchangeError(Reason.VALIDATION_DUPLICATE, "API key id already in use")
        participant = Participant(
            c.participant_id, name, roles, c.key_id, c.secret_sha256, created_ns=ts
        )
        self.participants[c.participant_id] = participant
        self.participants_by_key[c.key_id] = participant
        return Outcome(c, participant)

    def authenticate(self, key_id: str, secret: str) -> Participant | None:
        participant = self.participants_by_key.get(key_id)
        if participant is None or not participant.secret_matches(secret):
            return None
        return participant

    # -- catalogue and compliance ----------------------------------------------------------

    def _product(self, product_id: str) -> DataProduct:
        product = self.products.get(product_id)
        if product is None:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_PRODUCT, f"no product {product_id}")
        return product

    def _create_product(self, c: cmd.CreateProduct, seq: int, ts: int) -> Outcome:
        provider = self._actor(c.actor, [Role.PROVIDER])
        if provider is None:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only a provider creates products")
        product_id = c.product_id or f"P{self.next_product:06d}"
        if product_id != f"P{self.next_product:06d}":
            raise AssertionError(f"journal assigns {product_id}, expected P{self.next_product}")
        if not isinstance(c.quality_bp, dict) or set(c.quality_bp) != set(QUALITY_DIMENSIONS):
            raise _invalid(f"quality needs exactly the scores {', '.join(QUALITY_DIMENSIONS)}")
        quality = Quality(
            *(_integer(c.quality_bp[name], f"quality {name}", 0, 10_000)
              for name in QUALITY_DIMENSIONS)
        )  # fmt: skip
        try:
            start, end = date.fromisoformat(c.coverage_start), date.fromisoformat(c.coverage_end)
        except (TypeError, ValueError):
            raise _invalid("coverage_start and coverage_end must be ISO dates") from None
        if start > end:
            raise _invalid("coverage_start is after coverage_end")
        product = DataProduct(
            product_id=product_id,
            provider=provider.participant_id,
            title=_text(c.title, "title", MAX_NAME),
            description=_text(c.description, "description", MAX_TEXT, required=False),
            category=_enum(Category, c.category, "category"),
            region=_text(c.region, "region", MAX_NAME),
            record_count=_integer(c.record_count, "record_count", 0, MAX_RECORD_COUNT),
            coverage_start=start.isoformat(),
            coverage_end=end.isoformat(),
            update_frequency=_enum(UpdateFrequency, c.update_frequency, "update_frequency"),
            quality=quality,
            personal_information=bool(c.personal_information),
            classification=_enum(Classification, c.classification, "classification"),
            desensitised=bool(c.desensitised),
            lawful_source_attestation=_text(
                c.lawful_source_attestation, "lawful_source_attestation", MAX_TEXT,
                required=False,
            ),
            cost_basis_minor=_integer(c.cost_basis_minor, "cost_basis", 0, MAX_AMOUNT_MINOR),
            created_ns=ts,
        )  # fmt: skip
        self.next_product += 1
        self.products[product_id] = product
        self.compliance_history[product_id] = []
        return Outcome(replace(c, product_id=product_id), product)

    def _record(
        self, product: DataProduct, seq: int, ts: int, action: str, actor: str,
        decision: str | None = None, checks: dict[str, bool] | None = None, opinion: str = "",
    ) -> None:  # fmt: skip
        self.compliance_history[product.product_id].append(
            ComplianceRecord(seq, ts, action, actor, decision, checks or {}, opinion,
                             product.status)
        )  # fmt: skip

    def _expect_status(self, product: DataProduct, *statuses: ProductStatus) -> None:
        if product.status not in statuses:
            wanted = " or ".join(statuses)
            raise ExchangeError(
                Reason.COMPLIANCE_REVIEW_STATE,
                f"product {product.product_id} is {product.status}, not {wanted}",
            )

    def _resubmit_product(self, c: cmd.ResubmitProduct, seq: int, ts: int) -> Outcome:
        product = self._product(c.product_id)
        if c.actor != product.provider:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the product's provider resubmits")
        self._expect_status(product, ProductStatus.CHANGES_REQUESTED)
        classification = _enum(Classification, c.classification, "classification")
        attestation = _text(c.lawful_source_attestation, "lawful_source_attestation", MAX_TEXT)
        note = _text(c.note, "note", MAX_TEXT, required=False)
        product.classification = classification
        product.personal_information = bool(c.personal_information)
        product.desensitised = bool(c.desensitised)
        product.lawful_source_attestation = attestation
        product.status = ProductStatus.PENDING_REVIEW
        self._record(product, seq, ts, "resubmitted", c.actor, opinion=note)
        return Outcome(c, product)

    def listing_problem(self, product: DataProduct) -> tuple[Reason, str] | None:
        """Why the compliance gate would refuse to approve ``product``, or None."""
        if product.classification is Classification.CORE:
            return Reason.COMPLIANCE_CORE_DATA, "core data is never listed"
        if product.personal_information and not product.desensitised:
            return (
                Reason.COMPLIANCE_NOT_DESENSITISED,
                "the product holds personal information that has not been desensitised",
            )
        if not product.lawful_source_attestation.strip():
            return Reason.COMPLIANCE_NO_LAWFUL_SOURCE, "no lawful-source attestation"
        return None

    def _review_product(self, c: cmd.ReviewProduct, seq: int, ts: int) -> Outcome:
        reviewer = self._actor(c.actor, [Role.REVIEWER])
        product = self._product(c.product_id)
        if reviewer is not None and reviewer.participant_id == product.provider:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "a provider cannot review its own product")
        self._expect_status(product, ProductStatus.PENDING_REVIEW)
        decision = _enum(ComplianceDecision, c.decision, "decision")
        if not isinstance(c.checks, dict) or not set(c.checks) <= set(COMPLIANCE_CHECKS):
            raise _invalid(f"checks are a map of {', '.join(COMPLIANCE_CHECKS)} to true/false")
        if not all(type(value) is bool for value in c.checks.values()):
            raise _invalid("each check is true (passed) or false (failed)")
        opinion = _text(c.opinion, "opinion", MAX_TEXT)
        if decision is ComplianceDecision.APPROVED:
            problem = self.listing_problem(product)
            if problem is not None:
                raise ExchangeError(*problem)
            failed = [name for name in COMPLIANCE_CHECKS if c.checks.get(name) is not True]
            if failed:
                raise _invalid(f"an approval needs every check passed; not passed: {failed}")
            needs_regulator = product.classification is Classification.IMPORTANT
            product.status = (
                ProductStatus.AWAITING_REGULATOR if needs_regulator else ProductStatus.APPROVED
            )
        elif decision is ComplianceDecision.REJECTED:
            product.status = ProductStatus.REJECTED
        else:
            product.status = ProductStatus.CHANGES_REQUESTED
        self._record(product, seq, ts, "review", c.actor, decision, dict(c.checks), opinion)
        entry = entries.compliance_decision(
            product_id=product.product_id, reviewer=c.actor, decision=decision,
            checks=dict(c.checks), opinion=opinion, key=f"compliance:{seq}", ts_ns=ts,
        )  # fmt: skip
        return Outcome(c, product, [entry])

    def _regulator_decision(self, c: cmd.RegulatorDecision, seq: int, ts: int) -> Outcome:
        self._actor(c.actor, [Role.REGULATOR])
        product = self._product(c.product_id)
        self._expect_status(product, ProductStatus.AWAITING_REGULATOR)
        decision = _enum(ComplianceDecision, c.decision, "decision")
        if decision is ComplianceDecision.CHANGES_REQUESTED:
            raise _invalid("a regulator approves or rejects")
        opinion = _text(c.opinion, "opinion", MAX_TEXT)
        approved = decision is ComplianceDecision.APPROVED
        product.status = ProductStatus.APPROVED if approved else ProductStatus.REJECTED
        self._record(product, seq, ts, "regulator_decision", c.actor, decision, {}, opinion)
        entry = entries.compliance_decision(
            product_id=product.product_id, reviewer=c.actor, decision=decision, checks={},
            opinion=opinion, key=f"compliance:{seq}", ts_ns=ts,
        )  # fmt: skip
        return Outcome(c, product, [entry])

    def _suspend_product(self, c: cmd.SuspendProduct, seq: int, ts: int) -> Outcome:
        self._actor(c.actor, [Role.REGULATOR, Role.ADMIN])
        product = self._product(c.product_id)
        reason = _text(c.reason, "reason", MAX_TEXT)
        if product.status is ProductStatus.SUSPENDED:
            raise ExchangeError(Reason.COMPLIANCE_REVIEW_STATE, "the product is already suspended")
        product.status_before_suspension = product.status
        product.status = ProductStatus.SUSPENDED
        outcome = Outcome(c, product)
        for symbol in product.instruments:
            self._engine(EngineSetPhase(seq, ts, symbol, Phase.HALTED, cancel_resting=True),
                         outcome, seq, ts)  # fmt: skip
        self._record(product, seq, ts, "suspended", c.actor, opinion=reason)
        return outcome

    def _reinstate_product(self, c: cmd.ReinstateProduct, seq: int, ts: int) -> Outcome:
        self._actor(c.actor, [Role.REGULATOR, Role.ADMIN])
        product = self._product(c.product_id)
        reason = _text(c.reason, "reason", MAX_TEXT)
        self._expect_status(product, ProductStatus.SUSPENDED)
        assert product.status_before_suspension is not None
        product.status, product.status_before_suspension = product.status_before_suspension, None
        outcome = Outcome(c, product)
        for symbol in product.instruments:
            self._engine(EngineSetPhase(seq, ts, symbol, Phase.PRE_OPEN), outcome, seq, ts)
        self._record(product, seq, ts, "reinstated", c.actor, opinion=reason)
        return outcome

    def _list_instrument(self, c: cmd.ListInstrument, seq: int, ts: int) -> Outcome:
        product = self._product(c.product_id)
        actor = self._actor(c.actor, [Role.PROVIDER, Role.ADMIN])
        if actor is not None and Role.ADMIN not in actor.roles and c.actor != product.provider:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the product's provider lists it")
        if product.status is not ProductStatus.APPROVED:
            raise ExchangeError(
                Reason.COMPLIANCE_NOT_APPROVED,
                f"product {product.product_id} is {product.status}: only an approved product "
                "lists instruments",
            )
        if not isinstance(c.symbol, str) or not _SYMBOL.fullmatch(c.symbol):
            raise _invalid("symbol must be 2-32 upper-case letters, digits, '.' or '-'")
        if c.symbol in self.instruments:
            raise ExchangeError(Reason.VALIDATION_DUPLICATE, f"instrument {c.symbol} exists")
        terms = LicenceTerms(
            exclusivity=_enum(Exclusivity, c.exclusivity, "exclusivity"),
            duration_months=_integer(c.duration_months, "duration_months", 1, MAX_DURATION_MONTHS),
            scope=_enum(Scope, c.scope, "scope"),
            territory=_enum(Territory, c.territory, "territory"),
            transferable=bool(c.transferable),
        )
        tick = _integer(c.tick_size_minor, "tick_size", 1, MAX_AMOUNT_MINOR)
        lot = _integer(c.lot_size_units, "lot_size", 1, 10**9)
        cap = _integer(c.issuance_cap_units, "issuance_cap", 1, 10**12)
        if cap % lot:
            raise _invalid("issuance_cap must be a multiple of lot_size")
        exclusive = terms.exclusivity is Exclusivity.EXCLUSIVE
        if exclusive and cap != lot:
            raise _invalid("an exclusive licence is issued once: issuance_cap must be one lot")
        listed = [self.instruments[s].terms.exclusivity for s in product.instruments]
        if (exclusive and listed) or Exclusivity.EXCLUSIVE in listed:
            raise _invalid("a product licensed exclusively has no other instrument")
        band = []
        for value, what in ((c.price_band_low_minor, "price_band_low"),
                            (c.price_band_high_minor, "price_band_high")):  # fmt: skip
            if value is not None:
                _integer(value, what, 1, MAX_AMOUNT_MINOR)
                if value % tick:
                    raise _invalid(f"{what} is not on the tick grid")
            band.append(value)
        if band[0] is not None and band[1] is not None and band[0] > band[1]:
            raise _invalid("price_band_low is above price_band_high")
        instrument = Instrument(
            symbol=c.symbol,
            product_id=product.product_id,
            provider=product.provider,
            terms=terms,
            tick_size_minor=tick,
            lot_size_units=lot,
            trading_mode=_enum(TradingMode, c.trading_mode, "trading_mode"),
            issuance_cap_units=cap,
            fee_rate_bp=_integer(c.fee_rate_bp, "fee_rate_bp", 0, MAX_FEE_RATE_BP),
            price_band_low_minor=band[0],
            price_band_high_minor=band[1],
            sealed_bid_pricing=_enum(SealedBidPricing, c.sealed_bid_pricing, "sealed_bid_pricing"),
            listed_ns=ts,
        )
        outcome = Outcome(c, instrument)
        self._engine(EngineAddInstrument(seq, ts, instrument.spec()), outcome, seq, ts)
        self.instruments[c.symbol] = instrument
        product.instruments.append(c.symbol)
        self.market.add_instrument(c.symbol)
        self._emit(outcome, entries.licence_issuance(
            symbol=c.symbol, provider=product.provider, units=cap, issuance_cap_units=cap,
            key=f"issuance:{c.symbol}", ts_ns=ts,
        ))  # fmt: skip
        return outcome

    # -- cash ------------------------------------------------------------------------------

    def _cash_target(self, actor: str, participant_id: str, amount: int, reference: str) -> None:
        self._actor(actor, [Role.ADMIN])
        if participant_id not in self.participants:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_PARTICIPANT, f"no participant {participant_id}"
            )
        _integer(amount, "amount", 1, MAX_AMOUNT_MINOR)
        _text(reference, "reference", MAX_NAME, required=False)

    def _deposit(self, c: cmd.Deposit, seq: int, ts: int) -> Outcome:
        self._cash_target(c.actor, c.participant_id, c.amount_minor, c.reference)
        if self.risk.cash_available(c.participant_id) + c.amount_minor > MAX_AMOUNT_MINOR:
            raise _invalid("the deposit would take the balance above the maximum")
        outcome = Outcome(c)
        self._emit(outcome, entries.deposit(
            c.participant_id, c.amount_minor, key=f"deposit:{seq}", ts_ns=ts,
            reference=c.reference or None,
        ))  # fmt: skip
        outcome.result = self.risk.cash_available(c.participant_id)
        return outcome

    def _withdraw(self, c: cmd.Withdraw, seq: int, ts: int) -> Outcome:
        self._cash_target(c.actor, c.participant_id, c.amount_minor, c.reference)
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
        participant = self._actor(c.actor, TRADING_ROLES)
        if participant is None:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "the operator does not trade")
        actor = participant.participant_id
        client_order_id = _text(c.client_order_id, "client_order_id", MAX_CLIENT_ORDER_ID)
        fingerprint = cmd.command_to_record(c)
        del fingerprint["order_id"]
        previous = self.client_orders.get((actor, client_order_id))
        if previous is not None:
            if previous[0] != fingerprint:
                raise ExchangeError(
                    Reason.VALIDATION_IDEMPOTENCY_CONFLICT,
                    f"client_order_id {client_order_id} was used for a different order",
                )
            return Outcome(None, previous[1])
        instrument = self._instrument(c.symbol)
        if self.products[instrument.product_id].status is ProductStatus.SUSPENDED:
            raise ExchangeError(Reason.COMPLIANCE_SUSPENDED, f"{c.symbol}'s product is suspended")
        side = _enum(Side, c.side, "side")
        order_type = _enum(OrderType, c.order_type, "order_type")
        tif = _enum(TimeInForce, c.tif, "time_in_force")
        stp = _enum(SelfTradePrevention, c.stp, "self_trade_prevention")
        if stp is SelfTradePrevention.NONE:
            raise _invalid("self-trade prevention cannot be 'none': a self-trade cannot settle")
        for value, what in ((c.price_minor, "price"), (c.expire_ns, "expire_time")):
            if value is not None:
                _integer(value, what, 1, 2**62)
        _integer(c.quantity_units, "quantity", 1, 2**62)
        if self.open_orders[actor] >= MAX_OPEN_ORDERS_PER_PARTICIPANT:
            raise ExchangeError(
                Reason.RISK_OPEN_ORDER_LIMIT,
                f"at most {MAX_OPEN_ORDERS_PER_PARTICIPANT} open orders per participant",
            )
        order_id = c.order_id or self.next_order_id
        if order_id != self.next_order_id:
            raise AssertionError(f"journal assigns order {order_id}, expected {self.next_order_id}")
        new_order = NewOrder(
            seq, ts, order_id, actor, c.symbol, side, c.quantity_units, c.price_minor,
            order_type, tif, c.expire_ns, bool(c.post_only), stp,
        )  # fmt: skip
        _refuse(self.engine.check(new_order))
        self._refuse_self_cross(actor, c.symbol, side, c.price_minor,
                                order_type is OrderType.MARKET)  # fmt: skip
        record = OrderRecord(
            order_id, client_order_id, actor, c.symbol, side, order_type, c.price_minor,
            c.quantity_units, tif, c.expire_ns, bool(c.post_only), stp, ts, ts,
        )  # fmt: skip
        # A journalled command (replay) carries its id already; a new one gets it here.
        outcome = Outcome(c if c.order_id == order_id else replace(c, order_id=order_id))
        if side is Side.BUY:
            # A market buy without a protection price has passed the engine's check only
            # because the band's top bounds it.
            price = c.price_minor if c.price_minor is not None else instrument.price_band_high_minor
            assert price is not None
            amount = price * c.quantity_units
            self.risk.require_cash(actor, amount)
            record.reserve_price_minor, record.reserved_minor = price, amount
            reservation = entries.reservation(
                actor, amount, key=f"reserve:{seq}", ts_ns=ts, order_id=order_id
            )
        else:
            account, expires = self.risk.sell_source(participant.participant_id, instrument,
                                                     c.quantity_units, ts)  # fmt: skip
            record.licence_account, record.licence_expires_ns = account, expires
            reservation = None
        # Checks passed: from here on the command is applied.
        self.next_order_id += 1
        if reservation is not None:
            self._emit(outcome, reservation)
        else:
            self.risk.licences_reserved[record.licence_account] += c.quantity_units  # type: ignore[index]
        self.orders[order_id] = record
        self.orders_by_participant[actor].append(order_id)
        self.open_orders[actor] += 1
        self._engine(new_order, outcome, seq, ts)
        outcome.result = record.copy()
        self.client_orders[(actor, client_order_id)] = (fingerprint, outcome.result)
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
        cancel = Cancel(seq, ts, order.order_id, order.participant)
        if not order.is_open or self.engine.check(cancel) is not None:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_ORDER, f"order {c.order_id} is {order.status}"
            )
        outcome = Outcome(c)
        self._engine(cancel, outcome, seq, ts)
        outcome.result = order.copy()
        return outcome

    def _amend_order(self, c: cmd.AmendOrder, seq: int, ts: int) -> Outcome:
        order = self._own_order(c.actor, c.order_id)
        if not order.is_open:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_ORDER, f"order {c.order_id} is {order.status}"
            )
        for value, what in ((c.price_minor, "price"), (c.quantity_units, "quantity")):
            if value is not None:
                _integer(value, what, 1, 2**62)
        amend = Amend(seq, ts, order.order_id, order.participant, c.price_minor, c.quantity_units)
        _refuse(self.engine.check(amend))
        quantity = order.quantity_units if c.quantity_units is None else c.quantity_units
        remaining = quantity - order.filled_units
        if c.price_minor is not None:
            self._refuse_self_cross(order.participant, order.symbol, order.side, c.price_minor,
                                    order.order_type is OrderType.MARKET)  # fmt: skip
        outcome = Outcome(c)
        releases: dict[int, int] = {}
        if order.side is Side.BUY:
            price = order.reserve_price_minor if c.price_minor is None else c.price_minor
            change = price * remaining - order.reserved_minor
            if change > 0:
                self.risk.require_cash(order.participant, change)
                self._emit(outcome, entries.reservation(
                    order.participant, change, key=f"reserve:{seq}", ts_ns=ts,
                    order_id=order.order_id,
                ))  # fmt: skip
            elif change < 0:
                # Released with whatever the amend's own trades release: one entry per order.
                releases[order.order_id] = -change
            order.reserve_price_minor, order.reserved_minor = price, price * remaining
        else:
            extra = remaining - order.remaining_units
            account = order.licence_account
            assert account is not None
            if extra > self.risk.licences_free(account):
                raise ExchangeError(
                    Reason.RISK_INSUFFICIENT_LICENCES,
                    f"{self.risk.licences_free(account)} more licence units are free to sell",
                )
            self.risk.licences_reserved[account] += extra
        order.quantity_units = quantity
        if c.price_minor is not None:
            order.price_minor = c.price_minor
        self._engine(amend, outcome, seq, ts, releases)
        outcome.result = order.copy()
        return outcome

    # -- sessions --------------------------------------------------------------------------

    def _set_phase(self, c: cmd.SetPhase, seq: int, ts: int) -> Outcome:
        self._actor(c.actor, [Role.ADMIN])
        instrument = self._instrument(c.symbol)
        phase = _enum(Phase, c.phase, "phase")
        if phase is Phase.CONTINUOUS and instrument.trading_mode is not TradingMode.CONTINUOUS:
            raise ExchangeError(
                Reason.VALIDATION_PHASE,
                f"{c.symbol} trades by {instrument.trading_mode}, never continuously",
            )
        suspended = self.products[instrument.product_id].status is ProductStatus.SUSPENDED
        if suspended and phase is not Phase.HALTED:
            raise ExchangeError(Reason.COMPLIANCE_SUSPENDED, f"{c.symbol}'s product is suspended")
        outcome = Outcome(c)
        self._engine(EngineSetPhase(seq, ts, c.symbol, phase), outcome, seq, ts)
        outcome.result = phase
        return outcome

    def _uncross(self, c: cmd.Uncross, seq: int, ts: int) -> Outcome:
        self._actor(c.actor, [Role.ADMIN])
        self._instrument(c.symbol)
        if self.engine.phase(c.symbol) not in _COLLECTING:
            raise ExchangeError(
                Reason.VALIDATION_PHASE,
                f"{c.symbol} is {self.engine.phase(c.symbol)}: an uncross needs a call phase",
            )
        outcome = Outcome(c)
        self._engine(EngineUncross(seq, ts, c.symbol), outcome, seq, ts)
        outcome.result = next((e for e in outcome.events if type(e) is AuctionResult), None)
        return outcome

    def _housekeeping(self, c: cmd.Housekeeping, seq: int, ts: int) -> Outcome:
        if c.actor != OPERATOR:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "housekeeping is the exchange's own")
        # Accepted even with nothing due (then it changes nothing): journals written before
        # closed orders stopped calling for housekeeping hold such commands, and must replay.
        outcome = Outcome(c)
        self._engine(Expire(seq, ts), outcome, seq, ts)
        lapsing = self._licence_expiries
        lapsed = 0
        while lapsing and lapsing[0][0] <= ts:
            expires, account, holder, symbol = heapq.heappop(lapsing)
            for order_id in self.orders_by_participant[holder]:
                order = self.orders[order_id]
                if order.is_open and order.licence_account == account:
                    self._engine(Cancel(seq, ts, order_id, holder), outcome, seq, ts)
            units = self.risk.balances[account]
            if units > 0:
                self._emit(outcome, entries.licence_expiry(
                    symbol=symbol, holder=holder, expires_at_ns=expires, units=units,
                    key=f"expiry:{seq}:{lapsed}", ts_ns=ts,
                ))  # fmt: skip
                lapsed += 1
        return outcome

    # -- applying engine events ------------------------------------------------------------

    def _emit(self, outcome: Outcome, entry: Entry) -> None:
        self.risk.post(entry)
        outcome.entries.append(entry)

    def _engine(
        self,
        command: Any,
        outcome: Outcome,
        seq: int,
        ts: int,
        releases: dict[int, int] | None = None,
    ) -> None:
        """Apply an engine command that was checked to succeed, and settle its events.

        ``releases`` (order id -> cash) is what the caller already frees; each order's
        releases in one command are posted as one entry, keyed by the command and the order.
        """
        events = self.engine.apply(command)
        releases = {} if releases is None else releases
        for event in events:
            kind = type(event)
            if kind is Trade:
                self._settle(event, outcome, releases, ts)
            elif kind is Cancelled:
                self._on_cancelled(event, releases, ts)
            elif kind is Amended:
                self.orders[event.order_id].updated_ns = ts
            elif kind is Rejected:
                raise AssertionError(f"checked command rejected by the engine: {event}")
        for order_id, amount in releases.items():
            if amount:
                order = self.orders[order_id]
                self._emit(outcome, entries.release(
                    order.participant, amount, key=f"release:{seq}:{order_id}", ts_ns=ts,
                    order_id=order_id,
                ))  # fmt: skip
        outcome.events.extend(events)

    def _settle(self, trade: Trade, outcome: Outcome, releases: dict[int, int], ts: int) -> None:
        buy, sell = self.orders[trade.buy_order_id], self.orders[trade.sell_order_id]
        instrument = self.instruments[trade.symbol]
        price, quantity = trade.price, trade.quantity
        notional = price * quantity
        fee = instrument.fee_minor(notional)
        primary = sell.licence_account == accounts.issuance(trade.symbol)
        expires = instrument.expiry_ns(ts) if primary else sell.licence_expires_ns
        assert expires is not None
        self._emit(outcome, entries.trade_settlement(
            trade_id=trade.trade_id, symbol=trade.symbol, buyer=buy.participant,
            seller=sell.participant, price_minor_per_unit=price, quantity_units=quantity,
            fee_minor=fee, expires_at_ns=expires, primary=primary, ts_ns=ts,
        ))  # fmt: skip
        held = self.risk.holdings[(buy.participant, trade.symbol)]
        if expires not in held:
            account = self.risk.add_holding(buy.participant, trade.symbol, expires)
            heapq.heappush(self._licence_expiries, (expires, account, buy.participant,
                                                    trade.symbol))  # fmt: skip
        buy.reserved_minor -= buy.reserve_price_minor * quantity
        releases[buy.order_id] = (
            releases.get(buy.order_id, 0) + (buy.reserve_price_minor - price) * quantity
        )
        self.risk.licences_reserved[sell.licence_account] -= quantity  # type: ignore[index]
        for order, side in ((buy, Side.BUY), (sell, Side.SELL)):
            order.filled_units += quantity
            order.filled_notional_minor += notional
            order.updated_ns = ts
            if trade.aggressor is None:
                liquidity = "auction"
            else:
                liquidity = "taker" if trade.aggressor is side else "maker"
            self.fills[order.participant].append(
                Fill(trade.trade_id, order.order_id, order.client_order_id, trade.symbol, side,
                     price, quantity, fee if side is Side.SELL else 0, liquidity, ts)
            )  # fmt: skip
            self._update_status(order)
        self.market.on_trade(trade, ts)

    def _on_cancelled(self, event: Cancelled, releases: dict[int, int], ts: int) -> None:
        order = self.orders[event.order_id]
        order.cancelled_units += event.quantity
        order.cancel_reason = str(event.reason)
        order.updated_ns = ts
        if order.side is Side.BUY:
            amount = order.reserve_price_minor * event.quantity
            order.reserved_minor -= amount
            releases[order.order_id] = releases.get(order.order_id, 0) + amount
        else:
            self.risk.licences_reserved[order.licence_account] -= event.quantity  # type: ignore[index]
        self._update_status(order)

    def _update_status(self, order: OrderRecord) -> None:
        was_open = order.is_open
        if order.remaining_units > 0:
            order.status = OrderStatus.PARTIALLY_FILLED if order.filled_units else OrderStatus.OPEN
        elif order.cancelled_units:
            order.status = OrderStatus.CANCELLED
        else:
            order.status = OrderStatus.FILLED
        if was_open and not order.is_open:
            self.open_orders[order.participant] -= 1
            assert order.side is Side.SELL or order.reserved_minor == 0, order

    # -- reads -----------------------------------------------------------------------------

    def orders_of(
        self, participant: str, *, open_only: bool, after_id: int, limit: int
    ) -> list[OrderRecord]:
        """A participant's orders with id above ``after_id``, oldest first (a page)."""
        page: list[OrderRecord] = []
        ids = self.orders_by_participant.get(participant, [])
        start = bisect_right(ids, after_id)  # ids are ascending
        for order_id in ids[start:]:
            order = self.orders[order_id]
            if open_only and not order.is_open:
                continue
            page.append(order.copy())
            if len(page) == limit:
                break
        return page

    def order(self, participant: str, order_id: int) -> OrderRecord | None:
        order = self.orders.get(order_id)
        return order.copy() if order is not None and order.participant == participant else None

    def fills_of(self, participant: str, *, after_trade_id: int, limit: int) -> list[Fill]:
        """A participant's fills of trades after ``after_trade_id``, oldest first (a page)."""
        fills = self.fills.get(participant, [])
        # Fills are appended as trades happen, so their trade ids ascend.
        start = bisect_right(fills, after_trade_id, key=lambda fill: fill.trade_id)
        return fills[start : start + limit]

    def cash_of(self, participant: str) -> tuple[int, int]:
        """(available, reserved) cash in minor units."""
        balances = self.risk.balances
        return (balances[accounts.cash_available(participant)],
                balances[accounts.cash_reserved(participant)])  # fmt: skip

    def holdings_of(self, participant: str) -> list[tuple[str, int, int, int]]:
        """(symbol, expires_ns, units, units reserved by open sells) of each holding."""
        rows = []
        holdings = self.risk.holdings
        # By instrument, not over every holder's holdings: a read of one participant's
        # balances should not grow with the number of participants.
        for symbol in self.instruments:
            by_expiry = holdings.get((participant, symbol))
            if not by_expiry:
                continue
            for expires_ns, account in sorted(by_expiry.items()):
                units = self.risk.balances[account]
                if units:
                    rows.append((symbol, expires_ns, units, self.risk.licences_reserved[account]))
        return sorted(rows)

    def check_invariants(self) -> None:
        """Reservations equal what the open orders hold; the engine agrees with the records."""
        self.engine.check_invariants()
        reserved_cash: defaultdict[str, int] = defaultdict(int)
        reserved_licences: defaultdict[str, int] = defaultdict(int)
        for order in self.orders.values():
            live = self.engine.open_order(order.order_id)
            assert order.is_open == (live is not None), order
            if live is not None:
                assert live.remaining == order.remaining_units, (live.remaining, order)
            if order.side is Side.BUY:
                assert order.reserved_minor == order.reserve_price_minor * order.remaining_units
                reserved_cash[order.participant] += order.reserved_minor
            elif order.is_open:
                reserved_licences[order.licence_account] += order.remaining_units  # type: ignore[index]
        for participant in self.participants:
            assert reserved_cash[participant] == self.cash_of(participant)[1], participant
        for account, units in self.risk.licences_reserved.items():
            assert units == reserved_licences[account], account
            assert 0 <= units <= self.risk.balances[account], account
        for account, units in self.risk.balances.items():
            assert units >= 0 or not accounts.is_non_negative(account), account


def _refuse(reason: RejectReason | None) -> None:
    """Raise the engine's rejection as the exchange's error, in words."""
    if reason is None:
        return
    words = reason.value.split("_", 1)[1].lower().replace("_", " ")
    code = (
        Reason.VALIDATION_INVALID if reason.value.startswith("VALIDATION_")
        else Reason.MATCHING_REJECTED
    )  # fmt: skip
    if reason is RejectReason.VALIDATION_UNKNOWN_INSTRUMENT:
        code = Reason.VALIDATION_UNKNOWN_INSTRUMENT
    elif reason is RejectReason.VALIDATION_PROTECTION_PRICE_REQUIRED:
        code = Reason.RISK_PROTECTION_PRICE_REQUIRED
        words = "a market buy needs a protection price (the most it may pay)"
    elif reason is RejectReason.MATCHING_UNKNOWN_ORDER:
        code = Reason.VALIDATION_UNKNOWN_ORDER
    elif reason is RejectReason.MATCHING_PHASE_REJECTS_ORDERS:
        code = Reason.VALIDATION_PHASE
    raise ExchangeError(code, f"{words} ({reason.value})")
