"""Ledger entries: the kinds, the entry value, and a builder of balanced postings per kind.

An entry is a fact with an idempotency key, a caller-supplied time (``ts_ns``, nanoseconds
since the epoch), a kind-specific ``body`` (a canonical JSON object: what happened, in
words a reader can audit) and its postings. A posting adds ``amount_units`` (signed, never
zero) to the balance of ``account`` in ``asset``. For every asset the postings of one entry
sum to zero. Builders are pure: they compute postings, they do not look at balances; the
store rejects an entry that would take a non-negative account below zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from ledger import accounts
from ledger.canonical import INT64_MAX
from ledger.errors import EntryError

__all__ = [
    "ComplianceDecision",
    "Entry",
    "EntryKind",
    "Posting",
    "collateral_alert",
    "collateral_transfer",
    "compliance_decision",
    "deposit",
    "licence_expiry",
    "licence_issuance",
    "trade_settlement",
    "withdrawal",
]

MAX_KEY_LENGTH = 128
MAX_POSTINGS_PER_ENTRY = 64
MAX_TEXT_LENGTH = 4096


class EntryKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRADE_SETTLEMENT = "trade_settlement"
    LICENCE_ISSUANCE = "licence_issuance"
    LICENCE_EXPIRY = "licence_expiry"
    COMPLIANCE_DECISION = "compliance_decision"
    # Loan facilities (exchange/collateral.py): value moves between lender and borrower, and
    # between a borrower's free and pledged accounts; an alert moves nothing and is recorded.
    LOAN_DRAWDOWN = "loan_drawdown"
    LOAN_REPAYMENT = "loan_repayment"
    PLEDGE = "pledge"
    PLEDGE_RELEASE = "pledge_release"
    MARGIN_DEPOSIT = "margin_deposit"
    MARGIN_RELEASE = "margin_release"
    COLLATERAL_ALERT = "collateral_alert"


# The kinds :func:`collateral_transfer` builds, and the asset each moves.
_COLLATERAL_TRANSFERS = frozenset({
    EntryKind.LOAN_DRAWDOWN, EntryKind.LOAN_REPAYMENT, EntryKind.PLEDGE,
    EntryKind.PLEDGE_RELEASE, EntryKind.MARGIN_DEPOSIT, EntryKind.MARGIN_RELEASE,
    EntryKind.LICENCE_EXPIRY,
})  # fmt: skip


class ComplianceDecision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"


class Posting(NamedTuple):
    account: str
    asset: str
    amount_units: int


_posting = tuple.__new__


@dataclass(frozen=True, slots=True)
class Entry:
    """One settlement-ledger entry before it has a sequence number."""

    kind: EntryKind
    key: str
    ts_ns: int
    body: Mapping[str, Any]
    postings: tuple[Posting, ...]

    def check(self) -> None:
        """Raise :class:`EntryError` unless the entry is well formed and balanced."""
        if type(self.key) is not str or not 0 < len(self.key) <= MAX_KEY_LENGTH:
            raise EntryError(f"idempotency key must be 1..{MAX_KEY_LENGTH} characters")
        if type(self.ts_ns) is not int or not 0 <= self.ts_ns <= INT64_MAX:
            raise EntryError(f"{self.key}: ts_ns must be a non-negative 64-bit integer")
        if self.kind not in _KINDS:
            raise EntryError(f"{self.key}: unknown entry kind {self.kind!r}")
        if len(self.postings) > MAX_POSTINGS_PER_ENTRY:
            raise EntryError(f"{self.key}: more than {MAX_POSTINGS_PER_ENTRY} postings")
        totals: dict[str, int] = {}
        known = _KNOWN_ACCOUNT_ASSETS
        for account, asset, amount in self.postings:
            if type(amount) is not int or amount == 0 or not -INT64_MAX <= amount <= INT64_MAX:
                raise EntryError(f"{self.key}: amount {amount!r} on {account} is not valid")
            if (account, asset) not in known:
                _check_account_asset(self.key, account, asset)
            totals[asset] = totals.get(asset, 0) + amount
        for asset, total in totals.items():
            if total:
                raise EntryError(f"{self.key}: postings in {asset} sum to {total}, not 0")


# Account/asset pairs already checked; bounded so a flood of distinct accounts cannot grow it.
_KNOWN_ACCOUNT_ASSETS: set[tuple[str, str]] = set()
_KNOWN_ACCOUNT_ASSETS_LIMIT = 1_000_000


def _check_account_asset(key: str, account: str, asset: str) -> None:
    try:
        expected_asset = accounts.asset_of(account)
    except accounts.AccountError as error:
        raise EntryError(f"{key}: {error}") from None
    if asset != expected_asset:
        raise EntryError(f"{key}: account {account} holds {expected_asset}, not {asset}")
    if len(_KNOWN_ACCOUNT_ASSETS) >= _KNOWN_ACCOUNT_ASSETS_LIMIT:
        _KNOWN_ACCOUNT_ASSETS.clear()
    _KNOWN_ACCOUNT_ASSETS.add((account, asset))


_KINDS = frozenset(EntryKind)


def _positive(value: int, what: str) -> int:
    if type(value) is not int or not 0 < value <= INT64_MAX:
        raise EntryError(f"{what} must be a positive integer, got {value!r}")
    return value


def _transfer(source: str, destination: str, asset: str, amount: int) -> tuple[Posting, ...]:
    return (Posting(source, asset, -amount), Posting(destination, asset, amount))


def deposit(
    participant: str, amount_minor: int, *, key: str, ts_ns: int, reference: str | None = None
) -> Entry:
    """Cash arrives from outside the exchange into the participant's cash."""
    _positive(amount_minor, "deposit amount_minor")
    postings = _transfer(
        accounts.EXTERNAL_CASH, accounts.cash(participant), accounts.CASH, amount_minor
    )
    body = {"participant": participant, "amount_minor": amount_minor, "reference": reference}
    return Entry(EntryKind.DEPOSIT, key, ts_ns, body, postings)


