"""Small builders shared by the ledger tests."""

from __future__ import annotations

from ledger import Entry, entries
from ledger.store import Ledger

SYMBOL = "ZJPARK.NX12"
PROVIDER = "prov"
EXPIRES_AT_NS = 2_000_000_000_000_000_000


def funded_ledger(ledger: Ledger, *buyers: str, cash_minor: int = 1_000_000) -> Ledger:
    """Deposit ``cash_minor`` for each buyer and issue 1,000 licences."""
    batch: list[Entry] = [
        entries.licence_issuance(
            symbol=SYMBOL,
            provider=PROVIDER,
            units=1_000,
            issuance_cap_units=1_000,
            key="issue-1",
            ts_ns=1,
        )
    ]
    for buyer in buyers:
        batch.append(entries.deposit(buyer, cash_minor, key=f"dep-{buyer}", ts_ns=2))
    ledger.append_entries(batch)
    return ledger


def trade(trade_id: int, buyer: str = "ann", seller: str = PROVIDER, **overrides: object) -> Entry:
    arguments: dict[str, object] = {
        "trade_id": trade_id,
        "symbol": SYMBOL,
        "buyer": buyer,
        "seller": seller,
        "price_minor_per_unit": 250,
        "quantity_units": 2,
        "fee_minor": 5,
        "expires_at_ns": EXPIRES_AT_NS,
        "primary": seller == PROVIDER,
        "ts_ns": 10 + trade_id,
    }
    arguments.update(overrides)
    return entries.trade_settlement(**arguments)  # type: ignore[arg-type]
