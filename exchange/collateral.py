"""Data licences as loan collateral: facilities, pledges, marks, margin calls, liquidation.

:class:`CollateralDesk` is the part of :class:`~exchange.service.Exchange` that applies the
facility commands (``CreateFacility``, ``AcceptFacility``, ``DrawLoan``, ``RepayLoan``,
``PledgeLicences``, ``ReleasePledge``, ``PostMargin``, ``ReturnMargin``, ``PostValuation``,
``AttestUpdate``) and watches every facility. Like every handler it checks everything first
and raises :class:`ExchangeError` having changed nothing.

Value moves in the ledger only: a drawdown moves the lender's cash to the borrower, a
repayment the other way; a pledge moves licence units from the borrower's free holding (or,
for a provider, its unsold issuance) to a pledged account of the facility, where no order can
reach them, and a release moves them back; cash margin sits in a margin account. Facility
records, marks and alerts are state rebuilt by replaying the journal, like holds.

Marking: a pledge is worth its units times the instrument's reference price (the last trade
if it is newer than the last posted valuation, else the valuation's value) less its haircut
(``exchange.haircut``). Every facility is marked in full once a day (00:00 UTC, when interest
accrues too), on each command on it, on each valuation of its instruments and on each change
of their products (an update attested or missed, a quality downgrade, a suspension). A
trade in a pledged instrument re-marks, a second later (once for a whole burst), every
facility pledging it that the trade may have moved across a threshold. Finding them is cheap
and exact: a trade can only lower a pledge's haircut (the days since the last trade fall to
zero), so an active facility cannot reach its margin-call LTV while every price it depends
on stays above a trigger computed at its last full mark, and facilities are kept sorted by
their triggers (``_index``). Facilities in a margin call are re-marked on a rise in price
(a cure) or, past their deadline, on any trade.

Crossing a threshold raises an alert, recorded in the ledger as an entry without postings and
sent to both parties. A margin call sets a cure deadline; past it, at or above the
liquidation LTV, the exchange's housekeeping (a journalled command, like every step here)
sells the pledged units for the borrower in a call auction (sealed bids for exclusive
licences) with a reserve at the valuation's low end, uncrosses it on schedule, pays the
lender up to the debt from the proceeds and the margin, and returns the rest.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple

from exchange import commands as cmd
from exchange.catalogue import Instrument, ProductStatus, Quality, UpdateFrequency
from exchange.compliance import ComplianceDesk
from exchange.errors import ExchangeError, Reason
from exchange.facility import (
    DAY_NS,
    LIVE,
    MAX_ALERTS,
    Alert,
    AlertReason,
    Facility,
    FacilityStatus,
    Liquidation,
    Mark,
    Pledge,
    ltv_bp,
)
from exchange.haircut import (
    BP,
    HaircutInputs,
    HaircutPolicy,
    expiry_bp,
    instrument_parts,
    policy_from_mapping,
)
from exchange.marketdata import MarketData
from exchange.money import MAX_AMOUNT_MINOR, format_minor
from exchange.participants import OPERATOR, Participants, Role
from exchange.risk import Risk
from exchange.settlement import Settlement
from exchange.validation import (
    MAX_CLIENT_ORDER_ID,
    MAX_QUANTITY_UNITS,
    QUALITY_DIMENSIONS,
    integer,
    invalid,
    text,
)
from ledger import Entry, EntryKind, accounts, entries
from matching import CancelOrder as EngineCancelOrder
from matching import Engine, Phase
from matching import SetPhase as EngineSetPhase
from matching import Uncross as EngineUncross

__all__ = ["COMMANDS", "WITHHELD_VERBS", "CollateralDesk", "Valuation", "private_entry"]

COMMANDS: Final = (
    cmd.CreateFacility, cmd.AcceptFacility, cmd.DrawLoan, cmd.RepayLoan, cmd.PledgeLicences,
    cmd.ReleasePledge, cmd.PostMargin, cmd.ReturnMargin, cmd.PostValuation, cmd.AttestUpdate,
)  # fmt: skip

# What the research exports withhold (``exchange.research.tables``), as for confidential
# trades: a facility is a contract between its parties. Valuations and attested updates are
# the exchange's and the providers' public statements, and stay.
WITHHELD_VERBS: Final = frozenset(
    command.verb for command in COMMANDS
    if command not in (cmd.PostValuation, cmd.AttestUpdate)
)  # fmt: skip
_PRIVATE_KINDS: Final = frozenset({
    EntryKind.LOAN_DRAWDOWN, EntryKind.LOAN_REPAYMENT, EntryKind.PLEDGE,
    EntryKind.PLEDGE_RELEASE, EntryKind.MARGIN_DEPOSIT, EntryKind.MARGIN_RELEASE,
    EntryKind.COLLATERAL_ALERT,
})  # fmt: skip
_PLEDGE_EXPIRY_KEY: Final = "pledge_expiry:"


def private_entry(kind: str, key: str) -> bool:
    """Whether a ledger entry belongs to a facility (its parties' business)."""
    return kind in _PRIVATE_KINDS or key.startswith(_PLEDGE_EXPIRY_KEY)


MAX_FACILITIES_PER_LENDER: Final = 100_000
MAX_PLEDGES_PER_FACILITY: Final = 64
MAX_LTV_BP: Final = 50_000  # thresholds up to 500%: beyond, a facility is not secured at all
MAX_RATE_BP: Final = 10_000
MIN_CURE_PERIOD_S: Final = 60
MAX_PERIOD_S: Final = 90 * 86_400
MAX_LIQUIDATION_ATTEMPTS: Final = 3
RETRY_DELAY_NS: Final = DAY_NS  # between auctions of what did not sell
# Facilities trades may have moved are re-marked this long after the first such trade: a
# burst of trades (a repricing) re-marks each once, and a dip that recovers within the
# second does not call for margin. Reference prices settle the same way on any exchange.
REMARK_DELAY_NS: Final = 1_000_000_000
# How long a product may go without an attested update before it counts as missed: its
# declared frequency plus a day's grace. Static data is never updated.
UPDATE_GRACE_NS: Final = {
    UpdateFrequency.REAL_TIME: DAY_NS,
    UpdateFrequency.DAILY: 2 * DAY_NS,
    UpdateFrequency.MONTHLY: 32 * DAY_NS,
}
_COLLECTING: Final = (Phase.PRE_OPEN, Phase.AUCTION)
_SELLABLE: Final = (Phase.PRE_OPEN, Phase.AUCTION, Phase.CONTINUOUS, Phase.CLOSED)
_REOPENED: Final = (Phase.CONTINUOUS, Phase.CLOSED)
# Statuses whose facilities a trade may move across a threshold: an auction or a default
# waits on the schedule, not on prices.
_MONITORED: Final = frozenset({FacilityStatus.ACTIVE, FacilityStatus.MARGIN_CALL})

# What the exchange lends the desk to act on orders: place a sell order for the borrower
# (participant, symbol, licence account, its expiry, units, limit, seq, ts, outcome) -> id;
# cancel a participant's open buy orders on a symbol; apply an engine command and settle it.
PlaceSell = Callable[[str, str, str, "int | None", int, int, int, int, Any], int]
CancelBuys = Callable[[str, str, int, int, Any], None]
ApplyEngine = Callable[[Any, Any, int], None]


class Facts(NamedTuple):
    """What a mark needs to know of one instrument at one time."""

    price_minor: int  # the reference price of one licence unit
    inputs: HaircutInputs  # but the licence's expiry and the quality drop
    quality_bp: int  # the product's mean quality score now


class MarkCache:
    """What one pass of marks (one command's, the daily mark's) computes once: each
    instrument's facts, and each policy's haircut parts of each instrument."""

    __slots__ = ("facts", "parts")

    def __init__(self) -> None:
        self.facts: dict[str, Facts] = {}
        self.parts: dict[tuple[int, str], int] = {}


@dataclass(slots=True)
class Valuation:
    """A posted valuation of one licence unit of an instrument."""

    value_minor: int
    low_minor: int
    high_minor: int
    comparables: int
    method: str
    ts_ns: int


class CollateralDesk:
    def __init__(
        self,
        participants: Participants,
        compliance: ComplianceDesk,
        instruments: dict[str, Instrument],
        engine: Engine,
        risk: Risk,
        settlement: Settlement,
        market_data: MarketData,
        place_sell: PlaceSell,
        cancel_buys: CancelBuys,
        apply_engine: ApplyEngine,
    ) -> None:
        self.participants = participants
        self.compliance = compliance
        self.instruments = instruments
        self.engine = engine
        self.risk = risk
        self.settlement = settlement
        self.market_data = market_data
        self.place_sell = place_sell
        self.cancel_buys = cancel_buys
        self.apply_engine = apply_engine
        self.facilities: dict[int, Facility] = {}
        self.pledges: dict[int, Pledge] = {}
        self.valuations: dict[str, Valuation] = {}
        self.policies: dict[HaircutPolicy, HaircutPolicy] = {}  # one object per policy in use
        self.attested_ns: dict[str, int] = {}  # product -> its provider's last attestation
        # participant -> ids of the facilities it lends or borrows under (ascending)
        self.by_participant: defaultdict[str, list[int]] = defaultdict(list)
        self.client_facilities: dict[tuple[str, str], tuple[cmd.CreateFacility, int]] = {}
        # symbol -> facilities with units pledged in it
        self.by_symbol: defaultdict[str, set[int]] = defaultdict(set)
        # Trade monitoring (see _index): symbol -> [(trigger price, facility id)], ascending,
        # of the active facilities with a debt; symbol -> facilities marked on every trade.
        self.triggers: defaultdict[str, list[tuple[float, int]]] = defaultdict(list)
        self.trigger_of: dict[int, list[tuple[str, float]]] = {}
        self.watched: defaultdict[str, set[int]] = defaultdict(set)
        # Symbols traded by the command being applied (Settlement adds them), and the symbols
        # that have pledges (which Settlement checks).
        self.touched: set[str] = settlement.collateral_touched
        self.pledged_symbols: set[str] = settlement.collateral_symbols
        # (due_ns, facility id): deadlines, auctions, maturities to look at then (stale
        # entries are dropped when popped); (expires_ns, pledge id) of pledged licences.
        self.timers: list[tuple[int, int]] = []
        self.expiries: list[tuple[int, int]] = []
        self.next_daily_ns: int | None = None
        # Facilities a trade may have moved across a threshold, and when they are re-marked.
        self.remark_pending: set[int] = set()
        self.remark_due_ns: int | None = None
        self.next_facility_id = 1
        self.next_pledge_id = 1
        self.next_alert_id = 1

    # -- the entry point -------------------------------------------------------------------

    def execute(self, c: Any, seq: int, ts: int, outcome: Any) -> Any:
        """Apply one facility command; returns its result (the facility, or the valuation)."""
        kind = type(c)
        if kind is cmd.PostValuation:
            return self._post_valuation(c, ts, outcome)
        if kind is cmd.AttestUpdate:
            return self._attest_update(c, ts, outcome)
        if kind is cmd.CreateFacility:
            return self._create(c, ts, outcome)
        facility = self._facility_of(c.actor, c.facility_id)
        handler = {
            cmd.AcceptFacility: self._accept,
            cmd.DrawLoan: self._draw,
            cmd.RepayLoan: self._repay,
            cmd.PledgeLicences: self._pledge,
            cmd.ReleasePledge: self._release,
            cmd.PostMargin: self._post_margin,
            cmd.ReturnMargin: self._return_margin,
        }[kind]
        handler(facility, c, seq, ts, outcome)
        return facility

    # -- facilities ------------------------------------------------------------------------

    def _facility_of(self, actor: str, facility_id: object) -> Facility:
        facility = self.facilities.get(facility_id) if type(facility_id) is int else None  # type: ignore[call-overload]
        if facility is None or actor not in (facility.lender, facility.borrower):
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_FACILITY, f"no facility {facility_id}")
        return facility

    def _create(self, c: cmd.CreateFacility, ts: int, outcome: Any) -> Facility | None:
        self.participants.actor(c.actor, [Role.LENDER])
        if c.actor == OPERATOR:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only a lender offers a facility")
        try:
            policy = policy_from_mapping(c.haircut)
        except ValueError as error:
            raise invalid(str(error)) from None
        # The offer as first seen, as journalled: without the id the exchange assigns, with
        # the whole policy (a journalled offer spells out the defaults a live one may omit).
        submitted = replace(c, facility_id=0, haircut=policy.to_mapping())
        if c.client_facility_id is not None:
            client_id = text(c.client_facility_id, "client_facility_id", MAX_CLIENT_ORDER_ID)
            previous = self.client_facilities.get((c.actor, client_id))
            if previous is not None:
                if previous[0] != submitted:
                    raise ExchangeError(
                        Reason.VALIDATION_IDEMPOTENCY_CONFLICT,
                        f"client_facility_id {client_id} was used for a different facility",
                    )
                outcome.command = None
                return self.facilities[previous[1]]
        if c.borrower not in self.participants.by_id:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_PARTICIPANT, f"no participant {c.borrower!r}"
            )
        if c.borrower == c.actor:
            raise invalid("a lender cannot lend to itself")
        if len(self.by_participant[c.actor]) >= MAX_FACILITIES_PER_LENDER:
            raise invalid(f"at most {MAX_FACILITIES_PER_LENDER} facilities per participant")
        limit = integer(c.limit_minor, "limit", 1, MAX_AMOUNT_MINOR)
        rate = integer(c.rate_bp, "rate_bp", 0, MAX_RATE_BP)
        maturity = integer(c.maturity_ns, "maturity", 0, 2**63 - 1)
        if maturity <= ts:
            raise invalid("maturity must be in the future")
        initial = integer(c.initial_ltv_bp, "initial_ltv_bp", 1, MAX_LTV_BP)
        call = integer(c.margin_call_ltv_bp, "margin_call_ltv_bp", 1, MAX_LTV_BP)
        liquidation = integer(c.liquidation_ltv_bp, "liquidation_ltv_bp", 1, MAX_LTV_BP)
        if not initial < call < liquidation:
            raise invalid(
                "LTV thresholds must rise: initial < margin call < liquidation, got "
                f"{initial} / {call} / {liquidation} bp"
            )
        cure = integer(c.cure_period_s, "cure_period_s", MIN_CURE_PERIOD_S, MAX_PERIOD_S)
        auction = integer(c.auction_duration_s, "auction_duration_s", 60, MAX_PERIOD_S)
        facility_id = self.next_facility_id
        if c.facility_id and c.facility_id != facility_id:
            raise AssertionError(
                f"journal assigns facility {c.facility_id}, expected {facility_id}"
            )
        policy = self.policies.setdefault(policy, policy)
        facility = Facility(
            facility_id, c.actor, c.borrower, limit, rate, maturity, initial, call, liquidation,
            cure * 1_000_000_000, auction * 1_000_000_000, policy, ts, c.client_facility_id,
        )  # fmt: skip
        self.next_facility_id += 1
        self.facilities[facility_id] = facility
        self.by_participant[c.actor].append(facility_id)
        self.by_participant[c.borrower].append(facility_id)
        # The journal records the id and the whole policy, defaults included.
        outcome.command = replace(c, facility_id=facility_id, haircut=policy.to_mapping())
        if c.client_facility_id is not None:
            self.client_facilities[(c.actor, c.client_facility_id)] = (submitted, facility_id)
        heapq.heappush(self.timers, (maturity, facility_id))
        return facility

    def _accept(self, f: Facility, c: cmd.AcceptFacility, seq: int, ts: int, outcome: Any) -> None:
        if c.actor != f.borrower:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the borrower accepts a facility")
        self._require(f, (FacilityStatus.PROPOSED,), "accepted")
        f.status = FacilityStatus.ACTIVE
        f.accrued_day = ts // DAY_NS
        if self.next_daily_ns is None:
            self.next_daily_ns = (ts // DAY_NS + 1) * DAY_NS
        self._mark(f, ts, "facility", outcome, record=True)

    def _draw(self, f: Facility, c: cmd.DrawLoan, seq: int, ts: int, outcome: Any) -> None:
        self._borrower(f, c.actor, "draws")
        self._require(f, (FacilityStatus.ACTIVE,), "drawn")
        if ts >= f.maturity_ns:
            raise ExchangeError(Reason.VALIDATION_FACILITY_STATE, "the facility has matured")
        amount = integer(c.amount_minor, "amount", 1, MAX_AMOUNT_MINOR)
        if f.drawn_minor + amount > f.limit_minor:
            raise ExchangeError(
                Reason.RISK_FACILITY_LIMIT,
                f"{format_minor(f.limit_minor - f.drawn_minor)} is left to draw of the "
                f"{format_minor(f.limit_minor)} limit",
            )
        value = self.value_now(f, ts)
        after = ltv_bp(f.debt_minor + amount, value)
        if after is None or after > f.initial_ltv_bp:
            most = value * f.initial_ltv_bp // BP - f.debt_minor
            raise ExchangeError(
                Reason.RISK_LTV_LIMIT,
                f"drawing {format_minor(amount)} would take the LTV to "
                f"{_percent(after)}, above the initial {_percent(f.initial_ltv_bp)}: at most "
                f"{format_minor(max(0, most))} can be drawn against the collateral now",
            )
        if amount > self.risk.cash_available(f.lender):
            raise ExchangeError(
                Reason.RISK_INSUFFICIENT_CASH,
                f"the lender has {format_minor(self.risk.cash_available(f.lender))} of "
                f"available cash: it cannot lend {format_minor(amount)} now",
            )
        self._emit(outcome, entries.collateral_transfer(
            EntryKind.LOAN_DRAWDOWN, facility_id=f.facility_id, source=accounts.cash(f.lender),
            destination=accounts.cash(f.borrower), asset=accounts.CASH, amount_units=amount,
            key=f"drawdown:{seq}", ts_ns=ts, reason="drawdown",
        ))  # fmt: skip
        f.drawn_minor += amount
        self._mark(f, ts, "facility", outcome, record=True)

    def _repay(self, f: Facility, c: cmd.RepayLoan, seq: int, ts: int, outcome: Any) -> None:
        self._borrower(f, c.actor, "repays")
        self._require(f, tuple(LIVE), "repaid")
        amount = integer(c.amount_minor, "amount", 1, MAX_AMOUNT_MINOR)
        if amount > f.debt_minor:
            raise ExchangeError(
                Reason.RISK_FACILITY_LIMIT,
                f"the debt is {format_minor(f.debt_minor)}: a repayment cannot exceed it",
            )
        self.risk.require_cash(f.borrower, amount)
        self._repayment(f, accounts.cash(f.borrower), amount, "repayment", f"repayment:{seq}",
                        ts, outcome)  # fmt: skip
        self._mark(f, ts, "facility", outcome, record=True)
        if f.debt_minor == 0 and f.status is FacilityStatus.DEFAULTED:
            f.status = FacilityStatus.ACTIVE

    def _pledge(self, f: Facility, c: cmd.PledgeLicences, seq: int, ts: int, outcome: Any) -> None:
        self._borrower(f, c.actor, "pledges")
        self._require(f, (FacilityStatus.ACTIVE, FacilityStatus.MARGIN_CALL), "pledged to")
        instrument = self.instruments.get(c.symbol) if isinstance(c.symbol, str) else None
        if instrument is None:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_INSTRUMENT, f"no instrument {c.symbol!r}")
        units = integer(c.quantity_units, "quantity", 1, MAX_QUANTITY_UNITS)
        if units % instrument.lot_size_units:
            raise invalid(
                f"quantity {units} is not a multiple of {c.symbol}'s lot size "
                f"{instrument.lot_size_units}: pledged licences must be sellable"
            )
        product = self.compliance.products[instrument.product_id]
        if product.status is ProductStatus.SUSPENDED:
            raise ExchangeError(Reason.COMPLIANCE_SUSPENDED, f"{c.symbol}'s product is suspended")
        if c.expires_ns is None:
            if c.actor != instrument.provider:
                raise invalid("only the provider pledges unsold licences (expires_ns null)")
            source = accounts.issuance(c.symbol)
        else:
            expires = integer(c.expires_ns, "expires_ns", 0, 2**63 - 1)
            if not instrument.terms.transferable:
                raise ExchangeError(
                    Reason.RISK_NOT_TRANSFERABLE,
                    f"licences of {c.symbol} are not transferable: they could not be sold to "
                    "repay the loan, so they cannot be pledged",
                )
            if expires <= ts:
                raise invalid("that holding has expired")
            source = self.risk.holdings.get((c.actor, c.symbol), {}).get(expires)
            if source is None:
                raise ExchangeError(
                    Reason.RISK_INSUFFICIENT_LICENCES,
                    f"you hold no licences of {c.symbol} expiring at {expires}",
                )
        free = self.risk.licences_free(source)
        if units > free:
            raise ExchangeError(
                Reason.RISK_INSUFFICIENT_LICENCES,
                f"{free} free units of that holding of {c.symbol} can be pledged, not {units} "
                "(units held by open sell orders or pledged already are not free)",
            )
        pledged = accounts.pledged(c.actor, f.facility_id, c.symbol, c.expires_ns)
        pledge = next((p for p in f.pledges.values() if p.account == pledged), None)
        if pledge is None and len(f.pledges) >= MAX_PLEDGES_PER_FACILITY:
            raise invalid(f"at most {MAX_PLEDGES_PER_FACILITY} pledges per facility")
        self._emit(outcome, entries.collateral_transfer(
            EntryKind.PLEDGE, facility_id=f.facility_id, source=source, destination=pledged,
            asset=accounts.licence_asset(c.symbol), amount_units=units, key=f"pledge:{seq}",
            ts_ns=ts, reason="pledge",
        ))  # fmt: skip
        if pledge is None:
            pledge_id = self.next_pledge_id
            if c.pledge_id and c.pledge_id != pledge_id:
                raise AssertionError(f"journal assigns pledge {c.pledge_id}, expected {pledge_id}")
            self.next_pledge_id += 1
            pledge = Pledge(pledge_id, f.facility_id, c.symbol, c.expires_ns, 0, pledged, source,
                            ts, _mean_quality(product.quality))  # fmt: skip
            f.pledges[pledge_id] = pledge
            self.pledges[pledge_id] = pledge
            if c.expires_ns is not None:
                heapq.heappush(self.expiries, (c.expires_ns, pledge_id))
        elif c.pledge_id and c.pledge_id != pledge.pledge_id:
            raise AssertionError(f"journal adds to pledge {c.pledge_id}, not {pledge.pledge_id}")
        pledge.units += units
        self.risk.pledged[(c.actor, c.symbol)] += units
        outcome.command = replace(c, pledge_id=pledge.pledge_id)
        self._index_symbol(f.facility_id, c.symbol, add=True)
        if c.expires_ns is not None and c.expires_ns < f.maturity_ns:
            self._alert(f, AlertReason.LICENCE_EXPIRES_BEFORE_MATURITY, ts, outcome,
                        f"{units} units of {c.symbol} expire before the facility matures: they "
                        "count at zero from their expiry", symbol=c.symbol,
                        flag=f"expiring:{pledge.pledge_id}")  # fmt: skip
        self._mark(f, ts, "facility", outcome, record=True)

    def _release(self, f: Facility, c: cmd.ReleasePledge, seq: int, ts: int, outcome: Any) -> None:
        pledge = f.pledges.get(c.pledge_id) if type(c.pledge_id) is int else None
        if pledge is None:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_PLEDGE,
                f"facility {f.facility_id} has no pledge {c.pledge_id}",
            )
        units = integer(c.quantity_units, "quantity", 1, MAX_QUANTITY_UNITS)
        free = pledge.units - pledge.at_auction_units
        if units > free:
            raise invalid(f"{free} units of pledge {pledge.pledge_id} can be released, not {units}")
        lot = self.instruments[pledge.symbol].lot_size_units
        if units % lot:
            raise invalid(f"quantity {units} is not a multiple of the lot size {lot}")
        if f.status is FacilityStatus.LIQUIDATING:
            raise ExchangeError(
                Reason.VALIDATION_FACILITY_STATE, "the collateral is being liquidated"
            )
        if c.actor == f.borrower and f.debt_minor > 0:
            self._require(f, (FacilityStatus.ACTIVE,), "released from by the borrower")
            marked = {p.pledge_id: value for p, _, value in self._marked(f, ts, MarkCache())}
            value = sum(marked.values()) + f.margin_minor
            pledged_value = marked[pledge.pledge_id]
            remaining = (pledge.units - units) * pledged_value // pledge.units
            after = ltv_bp(f.debt_minor, value - pledged_value + remaining)
            if after is None or after > f.initial_ltv_bp:
                raise ExchangeError(
                    Reason.RISK_LTV_LIMIT,
                    f"releasing {units} units would take the LTV to {_percent(after)}, above "
                    f"the initial {_percent(f.initial_ltv_bp)}: repay first",
                )
        self._unpledge(f, pledge, units, "release", f"release:{seq}", ts, outcome)
        self._mark(f, ts, "facility", outcome, record=True)

    def _post_margin(self, f: Facility, c: cmd.PostMargin, seq: int, ts: int, outcome: Any) -> None:
        self._borrower(f, c.actor, "posts margin")
        self._require(f, (FacilityStatus.ACTIVE, FacilityStatus.MARGIN_CALL), "given margin")
        amount = integer(c.amount_minor, "amount", 1, MAX_AMOUNT_MINOR)
        self.risk.require_cash(f.borrower, amount)
        self._emit(outcome, entries.collateral_transfer(
            EntryKind.MARGIN_DEPOSIT, facility_id=f.facility_id,
            source=accounts.cash(f.borrower),
            destination=accounts.margin(f.borrower, f.facility_id), asset=accounts.CASH,
            amount_units=amount, key=f"margin:{seq}", ts_ns=ts, reason="margin",
        ))  # fmt: skip
        f.margin_minor += amount
        self._mark(f, ts, "facility", outcome, record=True)

    def _return_margin(
        self, f: Facility, c: cmd.ReturnMargin, seq: int, ts: int, outcome: Any
    ) -> None:
        amount = integer(c.amount_minor, "amount", 1, MAX_AMOUNT_MINOR)
        if amount > f.margin_minor:
            raise invalid(f"the margin is {format_minor(f.margin_minor)}")
        if f.status is FacilityStatus.LIQUIDATING:
            raise ExchangeError(
                Reason.VALIDATION_FACILITY_STATE, "the collateral is being liquidated"
            )
        if c.actor == f.borrower and f.debt_minor > 0:
            self._require(f, (FacilityStatus.ACTIVE,), "given back margin")
            after = ltv_bp(f.debt_minor, self.value_now(f, ts) - amount)
            if after is None or after > f.initial_ltv_bp:
                raise ExchangeError(
                    Reason.RISK_LTV_LIMIT,
                    f"returning {format_minor(amount)} would take the LTV to {_percent(after)},"
                    f" above the initial {_percent(f.initial_ltv_bp)}",
                )
        self._margin_back(f, amount, f"margin_return:{seq}", ts, outcome)
        self._mark(f, ts, "facility", outcome, record=True)

    def _borrower(self, f: Facility, actor: str, what: str) -> None:
        if actor != f.borrower:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, f"only the borrower {what}")

    @staticmethod
    def _require(f: Facility, statuses: tuple[FacilityStatus, ...], what: str) -> None:
        if f.status not in statuses:
            raise ExchangeError(
                Reason.VALIDATION_FACILITY_STATE,
                f"facility {f.facility_id} is {f.status}: it cannot be {what} now",
            )

    # -- valuations and products -----------------------------------------------------------

    def _post_valuation(self, c: cmd.PostValuation, ts: int, outcome: Any) -> Valuation:
        self.participants.actor(c.actor, [Role.ADMIN])
        if c.symbol not in self.instruments:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_INSTRUMENT, f"no instrument {c.symbol!r}")
        value = integer(c.value_minor, "value", 1, MAX_AMOUNT_MINOR)
        low = integer(c.low_minor, "low", 1, MAX_AMOUNT_MINOR)
        high = integer(c.high_minor, "high", 1, MAX_AMOUNT_MINOR)
        if not low <= value <= high:
            raise invalid("a valuation's range must hold its value: low <= value <= high")
        comparables = integer(c.comparables, "comparables", 0, 10_000)
        method = text(c.method, "method", 32)
        valuation = Valuation(value, low, high, comparables, method, ts)
        self.valuations[c.symbol] = valuation
        self._remark_symbols([c.symbol], ts, "valuation", outcome)
        return valuation

    def _attest_update(self, c: cmd.AttestUpdate, ts: int, outcome: Any) -> Any:
        product = self.compliance.product(c.product_id)
        if c.actor != product.provider:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the product's provider attests")
        if c.quality_bp is not None:
            if not isinstance(c.quality_bp, dict) or set(c.quality_bp) != set(QUALITY_DIMENSIONS):
                raise invalid(f"quality needs exactly the scores {', '.join(QUALITY_DIMENSIONS)}")
            product.quality = Quality(*(
                integer(c.quality_bp[name], f"quality {name}", 0, BP) for name in QUALITY_DIMENSIONS
            ))  # fmt: skip
        self.attested_ns[product.product_id] = ts
        self._remark_symbols(product.instruments, ts, "product", outcome)
        return product

    def on_product(self, product_id: str, ts: int, outcome: Any) -> None:
        """A product was suspended or reinstated: re-mark what is pledged of it."""
        self._remark_symbols(self.compliance.products[product_id].instruments, ts, "product",
                             outcome)  # fmt: skip

    def _remark_symbols(self, symbols: list[str], ts: int, cause: str, outcome: Any) -> None:
        ids = sorted({fid for symbol in symbols for fid in self.by_symbol.get(symbol, ())})
        for facility_id in ids:
            self._mark(self.facilities[facility_id], ts, cause, outcome, record=True)

    # -- marking ---------------------------------------------------------------------------

    def price_of(self, symbol: str) -> int:
        """The reference price of one licence unit: the last trade if newer than the last
        valuation, else the valuation's value; 0 with neither."""
        ticker = self.market_data.tickers[symbol]
        valuation = self.valuations.get(symbol)
        if ticker.last_trade_ns is not None and (
            valuation is None or ticker.last_trade_ns > valuation.ts_ns
        ):
            return ticker.last_price_minor  # type: ignore[return-value]
        return 0 if valuation is None else valuation.value_minor

    def _facts(self, symbol: str, ts: int) -> Facts:
        """The instrument's reference price, its haircut inputs but the licence's expiry and
        the quality drop, and its product's mean quality now."""
        valuation = self.valuations.get(symbol)
        ticker = self.market_data.tickers[symbol]
        instrument = self.instruments[symbol]
        product = self.compliance.products[instrument.product_id]
        grace = UPDATE_GRACE_NS.get(product.update_frequency)
        last_update = self.attested_ns.get(product.product_id, product.created_ns)
        inputs = HaircutInputs(
            width_bp=None if valuation is None else
            (valuation.high_minor - valuation.low_minor) * BP // valuation.value_minor,
            days_since_trade=None if ticker.last_trade_ns is None else
            (ts - ticker.last_trade_ns) // DAY_NS,
            comparables=None if valuation is None else valuation.comparables,
            update_missed=grace is not None and ts - last_update > grace,
            suspended=product.status is ProductStatus.SUSPENDED,
        )  # fmt: skip
        return Facts(self.price_of(symbol), inputs, _mean_quality(product.quality))

    def _marked(self, f: Facility, ts: int, cache: MarkCache) -> Iterator[tuple[Pledge, int, int]]:
        """Each pledge of ``f`` with units, marked at ``ts``: (pledge, haircut bp, value).

        This is the monitor's inner loop: the haircut is ``exchange.haircut.haircut``'s, with
        the instrument's parts computed once per policy and symbol in a pass over many
        facilities (``test_haircut_parts_add_up``)."""
        policy = f.policy
        key = id(policy)  # policies are interned (_create): equal ones are one object
        share = policy.quality_drop_share_pct
        facts, parts = cache.facts, cache.parts
        for pledge in f.pledges.values():
            units = pledge.units
            if not units:
                continue
            symbol = pledge.symbol
            known = facts.get(symbol)
            if known is None:
                known = facts[symbol] = self._facts(symbol, ts)
            shared = parts.get((key, symbol))
            if shared is None:
                shared = parts[(key, symbol)] = sum(instrument_parts(policy, known.inputs))
            cut = shared + max(0, pledge.quality_at_pledge_bp - known.quality_bp) * share // 100
            if pledge.expires_ns is not None:
                cut += expiry_bp(policy, (pledge.expires_ns - ts) // DAY_NS)
            if cut > BP:
                cut = BP
            yield pledge, cut, units * known.price_minor * (BP - cut) // BP

    def value_now(self, f: Facility, ts: int) -> int:
        """``f``'s collateral (licences and margin) marked at ``ts``, changing nothing (a
        refused command may look, and must leave no trace)."""
        return sum(value for _, _, value in self._marked(f, ts, MarkCache())) + f.margin_minor

    def _value(self, f: Facility, ts: int, cache: MarkCache) -> None:
        """Mark every pledge of ``f`` at ``ts``: its haircut and value, and the total."""
        for pledge in f.pledges.values():
            pledge.value_minor = 0
        total = 0
        rise_from = {}
        facts = cache.facts
        for pledge, cut, value in self._marked(f, ts, cache):
            pledge.haircut_bp, pledge.value_minor = cut, value
            total += value
            # The price a trade must beat to possibly cure a call: one at or below it cannot
            # raise the value, unless it lowers a haircut for illiquidity (then 0).
            known = facts[pledge.symbol]
            traded_today = known.inputs.days_since_trade == 0
            rise_from[pledge.symbol] = known.price_minor if traded_today else 0
        f.collateral_minor = total
        f.rise_from = rise_from

    def _mark(
        self,
        f: Facility,
        ts: int,
        cause: str,
        outcome: Any,
        *,
        record: bool = False,
        cache: MarkCache | None = None,
    ) -> None:
        """Mark ``f`` in full, act on the thresholds it crossed, and re-index it. The daily
        mark and a change of a pledged product also look for deterioration: a missed update
        is a matter of days, so it is raised by the day's mark, whatever else marks the
        facility in between (its haircut counts at once)."""
        if cache is None:
            cache = MarkCache()
        self._value(f, ts, cache)
        if cause in _PRODUCT_WATCH:
            self._deterioration(f, ts, outcome, cache)
        changed = self._thresholds(f, ts, outcome)
        if record or changed:
            f.record(Mark(ts, f.debt_minor, f.value_minor, f.ltv_bp, cause))
        self._index(f, cache)

    def _deterioration(
        self,
        f: Facility,
        ts: int,
        outcome: Any,
        cache: MarkCache,
    ) -> None:
        """Raise an alert, once, for each pledged product that deteriorated (and clear it
        when it recovers)."""
        flags = f.flags
        for pledge in f.pledges.values():
            if not pledge.units:
                continue
            symbol = pledge.symbol
            known = cache.facts.get(symbol) or self._facts(symbol, ts)
            inputs, quality = known.inputs, known.quality_bp
            standing = (inputs.update_missed, quality < pledge.quality_at_pledge_bp,
                        inputs.suspended)  # fmt: skip
            if not (any(standing) or flags):
                continue
            for reason, now in zip(_DETERIORATIONS, standing, strict=True):
                flag = f"{reason}:{symbol}"
                if now and flag not in flags:
                    self._alert(f, reason, ts, outcome, _deterioration_words(
                        reason, symbol, quality, pledge.quality_at_pledge_bp
                    ), symbol=symbol, flag=flag)  # fmt: skip
                elif not now and flag in flags:
                    flags.discard(flag)
                    if reason is AlertReason.PRODUCT_SUSPENDED:
                        self._alert(f, AlertReason.PRODUCT_REINSTATED, ts, outcome,
                                    f"{symbol}'s product is reinstated", symbol=symbol)  # fmt: skip

    def _thresholds(self, f: Facility, ts: int, outcome: Any) -> bool:
        """Move ``f`` between active and margin call, or make its liquidation due, as its
        LTV now says; whether its status changed."""
        debt, value = f.debt_minor, f.value_minor

        # At or above a threshold t: debt / value >= t / BP (no collateral value: above all).
        def reaches(threshold_bp: int) -> bool:
            return debt > 0 and debt * BP >= threshold_bp * value

        if f.status is FacilityStatus.ACTIVE and reaches(f.margin_call_ltv_bp):
            f.status = FacilityStatus.MARGIN_CALL
            f.call_deadline_ns = ts + f.cure_period_ns
            heapq.heappush(self.timers, (f.call_deadline_ns, f.facility_id))
            self._alert(f, AlertReason.MARGIN_CALL, ts, outcome,
                        f"LTV {_percent(f.ltv_bp)} reached the margin call at "
                        f"{_percent(f.margin_call_ltv_bp)}: repay, pledge more or post cash "
                        "margin by the deadline", deadline_ns=f.call_deadline_ns)  # fmt: skip
            return True
        if f.status is FacilityStatus.MARGIN_CALL:
            if not reaches(f.margin_call_ltv_bp):
                f.status = FacilityStatus.ACTIVE
                f.call_deadline_ns = None
                self._alert(
                    f,
                    AlertReason.CURED,
                    ts,
                    outcome,
                    f"LTV {_percent(f.ltv_bp)} is below the margin call again",
                )
                return True
            deadline = f.call_deadline_ns
            assert deadline is not None
            if ts >= deadline and reaches(f.liquidation_ltv_bp) and not f.liquidation_due:
                f.liquidation_due = True
                heapq.heappush(self.timers, (ts, f.facility_id))
                return True
        return False

    # -- monitoring on trades --------------------------------------------------------------

    def _index(self, f: Facility, cache: MarkCache) -> None:
        """File ``f`` for trade monitoring: by a trigger price per pledged symbol if it is
        active with a debt, marked on every trade in its symbols if in a call or at auction,
        not at all otherwise (no debt, closed).

        The triggers share out the facility's slack. At its last full mark the collateral is
        worth at least ``bound = sum(price_i * weight_i) - pledges`` (weight: units times one
        less the haircut; a pledge's value is rounded down by under a minor unit), and its
        LTV reaches the call when the value falls to ``at_call = debt / call - margin``.
        Between full marks a trade only lowers haircuts, so while every symbol's price stays
        above ``price_i * (1 - slack / sum(price_j * weight_j))``, with ``slack = bound -
        at_call``, the value stays above ``at_call``: a facility is re-marked on a trade only
        when a price has fallen through its trigger, and the re-mark decides in integers.
        """
        facility_id = f.facility_id
        triggers = self.triggers
        for symbol, trigger in self.trigger_of.pop(facility_id, ()):
            keys = triggers[symbol]
            del keys[bisect_left(keys, (trigger, facility_id))]
        watched = self.watched
        weights: dict[str, float] = {}
        pledges = 0
        for pledge in f.pledges.values():
            symbol = pledge.symbol
            ids = watched.get(symbol)
            if ids:
                ids.discard(facility_id)
            if pledge.units:
                weights[symbol] = (
                    weights.get(symbol, 0.0) + pledge.units * (BP - pledge.haircut_bp) / BP
                )
                pledges += 1
        status = f.status
        if not weights or status not in _MONITORED:
            return
        debt = f.debt_minor
        if status is FacilityStatus.ACTIVE:
            if not debt:
                return
            facts = cache.facts
            prices = {
                symbol: facts[symbol].price_minor if symbol in facts else self.price_of(symbol)
                for symbol in weights
            }
            worth = sum(prices[symbol] * weight for symbol, weight in weights.items())
            slack = worth - pledges - (debt * BP / f.margin_call_ltv_bp - f.margin_minor)
            if slack > 0:
                fall = 1 - slack / worth  # each price may fall to this share of itself
                filed = []
                for symbol in sorted(weights):
                    # floats only ever widen the net: the trigger errs upwards
                    trigger = prices[symbol] * fall * (1 + 1e-9) + 1e-6
                    insort(triggers[symbol], (trigger, facility_id))
                    filed.append((symbol, trigger))
                self.trigger_of[facility_id] = filed
                return
        for symbol in weights:
            watched[symbol].add(facility_id)

    def on_trades(self, ts: int) -> None:
        """Note for re-marking the facilities pledging a symbol the command traded that the
        trade may have moved across a threshold: active ones whose trigger the price fell
        through; ones in a margin call if past their deadline (the liquidation LTV) or if
        the price rose (a cure); the rest (none, or too close to call) every time. They are
        re-marked together :data:`REMARK_DELAY_NS` after the first trade in a pledged symbol
        since the last such pass, by the exchange's housekeeping: a burst of trades re-marks
        each facility once, and an order costs only the trigger lookups."""
        due = self.remark_pending
        facilities = self.facilities
        for symbol in self.touched:
            price = self.price_of(symbol)
            for facility_id in self.watched.get(symbol, ()):
                f = facilities[facility_id]
                deadline = f.call_deadline_ns
                if deadline is None or ts >= deadline or price > f.rise_from.get(symbol, 0):
                    due.add(facility_id)
            keys = self.triggers.get(symbol)
            if keys:
                start = bisect_left(keys, (float(price), -1))
                due.update(facility_id for _, facility_id in keys[start:])
        self.touched.clear()
        # A pass a second after the first trade in a pledged symbol, whether or not a facility
        # is due: the cadence of marks is the market's, not the index's.
        if self.remark_due_ns is None:
            self.remark_due_ns = ts + REMARK_DELAY_NS

    def _remark_pending(self, ts: int, outcome: Any) -> None:
        cache = MarkCache()
        for facility_id in sorted(self.remark_pending):
            f = self.facilities[facility_id]
            if f.status in LIVE:
                self._mark(f, ts, "trade", outcome, cache=cache)
        self.remark_pending.clear()
        self.remark_due_ns = None

    # -- the exchange's timer --------------------------------------------------------------

    def due(self, now_ns: int) -> bool:
        """Whether a daily mark, a re-mark after trades, a deadline, an auction, a maturity
        or an expiry is due."""
        return bool(
            (self.next_daily_ns is not None and self.next_daily_ns <= now_ns)
            or (self.remark_due_ns is not None and self.remark_due_ns <= now_ns)
            or (self.timers and self.timers[0][0] <= now_ns)
            or (self.expiries and self.expiries[0][0] <= now_ns)
        )

    def housekeeping(self, seq: int, ts: int, outcome: Any) -> None:
        """What is due by ``ts``: pledged licences lapsing, the daily mark, deadlines,
        maturities, auctions started and uncrossed."""
        while self.expiries and self.expiries[0][0] <= ts:
            _, pledge_id = heapq.heappop(self.expiries)
            self._lapse(self.pledges[pledge_id], seq, ts, outcome)
        if self.next_daily_ns is not None and self.next_daily_ns <= ts:
            self.daily(ts, outcome)
        if self.remark_due_ns is not None and self.remark_due_ns <= ts:
            self._remark_pending(ts, outcome)
        # Timers in time order; one a facility pushes for now while it is looked at (a
        # liquidation made due) is the same visit.
        visited: set[int] = set()
        while self.timers and self.timers[0][0] <= ts:
            facility_id = heapq.heappop(self.timers)[1]
            if facility_id in visited:
                continue
            visited.add(facility_id)
            f = self.facilities[facility_id]
            if f.status not in LIVE:
                continue
            if f.liquidation is not None:
                if f.liquidation.uncross_ns <= ts:
                    self._uncross(f, seq, ts, outcome)
            elif f.retry_ns is not None and f.retry_ns <= ts:
                f.retry_ns = None
                f.liquidation_due = True
            elif ts >= f.maturity_ns and not f.matured:
                self._mature(f, seq, ts, outcome)
            else:
                self._mark(f, ts, "deadline", outcome)
            if f.liquidation_due and f.liquidation is None and f.status in LIVE:
                self._start_liquidation(f, seq, ts, outcome)

    def daily(self, ts: int, outcome: Any) -> None:
        """Accrue interest for the days passed and mark every live facility in full."""
        day = ts // DAY_NS
        cache = MarkCache()
        live = 0
        for f in self.facilities.values():
            if f.status in LIVE:
                f.accrue(day)
                self._mark(f, ts, "daily", outcome, record=True, cache=cache)
                live += 1
        self.next_daily_ns = (day + 1) * DAY_NS if live else None
        # Every live facility is marked: none waits for a re-mark after trades any more.
        self.remark_pending.clear()
        self.remark_due_ns = None

    def _lapse(self, pledge: Pledge, seq: int, ts: int, outcome: Any) -> None:
        """Pledged licences reached their expiry: they lapse from the pledged account."""
        f = self.facilities[pledge.facility_id]
        lapsing = pledge.units - pledge.at_auction_units
        if lapsing:
            self._emit(outcome, entries.collateral_transfer(
                EntryKind.LICENCE_EXPIRY, facility_id=f.facility_id, source=pledge.account,
                destination=accounts.licence_expired(pledge.symbol),
                asset=accounts.licence_asset(pledge.symbol), amount_units=lapsing,
                key=f"{_PLEDGE_EXPIRY_KEY}{seq}:{pledge.pledge_id}", ts_ns=ts, reason="expiry",
            ))  # fmt: skip
            pledge.units -= lapsing
            self.risk.pledged[(f.borrower, pledge.symbol)] -= lapsing
            self._alert(f, AlertReason.LICENCE_EXPIRED, ts, outcome,
                        f"{lapsing} pledged units of {pledge.symbol} expired: they count at zero",
                        symbol=pledge.symbol)  # fmt: skip
        self._index_symbol(f.facility_id, pledge.symbol, add=False)
        if f.status in LIVE:
            self._mark(f, ts, "expiry", outcome, record=True)

    def _mature(self, f: Facility, seq: int, ts: int, outcome: Any) -> None:
        f.matured = True
        if f.debt_minor == 0:
            self._close(f, seq, ts, outcome)
            return
        self._mark(f, ts, "maturity", outcome, record=True)
        self._alert(f, AlertReason.MATURITY, ts, outcome,
                    f"the facility matured with {format_minor(f.debt_minor)} outstanding: the "
                    "collateral goes to auction")  # fmt: skip
        f.liquidation_due = True

    # -- liquidation -----------------------------------------------------------------------

    def reserve_of(self, pledge: Pledge) -> int:
        """The lowest price an auction may sell ``pledge``'s units at: the valuation's low
        end, or without a valuation the haircut price the lender counted on; on the tick
        grid (rounded up) and within the instrument's price band."""
        instrument = self.instruments[pledge.symbol]
        valuation = self.valuations.get(pledge.symbol)
        if valuation is not None:
            reserve = valuation.low_minor
        else:
            reserve = self.price_of(pledge.symbol) * (BP - pledge.haircut_bp) // BP
        tick = instrument.tick_size_minor
        reserve = max(tick, -(-reserve // tick) * tick)
        if instrument.price_band_low_minor is not None:
            reserve = max(reserve, instrument.price_band_low_minor)
        if instrument.price_band_high_minor is not None:
            reserve = min(reserve, instrument.price_band_high_minor)
        return reserve

    def _start_liquidation(self, f: Facility, seq: int, ts: int, outcome: Any) -> None:
        # Marked now: a retry or a maturity can come long after the last mark, and the
        # auction's reserves (without a valuation) and the alert read the pledges' values.
        self._value(f, ts, MarkCache())
        f.liquidation_due = False
        f.liquidation_attempts += 1
        attempt = f.liquidation_attempts
        f.status = FacilityStatus.LIQUIDATING
        f.call_deadline_ns = None
        liquidation = Liquidation(attempt, ts + f.auction_duration_ns, {}, [],
                                  len(self.settlement.fills[f.borrower]))  # fmt: skip
        f.liquidation = liquidation
        offered = []
        for pledge in list(f.pledges.values()):
            units = pledge.units - pledge.at_auction_units
            symbol = pledge.symbol
            instrument = self.instruments[symbol]
            product = self.compliance.products[instrument.product_id]
            phase = self.engine.phase(symbol)
            if not units or product.status is ProductStatus.SUSPENDED or phase not in _SELLABLE:
                continue
            if phase in _REOPENED:
                # A continuous book pauses for the auction; a closed one (an exclusive
                # licence whose sealed-bid sale is over) reopens for it.
                self.apply_engine(EngineSetPhase(seq, ts, symbol, Phase.AUCTION), outcome, ts)
                liquidation.restore.append((symbol, str(phase)))
            # The borrower's own bids would cross its auction offer, which cannot settle.
            self.cancel_buys(f.borrower, symbol, seq, ts, outcome)
            self._unpledge(f, pledge, units, "liquidation", f"liquidation:{seq}:{pledge.pledge_id}",
                           ts, outcome, to_auction=True)  # fmt: skip
            reserve = self.reserve_of(pledge)
            order_id = self.place_sell(
                f.borrower, symbol, pledge.source_account, pledge.expires_ns, units, reserve,
                seq, ts, outcome,
            )  # fmt: skip
            liquidation.orders[order_id] = (pledge.pledge_id, symbol)
            offered.append(f"{units} {symbol} (reserve {format_minor(reserve)})")
        heapq.heappush(self.timers, (liquidation.uncross_ns, f.facility_id))
        self._index(f, MarkCache())
        self._alert(f, AlertReason.LIQUIDATION_STARTED, ts, outcome,
                    f"auction {attempt} of the collateral: "
                    f"{', '.join(offered) or 'nothing can be offered now'}; uncross at the "
                    "deadline", deadline_ns=liquidation.uncross_ns)  # fmt: skip

    def _uncross(self, f: Facility, seq: int, ts: int, outcome: Any) -> None:
        liquidation = f.liquidation
        assert liquidation is not None
        symbols = sorted({symbol for _, symbol in liquidation.orders.values()})
        for symbol in symbols:
            if self.engine.phase(symbol) in _COLLECTING:
                self.apply_engine(EngineUncross(seq, ts, symbol), outcome, ts)
        orders = self.settlement.orders
        proceeds = 0
        sold_units = 0
        for fill in self.settlement.fills[f.borrower][liquidation.fills_from :]:
            if fill.order_id in liquidation.orders:
                proceeds += fill.price_minor * fill.quantity_units - fill.fee_minor
        for order_id, (pledge_id, symbol) in sorted(liquidation.orders.items()):
            order = orders[order_id]
            if order.is_open:
                self.apply_engine(EngineCancelOrder(seq, ts, order_id, f.borrower), outcome, ts)
            pledge = self.pledges[pledge_id]
            sold, unsold = order.filled_units, order.quantity_units - order.filled_units
            sold_units += sold
            pledge.at_auction_units -= sold + unsold
            pledge.units -= sold
            self.risk.pledged[(f.borrower, symbol)] -= sold
            if unsold and (pledge.expires_ns is None or pledge.expires_ns > ts):
                # What did not sell goes back under the lien.
                self._emit(outcome, entries.collateral_transfer(
                    EntryKind.PLEDGE, facility_id=f.facility_id, source=pledge.source_account,
                    destination=pledge.account, asset=accounts.licence_asset(symbol),
                    amount_units=unsold, key=f"repledge:{seq}:{pledge_id}", ts_ns=ts,
                    reason="unsold",
                ))  # fmt: skip
            elif unsold:
                pledge.units -= unsold  # lapsed at auction with its holding
                self.risk.pledged[(f.borrower, symbol)] -= unsold
        for symbol, phase in liquidation.restore:
            if self.engine.phase(symbol) is Phase.AUCTION:
                self.apply_engine(EngineSetPhase(seq, ts, symbol, Phase(phase)), outcome, ts)
        liquidation.proceeds_minor = proceeds
        f.liquidation = None
        paid = min(proceeds, f.debt_minor)
        if paid:
            self._repayment(f, accounts.cash(f.borrower), paid, "liquidation",
                            f"liquidation_proceeds:{seq}:{f.facility_id}", ts, outcome)  # fmt: skip
        from_margin = min(f.margin_minor, f.debt_minor)
        if from_margin:
            self._repayment(f, accounts.margin(f.borrower, f.facility_id), from_margin,
                            "liquidation", f"liquidation_margin:{seq}:{f.facility_id}", ts,
                            outcome)  # fmt: skip
            f.margin_minor -= from_margin
        self._alert(f, AlertReason.LIQUIDATION_RESULT, ts, outcome,
                    f"auction {liquidation.attempt}: {sold_units} units sold for "
                    f"{format_minor(proceeds)} net of fees; {format_minor(paid + from_margin)} "
                    f"paid to the lender, {format_minor(f.debt_minor)} still owed")  # fmt: skip
        if f.debt_minor == 0:
            self._alert(
                f,
                AlertReason.REPAID,
                ts,
                outcome,
                "the debt is repaid: the rest of the collateral goes back",
            )
            self._close(f, seq, ts, outcome)
            return
        unsold_units = sum(p.units for p in f.pledges.values())
        remaining = unsold_units > 0
        if remaining and liquidation.attempt < MAX_LIQUIDATION_ATTEMPTS:
            f.retry_ns = ts + RETRY_DELAY_NS
            heapq.heappush(self.timers, (f.retry_ns, f.facility_id))
        else:
            f.status = FacilityStatus.DEFAULTED
            self._alert(
                f,
                AlertReason.DEFAULTED,
                ts,
                outcome,
                f"{format_minor(f.debt_minor)} is still owed after {liquidation.attempt} "
                f"auction(s); {unsold_units} pledged units did not sell and stay under the "
                "lien, for the lender to release or the parties to settle"
                if unsold_units
                else f"{format_minor(f.debt_minor)} is owed with no collateral left to sell",
            )
        self._mark(f, ts, "liquidation", outcome, record=True)

    def _close(self, f: Facility, seq: int, ts: int, outcome: Any) -> None:
        """Give everything back and close: the debt is nil."""
        assert f.debt_minor == 0
        for pledge in f.pledges.values():
            units = pledge.units - pledge.at_auction_units
            if units and (pledge.expires_ns is None or pledge.expires_ns > ts):
                self._unpledge(f, pledge, units, "closing", f"close:{seq}:{pledge.pledge_id}",
                               ts, outcome)  # fmt: skip
        if f.margin_minor:
            self._margin_back(f, f.margin_minor, f"close_margin:{seq}:{f.facility_id}", ts, outcome)
        f.status = FacilityStatus.CLOSED
        f.liquidation = None
        f.liquidation_due = False
        self._mark(f, ts, "closing", outcome, record=True)

    # -- ledger movements ------------------------------------------------------------------

    def _emit(self, outcome: Any, entry: Entry) -> None:
        self.risk.post(entry)
        outcome.entries.append(entry)

    def _repayment(
        self, f: Facility, source: str, amount: int, reason: str, key: str, ts: int, outcome: Any
    ) -> None:
        self._emit(outcome, entries.collateral_transfer(
            EntryKind.LOAN_REPAYMENT, facility_id=f.facility_id, source=source,
            destination=accounts.cash(f.lender), asset=accounts.CASH, amount_units=amount,
            key=key, ts_ns=ts, reason=reason,
        ))  # fmt: skip
        f.pay(amount)

    def _margin_back(self, f: Facility, amount: int, key: str, ts: int, outcome: Any) -> None:
        self._emit(outcome, entries.collateral_transfer(
            EntryKind.MARGIN_RELEASE, facility_id=f.facility_id,
            source=accounts.margin(f.borrower, f.facility_id),
            destination=accounts.cash(f.borrower), asset=accounts.CASH, amount_units=amount,
            key=key, ts_ns=ts, reason="return",
        ))  # fmt: skip
        f.margin_minor -= amount

    def _unpledge(
        self, f: Facility, pledge: Pledge, units: int, reason: str, key: str, ts: int,
        outcome: Any, *, to_auction: bool = False,
    ) -> None:  # fmt: skip
        """Move ``units`` from the pledged account back to their source: released (they
        leave the pledge) or to auction (they stay the facility's until sold or back)."""
        self._emit(outcome, entries.collateral_transfer(
            EntryKind.PLEDGE_RELEASE, facility_id=f.facility_id, source=pledge.account,
            destination=pledge.source_account, asset=accounts.licence_asset(pledge.symbol),
            amount_units=units, key=key, ts_ns=ts, reason=reason,
        ))  # fmt: skip
        if to_auction:
            pledge.at_auction_units += units
            return
        pledge.units -= units
        self.risk.pledged[(f.borrower, pledge.symbol)] -= units
        self._index_symbol(f.facility_id, pledge.symbol, add=False)

    def _index_symbol(self, facility_id: int, symbol: str, *, add: bool) -> None:
        f = self.facilities[facility_id]
        if add:
            self.by_symbol[symbol].add(facility_id)
            self.pledged_symbols.add(symbol)
            return
        if not any(p.units for p in f.pledges.values() if p.symbol == symbol):
            holders = self.by_symbol.get(symbol)
            if holders is not None:
                holders.discard(facility_id)
                if not holders:
                    del self.by_symbol[symbol]
                    self.pledged_symbols.discard(symbol)

    # -- alerts ----------------------------------------------------------------------------

    def _alert(
        self, f: Facility, reason: AlertReason, ts: int, outcome: Any, message: str, *,
        deadline_ns: int | None = None, symbol: str | None = None, flag: str | None = None,
    ) -> None:  # fmt: skip
        if flag is not None:
            f.flags.add(flag)
        alert = Alert(self.next_alert_id, f.facility_id, reason, ts, f.ltv_bp, message,
                      deadline_ns, symbol)  # fmt: skip
        self.next_alert_id += 1
        if len(f.alerts) >= MAX_ALERTS:
            del f.alerts[0]
        f.alerts.append(alert)
        outcome.alerts.append(alert)
        self._emit(outcome, entries.collateral_alert(
            facility_id=f.facility_id,
            alert={"alert_id": alert.alert_id, "reason": str(reason), "ltv_bp": alert.ltv_bp,
                   "debt_minor": f.debt_minor, "collateral_minor": f.value_minor,
                   "status": str(f.status), "deadline_ns": deadline_ns, "symbol": symbol},
            key=f"alert:{alert.alert_id}", ts_ns=ts,
        ))  # fmt: skip

    # -- reads -----------------------------------------------------------------------------

    def facilities_of(self, participant: str) -> list[Facility]:
        return [self.facilities[i] for i in self.by_participant.get(participant, ())]

    def check_invariants(self) -> None:
        """Pledged accounts hold what the pledges say; margin accounts the margin; the
        trade-monitoring index files each live facility once."""
        balances = self.risk.balances
        pledged_by_account: defaultdict[str, int] = defaultdict(int)
        pledged_by_holder: defaultdict[tuple[str, str], int] = defaultdict(int)
        for pledge in self.pledges.values():
            f = self.facilities[pledge.facility_id]
            assert 0 <= pledge.at_auction_units <= pledge.units, pledge
            pledged_by_account[pledge.account] += pledge.units - pledge.at_auction_units
            pledged_by_holder[(f.borrower, pledge.symbol)] += pledge.units
        for account, units in pledged_by_account.items():
            assert balances[account] == units, (account, balances[account], units)
        for key, units in self.risk.pledged.items():
            assert units == pledged_by_holder[key], key
        for f in self.facilities.values():
            assert balances[accounts.margin(f.borrower, f.facility_id)] == f.margin_minor, f
            assert f.drawn_minor >= 0 and f.interest_numerator >= 0, f
            assert (f.status is FacilityStatus.MARGIN_CALL) == (f.call_deadline_ns is not None), f
            assert (f.liquidation is not None) <= (f.status is FacilityStatus.LIQUIDATING), f
            filed = f.facility_id in self.trigger_of
            watched = any(f.facility_id in ids for ids in self.watched.values())
            assert not (filed and watched), f
        for symbol, keys in self.triggers.items():
            assert keys == sorted(keys), symbol


_PRODUCT_WATCH: Final = frozenset({"daily", "product"})
_DETERIORATIONS: Final = (
    AlertReason.UPDATE_MISSED, AlertReason.QUALITY_DOWNGRADE, AlertReason.PRODUCT_SUSPENDED
)  # fmt: skip


def _deterioration_words(reason: AlertReason, symbol: str, quality: int, pledged: int) -> str:
    if reason is AlertReason.UPDATE_MISSED:
        return f"the provider of {symbol} has missed the updates its frequency promises"
    if reason is AlertReason.QUALITY_DOWNGRADE:
        return (f"{symbol}'s quality fell to {quality / 100:.2f}% from {pledged / 100:.2f}% "
                "when pledged")  # fmt: skip
    return f"{symbol}'s product is suspended: it cannot be sold"


def _mean_quality(quality: Quality) -> int:
    return sum(getattr(quality, f"{name}_bp") for name in QUALITY_DIMENSIONS) // len(
        QUALITY_DIMENSIONS
    )


def _percent(ltv: int | None) -> str:
    return "no collateral value" if ltv is None else f"{ltv / 100:.2f}%"
