"""Kill -9 during a liquidation loses nothing acknowledged, and recovery resumes its schedule.

A child process drives a facility through a margin call to the start of its liquidation
auction over a real ledger, each step acknowledged by the sequencer (so journalled), then is
killed with SIGKILL. The exchange recovered from the database holds the auction in progress;
the uncross at its scheduled time completes it, and the end state is the one an uninterrupted
run reaches.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path

from exchange import commands as c
from exchange.facility import DAY_NS, FacilityStatus
from exchange.participants import OPERATOR
from exchange.recovery import recover
from exchange.sequencer import Sequencer
from exchange.service import Exchange
from ledger.store import Ledger
from ledger.verify import verify
from matching import Phase
from tests.exchange.helpers import (
    START_NS,
    SYMBOL,
    ManualClock,
    Market,
    build_ready_market,
    buy,
    create_participant,
    sell,
)
from tests.exchange.test_collateral import facility_offer

HOUR_NS = 3_600 * 10**9
KILL_TIMEOUT_S = 60.0


def until_auction(
    execute: Callable[[c.Command, int], object], exchange: Callable[[], Exchange]
) -> None:
    """Offer, pledge and draw; prices fall; past the cure deadline the auction starts."""
    at = [START_NS]

    def step(command: c.Command, later_ns: int = 1) -> object:
        at[0] += later_ns
        return execute(command, at[0])

    build_ready_market(lambda command: step(command))
    step(create_participant("bank", "lender"))
    step(c.Deposit("admin", "bank", 5_000_000, "capital"))
    step(sell("prov", "p1", 100_000, 10))
    step(buy("ann", "a1", 100_000, 10))
    step(facility_offer())
    step(c.AcceptFacility("ann", 1))
    step(c.PostValuation(OPERATOR, SYMBOL, 100_000, 80_000, 120_000, 5, "market"))
    (expires,) = exchange().risk.holdings[("ann", SYMBOL)]
    step(c.PledgeLicences("ann", 1, 0, SYMBOL, 10, expires))
    step(c.DrawLoan("ann", 1, 350_000))
    step(sell("prov", "p2", 40_000, 1))
    step(buy("bob", "b1", 40_000, 1))
    step(c.PostValuation(OPERATOR, SYMBOL, 40_000, 30_000, 50_000, 5, "market"), HOUR_NS)
    # A day and more later, the deadline has passed: the next command runs the housekeeping
    # that starts the auction, and bob bids in it.
    step(buy("bob", "b2", 40_000, 10), DAY_NS)


def after_auction(execute: Callable[[c.Command, int], object], start_ns: int) -> None:
    execute(c.Housekeeping(OPERATOR), start_ns + 2 * HOUR_NS)


def in_memory(market: Market) -> Callable[[c.Command, int], object]:
    """Execute as the sequencer does: at the later of the clock and just after the last
    command, after the housekeeping due by then."""

    def execute(command: c.Command, at_ns: int) -> object:
        ts = max(at_ns, market.exchange.last_ts_ns + 1)
        if type(command) is not c.Housekeeping and market.exchange.housekeeping_due(ts):
            market.execute(c.Housekeeping(OPERATOR), at_ns=ts)
            ts += 1
        return market.execute(command, at_ns=ts)

    return execute


def child(url: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    ledger = Ledger.open(url)
    clock = ManualClock()
    sequencer = Sequencer(ledger, clock=clock, housekeeping=False, snapshot_every=None).start()

    def execute(command: c.Command, at_ns: int) -> object:
        clock.now_ns = at_ns
        return sequencer.execute(command)

    until_auction(execute, lambda: sequencer.exchange)
    ready.set()
    signal.pause()  # acknowledged: now the parent kills this process


def test_recovery_resumes_a_liquidation_after_kill_9(database_url: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=child, args=(database_url, ready))
    process.start()
    try:
        assert ready.wait(KILL_TIMEOUT_S), "the child did not reach the auction"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(KILL_TIMEOUT_S)
    assert process.exitcode == -signal.SIGKILL

    # What an uninterrupted run reaches, in memory.
    market = Market()
    until_auction(in_memory(market), lambda: market.exchange)
    auction_start = market.now_ns

    ledger = Ledger.open(database_url)
    try:
        recovered = recover(ledger)
        f = recovered.collateral.facilities[1]
        assert f.status is FacilityStatus.LIQUIDATING
        assert recovered.engine.phase(SYMBOL) is Phase.AUCTION
        assert repr(recovered.collateral.facilities) == repr(market.exchange.collateral.facilities)
        clock = ManualClock(recovered.last_ts_ns)
        sequencer = Sequencer(ledger, recovered, clock=clock, housekeeping=False,
                              snapshot_every=None).start()  # fmt: skip

        def execute(command: c.Command, at_ns: int) -> object:
            clock.now_ns = at_ns
            return sequencer.execute(command)

        try:
            after_auction(execute, auction_start)
        finally:
            sequencer.stop()
        after_auction(in_memory(market), auction_start)
        assert f.status is FacilityStatus.CLOSED and f.debt_minor == 0
        assert repr(recovered.collateral.facilities) == repr(market.exchange.collateral.facilities)
        assert recovered.engine.state_hash() == market.exchange.engine.state_hash()
        assert verify(ledger).ok
        assert recover(ledger).collateral.facilities[1].status is FacilityStatus.CLOSED
    finally:
        ledger.engine.dispose()
