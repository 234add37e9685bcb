"""The API's request and response models of loan facilities (exchange/facility.py), and the
views that fill them.

Money is a decimal string in currency units; LTV and its thresholds, rates and haircuts are
integers in basis points (``ltv_bp`` 6500 is 65.00%); times are ISO 8601 UTC. A facility is
seen only by its lender and its borrower; the lender's own ``client_facility_id`` only by the
lender.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model

from exchange.collateral import MAX_LTV_BP, MAX_PERIOD_S, MAX_RATE_BP, MIN_CURE_PERIOD_S, Valuation
from exchange.facility import Alert, AlertReason, Facility, FacilityStatus, Mark, Pledge
from exchange.haircut import LIMITS, HaircutPolicy
from exchange.money import format_minor
from exchange.validation import MAX_CLIENT_ORDER_ID

from .query import IsoTime
from .schemas import DecimalString, Identifier, QualityScores, Quantity, Request, _identifier, iso

__all__ = [
    "AlertPage",
    "AlertPublic",
    "AmountIn",
    "FacilityCreate",
    "FacilityDetail",
    "FacilityPublic",
    "HaircutPolicyIn",
    "PledgeCreate",
    "PledgePublic",
    "PledgeRelease",
    "PledgedPublic",
    "ProductUpdateCreate",
    "ProductUpdatePublic",
    "ValuationCreate",
    "ValuationPublic",
    "alert_view",
    "facility_detail_view",
    "facility_view",
    "valuation_view",
]

LtvBp = Annotated[int, Field(strict=True, ge=1, le=MAX_LTV_BP, description="Basis points")]

# The haircut parameters a lender may set, each optional (the default otherwise) and bounded
# as exchange/haircut.py bounds it: one source of truth for the names and their limits.
_DEFAULT_POLICY = HaircutPolicy()
HaircutPolicyIn = create_model(  # type: ignore[call-overload]
    "HaircutPolicyIn",
    __base__=Request,
    __doc__="The facility's haircut policy (docs/collateral.md); a parameter left out takes "
    "its default.",
    **{
        name: (
            int | None,
            Field(default=None, strict=True, ge=low, le=high,
                  description=f"default {getattr(_DEFAULT_POLICY, name)}"),
        )
        for name, (low, high) in LIMITS.items()
    },
)  # fmt: skip


# -- requests ------------------------------------------------------------------------------


class FacilityCreate(Request):
    borrower: Identifier = Field(description="The participant offered the facility")
    limit: DecimalString = Field(description="The most that may be drawn")
    rate_bp: int = Field(strict=True, ge=0, le=MAX_RATE_BP,
                         description="Simple annual interest in basis points, ACT/365, accrued "
                         "daily at 00:00 UTC on the amount drawn")  # fmt: skip
    maturity: IsoTime = Field(description="When the debt falls due (ISO 8601 with a zone)")
    initial_ltv_bp: LtvBp = Field(description="The highest LTV a draw may reach")
    margin_call_ltv_bp: LtvBp = Field(description="From this LTV the lender calls for margin")
    liquidation_ltv_bp: LtvBp = Field(
        description="An uncured call at or above this LTV past its deadline is liquidated"
    )
    cure_period_s: int = Field(default=86_400, strict=True, ge=MIN_CURE_PERIOD_S, le=MAX_PERIOD_S,
                               description="Time to cure a margin call")  # fmt: skip
    auction_duration_s: int = Field(
        default=3_600, strict=True, ge=60, le=MAX_PERIOD_S,
        description="How long a liquidation auction collects orders",
    )  # fmt: skip
    haircut: HaircutPolicyIn = Field(default_factory=HaircutPolicyIn)  # type: ignore[valid-type]
    client_facility_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_CLIENT_ORDER_ID),
                  AfterValidator(_identifier)] | None
    ) = Field(default=None, description="Your own id for it: a retry with the same content "
              "answers the original; other content under it is a 409")  # fmt: skip

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "borrower": "hz-parking", "limit": "500000.00", "rate_bp": 450,
            "maturity": "2030-12-01T00:00:00Z", "initial_ltv_bp": 5000,
            "margin_call_ltv_bp": 6500, "liquidation_ltv_bp": 8000, "cure_period_s": 172800,
            "auction_duration_s": 3600, "haircut": {"base_bp": 1000},
            "client_facility_id": "zjp-2026-001",
        }]},
    )  # fmt: skip


class AmountIn(Request):
    amount: DecimalString

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"amount": "150000.00"}
    ]})  # fmt: skip


class PledgeCreate(Request):
    symbol: Identifier
    quantity: Quantity
    expires_at: IsoTime | None = Field(
        description="The expiry of the holding to pledge from, as GET /v1/balances shows it; "
        "null: a provider's unsold licences"
    )

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"symbol": "ZJPARK.FLOW.NX12.COM", "quantity": 10,
         "expires_at": "2027-11-30T08:00:00.123456+00:00"}
    ]})  # fmt: skip


class PledgeRelease(Request):
    quantity: Quantity

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"quantity": 2}]})


class ValuationCreate(Request):
    value: DecimalString = Field(description="One licence unit's value")
    low: DecimalString = Field(description="The range's low end (the liquidation reserve)")
    high: DecimalString
    comparables: int = Field(strict=True, ge=0, le=10_000,
                             description="Comparables behind the valuation")  # fmt: skip
    method: Annotated[str, StringConstraints(min_length=1, max_length=32),
                      AfterValidator(_identifier)] = Field(
        description="How it was made, e.g. market, cost_fallback, appraisal"
    )  # fmt: skip

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"value": "1000.00", "low": "800.00", "high": "1200.00", "comparables": 5,
         "method": "market"}
    ]})  # fmt: skip


class ProductUpdateCreate(Request):
    quality: QualityScores | None = Field(
        description="The quality scores now; null if unchanged"
    )

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"quality": {"completeness": 0.97, "accuracy": 0.95, "timeliness": 0.9,
                     "consistency": 0.93}}
    ]})  # fmt: skip


# -- responses -----------------------------------------------------------------------------


class PledgePublic(BaseModel):
    pledge_id: int
    symbol: str
    units: int = Field(description="Licence units under the lien (those at auction included)")
    at_auction_units: int
    expires_at: str | None = Field(description="The licences' expiry; null: unsold issuance")
    pledged_at: str | None
    haircut_bp: int = Field(description="The haircut at the last mark, basis points")
    value: str = Field(description="The units' value less the haircut at the last mark")


class FacilityPublic(BaseModel):
    facility_id: int
    lender: str
    borrower: str
    status: FacilityStatus
    limit: str
    drawn: str
    accrued_interest: str = Field(description="Accrued and unpaid, in whole minor units")
    debt: str = Field(description="Drawn plus accrued interest")
    repaid: str
    margin: str = Field(description="Cash margin posted")
    collateral_value: str = Field(description="Haircut value of the pledges plus cash margin")
    ltv_bp: int | None = Field(description="Debt over collateral value, basis points (rounded "
                               "up); null: a debt with no collateral value")  # fmt: skip
    initial_ltv_bp: int
    margin_call_ltv_bp: int
    liquidation_ltv_bp: int
    rate_bp: int
    maturity: str | None
    cure_period_s: int
    auction_duration_s: int
    call_deadline: str | None = Field(description="The margin call's cure deadline")
    auction_ends_at: str | None = Field(description="When the running liquidation uncrosses")
    haircut: dict[str, int]
    pledges: list[PledgePublic]
    created_at: str | None
    client_facility_id: str | None = Field(description="The lender's own id (lender only)")


class PledgedPublic(FacilityPublic):
    pledge_id: int = Field(description="The pledge the units were added to")


class MarkPublic(BaseModel):
    time: str | None
    debt: str
    collateral_value: str
    ltv_bp: int | None
    cause: str = Field(description="daily, trade, valuation, product, facility, deadline, "
                       "expiry, maturity, liquidation or closing")  # fmt: skip


class AlertPublic(BaseModel):
    alert_id: int
    facility_id: int
    reason: AlertReason
    time: str | None
    ltv_bp: int | None
    message: str
    deadline: str | None = Field(description="The cure deadline, or the auction's end")
    symbol: str | None


class FacilityDetail(FacilityPublic):
    marks: list[MarkPublic] = Field(description="The LTV history, oldest first")
    alerts: list[AlertPublic] = Field(description="Oldest first")


class AlertPage(BaseModel):
    alerts: list[AlertPublic] = Field(description="Oldest first")
    next_after: int | None = Field(description="Pass as `after` for the next page; null: none")


class ValuationPublic(BaseModel):
    symbol: str
    value: str
    low: str
    high: str
    comparables: int
    method: str
    time: str | None


class ProductUpdatePublic(BaseModel):
    product_id: str
    attested_at: str | None
    quality: dict[str, float]


# -- views ---------------------------------------------------------------------------------


def _pledge_view(pledge: Pledge) -> PledgePublic:
    return PledgePublic(
        pledge_id=pledge.pledge_id, symbol=pledge.symbol, units=pledge.units,
        at_auction_units=pledge.at_auction_units, expires_at=iso(pledge.expires_ns),
        pledged_at=iso(pledge.pledged_ns), haircut_bp=pledge.haircut_bp,
        value=format_minor(pledge.value_minor),
    )  # fmt: skip


def _facility_fields(f: Facility, viewer: str) -> dict[str, Any]:
    liquidation = f.liquidation
    return {
        "facility_id": f.facility_id, "lender": f.lender, "borrower": f.borrower,
        "status": f.status, "limit": format_minor(f.limit_minor),
        "drawn": format_minor(f.drawn_minor), "accrued_interest": format_minor(f.interest_minor),
        "debt": format_minor(f.debt_minor), "repaid": format_minor(f.repaid_minor),
        "margin": format_minor(f.margin_minor), "collateral_value": format_minor(f.value_minor),
        "ltv_bp": f.ltv_bp, "initial_ltv_bp": f.initial_ltv_bp,
        "margin_call_ltv_bp": f.margin_call_ltv_bp, "liquidation_ltv_bp": f.liquidation_ltv_bp,
        "rate_bp": f.rate_bp, "maturity": iso(f.maturity_ns),
        "cure_period_s": f.cure_period_ns // 1_000_000_000,
        "auction_duration_s": f.auction_duration_ns // 1_000_000_000,
        "call_deadline": iso(f.call_deadline_ns),
        "auction_ends_at": None if liquidation is None else iso(liquidation.uncross_ns),
        "haircut": f.policy.to_mapping(),
        "pledges": [_pledge_view(p) for p in f.pledges.values()],
        "created_at": iso(f.created_ns),
        "client_facility_id": f.client_facility_id if viewer == f.lender else None,
    }  # fmt: skip


def facility_view(f: Facility, viewer: str) -> FacilityPublic:
    """``f`` as ``viewer`` (its lender or borrower) sees it; under the sequencer's lock."""
    return FacilityPublic(**_facility_fields(f, viewer))


