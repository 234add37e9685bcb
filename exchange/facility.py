"""Loan facilities and their pledges: the records a lender and a borrower share.

A facility lends cash up to ``limit_minor`` until ``maturity_ns`` at a simple annual rate.
Interest accrues once a day, at 00:00 UTC, on the amount drawn at that moment, with the
ACT/365 fixed day count: a day adds ``drawn * rate_bp / (365 * 10,000)``. It is kept exactly,
as a numerator over ``INTEREST_DENOMINATOR``, so no fraction of a minor unit is lost or made
up; the debt is the drawn amount plus the whole minor units of interest accrued.

LTV (loan to value) is the debt over the haircut value of the collateral (pledged licences
and cash margin), in basis points. The thresholds are ordered: a draw may take the LTV to
``initial_ltv_bp`` at most; at ``margin_call_ltv_bp`` the lender calls for margin, which the
borrower cures by the deadline (repay, pledge more, post cash); an uncured call at or above
``liquidation_ltv_bp`` past its deadline sells the pledged licences at auction.

The lifecycle (docs/collateral.md draws it)::

    proposed ──accept──► active ◄──cure── margin_call ──deadline, LTV ≥ liquidation──►
    liquidating ──debt repaid──► closed        (liquidating ──unsold after the last
    attempt──► defaulted; active ──maturity with debt──► liquidating)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from exchange.haircut import BP, HaircutPolicy

__all__ = [
    "DAY_NS",
    "INTEREST_DENOMINATOR",
    "Alert",
    "AlertReason",
    "Facility",
    "FacilityStatus",
    "Liquidation",
    "Mark",
    "Pledge",
    "ltv_bp",
]

DAY_NS: Final = 86_400 * 1_000_000_000
INTEREST_DENOMINATOR: Final = 365 * BP  # ACT/365 fixed, rates in basis points
MAX_MARKS: Final = 2_000  # the LTV history kept per facility (daily marks and events)
MAX_ALERTS: Final = 1_000


class FacilityStatus(StrEnum):
    PROPOSED = "proposed"  # the lender offered it; the borrower has not accepted
    ACTIVE = "active"
    MARGIN_CALL = "margin_call"
    LIQUIDATING = "liquidating"  # the pledged licences are at auction
    DEFAULTED = "defaulted"  # debt left after the last auction: the lender's claim remains
    CLOSED = "closed"


LIVE: Final = frozenset(
    {FacilityStatus.ACTIVE, FacilityStatus.MARGIN_CALL, FacilityStatus.LIQUIDATING,
     FacilityStatus.DEFAULTED}
)  # fmt: skip


class AlertReason(StrEnum):
    MARGIN_CALL = "margin_call"
    CURED = "cured"
    LIQUIDATION_STARTED = "liquidation_started"
    LIQUIDATION_RESULT = "liquidation_result"
    DEFAULTED = "defaulted"
    REPAID = "repaid"  # the debt is repaid by a liquidation; the rest returned
    MATURITY = "maturity"  # matured with debt outstanding
    LICENCE_EXPIRES_BEFORE_MATURITY = "licence_expires_before_maturity"
    LICENCE_EXPIRED = "licence_expired"
    UPDATE_MISSED = "update_missed"
    QUALITY_DOWNGRADE = "quality_downgrade"
    PRODUCT_SUSPENDED = "product_suspended"
    PRODUCT_REINSTATED = "product_reinstated"


@dataclass(slots=True)
class Alert:
    alert_id: int
    facility_id: int
    reason: AlertReason
    ts_ns: int
    ltv_bp: int | None  # None: no collateral value left against a debt
    message: str
    deadline_ns: int | None = None
    symbol: str | None = None


@dataclass(slots=True)
class Mark:
    """One point of a facility's LTV history."""

    ts_ns: int
    debt_minor: int
    collateral_minor: int  # haircut value of licences plus cash margin
    ltv_bp: int | None
    cause: str  # daily, trade, valuation, product, facility, liquidation


