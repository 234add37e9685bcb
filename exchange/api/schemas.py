"""The API's request and response models (never the exchange's own records).

Cash and prices are decimal strings in currency units ("12.50"), converted by
``exchange.money`` in the routes; quantities are integer licence units; times are ISO 8601.
Requests refuse unknown fields, and numbers, booleans and amounts of the wrong type, so a typo is a
422 that names the field, not a silently ignored value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints
from pydantic_core import PydanticCustomError

from exchange.catalogue import (
    Category,
    Classification,
    Exclusivity,
    ProductStatus,
    Scope,
    Territory,
    UpdateFrequency,
)
from exchange.orders import OrderStatus
from exchange.participants import Role
from exchange.validation import free_text_problem, identifier_problem
from ledger import ComplianceDecision
from matching import OrderType, Phase, SealedBidPricing, Side, TimeInForce, TradingMode

DecimalString = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                      pattern=r"^[0-9]+(\.[0-9]+)?$"),
    Field(description="A decimal amount in currency units, as a string", examples=["12.50"]),
]  # fmt: skip
Quantity = Annotated[int, Field(strict=True, gt=0, le=10**12, description="Licence units")]


def _identifier(value: str) -> str:
    problem = identifier_problem(value)
    if problem is not None:
        raise PydanticCustomError("identifier", "{problem}", {"problem": problem})
    return value


def _line(value: str) -> str:
    problem = free_text_problem(value)
    if problem is not None:
        raise PydanticCustomError("free_text", "{problem}", {"problem": problem})
    return value


def _lines(value: str) -> str:
    problem = free_text_problem(value, multiline=True)
    if problem is not None:
        raise PydanticCustomError("free_text", "{problem}", {"problem": problem})
    return value


# Strings a client chooses. An identifier is printable ASCII without surrounding spaces;
# free text is any Unicode but control and bidirectional-control characters (line breaks
# only in the long texts). Rules in ``exchange.validation``.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=32),
                       AfterValidator(_identifier)]  # fmt: skip
ClientOrderId = Annotated[str, StringConstraints(min_length=1, max_length=64),
                          AfterValidator(_identifier)]  # fmt: skip
Text = Annotated[str, StringConstraints(max_length=4000), AfterValidator(_lines)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000), AfterValidator(_lines)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_line)]
Score = Annotated[float, Field(strict=True, ge=0, le=1)]
# Path parameters. Their examples exist in the demo market (exchange/demo.py), so that "Try it
# out" against `dataex serve --demo` finds them.
SymbolPath = Annotated[
    str, Path(description="An instrument's symbol", examples=["ZJPARK.FLOW.NX12.COM"])
]
ProductIdPath = Annotated[str, Path(description="A catalogue product's id", examples=["P000001"])]
CategoryPath = Annotated[str, Path(description="A product category", examples=["transport"])]


def iso(ts_ns: int | None) -> str | None:
    """Nanoseconds since the epoch as an ISO 8601 UTC time (to the microsecond), as
    ``datetime.isoformat`` writes it: no fraction when the microseconds are 0."""
    if ts_ns is None:
        return None
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    micros = nanos // 1000
    if micros:
        return f"{_iso_second(seconds)}.{micros:06d}+00:00"
    return f"{_iso_second(seconds)}+00:00"


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """The date and time of a whole second. Remembered: every order, fill and trade message
    writes its times, most of them within the same few seconds, and building a datetime
    for each was about 6% of the event loop's time in an order-entry session (py-spy)."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat()


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------


