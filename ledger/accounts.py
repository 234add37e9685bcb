"""Accounts and assets: how they are named and which balances must stay non-negative.

Assets are ``cash`` (integer minor units) and ``licence:<symbol>`` (licence units of one
instrument). Accounts are colon-separated names:

====================================================  ===============  ====================
account                                               asset            floor
====================================================  ===============  ====================
``participant:<id>:cash``                             cash             0
``participant:<id>:licence:<symbol>:<expires_at_ns>``  licence:<symbol> 0
``participant:<id>:pledged:<facility>:<symbol>:<exp>``  licence:<symbol> 0
``participant:<id>:margin:<facility>``                cash             0
``instrument:<symbol>:issuance`` (provider's unsold)  licence:<symbol> 0
``instrument:<symbol>:issued`` (source of issuance)   licence:<symbol> -issuance cap
``instrument:<symbol>:expired`` (sink of expiry)      licence:<symbol> none
``exchange:fees``                                     cash             0
``external:cash`` (money outside the exchange)        cash             none
====================================================  ===============  ====================

Pledged licences (``exp`` is the holding's expiry, or ``unissued`` for a provider's unsold
licences) and cash margin stay the participant's, under the lien of the facility's lender:
they are apart from the free holding and cash so that no order can sell or spend them.

A balance is the sum of the signed amounts posted to the account. ``instrument:*:issued``
is minus the units ever issued, ``external:cash`` minus the cash ever deposited net of
withdrawals, so every asset sums to zero over all accounts at all times.
"""

from __future__ import annotations

from functools import lru_cache

from ledger.errors import EntryError

__all__ = [
    "CASH",
    "EXCHANGE_FEES",
    "EXTERNAL_CASH",
    "AccountError",
    "asset_of",
    "cash",
    "check_identifier",
    "is_non_negative",
    "issuance",
    "issued",
    "licence_asset",
    "licence_expired",
    "licence_holding",
    "margin",
    "participant_of",
    "pledged",
]

CASH = "cash"
EXCHANGE_FEES = "exchange:fees"
EXTERNAL_CASH = "external:cash"
MAX_IDENTIFIER_LENGTH = 64
# The names of accounts built and checked so far, per builder: every trade names four or
# five accounts, most of them named before. ``typed`` so that ``True`` never passes for 1.
_NAMES_CACHED = 65_536


class AccountError(EntryError):
    """An account or asset name that the ledger does not know."""


def check_identifier(value: str, what: str) -> str:
    """Return ``value`` if it can be part of an account name (no colon, bounded length)."""
    if (
        not isinstance(value, str)
        or not value
        or ":" in value
        or len(value) > MAX_IDENTIFIER_LENGTH
    ):
        raise AccountError(f"{what} {value!r} must be 1..{MAX_IDENTIFIER_LENGTH} chars, no ':'")
    return value


@lru_cache(maxsize=_NAMES_CACHED, typed=True)
def licence_asset(symbol: str) -> str:
    return f"licence:{check_identifier(symbol, 'symbol')}"


@lru_cache(maxsize=_NAMES_CACHED, typed=True)
def cash(participant: str) -> str:
    """The participant's cash. What open buy orders hold of it is risk state in the
    exchange's memory, not a ledger account: the ledger records movements of value only."""
    return f"participant:{check_identifier(participant, 'participant')}:cash"


@lru_cache(maxsize=_NAMES_CACHED, typed=True)
def licence_holding(participant: str, symbol: str, expires_at_ns: int) -> str:
    """Holding of ``symbol`` licences by ``participant`` that expire at ``expires_at_ns``."""
    if type(expires_at_ns) is not int or expires_at_ns < 0:
        raise AccountError(f"expiry {expires_at_ns!r} must be a non-negative integer (ns)")
    participant = check_identifier(participant, "participant")
    return f"participant:{participant}:licence:{check_identifier(symbol, 'symbol')}:{expires_at_ns}"


UNISSUED = "unissued"


def pledged(participant: str, facility_id: int, symbol: str, expires_at_ns: int | None) -> str:
    """Licences of ``symbol`` that ``participant`` pledged to facility ``facility_id``: from
    its holding expiring at ``expires_at_ns``, or (None) from its unsold issuance."""
    if type(facility_id) is not int or facility_id <= 0:
        raise AccountError(f"facility id {facility_id!r} must be a positive integer")
    if expires_at_ns is not None and (type(expires_at_ns) is not int or expires_at_ns < 0):
        raise AccountError(f"expiry {expires_at_ns!r} must be a non-negative integer (ns)")
    expiry = UNISSUED if expires_at_ns is None else expires_at_ns
    participant = check_identifier(participant, "participant")
    symbol = check_identifier(symbol, "symbol")
    return f"participant:{participant}:pledged:{facility_id}:{symbol}:{expiry}"


def margin(participant: str, facility_id: int) -> str:
    """Cash ``participant`` posted as margin to facility ``facility_id``."""
    if type(facility_id) is not int or facility_id <= 0:
        raise AccountError(f"facility id {facility_id!r} must be a positive integer")
    return f"participant:{check_identifier(participant, 'participant')}:margin:{facility_id}"


@lru_cache(maxsize=_NAMES_CACHED, typed=True)
def issuance(symbol: str) -> str:
    """The provider's licences of ``symbol`` issued and not yet sold."""
    return f"instrument:{check_identifier(symbol, 'symbol')}:issuance"


def issued(symbol: str) -> str:
    """Source of issued licences of ``symbol``: its balance is minus the units ever issued."""
    return f"instrument:{check_identifier(symbol, 'symbol')}:issued"


def licence_expired(symbol: str) -> str:
    """Sink of expired licences of ``symbol``."""
    return f"instrument:{check_identifier(symbol, 'symbol')}:expired"


@lru_cache(maxsize=65536)
def asset_of(account: str) -> str:
    """The one asset that ``account`` may hold; raises :class:`AccountError` if unknown.

    >>> asset_of("participant:ann:licence:ZJ.NX12:1700000000")
    'licence:ZJ.NX12'
    """
    parts = account.split(":")
    match parts:
        case ["participant", _, "cash"]:
            return CASH
        case ["participant", _, "margin", facility] if facility.isdigit():
            return CASH
        case ["participant", _, "licence", symbol, expiry] if expiry.isdigit():
            return f"licence:{symbol}"
        case ["participant", _, "pledged", facility, symbol, expiry] if facility.isdigit() and (
            expiry.isdigit() or expiry == UNISSUED
        ):
            return f"licence:{symbol}"
        case ["instrument", symbol, "issuance" | "issued" | "expired"]:
            return f"licence:{symbol}"
        case ["exchange", "fees"] | ["external", "cash"]:
            return CASH
    raise AccountError(f"unknown account {account!r}")


@lru_cache(maxsize=65536)
def is_non_negative(account: str) -> bool:
    """True for accounts whose balance may never go below zero."""
    return (
        account.startswith("participant:")
        or account == EXCHANGE_FEES
        or (account.startswith("instrument:") and account.endswith(":issuance"))
    )


def participant_of(account: str) -> str | None:
    """The participant owning ``account``, or None for exchange and instrument accounts."""
    if account.startswith("participant:"):
        return account.split(":", 2)[1]
    return None
