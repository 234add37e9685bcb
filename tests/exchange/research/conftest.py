"""A recorded market: a small exchange run through the sequencer into a database, once per
database kind per session, for the replay and export tests to read (and copy to tamper with).

The market spans two UTC days and has a bit of everything the replay must reproduce:
primary and secondary trades, partial fills, an IOC remainder, amendments that keep and lose
priority, cancels, a GTD order that the exchange's housekeeping expires, a call auction
uncrossed into trades between resting orders, a halt of the auction book, and a sealed bid.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange import commands as c
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR, Exchange
from ledger import EntryKind
from ledger.database import create_engine, scratch_schema
from ledger.store import Ledger
from tests.conftest import POSTGRES_URL_ENV
from tests.exchange.helpers import (
    START_NS,
    ManualClock,
    build_ready_market,
    buy,
    create_participant,
    list_instrument,
    sell,
)

AUCTION_SYMBOL = "ZJPARK.AUC"
SEALED_SYMBOL = "ZJPARK.SEAL"
HOUR_NS = 3_600 * 1_000_000_000
DATA = Path(__file__).parent / "data"


@dataclass(frozen=True, slots=True)
class Recorded:
    """A database holding the recorded market, and what the original run ended with."""

    url: str
    kind: str  # sqlite or postgresql
    exchange: Exchange
    commands: int
    entries: int
    trades: int
    state_hash: str
    # A time between two commands, and the seq of the last command before it.
    midpoint_ns: int
    midpoint_seq: int


def record_market(sequencer: Sequencer, clock: ManualClock) -> tuple[int, int]:
    """Drive the market (see the module docstring); return a midpoint (time, last seq)."""
    run = sequencer.execute
    ready = build_ready_market(run, buyers=("ann", "bob"))
    run(create_participant("mm", "market_maker"))
    run(c.Deposit("admin", "mm", 5_000_000, "wire"))
    run(list_instrument(ready.product_id, AUCTION_SYMBOL, trading_mode="call_auction"))
    run(list_instrument(ready.product_id, SEALED_SYMBOL, trading_mode="sealed_bid"))
    run(buy("bob", "s1", 400_00, 1, symbol=SEALED_SYMBOL))

    clock.now_ns += HOUR_NS
    run(sell("prov", "p1", 500_00, 10))
    run(buy("ann", "a1", 510_00, 4))  # trades 4 at 500.00, ann the aggressor
    bob = run(buy("bob", "b1", 490_00, 3)).result.order_id
    run(c.AmendOrder("bob", bob, 480_00, 5))  # new price: loses priority
    run(c.AmendOrder("bob", bob, None, 4))  # quantity down: keeps priority
    run(buy("ann", "a2", 505_00, 20, tif="IOC"))  # takes the 6 left, the rest cancelled
    run(sell("prov", "p2", 520_00, 8))
    run(sell("ann", "a3", 515_00, 2))  # a resale of ann's licences
    run(buy("mm", "m1", 530_00, 3))  # takes ann's 2 at 515.00 and 1 of prov's at 520.00
    midpoint_ns, midpoint_seq = clock.now_ns + HOUR_NS // 2, sequencer.exchange.head_seq

    clock.now_ns += HOUR_NS  # past midnight UTC: the second day
    run(c.CancelOrder("bob", bob))
    run(buy("mm", "m2", 470_00, 2, tif="GTD", expire_ns=clock.now_ns + HOUR_NS // 4))
    run(sell("mm", "m3", 560_00, 1))
    run(sell("prov", "q1", 300_00, 5, symbol=AUCTION_SYMBOL))
    run(buy("ann", "q2", 310_00, 3, symbol=AUCTION_SYMBOL))
    run(buy("bob", "q3", 305_00, 4, symbol=AUCTION_SYMBOL))
    run(c.Uncross("admin", AUCTION_SYMBOL))  # 5 at one price: ann's 3 and 2 of bob's
    run(c.SetPhase("admin", AUCTION_SYMBOL, "halted"))
    clock.now_ns += HOUR_NS  # the GTD order has expired
    run(c.Housekeeping(OPERATOR))
    run(buy("bob", "b2", 530_00, 2, order_type="market", tif="IOC"))
    return midpoint_ns, midpoint_seq


def _build(url: str, kind: str) -> Recorded:
    ledger = Ledger.open(url)
    clock = ManualClock(START_NS)  # 2023-11-14T22:13:20Z
    sequencer = Sequencer(ledger, clock=clock, housekeeping=False).start()
    try:
        midpoint_ns, midpoint_seq = record_market(sequencer, clock)
    finally:
        sequencer.stop()
    exchange = sequencer.exchange
    exchange.check_invariants()
    trades = 0
    for seq in range(1, ledger.size() + 1):
        entry = ledger.entry(seq)
        assert entry is not None
        trades += entry.kind == EntryKind.TRADE_SETTLEMENT
    recorded = Recorded(
        url, kind, exchange, ledger.journal_head_seq(), ledger.size(), trades,
        exchange.engine.state_hash(), midpoint_ns, midpoint_seq,
    )  # fmt: skip
    ledger.engine.dispose()
    return recorded


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recorded]:
    """The recorded market on each database kind (PostgreSQL when configured)."""
    if request.param == "sqlite":
        directory = tmp_path_factory.mktemp("recorded")
        yield _build(f"sqlite:///{directory / 'ledger.db'}", "sqlite")
        return
    server_url = os.environ.get(POSTGRES_URL_ENV)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    # The same naming as tests/conftest.py, so a leftover schema would be recognised.
    with scratch_schema(server_url, "ledger_test") as url:
        yield _build(url, "postgresql")


@pytest.fixture(scope="session")
def recorded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The recorded market on SQLite only (for tests of files, not of databases)."""
    directory = tmp_path_factory.mktemp("recorded_sqlite")
    return _build(f"sqlite:///{directory / 'ledger.db'}", "sqlite")


@pytest.fixture
def sqlite_copy(recorded_sqlite: Recorded, tmp_path: Path) -> Iterator[Ledger]:
    """A private copy of the recorded SQLite database, to change behind the ledger's back."""
    source = Path(recorded_sqlite.url.removeprefix("sqlite:///"))
    target = tmp_path / "copy.db"
    shutil.copyfile(source, target)
    engine = create_engine(f"sqlite:///{target}")
    yield Ledger.open(engine)
    engine.dispose()


def sqlite_url(ledger: Ledger) -> str:
    return ledger.engine.url.render_as_string(hide_password=False)
