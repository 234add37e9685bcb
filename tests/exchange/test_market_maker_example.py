"""examples/market_maker.py, run briefly against a served demo market: it quotes, is filled,
re-quotes, keeps to its order budget and leaves nothing in the book."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange import commands as c
from exchange.api import create_app
from exchange.api.runtime import Runtime
from exchange.demo import CONTINUOUS_SYMBOL, seed_demo
from exchange.settings import Settings
from ledger.database import dispose_engines
from tests.exchange.api.live import served

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "market_maker.py"
RUN_S = 6.0
MAX_ORDERS = 40
WAIT_S = 20.0


@dataclass(slots=True)
class Demo:
    url: str
    runtime: Runtime
    guest: str
    key: str


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    seeded: list[tuple[Runtime, str, str]] = []

    def start(runtime: Runtime) -> None:
        guest = seed_demo(runtime.sequencer)
        seeded.append((runtime, guest.participant_id, guest.api_key))

    app = create_app(Settings(f"sqlite:///{tmp_path / 'demo.db'}"), on_start=start)
    try:
        with served(app) as url:
            runtime, guest, key = seeded[0]
            yield Demo(url, runtime, guest, key)
    finally:
        dispose_engines()


def _open_orders(demo: Demo) -> list:
    return demo.runtime.read(lambda exchange: exchange.orders_of(
        demo.guest, open_only=True, after_id=0, limit=500
    ))  # fmt: skip


def test_the_market_maker_quotes_is_filled_requotes_and_cleans_up(demo: Demo):
    example = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--url", demo.url, "--symbol", CONTINUOUS_SYMBOL,
         "--seconds", str(RUN_S), "--max-orders", str(MAX_ORDERS), "--requote-s", "0.2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"DATAEX_API_KEY": demo.key, "PATH": ""},
    )  # fmt: skip
    try:
        # Once its bid rests, the provider sells into it: a fill the maker must answer.
        deadline = time.monotonic() + WAIT_S
        bids: list = []
        while not bids and time.monotonic() < deadline:
            bids = [o for o in _open_orders(demo) if o.side == "buy"]
            time.sleep(0.05)
        assert bids, "the market maker never quoted a bid"
        bid = bids[0]
        demo.runtime.sequencer.execute(c.SubmitOrder(
            "hz-parking", "hit-the-maker", 0, CONTINUOUS_SYMBOL, "sell", "limit",
            bid.price_minor, bid.quantity_units, "IOC", None, False, "cancel_newest",
        ))  # fmt: skip
        out, err = example.communicate(timeout=RUN_S + WAIT_S)
    finally:
        example.kill()
    assert example.returncode == 0, err
    summary = re.search(r"orders sent (\d+), skipped (\d+), fills (\d+), bought (\d+)", out)
    assert summary is not None, out
    sent, _, fills, bought = map(int, summary.groups())
    assert 2 <= sent <= MAX_ORDERS
    assert fills >= 1 and bought >= bid.quantity_units
    assert _open_orders(demo) == [], "it leaves nothing in the book"
    # Having bought, it asked: a sell of its own is among its orders.
    orders = demo.runtime.read(lambda exchange: exchange.orders_of(
        demo.guest, open_only=False, after_id=0, limit=500
    ))  # fmt: skip
    assert any(o.side == "sell" for o in orders)


def test_a_missing_key_is_an_argument_error():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--seconds", "1"],
        cwd=ROOT, capture_output=True, text=True, env={"PATH": ""}, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "an API key is needed" in result.stderr
