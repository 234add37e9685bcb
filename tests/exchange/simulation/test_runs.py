"""Runs through the real exchange: determinism, the ledger, conservation, budgets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from exchange.simulation import load_scenario, parse_scenario, run_simulation
from exchange.simulation.agents import Buyer, MarketMaker, NoiseTrader
from exchange.simulation.runner import RunResult
from ledger.store import Ledger
from tests.exchange.simulation.tiny import tiny

SCENARIOS = Path(__file__).parents[3] / "scenarios"
ROOT = Path(__file__).parents[3]


def _run(tmp_path: Path, seed: int, name: str = "run", **kwargs: object) -> RunResult:
    return run_simulation(
        parse_scenario(tiny(), seed=seed),
        seed,
        database_url=f"sqlite:///{tmp_path / name}.db",
        **kwargs,
    )  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_journal_hash(tmp_path: Path) -> None:
    first = _run(tmp_path, 7, "first", check=False)
    second = _run(tmp_path, 7, "second", check=False)
    assert first.journal_hash == second.journal_hash
    assert first.journal_commands == second.journal_commands > 300
    assert first.exchange.market_data.trade_count == second.exchange.market_data.trade_count > 0


def test_a_different_seed_gives_a_different_journal_hash(tmp_path: Path) -> None:
    assert (
        _run(tmp_path, 7, "a", check=False).journal_hash
        != _run(tmp_path, 8, "b", check=False).journal_hash
    )


def test_the_journal_hash_is_the_last_journal_records_chain_hash(tmp_path: Path) -> None:
    result = _run(tmp_path, 3, check=False)
    ledger = Ledger.open(result.database_url)
    try:
        last = ledger.journal(ledger.journal_head_seq(), 1)[0]
        assert last.chain_hash.hex() == result.journal_hash
    finally:
        ledger.engine.dispose()


def test_the_hash_does_not_depend_on_hash_randomisation(tmp_path: Path) -> None:
    """Another process, another PYTHONHASHSEED: the same journal."""
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny())
    in_process = run_simulation(
        load_scenario(scenario, seed=5),
        5,
        database_url=f"sqlite:///{tmp_path / 'here'}.db",
        check=False,
    )
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            "from exchange.cli import main; main()",
            "simulate",
            str(scenario),
            "--seed",
            "5",
            "--no-verify",
            "--database",
            f"sqlite:///{tmp_path / 'there'}.db",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert output.stdout.strip().splitlines()[-1] == f"journal hash {in_process.journal_hash}"


def test_a_database_that_holds_a_journal_is_refused(tmp_path: Path) -> None:
    from exchange.simulation import SimulationError

    _run(tmp_path, 1, "used", check=False)
    with pytest.raises(SimulationError, match="already holds a journal"):
        _run(tmp_path, 1, "used", check=False)


def _assert_sound(result: RunResult) -> None:
    assert result.verify_ok, result.verify_problem
    assert result.conservation == []
    # No storm of refusals: a small share of what the agents sent, and no risk refusals
    # beyond a handful (agents check their cash and licences before they send).
    refused = result.refused
    assert sum(refused.values()) <= 0.02 * result.submitted, refused
    risk = sum(n for reason, n in refused.items() if reason.startswith("RISK_"))
    assert risk <= 0.005 * result.submitted, refused


def test_the_tiny_market_verifies_conserves_and_respects_budgets(tmp_path: Path) -> None:
    result = _run(tmp_path, 11)
    _assert_sound(result)
    kinds = Counter(agent.kind for agent in result.agents)
    assert kinds == {"buyer": 6, "noise": 6, "provider": 1, "market_maker": 1, "lender": 1}
    for agent in result.agents:
        if isinstance(agent, Buyer | MarketMaker | NoiseTrader):
            assert agent.spent_minor <= agent.budget_minor, agent.participant
    assert result.exchange.market_data.trade_count > 0
    (lender,) = result.lenders
    facility = result.exchange.collateral.facilities[lender.facility_id]  # type: ignore[index]
    assert facility.debt_minor > 0 and len(lender.path) == 2  # drawn; a point a day


@pytest.mark.parametrize(("name", "ticks"), [("thin", 48), ("parking", 72), ("liquid", 60)])
def test_each_shipped_scenario_runs_a_short_horizon_soundly(
    tmp_path: Path, name: str, ticks: int
) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml", seed=1)
    result = run_simulation(
        scenario, 1, stop_after_ticks=ticks, database_url=f"sqlite:///{tmp_path / name}.db"
    )
    _assert_sound(result)
    assert result.ticks == ticks
    assert result.exchange.market_data.trade_count > 0
    if name == "parking":
        assert result.not_listed == [("HZ-PLATES.NX12I", "product hz-plates is rejected")]
        (lender,) = result.lenders
        facility = result.exchange.collateral.facilities[lender.facility_id]  # type: ignore[index]
        assert facility.value_minor > 0 and facility.pledges


def test_submitting_a_tick_together_journals_what_one_at_a_time_does(tmp_path: Path) -> None:
    """Batching a tick's commands (one commit for many) changes nothing in the journal."""
    batched = _run(tmp_path, 4, "batched", check=False, stop_after_ticks=30)
    single = _run(tmp_path, 4, "single", check=False, stop_after_ticks=30, one_at_a_time=True)
    assert batched.journal_hash == single.journal_hash
