"""The post-run checks fail when what they check does not hold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange import commands as c
from exchange.participants import new_api_key, secret_digest
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR
from ledger.database import dispose_engines
from ledger.store import Ledger
from loadtests.checks import check_exchange, check_responses

DEPOSIT_MINOR = 1_000_000


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """An exchange with an admin and a funded buyer, and nothing traded."""
    ledger = Ledger.open(database_url)
    sequencer = Sequencer(ledger, housekeeping=False).start()
    try:
        for participant_id, role in (("admin", "admin"), ("ann", "buyer")):
            key = new_api_key()
            sequencer.execute(
                c.CreateParticipant(
                    OPERATOR,
                    participant_id,
                    participant_id,
                    [role],
                    key.key_id,
                    secret_digest(key.secret),
                )
            )
        sequencer.execute(c.Deposit("admin", "ann", DEPOSIT_MINOR, "load test"))
    finally:
        sequencer.stop()
    yield ledger
    dispose_engines()


def by_name(checks: list) -> dict[str, bool]:
    return {check.name: check.ok for check in checks}


def test_an_acknowledged_order_missing_from_the_journal_fails(ledger: Ledger) -> None:
    checks = by_name(check_exchange(ledger, [("ann", "never-sent", 1)]))
    assert checks.pop("every acknowledged order is in the journal") is False
    assert all(checks.values()), checks  # everything else holds


def test_a_run_that_acknowledged_nothing_fails(ledger: Ledger) -> None:
    assert (
        by_name(check_exchange(ledger, []))["every acknowledged order is in the journal"] is False
    )


def test_a_5xx_or_a_failed_request_fails() -> None:
    summary = {
        "phases": [
            {
                "name": "orders",
                "statuses": {"POST /v1/orders": {"201": 10, "503": 1}, "GET /v1/fills": {"0": 1}},
                "failures": {"GET /v1/fills": 1},
            }
        ]
    }
    checks = by_name(check_responses(summary))
    assert checks == {
        "no response was a 5xx": False,
        "no request failed (an unexpected status, or no response)": False,
    }
