"""Agents that trade valuable products only by request for quote: an instrument listed
``rfq_only`` never reaches the book, trades only between RFQ buyers and its provider at
prices each side accepts, and the run stays sound and reproducible."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from exchange.simulation import parse_scenario, run_simulation
from exchange.simulation.rfq_agents import RfqBuyer, RfqProvider
from exchange.simulation.runner import RunResult
from exchange.simulation.scenario_reader import ScenarioError
from tests.exchange.simulation.tiny import tiny

# The tiny market plus a valuable product that its owner sells only by quote, and three
# buyers who ask for it.
CONFIDENTIAL = """
[[participants]]
id = "owner"
roles = ["provider"]

[[participants]]
id = "whale"
count = 3
roles = ["buyer"]
cash = 2_000_000.0

[[products]]
id = "vault"
provider = "owner"
category = "finance"
record_count = 50_000_000
quality = 0.95

[[listings]]
products = ["vault"]
terms = "NX12C"
tick_size = 1.0
issuance_cap = 1_000
rfq_only = true

[[agents]]
kind = "rfq_provider"
participants = "owner"

[[agents]]
kind = "rfq_buyer"
participants = "whale"
activity = 0.3
max_units = 3
"""
SYMBOL = "VAULT.NX12C"


def _run(tmp_path: Path, seed: int, name: str = "run", text: str = "") -> RunResult:
    return run_simulation(
        parse_scenario(text or tiny() + CONFIDENTIAL, seed=seed),
        seed,
        database_url=f"sqlite:///{tmp_path / name}.db",
    )


def test_an_rfq_only_product_trades_only_by_quote_between_its_agents(tmp_path: Path) -> None:
    result = _run(tmp_path, 5)  # verifies the ledger and conservation
    exchange = result.exchange
    trades = list(exchange.confidential.trades.values())
    assert len(trades) >= 5
    buyers = {agent.participant: agent for agent in result.agents if isinstance(agent, RfqBuyer)}
    (provider,) = [agent for agent in result.agents if isinstance(agent, RfqProvider)]
    for trade in trades:
        assert (trade.symbol, trade.venue, trade.seller) == (SYMBOL, "rfq", "owner")
        assert trade.quantity_units == buyers[trade.buyer].params.request_units
    # No book agent touched it: no order on its book, no trade on its tape.
    assert exchange.market_data.tape(SYMBOL, 10) == []
    assert all(order.symbol != SYMBOL for order in exchange.orders.values())
    assert provider.sold == len(trades)
    assert sum(buyer.accepted for buyer in buyers.values()) == len(trades)
    for buyer in buyers.values():
        assert buyer.spent_minor <= buyer.budget_minor
    # The book's market still trades beside it.
    assert exchange.market_data.trade_count > 0


def test_the_provider_learns_from_what_is_accepted_and_what_is_not(tmp_path: Path) -> None:
    result = _run(tmp_path, 5)
    (provider,) = [agent for agent in result.agents if isinstance(agent, RfqProvider)]
    book = provider.instruments[SYMBOL]
    expected = provider.params.markup
    expected *= (1 + provider.params.learning_rate) ** provider.sold
    expected *= (1 - provider.params.learning_rate) ** provider.passed_over
    # Only the bounds can stop the product of steps from being the markup.
    if provider.params.min_markup < book.markup < provider.params.max_markup:
        assert math.isclose(book.markup, expected, rel_tol=1e-9)
    assert provider.sold + provider.passed_over > 0


def test_the_same_seed_gives_the_same_confidential_trades(tmp_path: Path) -> None:
    first, again = _run(tmp_path, 9, "first"), _run(tmp_path, 9, "again")
    assert first.journal_hash == again.journal_hash
    assert [
        (t.buyer, t.price_minor, t.ts_ns) for t in first.exchange.confidential.trades.values()
    ] == [(t.buyer, t.price_minor, t.ts_ns) for t in again.exchange.confidential.trades.values()]


def test_an_rfq_provider_needs_the_provider_role() -> None:
    text = tiny() + CONFIDENTIAL.replace('id = "owner"\nroles = ["provider"]',
                                         'id = "owner"\nroles = ["buyer"]')  # fmt: skip
    with pytest.raises(ScenarioError):
        parse_scenario(text, seed=1)
