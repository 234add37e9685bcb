"""What one serving process holds: the ledger, the sequencer and its exchange, the WebSocket
hub, the rate limiter, the valuation market, the collateral monitor and the witness's
checkpointer. Routes reach it through ``deps.RuntimeDep``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from exchange.commands import Command
from exchange.lease import Lease
from exchange.sequencer import Sequencer
from exchange.service import Exchange, Outcome
from exchange.settings import Settings
from exchange.writer import ProcessWriter
from ledger.guards import require_guards
from ledger.store import Ledger
from ledger.witness import Checkpointer

from .collateral_monitor import CollateralMonitor
from .hub import Hub
from .ledger_tree import LedgerTree
from .pricing import PricingCache
from .ratelimit import RateLimiter

__all__ = ["Runtime"]

T = TypeVar("T")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    ledger: Ledger
    sequencer: Sequencer
    hub: Hub
    limiter: RateLimiter
    pricing: PricingCache = field(default_factory=PricingCache)
    ledger_tree: LedgerTree = field(default_factory=LedgerTree)
    checkpointer: Checkpointer | None = None
    lease: Lease = field(default_factory=Lease)
    monitor: CollateralMonitor | None = None

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        """Take the database's lease (:class:`~exchange.lease.LeaseHeld` if another server
        holds it), open the database (migrating it), check its append-only guards
        (:class:`~ledger.guards.GuardsMissing` naming those missing), check it against the
        witness (if the settings name one; :class:`~ledger.witness.WitnessError` if it does
        not extend the last checkpoint), rebuild the exchange from the journal, start. On a
        failure the lease is given back."""
        lease = Lease.acquire(settings.database_url)
        try:
            ledger = Ledger.open(settings.database_url)
            require_guards(ledger.engine)
        except BaseException:
            lease.release()
            raise
        checkpointer = None
        if settings.witness_path is not None:
            try:
                checkpointer = Checkpointer(ledger, Path(settings.witness_path)).start()
            except BaseException:
                lease.release()
                raise
        try:
            writer = ProcessWriter(ledger) if settings.journal_writer == "process" else None
            sequencer = Sequencer(ledger, writer=writer)
        except BaseException:
            if checkpointer is not None:
                checkpointer.stop()
            lease.release()
            raise
        hub = Hub(facility_parties=_facility_parties(sequencer))
        sequencer.subscribe(hub.on_commit)
        pricing = PricingCache()
        monitor = CollateralMonitor(sequencer, pricing)
        sequencer.subscribe(monitor.on_commit)
        if checkpointer is not None:
            # The listener only writes a byte: the witness reads and hashes in its own process.
            sequencer.subscribe(checkpointer.notify)
        sequencer.start()
        monitor.start()
        limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        return cls(
            settings, ledger, sequencer, hub, limiter, pricing=pricing,
            checkpointer=checkpointer, lease=lease, monitor=monitor,
        )  # fmt: skip

    def close(self) -> None:
        try:
            # First: it submits to the sequencer and uses the pricing worker.
            if self.monitor is not None:
                self.monitor.stop()
            self.sequencer.stop()
            # After the sequencer: the last checkpoint then covers its last committed batch.
            if self.checkpointer is not None:
                self.checkpointer.stop()
            self.pricing.close()
        finally:
            # Last: another server may start only once this one's writes are all durable.
            self.lease.release()

    def read(self, query: Callable[[Exchange], T]) -> T:
        """Run ``query`` on the exchange's state, never half-way through a command."""
        with self.sequencer.lock:
            return query(self.sequencer.exchange)

    async def execute(self, command: Command) -> Outcome:
        """The command's outcome once it is durable, or the error that refused it."""
        return await asyncio.wrap_future(self.sequencer.submit(command))


def _facility_parties(sequencer: Sequencer) -> Callable[[int], tuple[str, str] | None]:
    """A facility's lender and borrower, for the hub. Read without the sequencer's lock, on
    the event loop, which must not wait for a batch: a facility's parties never change, and
    an alert's facility exists in every state after the alert's commit."""

    def parties(facility_id: int) -> tuple[str, str] | None:
        f = sequencer.exchange.collateral.facilities.get(facility_id)
        return None if f is None else (f.lender, f.borrower)

    return parties