class ErrorPublic(BaseModel):
    """The body of every error, whatever its status (``exchange/api/errors.py``)."""

    detail: str = Field(
        description="What is wrong, for a person; a 422 names each invalid field and why",
        examples=["quantity: Input should be greater than 0"],
    )
    reason: str = Field(
        description="The machine-readable reason, e.g. VALIDATION_INVALID, AUTH_MISSING_KEY, "
        "RISK_INSUFFICIENT_CASH",
        examples=["VALIDATION_INVALID"],
    )


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying",
                                "schema": {"type": "string"}}}  # fmt: skip
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The body is not a JSON object this API reads (e.g. it repeats a key)", {}),
    401: ("No API key, or not a valid one", {"WWW-Authenticate": {"schema": {"type": "string"}}}),
    403: ("Your roles do not allow this", {}),
    404: ("No such resource (another participant's order is not found either)", {}),
    409: ("The state forbids it now: a duplicate, a conflicting retry, the trading phase or "
          "the product's compliance status", {}),
    413: ("The body is larger than the request limit", {}),
    422: ("The request is invalid, or the exchange cannot accept it (e.g. risk limits); "
          "`detail` says why", {}),
    429: ("Too many requests for this API key", _RETRY_AFTER),
    503: ("The exchange cannot commit now; retry", _RETRY_AFTER),
}  # fmt: skip


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses`` for the error statuses it can answer, each with the error body
    (:class:`ErrorPublic`). Declaring 422 replaces FastAPI's own validation-error schema,
    which is not the body this API sends."""
    return {
        status: {"model": ErrorPublic, "description": _ERRORS[status][0],
                 **({"headers": _ERRORS[status][1]} if _ERRORS[status][1] else {})}
        for status in statuses
    }  # fmt: skip


# -- participants -------------------------------------------------------------------------


class ParticipantCreate(Request):
    participant_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    name: Name
    roles: Annotated[list[Role], Field(min_length=1, max_length=6)]

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"participant_id": "nb-port", "name": "Ningbo Port Logistics", "roles": ["buyer"]}
        ]},
    )  # fmt: skip


class ParticipantPublic(BaseModel):
    participant_id: str
    name: str
    roles: list[Role]


class ParticipantCreated(ParticipantPublic):
    api_key: str = Field(description="Shown once: only its hash is kept")


class ParticipantAccount(ParticipantPublic):
    """A participant as an operator sees it."""

    status: Literal["active", "disabled"]
    key_id: str | None = Field(
        description="Its API key's id (the part before the dot); null once revoked",
        examples=["dxk_3f9a0c6e1b2d4a57"],
    )
    created_at: str | None
    disabled_at: str | None = Field(description="When it was disabled; null while active")


class ParticipantStatusChange(Request):
    reason: Annotated[str, StringConstraints(max_length=200), AfterValidator(_line)] = Field(
        default="", description="Why, for the journal"
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "membership fees unpaid"}]}
    )


class ApiKeyIssued(BaseModel):
    participant_id: str
    key_id: str
    api_key: str = Field(
        description="Shown once: only its hash is kept; the previous key no longer works",
        examples=["dxk_3f9a0c6e1b2d4a57.kJ8...secret"],
    )


# -- catalogue ----------------------------------------------------------------------------


class QualityScores(Request):
    completeness: Score
    accuracy: Score
    timeliness: Score
    consistency: Score

    model_config = ConfigDict(extra="forbid")


class ProductCreate(Request):
    title: Name
    description: Text = ""
    category: Category
    region: Name
    record_count: Annotated[int, Field(strict=True, ge=0, le=10**15)]
    coverage_start: Annotated[str, Field(examples=["2024-01-01"])]
    coverage_end: Annotated[str, Field(examples=["2025-12-31"])]
    update_frequency: UpdateFrequency
    quality: QualityScores
    personal_information: StrictBool
    classification: Classification
    desensitised: StrictBool
    lawful_source_attestation: Text
    cost_basis: DecimalString = Field(
        description="Replacement cost of supplying one licence under the reference terms "
        "(non-exclusive, 12 months, internal use, domestic), for the cost approach"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "title": "Hangzhou on-street parking occupancy", "description": "Per-bay occupancy",
            "category": "transport", "region": "Zhejiang", "record_count": 12000000,
            "coverage_start": "2023-01-01", "coverage_end": "2025-12-31",
            "update_frequency": "daily",
            "quality": {"completeness": 0.97, "accuracy": 0.95, "timeliness": 0.9,
                        "consistency": 0.93},
            "personal_information": True, "classification": "general", "desensitised": True,
            "lawful_source_attestation": "Collected under concession contract HZ-2021-17",
            "cost_basis": "95.00",
        }]},
    )  # fmt: skip


class ProductResubmit(Request):
    classification: Classification
    personal_information: StrictBool
    desensitised: StrictBool
    lawful_source_attestation: Text
    note: Text = ""


class ProductPublic(BaseModel):
    product_id: str
    provider: str
    title: str
    description: str
    category: Category
    region: str
    record_count: int
    coverage_start: str
    coverage_end: str
    update_frequency: UpdateFrequency
    quality: dict[str, float]
    personal_information: bool
    classification: Classification
    desensitised: bool
    lawful_source_attestation: str
    cost_basis: str
    status: ProductStatus
    instruments: list[str]
    created_at: str | None


class ReviewCreate(Request):
    decision: ComplianceDecision
    checks: dict[
        Literal["classification", "desensitisation", "lifecycle_and_retention", "risk_controls"],
        StrictBool,
    ]
    opinion: LongText

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "decision": "approved",
            "checks": {"classification": True, "desensitisation": True,
                       "lifecycle_and_retention": True, "risk_controls": True},
            "opinion": "General data, desensitised at source; retention policy adequate.",
        }]},
    )  # fmt: skip


class RegulatorDecisionCreate(Request):
    decision: Literal[ComplianceDecision.APPROVED, ComplianceDecision.REJECTED]
    opinion: LongText


class StatusChange(Request):
    reason: LongText


class ComplianceRecordPublic(BaseModel):
    seq: int
    time: str | None
    action: str
    actor: str
    decision: str | None
    checks: dict[str, bool]
    opinion: str
    status_after: ProductStatus


class InstrumentCreate(Request):
    symbol: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9.-]{1,31}$")]
    product_id: Identifier
    exclusivity: Exclusivity
    duration_months: Annotated[int, Field(strict=True, ge=1, le=240)]
    scope: Scope
    territory: Territory
    transferable: StrictBool
    tick_size: DecimalString
    lot_size: Quantity = 1
    trading_mode: TradingMode
    issuance_cap: Quantity
    fee_rate_bp: Annotated[int, Field(strict=True, ge=0, le=1000)] = 0
    price_band_low: DecimalString | None = None
    price_band_high: DecimalString | None = None
    sealed_bid_pricing: SealedBidPricing = SealedBidPricing.FIRST_PRICE

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "symbol": "ZJPARK.FLOW.NX24.COM", "product_id": "P000001",
            "exclusivity": "non_exclusive", "duration_months": 24, "scope": "commercial",
            "territory": "domestic", "transferable": True, "tick_size": "1.00", "lot_size": 1,
            "trading_mode": "continuous", "issuance_cap": 500, "fee_rate_bp": 10,
        }]},
    )  # fmt: skip


class InstrumentPublic(BaseModel):
    symbol: str
    product_id: str
    provider: str
    exclusivity: Exclusivity
    duration_months: int
    scope: Scope
    territory: Territory
    transferable: bool
    tick_size: str
    lot_size: int
    trading_mode: TradingMode
    issuance_cap: int
    fee_rate_bp: int
    price_band_low: str | None
    price_band_high: str | None
    sealed_bid_pricing: SealedBidPricing
    phase: Phase
    listed_at: str | None


class PhaseChange(Request):
    phase: Phase


class AuctionPublic(BaseModel):
    symbol: str
    price: str | None
    volume: int
    imbalance: int


# -- orders -------------------------------------------------------------------------------


class OrderCreate(Request):
    client_order_id: Annotated[str, StringConstraints(min_length=1, max_length=64),
                               AfterValidator(_identifier)]  # fmt: skip
    symbol: Identifier
    side: Side
    type: OrderType = OrderType.LIMIT
    price: DecimalString | None = Field(
        default=None, description="Limit price, or a market order's protection price"
    )
    quantity: Quantity
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time: datetime | None = Field(default=None, description="For GTD orders only")
    post_only: StrictBool = False
    self_trade_prevention: Literal["cancel_newest", "cancel_oldest", "cancel_both"] = (
        "cancel_newest"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "client_order_id": "my-first-order", "symbol": "ZJPARK.FLOW.NX12.COM", "side": "buy",
            "type": "limit", "price": "120.00", "quantity": 2, "time_in_force": "GTC",
        }]},
    )  # fmt: skip


class OrderAmend(Request):
    price: DecimalString | None = None
    quantity: Quantity | None = None


class OrderPublic(BaseModel):
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    price: str | None
    quantity: int
    filled_quantity: int
    remaining_quantity: int
    average_price: str | None
    status: OrderStatus
    time_in_force: TimeInForce
    expire_time: str | None
    post_only: bool
    cancel_reason: str | None
    created_at: str | None
    updated_at: str | None


class ParticipantDisabled(ParticipantAccount):
    cancelled_orders: list[OrderPublic] = Field(
        description="Its open orders, cancelled by the same command, oldest first"
    )


class FillPublic(BaseModel):
    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    price: str
    quantity: int
    fee: str
    liquidity: str
    time: str | None


class HoldingPublic(BaseModel):
    symbol: str
    units: int
    reserved_units: int
    expires_at: str | None


class BalancesPublic(BaseModel):
    cash_available: str
    cash_reserved: str
    holdings: list[HoldingPublic]


class CashMovement(Request):
    participant_id: Identifier
    amount: DecimalString
    reference: Annotated[str, StringConstraints(max_length=200), AfterValidator(_line)] = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"participant_id": "hz-bank", "amount": "100000.00", "reference": "wire 2026-11"}
        ]},
    )  # fmt: skip


class CashPublic(BaseModel):
    participant_id: str
    cash_available: str


# -- market data --------------------------------------------------------------------------


class BookLevel(BaseModel):
    price: str
    quantity: int


class BookPublic(BaseModel):
    seq: int = Field(description="The journal sequence number of the last command the book "
                     "reflects: a market stream message with a seq up to it is already in it")
    symbol: str
    phase: Phase
    bids: list[BookLevel]
    asks: list[BookLevel]
    indicative_price: str | None = Field(description="The call auction's price if run now")
    indicative_volume: int


class TradePublic(BaseModel):
    trade_id: int
    symbol: str
    price: str
    quantity: int
    aggressor: Side | None
    time: str | None


class TickerPublic(BaseModel):
    symbol: str
    phase: Phase
    last: str | None
    open: str | None
    high: str | None
    low: str | None
    vwap: str | None
    volume: int
    trades: int
    best_bid: str | None
    best_ask: str | None
    mid: str | None


class HealthPublic(BaseModel):
    status: str
    journal_seq: int
    instruments: int
    open_orders: int


# -- pricing and valuation ----------------------------------------------------------------


class BarPublic(BaseModel):
    start: str | None
    open: str
    high: str
    low: str
    close: str
    volume: int
    vwap: str
    trades: int


class IndexPointPublic(BaseModel):
    period_start: str
    value: float = Field(description="The category's price index, first period = 100")
    trades: int


class TermsIn(Request):
    exclusivity: Exclusivity
    duration_months: Annotated[int, Field(strict=True, ge=1, le=240)]
    scope: Scope
    territory: Territory


class ProductAttributes(Request):
    """A product described only by its attributes (it need not be in the catalogue)."""

    category: Category
    region: Name
    record_count: Annotated[int, Field(strict=True, ge=1, le=10**15)]
    coverage_months: Annotated[float, Field(strict=True, gt=0, le=12_000)]
    update_frequency: UpdateFrequency
    quality: QualityScores
    cost_basis: DecimalString = Field(
        description="Replacement cost of one licence (reference terms)"
    )


class IncomeIn(Request):
    annual_cash_flows: Annotated[list[DecimalString], Field(min_length=1, max_length=100)]
    discount_rate: Annotated[float, Field(strict=True, gt=-1, le=10)]
    attribution: Annotated[float, Field(strict=True, gt=0, le=1)] = 1.0


class ValuationRequest(Request):
    product_id: Identifier | None = Field(
        default=None, description="A catalogue product, or ..."
    )
    product: ProductAttributes | None = Field(default=None, description="... its attributes")
    terms: TermsIn
    as_of: str | None = Field(default=None, description="Valuation date (ISO), default today")
    income: IncomeIn | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "product_id": "P000001",
            "terms": {"exclusivity": "non_exclusive", "duration_months": 24,
                      "scope": "commercial", "territory": "domestic"},
        }]},
    )  # fmt: skip


class ComparablePublic(BaseModel):
    product_id: str
    terms: str
    price: str
    price_date: str
    last_trade_date: str
    trades: int
    units: int
    similarity: float


# -- ledger -------------------------------------------------------------------------------


# Entry 13 of a fresh demo market is its first guest's deposit: the guest's key may prove it.
# The database's sequence numbers are 64-bit: a larger number names no entry, and must not
# reach a query (PostgreSQL refuses it as out of range).
MAX_ENTRY_SEQ = 2**63 - 1
EntrySeqPath = Annotated[
    int,
    Path(ge=1, le=MAX_ENTRY_SEQ, description="An entry's sequence number (1-based)",
         examples=[13]),
]  # fmt: skip


class LedgerDigestPublic(BaseModel):
    tree_size: int = Field(description="Entries in the settlement ledger")
    root_hash: str = Field(description="RFC 6962 Merkle root over the entries, hex")


class CheckpointPublic(BaseModel):
    time: str = Field(description="When the witness wrote it (UTC)")
    journal: LedgerDigestPublic
    ledger: LedgerDigestPublic


class InclusionProofPublic(BaseModel):
    type: Literal["inclusion"] = "inclusion"
    seq: int = Field(description="The entry's sequence number (1-based)")
    entry: str = Field(description="The entry's canonical JSON: the bytes of its Merkle leaf")
    leaf_hash: str = Field(description="SHA-256(0x00 || entry), hex")
    leaf_index: int = Field(description="seq - 1")
    tree_size: int
    hashes: list[str] = Field(description="The audit path, leaf to root, hex")