def withdrawal(
    participant: str, amount_minor: int, *, key: str, ts_ns: int, reference: str | None = None
) -> Entry:
    """Cash leaves the exchange (the exchange checks first that no open order holds it)."""
    _positive(amount_minor, "withdrawal amount_minor")
    postings = _transfer(
        accounts.cash(participant), accounts.EXTERNAL_CASH, accounts.CASH, amount_minor
    )
    body = {"participant": participant, "amount_minor": amount_minor, "reference": reference}
    return Entry(EntryKind.WITHDRAWAL, key, ts_ns, body, postings)


def trade_settlement(
    *,
    trade_id: int,
    symbol: str,
    buyer: str,
    seller: str,
    price_minor_per_unit: int,
    quantity_units: int,
    fee_minor: int,
    expires_at_ns: int,
    primary: bool,
    ts_ns: int,
    confidential: bool = False,
) -> Entry:
    """Settle one trade; its idempotency key is ``trade:<trade_id>``, or
    ``confidential_trade:<trade_id>`` for a trade agreed off the order book (by request for
    quote or negotiation), whose ids the exchange numbers apart and whose body says so.

    Cash: ``price_minor_per_unit * quantity_units`` leaves the buyer's cash; the
    seller receives it less ``fee_minor``, which goes to the exchange's fee account.
    Licences: ``quantity_units`` expiring at ``expires_at_ns`` go to the buyer, from the
    instrument's issuance account when ``primary`` (the provider sells new licences) or from
    the seller's holding with that same expiry (a resale).
    """
    if type(trade_id) is not int or trade_id < 0:
        raise EntryError(f"trade_id must be a non-negative integer, got {trade_id!r}")
    _positive(price_minor_per_unit, "price_minor_per_unit")
    _positive(quantity_units, "quantity_units")
    notional_minor = price_minor_per_unit * quantity_units
    if type(fee_minor) is not int or not 0 <= fee_minor <= notional_minor:
        raise EntryError(f"fee_minor {fee_minor!r} must be within 0..{notional_minor}")
    if buyer == seller:
        raise EntryError(f"trade {trade_id}: buyer and seller are both {buyer!r}")
    cash, licence = accounts.CASH, accounts.licence_asset(symbol)
    source = (
        accounts.issuance(symbol)
        if primary
        else accounts.licence_holding(seller, symbol, expires_at_ns)
    )
    # Postings built as the tuples they are (``_posting``): the named tuple's own
    # constructor is a Python function, twice the cost, and every trade makes five.
    postings = [
        _posting(Posting, (accounts.cash(buyer), cash, -notional_minor)),
        _posting(Posting, (accounts.cash(seller), cash, notional_minor - fee_minor)),
    ]
    if fee_minor:
        postings.append(_posting(Posting, (accounts.EXCHANGE_FEES, cash, fee_minor)))
    if postings[1].amount_units == 0:
        # The whole notional went in fees: the seller's zero posting carries no information.
        del postings[1]
    postings.append(_posting(Posting, (source, licence, -quantity_units)))
    holding = accounts.licence_holding(buyer, symbol, expires_at_ns)
    postings.append(_posting(Posting, (holding, licence, quantity_units)))
    body = {
        "trade_id": trade_id,
        "symbol": symbol,
        "buyer": buyer,
        "seller": seller,
        "price_minor_per_unit": price_minor_per_unit,
        "quantity_units": quantity_units,
        "notional_minor": notional_minor,
        "fee_minor": fee_minor,
        "expires_at_ns": expires_at_ns,
        "primary": primary,
    }
    key = f"trade:{trade_id}"
    if confidential:
        # Only then, so that every order-book trade's entry keeps its bytes and its hash.
        body["confidential"] = True
        key = f"confidential_trade:{trade_id}"
    return Entry(EntryKind.TRADE_SETTLEMENT, key, ts_ns, body, tuple(postings))