@dataclass(slots=True)
class Pledge:
    """Licence units of one holding (or of the provider's unsold issuance) under a lien."""

    pledge_id: int
    facility_id: int
    symbol: str
    expires_ns: int | None  # the holding's expiry; None: unsold issuance
    units: int
    account: str  # the pledged account in the ledger
    source_account: str  # where the units came from and return to
    pledged_ns: int
    quality_at_pledge_bp: int  # the product's mean quality score then
    # the last full mark: the haircut and the value of the units (minor units)
    haircut_bp: int = 0
    value_minor: int = 0
    at_auction_units: int = 0  # units released to a liquidation sell order


@dataclass(slots=True)
class Liquidation:
    """An auction of a facility's pledged licences, on the exchange's schedule."""

    attempt: int
    uncross_ns: int
    # order id -> (pledge id, symbol); the sell orders placed for the borrower
    orders: dict[int, tuple[int, str]]
    # (symbol, phase) of each book the liquidation set to auction, to set back after it
    restore: list[tuple[str, str]]
    fills_from: int  # the borrower's fills before the auction: those after are its sales
    proceeds_minor: int = 0


@dataclass(slots=True)
class Facility:
    facility_id: int
    lender: str
    borrower: str
    limit_minor: int
    rate_bp: int
    maturity_ns: int
    initial_ltv_bp: int
    margin_call_ltv_bp: int
    liquidation_ltv_bp: int
    cure_period_ns: int
    auction_duration_ns: int
    policy: HaircutPolicy
    created_ns: int
    client_facility_id: str | None = None
    status: FacilityStatus = FacilityStatus.PROPOSED
    drawn_minor: int = 0
    interest_numerator: int = 0  # accrued interest unpaid, over INTEREST_DENOMINATOR
    accrued_day: int = 0  # the last UTC day (ns // DAY_NS) whose interest has accrued
    margin_minor: int = 0
    repaid_minor: int = 0  # principal and interest repaid, by the borrower or a liquidation
    pledges: dict[int, Pledge] = field(default_factory=dict)
    collateral_minor: int = 0  # the last full mark's haircut value of the licences
    call_deadline_ns: int | None = None
    liquidation: Liquidation | None = None
    liquidation_due: bool = False
    liquidation_attempts: int = 0
    retry_ns: int | None = None  # the next auction of what did not sell
    matured: bool = False
    flags: set[str] = field(default_factory=set)  # alert reasons raised and still standing
    # symbol -> the reference price at the last full mark, or 0 if a trade could lower the
    # pledges' haircut (trade monitoring of a margin call: see CollateralDesk.on_trades)
    rise_from: dict[str, int] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    @property
    def interest_minor(self) -> int:
        return self.interest_numerator // INTEREST_DENOMINATOR

    @property
    def debt_minor(self) -> int:
        return self.drawn_minor + self.interest_minor

    @property
    def value_minor(self) -> int:
        """The collateral's haircut value at the last full mark, cash margin included."""
        return self.collateral_minor + self.margin_minor

    @property
    def ltv_bp(self) -> int | None:
        return ltv_bp(self.debt_minor, self.value_minor)

    def accrue(self, day: int) -> None:
        """Accrue interest for each UTC day boundary passed up to ``day``."""
        if day > self.accrued_day:
            self.interest_numerator += (day - self.accrued_day) * self.drawn_minor * self.rate_bp
            self.accrued_day = day

    def pay(self, amount_minor: int) -> None:
        """Apply a repayment: interest first, then principal."""
        assert 0 < amount_minor <= self.debt_minor
        interest = min(amount_minor, self.interest_minor)
        self.interest_numerator -= interest * INTEREST_DENOMINATOR
        self.drawn_minor -= amount_minor - interest
        self.repaid_minor += amount_minor

    def record(self, mark: Mark) -> None:
        if len(self.marks) >= MAX_MARKS:
            # Keep the first mark and thin the rest by half: a long history stays in shape.
            self.marks[1:] = self.marks[2::2]
        self.marks.append(mark)


def ltv_bp(debt_minor: int, value_minor: int) -> int | None:
    """Debt over collateral value in basis points, rounded up (a lender's rounding); 0 with
    no debt, None with a debt and no collateral value.

    >>> ltv_bp(500, 1000), ltv_bp(1, 3), ltv_bp(0, 0), ltv_bp(5, 0)
    (5000, 3334, 0, None)
    """
    if debt_minor == 0:
        return 0
    if value_minor <= 0:
        return None
    return -(-debt_minor * BP // value_minor)
