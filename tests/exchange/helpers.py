"""Builders for exchange tests: commands with sensible defaults, and a ready market.

``Market`` drives an :class:`~exchange.service.Exchange` directly, stamping each command with
the next sequence number and a strictly increasing time, as the sequencer would.
``build_ready_market`` bootstraps participants, an approved product, a listed instrument in
continuous trading and funded buyers through any ``execute`` callable, so the same market
can be built on a bare exchange or through a sequencer over a ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exchange import commands as c
from exchange.compliance import COMPLIANCE_CHECKS
from exchange.errors import ExchangeError, Reason
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR, Exchange, Outcome
from ledger import Entry, EntryKind, accounts
from ledger.store import Ledger

SYMBOL = "ZJPARK.NX12"
START_NS = 1_700_000_000 * 1_000_000_000
BUYERS = ("ann", "bob")
CASH_MINOR = 10_000_000
ISSUANCE_CAP_UNITS = 100
FEE_RATE_BP = 10
ALL_PASSED = dict.fromkeys(COMPLIANCE_CHECKS, True)
QUALITY_BP = {"completeness": 9000, "accuracy": 9000, "timeliness": 8000, "consistency": 9000}

Execute = Callable[[c.Command], Outcome]


# -- commands ------------------------------------------------------------------------------


def create_participant(participant_id: str, *roles: str) -> c.CreateParticipant:
    # Key ids are derived from the participant id so a run is reproducible; the secret's
    # digest is a placeholder, as these tests never authenticate.
    return c.CreateParticipant(
        OPERATOR, participant_id, participant_id.title(), list(roles), f"dxk_{participant_id}",
        "0" * 64,
    )  # fmt: skip


def create_product(provider: str = "prov", **overrides: Any) -> c.CreateProduct:
    fields: dict[str, Any] = {
        "actor": provider,
        "product_id": "",
        "title": "Parking occupancy",
        "description": "Hourly occupancy of public car parks",
        "category": "transport",
        "region": "Zhejiang",
        "record_count": 1_000,
        "coverage_start": "2024-01-01",
        "coverage_end": "2025-01-01",
        "update_frequency": "daily",
        "quality_bp": dict(QUALITY_BP),
        "personal_information": False,
        "classification": "general",
        "desensitised": False,
        "lawful_source_attestation": "collected under contract with the city",
        "cost_basis_minor": 100_000,
    }
    fields.update(overrides)
    return c.CreateProduct(**fields)


def review(
    product_id: str, decision: str = "approved", reviewer: str = "rev", **overrides: Any
) -> c.ReviewProduct:
    fields: dict[str, Any] = {
        "actor": reviewer,
        "product_id": product_id,
        "decision": decision,
        "checks": dict(ALL_PASSED),
        "opinion": f"{decision} after review",
    }
    fields.update(overrides)
    return c.ReviewProduct(**fields)


def list_instrument(
    product_id: str, symbol: str = SYMBOL, provider: str = "prov", **overrides: Any
) -> c.ListInstrument:
    fields: dict[str, Any] = {
        "actor": provider,
        "symbol": symbol,
        "product_id": product_id,
        "exclusivity": "non_exclusive",
        "duration_months": 12,
        "scope": "commercial",
        "territory": "domestic",
        "transferable": True,
        "tick_size_minor": 100,
        "lot_size_units": 1,
        "trading_mode": "continuous",
        "issuance_cap_units": ISSUANCE_CAP_UNITS,
        "fee_rate_bp": FEE_RATE_BP,
        "price_band_low_minor": None,
        "price_band_high_minor": None,
        "sealed_bid_pricing": "first_price",
    }
    fields.update(overrides)
    return c.ListInstrument(**fields)


def order(
    actor: str,
    client_order_id: str,
    side: str,
    price_minor: int | None,
    quantity_units: int,
    *,
    symbol: str = SYMBOL,
    order_type: str = "limit",
    tif: str = "GTC",
    expire_ns: int | None = None,
    post_only: bool = False,
    stp: str = "cancel_newest",
) -> c.SubmitOrder:
    return c.SubmitOrder(
        actor, client_order_id, 0, symbol, side, order_type, price_minor, quantity_units, tif,
        expire_ns, post_only, stp,
    )  # fmt: skip


def buy(actor: str, client_order_id: str, price_minor: int | None, quantity_units: int,
        **kwargs: Any) -> c.SubmitOrder:  # fmt: skip
    return order(actor, client_order_id, "buy", price_minor, quantity_units, **kwargs)


def sell(actor: str, client_order_id: str, price_minor: int | None, quantity_units: int,
         **kwargs: Any) -> c.SubmitOrder:  # fmt: skip
    return order(actor, client_order_id, "sell", price_minor, quantity_units, **kwargs)


# -- driving an exchange -------------------------------------------------------------------


class Market:
    """An exchange driven one command at a time, as journal entries 1, 2, ...

    ``entries`` collects every ledger entry the exchange created, in order, and ``journal``
    every journalled ``(ts_ns, record)``; every command is followed by ``check_invariants``.
    """

    def __init__(self, start_ns: int = START_NS) -> None:
        self.exchange = Exchange()
        self.now_ns = start_ns
        self.entries: list[Entry] = []
        self.journal: list[tuple[int, dict[str, Any]]] = []
        self.ready: ReadyMarket | None = None

    def execute(self, command: c.Command, *, at_ns: int | None = None) -> Outcome:
        """Apply ``command`` at ``at_ns`` (default: one nanosecond after the last command)."""
        self.now_ns = self.now_ns + 1 if at_ns is None else at_ns
        outcome = self.exchange.execute(command, self.exchange.head_seq + 1, self.now_ns)
        self.entries.extend(outcome.entries)
        if outcome.command is not None:
            self.journal.append((self.now_ns, c.command_to_record(outcome.command)))
        self.exchange.check_invariants()
        return outcome

    def refuse(self, command: c.Command, reason: Reason, *, at_ns: int | None = None) -> str:
        """Assert ``command`` is refused for ``reason`` and changes nothing; the message."""
        before = snapshot(self.exchange)
        with pytest.raises(ExchangeError) as caught:
            self.execute(command, at_ns=at_ns)
        assert caught.value.reason is reason, caught.value
        assert snapshot(self.exchange) == before
        return caught.value.message


def snapshot(exchange: Exchange) -> tuple[Any, ...]:
    """Everything a refused command must leave as it was."""
    return (
        exchange.engine.state_hash(),
        exchange.head_seq,
        exchange.next_order_id,
        exchange.compliance.next_product,
        {account: units for account, units in exchange.risk.balances.items() if units},
        {who: minor for who, minor in exchange.risk.cash_held.items() if minor},
        {account: units for account, units in exchange.risk.licences_held.items() if units},
        {order_id: repr(record) for order_id, record in exchange.orders.items()},
        {who: count for who, count in exchange.open_orders.items() if count},
        {pid: repr(product) for pid, product in exchange.products.items()},
        sorted(exchange.instruments),
        len(exchange.client_orders),
        repr(exchange.collateral.facilities),
        repr(exchange.collateral.valuations),
    )


# -- a ready market ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadyMarket:
    product_id: str
    symbol: str
    buyers: tuple[str, ...]


def bootstrap_participants(execute: Execute, buyers: tuple[str, ...] = BUYERS) -> None:
    """admin, prov (provider), rev (reviewer), reg (regulator) and the buyers."""
    execute(create_participant("admin", "admin"))
    execute(create_participant("prov", "provider"))
    execute(create_participant("rev", "reviewer"))
    execute(create_participant("reg", "regulator"))
    for buyer in buyers:
        execute(create_participant(buyer, "buyer"))


def build_ready_market(
    execute: Execute,
    *,
    buyers: tuple[str, ...] = BUYERS,
    cash_minor: int = CASH_MINOR,
    **instrument: Any,
) -> ReadyMarket:
    """Participants, an approved product, ``SYMBOL`` listed (``instrument`` overrides its
    terms) and trading continuously, and each buyer funded with ``cash_minor``."""
    bootstrap_participants(execute, buyers)
    product_id = execute(create_product()).result.product_id
    execute(review(product_id))
    symbol = instrument.pop("symbol", SYMBOL)
    execute(list_instrument(product_id, symbol, **instrument))
    execute(c.SetPhase("admin", symbol, "continuous"))
    for buyer in buyers:
        execute(c.Deposit("admin", buyer, cash_minor, "wire"))
    return ReadyMarket(product_id, symbol, buyers)


# -- ledger arithmetic ---------------------------------------------------------------------


def totals_by_asset(balances: dict[str, int]) -> dict[str, int]:
    """Sum of every account's balance, per asset (each must be zero)."""
    totals: dict[str, int] = {}
    for account, units in balances.items():
        asset = accounts.asset_of(account)
        totals[asset] = totals.get(asset, 0) + units
    return totals


