"""The exchange's commands: every state change, as it is journalled.

Each command is a frozen dataclass of plain JSON values (strings, integers, booleans, lists
and maps of them), so its journal record is exactly its fields plus its ``verb``. ``actor``
is the participant who asked. Ids the exchange assigns (product ids, order ids) are in the
command, so the journal reads on its own and replay can check it assigns the same ones.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, replace
from typing import Any, ClassVar

__all__ = [
    "AcceptFacility",
    "AcceptQuote",
    "AmendOrder",
    "AttestUpdate",
    "CancelAllOrders",
    "CancelOrder",
    "CancelRequest",
    "Command",
    "ConfirmTrade",
    "CreateFacility",
    "CreateParticipant",
    "CreateProduct",
    "Deposit",
    "DisableParticipant",
    "DrawLoan",
    "EnableParticipant",
    "Housekeeping",
    "ListInstrument",
    "MassQuote",
    "PledgeLicences",
    "PostMargin",
    "PostValuation",
    "RegulatorDecision",
    "ReinstateProduct",
    "ReleasePledge",
    "RepayLoan",
    "ReportTrade",
    "RequestQuote",
    "ResubmitProduct",
    "ReturnMargin",
    "ReviewProduct",
    "RevokeApiKey",
    "RotateApiKey",
    "SetPhase",
    "SetPublicationPolicy",
    "SubmitOrder",
    "SubmitQuote",
    "SuspendProduct",
    "Uncross",
    "Withdraw",
    "command_from_record",
    "command_to_record",
    "same_submission",
]


@dataclass(frozen=True, slots=True)
class CreateParticipant:
    verb: ClassVar[str] = "create_participant"
    actor: str
    participant_id: str
    name: str
    roles: list[str]
    key_id: str
    secret_sha256: str


@dataclass(frozen=True, slots=True)
class DisableParticipant:
    """An operator suspends a participant: it can no longer authenticate or act, and its
    open orders are cancelled in the same command."""

    verb: ClassVar[str] = "disable_participant"
    actor: str
    participant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class EnableParticipant:
    verb: ClassVar[str] = "enable_participant"
    actor: str
    participant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RotateApiKey:
    """A new key for the participant (its digest only); the old one stops working at once."""

    verb: ClassVar[str] = "rotate_api_key"
    actor: str
    participant_id: str
    key_id: str
    secret_sha256: str


@dataclass(frozen=True, slots=True)
class RevokeApiKey:
    """The participant's key ``key_id`` stops working; the participant has none until a
    rotation issues one."""

    verb: ClassVar[str] = "revoke_api_key"
    actor: str
    participant_id: str
    key_id: str


@dataclass(frozen=True, slots=True)
class CreateProduct:
    verb: ClassVar[str] = "create_product"
    actor: str
    product_id: str
    title: str
    description: str
    category: str
    region: str
    record_count: int
    coverage_start: str
    coverage_end: str
    update_frequency: str
    quality_bp: dict[str, int]
    personal_information: bool
    classification: str
    desensitised: bool
    lawful_source_attestation: str
    cost_basis_minor: int


@dataclass(frozen=True, slots=True)
class ResubmitProduct:
    """The provider answers a request for changes and puts the product back for review."""

    verb: ClassVar[str] = "resubmit_product"
    actor: str
    product_id: str
    classification: str
    personal_information: bool
    desensitised: bool
    lawful_source_attestation: str
    note: str


@dataclass(frozen=True, slots=True)
class ReviewProduct:
    verb: ClassVar[str] = "review_product"
    actor: str
    product_id: str
    decision: str
    checks: dict[str, bool]
    opinion: str


@dataclass(frozen=True, slots=True)
class RegulatorDecision:
    verb: ClassVar[str] = "regulator_decision"
    actor: str
    product_id: str
    decision: str
    opinion: str


@dataclass(frozen=True, slots=True)
class SuspendProduct:
    verb: ClassVar[str] = "suspend_product"
    actor: str
    product_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReinstateProduct:
    verb: ClassVar[str] = "reinstate_product"
    actor: str
    product_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ListInstrument:
    verb: ClassVar[str] = "list_instrument"
    actor: str
    symbol: str
    product_id: str
    exclusivity: str
    duration_months: int
    scope: str
    territory: str
    transferable: bool
    tick_size_minor: int
    lot_size_units: int
    trading_mode: str
    issuance_cap_units: int
    fee_rate_bp: int
    price_band_low_minor: int | None
    price_band_high_minor: int | None
    sealed_bid_pricing: str


@dataclass(frozen=True, slots=True)
class Deposit:
    verb: ClassVar[str] = "deposit"
    actor: str
    participant_id: str
    amount_minor: int
    reference: str


@dataclass(frozen=True, slots=True)
class Withdraw:
    verb: ClassVar[str] = "withdraw"
    actor: str
    participant_id: str
    amount_minor: int
    reference: str


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    verb: ClassVar[str] = "submit_order"
    actor: str
    client_order_id: str
    order_id: int
    symbol: str
    side: str
    order_type: str
    price_minor: int | None
    quantity_units: int
    tif: str
    expire_ns: int | None
    post_only: bool
    stp: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    verb: ClassVar[str] = "cancel_order"
    actor: str
    order_id: int


@dataclass(frozen=True, slots=True)
class CancelAllOrders:
    """Cancel every open order of ``participant_id`` (on ``symbol``, of ``side``, when
    given): its owner's mass cancel, or an admin's kill switch when ``actor`` is an admin."""

    verb: ClassVar[str] = "cancel_all_orders"
    actor: str
    participant_id: str
    symbol: str | None
    side: str | None


@dataclass(frozen=True, slots=True)
class AmendOrder:
    verb: ClassVar[str] = "amend_order"
    actor: str
    order_id: int
    price_minor: int | None
    quantity_units: int | None


@dataclass(frozen=True, slots=True)
class MassQuote:
    """A market maker replaces all its open orders on ``symbol`` with ``quotes`` in one step,
    all or none (exchange/mass_quote.py). Each quote is a post-only GTC limit order,
    ``{"client_order_id", "side", "price_minor", "quantity_units"}``; no quotes pulls them
    all. ``order_ids`` are the ids the exchange assigned, in the quotes' order."""

    verb: ClassVar[str] = "mass_quote"
    actor: str
    symbol: str
    quotes: list[dict[str, Any]]
    order_ids: list[int]