def _mark_view(mark: Mark) -> MarkPublic:
    return MarkPublic(time=iso(mark.ts_ns), debt=format_minor(mark.debt_minor),
                      collateral_value=format_minor(mark.collateral_minor), ltv_bp=mark.ltv_bp,
                      cause=mark.cause)  # fmt: skip


def alert_view(alert: Alert) -> AlertPublic:
    return AlertPublic(
        alert_id=alert.alert_id, facility_id=alert.facility_id, reason=alert.reason,
        time=iso(alert.ts_ns), ltv_bp=alert.ltv_bp, message=alert.message,
        deadline=iso(alert.deadline_ns), symbol=alert.symbol,
    )  # fmt: skip


def facility_detail_view(f: Facility, viewer: str) -> FacilityDetail:
    return FacilityDetail(**_facility_fields(f, viewer), marks=[_mark_view(m) for m in f.marks],
                          alerts=[alert_view(a) for a in f.alerts])  # fmt: skip


def valuation_view(symbol: str, valuation: Valuation) -> ValuationPublic:
    return ValuationPublic(
        symbol=symbol, value=format_minor(valuation.value_minor),
        low=format_minor(valuation.low_minor), high=format_minor(valuation.high_minor),
        comparables=valuation.comparables, method=valuation.method, time=iso(valuation.ts_ns),
    )  # fmt: skip