def entries_of(kind: EntryKind, entries: list[Entry]) -> list[Entry]:
    return [entry for entry in entries if entry.kind is kind]


# -- a sequencer over a ledger -------------------------------------------------------------


class ManualClock:
    """A clock that stands still until a test moves it (the sequencer still gives each
    command its own nanosecond)."""

    def __init__(self, start_ns: int = START_NS) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns


@contextmanager
def sequenced(directory: Path) -> Iterator[tuple[Sequencer, Ledger, ManualClock]]:
    """A running sequencer (no timer housekeeping) over a fresh SQLite ledger in
    ``directory``; stopped, and the database released, on exit."""
    ledger = Ledger.open(f"sqlite:///{directory / 'ledger.db'}")
    clock = ManualClock()
    sequencer = Sequencer(ledger, clock=clock, housekeeping=False).start()
    try:
        yield sequencer, ledger, clock
    finally:
        sequencer.stop()
        ledger.engine.dispose()


def assert_same_state(rebuilt: Exchange, original: Exchange) -> None:
    """What participants can see of ``rebuilt`` equals ``original``."""
    assert rebuilt.head_seq == original.head_seq
    assert rebuilt.engine.state_hash() == original.engine.state_hash()
    for participant in original.participants.by_id:
        assert rebuilt.cash_of(participant) == original.cash_of(participant), participant
        assert rebuilt.holdings_of(participant) == original.holdings_of(participant), participant
    assert rebuilt.orders == original.orders
    assert dict(rebuilt.settlement.fills) == dict(original.settlement.fills)
    assert {a: u for a, u in rebuilt.risk.balances.items() if u} == {
        a: u for a, u in original.risk.balances.items() if u
    }