@dataclass(frozen=True, slots=True)
class SetPhase:
    verb: ClassVar[str] = "set_phase"
    actor: str
    symbol: str
    phase: str


@dataclass(frozen=True, slots=True)
class Uncross:
    verb: ClassVar[str] = "uncross"
    actor: str
    symbol: str


@dataclass(frozen=True, slots=True)
class Housekeeping:
    """The exchange's own timer: expire GTD orders and lapsed licences due by now."""

    verb: ClassVar[str] = "housekeeping"
    actor: str


# -- confidential trading (exchange/confidential.py) ---------------------------------------


@dataclass(frozen=True, slots=True)
class RequestQuote:
    """A buyer asks ``responders`` (or, with ``all_eligible``, everyone able to sell) for a
    price for ``quantity_units`` of ``symbol``, answerable until ``deadline_ns``."""

    verb: ClassVar[str] = "request_quote"
    actor: str
    rfq_id: int
    symbol: str
    quantity_units: int
    responders: list[str]
    all_eligible: bool
    deadline_ns: int
    disclose_requester: bool
    # The requester's own id for the request, which makes a retry answer the original.
    client_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitQuote:
    """A responder's price for a request; it replaces the responder's earlier quote."""

    verb: ClassVar[str] = "submit_quote"
    actor: str
    rfq_id: int
    quote_id: int
    price_minor: int
    client_quote_id: str | None = None  # the responder's own id: a retry answers the original


@dataclass(frozen=True, slots=True)
class AcceptQuote:
    verb: ClassVar[str] = "accept_quote"
    actor: str
    rfq_id: int
    quote_id: int
    trade_id: int


@dataclass(frozen=True, slots=True)
class CancelRequest:
    verb: ClassVar[str] = "cancel_request"
    actor: str
    rfq_id: int


