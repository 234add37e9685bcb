"""Pre-trade risk: what each participant may still commit, as state in memory.

``balances`` is the exchange's in-memory copy of the ledger's balance projection, kept by
posting every entry the exchange creates; recovery checks it against the database. Holds
for open orders are not ledger facts: a buy holds cash (its limit times what is left of
it) and a sell holds licence units of the account it will deliver from (the instrument's
issuance account for the provider, or one holding with one expiry for a resale). Holds are
risk state, as in exchange-core and LMAX: rebuilt by replaying the journal, and checked by
the invariant that nothing holds more than its ledger balance (``available + held ==
balance``). The ledger moves value once, at settlement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from types import MappingProxyType

from exchange.catalogue import Instrument
from exchange.errors import ExchangeError, Reason
from exchange.money import format_minor
from ledger import Entry, accounts

__all__ = ["Risk"]

_NONE_FREED: Mapping[str, int] = MappingProxyType({})


class Risk:
    def __init__(self) -> None:
        self.balances: defaultdict[str, int] = defaultdict(int)
        # participant -> cash held by its open buy orders (minor units)
        self.cash_held: defaultdict[str, int] = defaultdict(int)
        # licence account -> units held by open sell orders delivering from it
        self.licences_held: defaultdict[str, int] = defaultdict(int)
        # Licence holdings per (participant, symbol): expiry -> account, for resale lookups.
        self.holdings: defaultdict[tuple[str, str], dict[int, str]] = defaultdict(dict)
        # (participant, symbol) -> licence units it pledged as collateral (exchange.collateral):
        # apart from its holdings in the ledger, so that no order can sell them.
        self.pledged: defaultdict[tuple[str, str], int] = defaultdict(int)

    def post(self, entry: Entry) -> None:
        """Mirror an entry the exchange is about to journal."""
        balances = self.balances
        for account, _asset, amount in entry.postings:
            balances[account] += amount

    # -- cash ------------------------------------------------------------------------------

    def cash_balance(self, participant: str) -> int:
        """The participant's cash in the ledger: available plus held."""
        return self.balances[accounts.cash(participant)]

    def cash_available(self, participant: str) -> int:
        return self.balances[accounts.cash(participant)] - self.cash_held[participant]

    def require_cash(self, participant: str, amount_minor: int) -> None:
        available = self.cash_available(participant)
        if amount_minor > available:
            raise ExchangeError(
                Reason.RISK_INSUFFICIENT_CASH,
                f"this needs {format_minor(amount_minor)} of available cash and "
                f"{format_minor(available)} is available",
            )

    # -- licences --------------------------------------------------------------------------

    def licences_free(self, account: str) -> int:
        return self.balances[account] - self.licences_held[account]

    def sell_source(
        self, participant: str, instrument: Instrument, quantity_units: int, now_ns: int,
        freed: Mapping[str, int] = _NONE_FREED,
    ) -> tuple[str, int | None]:
        """The account a sell of ``quantity_units`` delivers from, and its licences' expiry.
        ``freed``: units per account to count as free besides those free now (a mass quote's
        cancelled sells, less what its earlier quotes took).

        The provider sells new licences from the issuance account (expiry set at the trade).
        Anyone else resells a holding: the licence must be transferable, and one unexpired
        holding (one expiry) must cover the whole quantity; the earliest such is used.
        """
        symbol = instrument.symbol
        if participant == instrument.provider:
            account = accounts.issuance(symbol)
            free = self.licences_free(account) + freed.get(account, 0)
            if quantity_units > free:
                pledged = self.pledged.get((participant, symbol))
                raise ExchangeError(
                    Reason.RISK_INSUFFICIENT_LICENCES,
                    f"{free} unsold licence units of {symbol} are free to sell, "
                    f"not {quantity_units}"
                    + (f" ({pledged} are pledged as collateral)" if pledged else ""),
                )
            return account, None
        if not instrument.terms.transferable:
            raise ExchangeError(
                Reason.RISK_NOT_TRANSFERABLE, f"licences of {symbol} are not transferable"
            )
        best = 0
        for expires_ns, account in sorted(self.holdings.get((participant, symbol), {}).items()):
            if expires_ns <= now_ns:
                continue
            free = self.licences_free(account) + freed.get(account, 0)
            if free >= quantity_units:
                return account, expires_ns
            best = max(best, free)
        pledged = self.pledged.get((participant, symbol))
        raise ExchangeError(
            Reason.RISK_INSUFFICIENT_LICENCES,
            f"no unexpired holding of {symbol} has {quantity_units} free units "
            f"(the largest has {best}); sell each holding separately"
            + (f"; {pledged} units are pledged as collateral, not for sale" if pledged else ""),
        )

    def add_holding(self, participant: str, symbol: str, expires_ns: int) -> str:
        account = accounts.licence_holding(participant, symbol, expires_ns)
        self.holdings[(participant, symbol)][expires_ns] = account
        return account

    def check_invariants(self) -> None:
        """No hold exceeds its balance, and no non-negative account is below zero."""
        for participant, held in self.cash_held.items():
            assert 0 <= held <= self.cash_balance(participant), participant
        for account, units in self.licences_held.items():
            assert 0 <= units <= self.balances[account], account
        for account, units in self.balances.items():
            assert units >= 0 or not accounts.is_non_negative(account), account
