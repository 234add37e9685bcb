"""Random market histories keep the books straight.

A reference model applies each operation's postings to plain dicts; the ledger must accept
exactly the batches the model accepts (all entries of a batch, or none), end with the same
balances, keep every asset's total at zero, never show a negative participant balance, and
rebuild the same projection from its postings.
"""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import event, given

from ledger import BalanceError, Entry, accounts, entries
from ledger.store import Ledger
from ledger.verify import verify
from tests.ledger import strategies as s

_examples = itertools.count()
_trade_id_blocks = itertools.count()


class Model:
    """Expected balances of one example's accounts (names prefixed to keep examples apart)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.symbol = f"{prefix}SYM"
        self.balances: Counter[tuple[str, str]] = Counter()
        self.deposited_minor = 0
        self.issued_units = 0
        self.expired_units = 0
        self.keys = itertools.count()
        self.trade_ids = itertools.count(next(_trade_id_blocks) * 10_000)

    def name(self, participant: str) -> str:
        return f"{self.prefix}{participant}"

    def entry(self, op: s.Operation, ts_ns: int) -> Entry:
        key = f"{self.prefix}k{next(self.keys)}"
        match op:
            case s.Deposit(p, amount):
                return entries.deposit(self.name(p), amount, key=key, ts_ns=ts_ns)
            case s.Withdraw(p, amount):
                return entries.withdrawal(self.name(p), amount, key=key, ts_ns=ts_ns)
            case s.Issue(units):
                return entries.licence_issuance(
                    symbol=self.symbol,
                    provider=self.name("prov"),
                    units=units,
                    issuance_cap_units=s.ISSUANCE_CAP_UNITS,
                    key=key,
                    ts_ns=ts_ns,
                )
            case s.Trade(buyer, seller, price, quantity, fee, expiry):
                return entries.trade_settlement(
                    trade_id=next(self.trade_ids),
                    symbol=self.symbol,
                    buyer=self.name(buyer),
                    seller=self.name(seller or "prov"),
                    price_minor_per_unit=price,
                    quantity_units=quantity,
                    fee_minor=fee,
                    expires_at_ns=expiry,
                    primary=seller is None,
                    ts_ns=ts_ns,
                )
            case s.Expire(holder, expiry):
                held = self.balances[
                    accounts.licence_holding(self.name(holder), self.symbol, expiry),
                    accounts.licence_asset(self.symbol),
                ]
                return entries.licence_expiry(
                    symbol=self.symbol,
                    holder=self.name(holder),
                    expires_at_ns=expiry,
                    units=max(held, 1),  # 1 when nothing is held: must be refused
                    key=key,
                    ts_ns=expiry + ts_ns,
                )
        raise AssertionError(op)

    def accepts(self, batch: list[Entry]) -> bool:
        """Apply ``batch`` if every entry keeps every floor; leave the model as is otherwise."""
        trial = Counter(self.balances)
        issued = self.issued_units
        for entry in batch:
            for account, asset, amount in entry.postings:
                trial[account, asset] += amount
            if any(
                accounts.is_non_negative(account) and trial[account, asset] < 0
                for account, asset, _ in entry.postings
            ):
                return False
            if entry.kind is entries.EntryKind.LICENCE_ISSUANCE:
                issued += entry.body["units"]
                if issued > s.ISSUANCE_CAP_UNITS:
                    return False
        self.balances = trial
        self.issued_units = issued
        for entry in batch:
            if entry.kind is entries.EntryKind.DEPOSIT:
                self.deposited_minor += entry.body["amount_minor"]
            elif entry.kind is entries.EntryKind.WITHDRAWAL:
                self.deposited_minor -= entry.body["amount_minor"]
            elif entry.kind is entries.EntryKind.LICENCE_EXPIRY:
                self.expired_units += entry.body["units"]
        return True

    def owns(self, account: str) -> bool:
        return self.prefix in account


@s.LEDGER_SETTINGS
@given(s.batches)
def test_random_histories_conserve_assets_and_never_go_negative(
    ledger: Ledger, batches: list[list[s.Operation]]
) -> None:
    model = Model(f"x{next(_examples)}")
    fees_before = ledger.balance(accounts.EXCHANGE_FEES, accounts.CASH)
    opening: list[s.Operation] = [s.Issue(20)]
    for participant in s.PARTICIPANTS:
        opening.append(s.Deposit(participant, 10_000))
    accepted_trades = 0
    for ts_ns, operations in enumerate([opening, *batches], start=1):
        batch = [model.entry(op, ts_ns) for op in operations]
        if model.accepts(batch):
            ledger.append_entries(batch)
            accepted_trades += sum(isinstance(op, s.Trade) for op in operations)
        else:
            try:
                ledger.append_entries(batch)
            except BalanceError:
                pass
            else:
                raise AssertionError(f"ledger accepted {operations}")

    event(f"trades settled: {min(accepted_trades, 5)}{'+' if accepted_trades >= 5 else ''}")
    stored = ledger.balances()
    mine = {key: units for key, units in stored.items() if model.owns(key[0]) and units}
    expected = {key: units for key, units in model.balances.items() if units and model.owns(key[0])}
    assert mine == expected
    assert all(
        units >= 0 for (account, _), units in stored.items() if accounts.is_non_negative(account)
    )

    fees_minor = stored.get((accounts.EXCHANGE_FEES, accounts.CASH), 0) - fees_before
    participant_cash = sum(
        units for (account, asset), units in mine.items() if asset == accounts.CASH
    )
    assert participant_cash + fees_minor == model.deposited_minor
    licence = accounts.licence_asset(model.symbol)
    outstanding = sum(
        units
        for (account, asset), units in mine.items()
        if asset == licence
        and (account.startswith("participant:") or account.endswith(":issuance"))
    )
    assert outstanding == model.issued_units - model.expired_units
    for asset in {asset for _, asset in stored}:
        assert sum(units for (_, a), units in stored.items() if a == asset) == 0

    assert ledger.balances_from_postings() == stored
    ledger.rebuild_balances()
    assert {k: v for k, v in ledger.balances().items() if v} == {
        k: v for k, v in stored.items() if v
    }


def test_a_random_history_verifies(ledger: Ledger) -> None:
    test_random_histories_conserve_assets_and_never_go_negative(ledger)
    report = verify(ledger)
    assert report.ok, report.problems
    assert report.entries > 0