@dataclass(frozen=True, slots=True)
class ReportTrade:
    """One party reports a trade agreed off the exchange; ``side`` is the reporter's."""

    verb: ClassVar[str] = "report_trade"
    actor: str
    report_id: int
    symbol: str
    side: str
    counterparty: str
    price_minor: int
    quantity_units: int
    client_report_id: str | None = None  # the reporter's own id: a retry answers the original


@dataclass(frozen=True, slots=True)
class ConfirmTrade:
    """The counterparty confirms a reported trade, which then settles."""

    verb: ClassVar[str] = "confirm_trade"
    actor: str
    report_id: int
    trade_id: int


@dataclass(frozen=True, slots=True)
class SetPublicationPolicy:
    """An instrument's rules for publishing its confidential trades (exchange/publication.py)."""

    verb: ClassVar[str] = "set_publication_policy"
    actor: str
    symbol: str
    large_in_scale_minor: int
    liquid_trades_30d: int
    deferral_standard_s: int
    deferral_large_or_illiquid_s: int
    deferral_large_and_illiquid_s: int
    quantity_cap_units: int
    band_large_in_scale: bool
    band_significant_figures: int


# -- loan facilities and collateral (exchange/collateral.py) -------------------------------


@dataclass(frozen=True, slots=True)
class CreateFacility:
    """A lender offers ``borrower`` a loan facility (exchange/facility.py); ``haircut`` holds
    the haircut policy's parameters (exchange/haircut.py), as journalled all of them."""

    verb: ClassVar[str] = "create_facility"
    actor: str
    facility_id: int
    borrower: str
    limit_minor: int
    rate_bp: int
    maturity_ns: int
    initial_ltv_bp: int
    margin_call_ltv_bp: int
    liquidation_ltv_bp: int
    cure_period_s: int
    auction_duration_s: int
    haircut: dict[str, int]
    client_facility_id: str | None = None  # the lender's own id: a retry answers the original


@dataclass(frozen=True, slots=True)
class AcceptFacility:
    verb: ClassVar[str] = "accept_facility"
    actor: str
    facility_id: int


@dataclass(frozen=True, slots=True)
class DrawLoan:
    """The borrower draws cash from the lender, up to the limit and the initial LTV."""

    verb: ClassVar[str] = "draw_loan"
    actor: str
    facility_id: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class RepayLoan:
    """The borrower repays, interest first; ``amount_minor`` at most the debt."""

    verb: ClassVar[str] = "repay_loan"
    actor: str
    facility_id: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PledgeLicences:
    """The borrower pledges ``quantity_units`` of its holding of ``symbol`` that expires at
    ``expires_ns`` (None: a provider's unsold licences) to the facility."""

    verb: ClassVar[str] = "pledge_licences"
    actor: str
    facility_id: int
    pledge_id: int
    symbol: str
    quantity_units: int
    expires_ns: int | None


@dataclass(frozen=True, slots=True)
class ReleasePledge:
    """Pledged units go back to the borrower's free holding: by the borrower while the LTV
    stays within the initial threshold, by the lender at any time but during an auction."""

    verb: ClassVar[str] = "release_pledge"
    actor: str
    facility_id: int
    pledge_id: int
    quantity_units: int


@dataclass(frozen=True, slots=True)
class PostMargin:
    """The borrower moves cash into the facility's margin account, as collateral."""

    verb: ClassVar[str] = "post_margin"
    actor: str
    facility_id: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class ReturnMargin:
    """Cash margin goes back to the borrower, as a release of pledged units would."""

    verb: ClassVar[str] = "return_margin"
    actor: str
    facility_id: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PostValuation:
    """The exchange's valuation of an instrument's licences (exchange/pricing), as marks use
    it: the value and its range per licence unit, and the comparables behind it."""

    verb: ClassVar[str] = "post_valuation"
    actor: str
    symbol: str
    value_minor: int
    low_minor: int
    high_minor: int
    comparables: int
    method: str


@dataclass(frozen=True, slots=True)
class AttestUpdate:
    """A provider attests that its product's data was updated, with its quality scores now
    (None: unchanged): a product that misses the updates its frequency promises, or whose
    quality falls, is worth less as collateral."""

    verb: ClassVar[str] = "attest_update"
    actor: str
    product_id: str
    quality_bp: dict[str, int] | None = None


