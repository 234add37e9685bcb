"""The collateral scenario: lenders, borrowers and a category repricing drive facilities
through margin calls, cures and liquidation auctions, with money and licences conserved."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from exchange.simulation import load_scenario, run_simulation, summarise
from exchange.simulation.report import write_report
from exchange.simulation.runner import RunResult

SCENARIO = Path(__file__).parents[3] / "scenarios" / "collateral.toml"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    directory = tmp_path_factory.mktemp("collateral")
    # Eight of its ten days: the repricing on day 2, the calls after it, the auctions.
    return run_simulation(load_scenario(SCENARIO, seed=1), 1, days=8,
                          database_url=f"sqlite:///{directory / 'run.db'}")  # fmt: skip


def test_the_repricing_calls_for_margin_one_borrower_cures_and_one_is_liquidated(
    result: RunResult,
) -> None:
    reasons = Counter(alert.reason for lender in result.lenders for alert in lender.alerts)
    assert reasons["margin_call"] >= 1
    assert reasons["cured"] >= 1
    assert reasons["liquidation_started"] >= 1 and reasons["liquidation_result"] >= 1
    # A cure by the borrower, not only by prices: the parking operator repaid.
    assert result.commands_by_verb["repay_loan"] >= 1
    liquidated = [lender for lender in result.lenders if lender.liquidations]
    assert liquidated and all(o.finished_day is not None for o in liquidated[0].liquidations[:-1])
    # Every command the lenders and borrowers sent was journalled or refused for a reason
    # they act on (a draw marked lower than the borrower computed), never anything else.
    assert set(result.refused_by_kind.get("lender", {})) <= {"RISK_LTV_LIMIT"}


def test_money_and_licences_are_conserved_and_the_ledger_verifies(result: RunResult) -> None:
    assert result.verify_ok, result.verify_problem
    assert result.conservation == []
    assert result.withdrawals_minor > 0  # the borrowers spent their loans


def test_the_report_shows_ltv_paths_alerts_and_liquidations(
    result: RunResult, tmp_path: Path
) -> None:
    summary = summarise(result, valuation=False)
    facilities = summary["facilities"]
    assert len(facilities) == 3
    liquidated = next(entry for entry in facilities if entry["liquidations"])
    outcome = liquidated["liquidations"][0]
    assert outcome["offered_units"] > 0 and outcome["true_unit_minor"]
    json.dumps(summary)
    _json, page = write_report(summary, tmp_path / "report")
    text = page.read_text()
    assert "Loan facilities: LTV, alerts, liquidations" in text
    assert "true value of units sold" in text and "LTV against true values" in text