def licence_issuance(
    *,
    symbol: str,
    provider: str,
    units: int,
    issuance_cap_units: int,
    key: str,
    ts_ns: int,
) -> Entry:
    """The provider issues ``units`` new licences into the instrument's issuance account.

    The store refuses the entry if the units ever issued would exceed ``issuance_cap_units``.
    """
    _positive(units, "issuance units")
    _positive(issuance_cap_units, "issuance_cap_units")
    if units > issuance_cap_units:
        raise EntryError(f"issuing {units} units exceeds the cap of {issuance_cap_units}")
    postings = _transfer(
        accounts.issued(symbol), accounts.issuance(symbol), accounts.licence_asset(symbol), units
    )
    body = {
        "symbol": symbol,
        "provider": accounts.check_identifier(provider, "provider"),
        "units": units,
        "issuance_cap_units": issuance_cap_units,
    }
    return Entry(EntryKind.LICENCE_ISSUANCE, key, ts_ns, body, postings)


def licence_expiry(
    *, symbol: str, holder: str, expires_at_ns: int, units: int, key: str, ts_ns: int
) -> Entry:
    """``units`` of the holder's licences expiring at ``expires_at_ns`` lapse at ``ts_ns``."""
    _positive(units, "expiry units")
    if type(ts_ns) is not int or ts_ns < expires_at_ns:
        raise EntryError(f"licences expiring at {expires_at_ns} cannot lapse at {ts_ns}")
    postings = _transfer(
        accounts.licence_holding(holder, symbol, expires_at_ns),
        accounts.licence_expired(symbol),
        accounts.licence_asset(symbol),
        units,
    )
    body = {"symbol": symbol, "holder": holder, "expires_at_ns": expires_at_ns, "units": units}
    return Entry(EntryKind.LICENCE_EXPIRY, key, ts_ns, body, postings)


def compliance_decision(
    *,
    product_id: str,
    reviewer: str,
    decision: ComplianceDecision,
    checks: Mapping[str, bool],
    opinion: str,
    key: str,
    ts_ns: int,
) -> Entry:
    """A compliance review's decision on a product: no money moves, the decision is recorded."""
    decision = ComplianceDecision(decision)
    if len(opinion) > MAX_TEXT_LENGTH:
        raise EntryError(f"opinion longer than {MAX_TEXT_LENGTH} characters")
    if not all(type(value) is bool for value in checks.values()):
        raise EntryError("compliance checks must map check names to true or false")
    body = {
        "product_id": product_id,
        "reviewer": reviewer,
        "decision": decision.value,
        "checks": dict(checks),
        "opinion": opinion,
    }
    return Entry(EntryKind.COMPLIANCE_DECISION, key, ts_ns, body, ())


def collateral_transfer(
    kind: EntryKind,
    *,
    facility_id: int,
    source: str,
    destination: str,
    asset: str,
    amount_units: int,
    key: str,
    ts_ns: int,
    reason: str,
) -> Entry:
    """A movement of a loan facility's value, one asset from ``source`` to ``destination``:
    a drawdown (lender's cash to the borrower), a repayment (the borrower's cash or margin to
    the lender), a pledge or its release (licence units between a free and a pledged
    account), cash margin posted or returned, or pledged licences lapsing at their expiry.
    ``reason`` says why, in a word (``repayment``, ``liquidation``, ``cure``, ...)."""
    if kind not in _COLLATERAL_TRANSFERS:
        raise EntryError(f"{kind} is not a movement of a facility's value")
    _positive(amount_units, f"{kind} amount")
    if source == destination:
        raise EntryError(f"{key}: {kind} from {source} to itself")
    body = {
        "facility_id": facility_id,
        "from": source,
        "to": destination,
        "asset": asset,
        "amount_units": amount_units,
        "reason": reason,
    }
    return Entry(kind, key, ts_ns, body, _transfer(source, destination, asset, amount_units))


def collateral_alert(
    *, facility_id: int, alert: Mapping[str, Any], key: str, ts_ns: int
) -> Entry:
    """A facility crossed a threshold or its collateral deteriorated: nothing moves, the
    alert (its reason, the LTV and the thresholds at the time) is recorded in the chain."""
    if not all(type(value) in (str, int, bool) or value is None for value in alert.values()):
        raise EntryError("an alert holds strings, integers, booleans and nulls only")
    return Entry(
        EntryKind.COLLATERAL_ALERT, key, ts_ns, {"facility_id": facility_id, **alert}, ()
    )
