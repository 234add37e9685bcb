"""The exchange's commands: every state change, as it is journalled.

Each command is a frozen dataclass of plain JSON values (strings, integers, booleans, lists
and maps of them), so its journal record is exactly its fields plus its ``verb``. ``actor``
is the participant who asked. Ids the exchange assigns (product ids, order ids) are in the
command, so the journal reads on its own and replay can check it assigns the same ones.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

__all__ = [
    "AcceptQuote",
    "AmendOrder",
    "CancelAllOrders",
    "CancelOrder",
    "CancelRequest",
    "Command",
    "ConfirmTrade",
    "CreateParticipant",
    "CreateProduct",
    "Deposit",
    "Housekeeping",
    "ListInstrument",
    "RegulatorDecision",
    "ReinstateProduct",
    "ReportTrade",
    "RequestQuote",
    "ResubmitProduct",
    "ReviewProduct",
    "SetPhase",
    "SetPublicationPolicy",
    "SubmitOrder",
    "SubmitQuote",
    "SuspendProduct",
    "Uncross",
    "Withdraw",
    "command_from_record",
    "command_to_record",
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


Command = (
    CreateParticipant
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
)

_BY_VERB: dict[str, type] = {
    cls.verb: cls
    for cls in (
        CreateParticipant, CreateProduct, ResubmitProduct, ReviewProduct, RegulatorDecision,
        SuspendProduct, ReinstateProduct, ListInstrument, Deposit, Withdraw, SubmitOrder,
        CancelOrder, AmendOrder, SetPhase, Uncross, Housekeeping, RequestQuote, SubmitQuote,
        AcceptQuote, CancelRequest, ReportTrade, ConfirmTrade, SetPublicationPolicy,
        CancelAllOrders,
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