Command = (
    CreateParticipant
    | CreateFacility
    | AcceptFacility
    | DrawLoan
    | RepayLoan
    | PledgeLicences
    | ReleasePledge
    | PostMargin
    | ReturnMargin
    | PostValuation
    | AttestUpdate
    | CreateProduct
    | ResubmitProduct
    | ReviewProduct
    | RegulatorDecision
    | SuspendProduct
    | ReinstateProduct
    | ListInstrument
    | Deposit
    | Withdraw
    | SubmitOrder
    | CancelOrder
    | CancelAllOrders
    | AmendOrder
    | MassQuote
    | SetPhase
    | Uncross
    | Housekeeping
    | RequestQuote
    | SubmitQuote
    | AcceptQuote
    | CancelRequest
    | ReportTrade
    | ConfirmTrade
    | SetPublicationPolicy
    | DisableParticipant
    | EnableParticipant
    | RotateApiKey
    | RevokeApiKey
)

_BY_VERB: dict[str, type] = {
    cls.verb: cls
    for cls in (
        CreateFacility, AcceptFacility, DrawLoan, RepayLoan, PledgeLicences, ReleasePledge,
        PostMargin, ReturnMargin, PostValuation, AttestUpdate,
        CreateParticipant, CreateProduct, ResubmitProduct, ReviewProduct, RegulatorDecision,
        SuspendProduct, ReinstateProduct, ListInstrument, Deposit, Withdraw, SubmitOrder,
        CancelOrder, AmendOrder, SetPhase, Uncross, Housekeeping, RequestQuote, SubmitQuote,
        AcceptQuote, CancelRequest, ReportTrade, ConfirmTrade, SetPublicationPolicy,
        CancelAllOrders, DisableParticipant, EnableParticipant, RotateApiKey, RevokeApiKey,
        MassQuote,
    )
}  # fmt: skip
_FIELDS = {verb: frozenset(f.name for f in fields(cls)) for verb, cls in _BY_VERB.items()}
_FIELD_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in _BY_VERB.values()}
# Fields added with a default after journals were written without them: a record omits them
# at their default, so that it reads as it did before and an older journal replays the same.
_DEFAULTS = {
    cls: tuple((f.name, f.default) for f in fields(cls) if f.default is not MISSING)
    for cls in _BY_VERB.values()
}
_OPTIONAL = {cls.verb: frozenset(name for name, _ in _DEFAULTS[cls]) for cls in _BY_VERB.values()}


def same_submission(kept: SubmitOrder, sent: SubmitOrder) -> bool:
    """Whether ``sent`` is the order ``kept`` under its client order id, whatever order id
    either carries: the exchange keeps a submission as journalled, with the id it assigned,
    and a retry arrives without one."""
    return replace(kept, order_id=0) == replace(sent, order_id=0)


def command_to_record(command: Command) -> dict[str, Any]:
    """The journal record of ``command``: its fields and its verb.

    Built from precomputed field names (``dataclasses.asdict`` costs ten times as much, and
    this runs for every order); list and map fields are copied, the rest are immutable.
    """
    record = {name: getattr(command, name) for name in _FIELD_NAMES[type(command)]}
    for name, value in record.items():
        if type(value) is list or type(value) is dict:
            record[name] = value.copy()
    for name, default in _DEFAULTS[type(command)]:
        if record[name] == default:
            del record[name]
    record["verb"] = command.verb
    return record


def command_from_record(record: dict[str, Any]) -> Command:
    """The command a journal record holds; ``ValueError`` if it is not one."""
    verb = record.get("verb")
    cls = _BY_VERB.get(verb)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown journal verb {verb!r}")
    values = {key: value for key, value in record.items() if key != "verb"}
    if not _FIELDS[verb] - _OPTIONAL[verb] <= set(values) <= _FIELDS[verb]:  # type: ignore[index]
        raise ValueError(f"journal record of {verb} has fields {sorted(values)}")
    return cls(**values)  # type: ignore[no-any-return]
