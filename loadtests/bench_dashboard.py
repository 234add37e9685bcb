"""The dashboard under a liquid market, measured in Debian's headless Chromium.

    python -m loadtests.bench_dashboard [--ticks 360] [--feed-s 15] [--rate 1500] [--runs 3]

1. **Live under load.** A ``liquid`` simulation (``scenarios/liquid.toml``, its first
   ``--ticks`` ticks) is run into a database of its own; its journal is then replayed,
   command by command, into a freshly served exchange (the app and its sequencer in this
   process, uvicorn on a free port) at up to ``--rate`` orders a second for ``--feed-s``
   seconds, while the browser shows the instrument page of the busiest instrument. The page's
   own WebSocket is counted (a wrapper installed before its scripts run), and so are the
   animation frames in which the ladder or the tape changed. It stays live if, once the feed
   stops, the page's last price and best bid and ask are the API's.
2. **First load.** Each page opened in a fresh browser (an empty cache): the bytes it
   transferred (``transferSize`` of the document and every resource, the API's answers the
   page's script asked for included) within a few seconds of loading.

Prints the figures docs/benchmarks.md ("Dashboard") records. Needs ``chromium`` and
``chromedriver`` (Debian's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import httpx
import uvicorn

from exchange import commands as cmd
from exchange.api.app import create_app
from exchange.api.runtime import Runtime
from exchange.errors import ExchangeError
from exchange.settings import Settings
from ledger.store import Ledger
from tests.exchange.serverproc import free_port
from tests.exchange.web.browser import DESKTOP, MISSING, chromium, console_errors

SCENARIO: Final = Path(__file__).resolve().parent.parent / "scenarios" / "liquid.toml"
IN_FLIGHT: Final = 256  # commands submitted and not yet acknowledged, at most
SETTLE_S: Final = 3.0
FIRST_LOAD_SETTLE_S: Final = 3.0
JOURNAL_PAGE: Final = 10_000

# Installed before any of the page's scripts: counts what the page's WebSockets receive, and
# the animation frames in which the ladder or the tape changed.
_COUNTERS: Final = """
window.__bench = {messages: 0, frames: 0, longTasks: 0, longTaskMs: 0};
const PageSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new PageSocket(...args);
  socket.addEventListener("message", () => { window.__bench.messages += 1; });
  return socket;
};
window.WebSocket.prototype = PageSocket.prototype;
Object.assign(window.WebSocket, PageSocket);
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__bench.longTasks += 1;
    window.__bench.longTaskMs += entry.duration;
  }
}).observe({type: "longtask", buffered: true});
document.addEventListener("DOMContentLoaded", () => {
  let counted = false;
  const observer = new MutationObserver(() => {
    if (counted) return;
    counted = true;
    window.__bench.frames += 1;
    requestAnimationFrame(() => { counted = false; });
  });
  for (const id of ["book-bids", "book-asks", "tape"]) {
    const node = document.getElementById(id);
    if (node) observer.observe(node, {childList: true, subtree: true, characterData: true});
  }
});
"""
_TRANSFERRED: Final = """
const entries = [...performance.getEntriesByType("navigation"),
                 ...performance.getEntriesByType("resource")];
return entries.map((e) => [e.name, e.transferSize, e.encodedBodySize, e.initiatorType]);
"""


def simulated_journal(directory: Path, ticks: int, seed: int) -> list[cmd.Command]:
    """The commands of the first ``ticks`` ticks of a liquid simulation, in journal order,
    made fit for a live exchange: each order's id left for the exchange to assign (as a
    client's is) and a GTD order's expiry moved from the simulated day to now."""
    url = f"sqlite:///{directory / 'liquid.db'}"
    subprocess.run(
        [str(Path(sys.executable).parent / "dataex"), "simulate", str(SCENARIO),
         "--seed", str(seed), "--ticks", str(ticks), "--database", url, "--no-progress",
         "--no-verify"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    ledger = Ledger.open(url)
    records = []
    while batch := ledger.journal(len(records) + 1, JOURNAL_PAGE):
        records.extend(batch)
    shift_ns = time.time_ns() - records[0].ts_ns
    commands: list[cmd.Command] = []
    for record in records:
        command = cmd.command_from_record(record.command)
        if type(command) is cmd.SubmitOrder:
            expiry = None if command.expire_ns is None else command.expire_ns + shift_ns
            command = replace(command, order_id=0, expire_ns=expiry)
        commands.append(command)
    return commands


class Feeder:
    """Replays commands into a served exchange's sequencer at up to ``rate`` a second,
    with at most :data:`IN_FLIGHT` unacknowledged; a refusal is counted, not fatal."""

    def __init__(self, commands: list[cmd.Command], rate_per_s: float) -> None:
        self.commands = commands
        self.rate_per_s = rate_per_s
        self.sent = 0
        self.refused: Counter[str] = Counter()  # by reason
        self.stop = threading.Event()
        self.ready = threading.Event()  # the setup is in: the market waits for its orders
        self.go = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, runtime: Runtime) -> None:
        self.thread = threading.Thread(target=self._run, args=(runtime,), daemon=True)
        self.thread.start()

    def _run(self, runtime: Runtime) -> None:
        pending: list[Future[Any]] = []
        started = None
        for command in self.commands:
            # Setup (participants, products, listings) runs at once; orders wait for the go.
            if type(command) is cmd.SubmitOrder and not self.go.is_set():
                self._drain(pending, 0)
                self.ready.set()
                self.go.wait()
            if self.stop.is_set():
                break
            if type(command) is cmd.SubmitOrder:
                started = started or time.monotonic()
                due = started + self.sent / self.rate_per_s
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                self.sent += 1
            pending.append(runtime.sequencer.submit(command))
            self._drain(pending, IN_FLIGHT)
        self._drain(pending, 0)
        self.ready.set()

    def _drain(self, pending: list[Future[Any]], keep: int) -> None:
        while len(pending) > keep:
            try:
                pending.pop(0).result()
            except ExchangeError as refusal:  # an amend of an order filled already, say
                self.refused[str(refusal.reason)] += 1


def _serve(settings: Settings, feeder: Feeder) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    app = create_app(settings, on_start=feeder.start)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))  # fmt: skip
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if server.started:
            break
        time.sleep(0.1)
    assert server.started, "the server did not start"
    return server, thread, base


def _busiest(commands: list[cmd.Command]) -> str:
    orders = Counter(c.symbol for c in commands if type(c) is cmd.SubmitOrder)
    return orders.most_common(1)[0][0]


def live_under_load(commands: list[cmd.Command], directory: Path, feed_s: float,
                    rate_per_s: float) -> dict[str, Any]:  # fmt: skip
    feeder = Feeder(commands, rate_per_s)
    settings = Settings(f"sqlite:///{directory / 'served.db'}", rate_limit_per_s=1_000.0,
                        rate_limit_burst=2_000)  # fmt: skip
    server, thread, base = _serve(settings, feeder)
    symbol = _busiest(commands)
    try:
        with chromium(DESKTOP) as driver:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _COUNTERS})
            feeder.ready.wait()
            driver.get(f"{base}/markets/{symbol}?levels=50")
            _until(lambda: driver.find_element("id", "stream-status").text == "live")
            time.sleep(1.0)
            before = driver.execute_script("return {...window.__bench}")
            sent_before, started = feeder.sent, time.monotonic()
            feeder.go.set()
            time.sleep(feed_s)
            during = driver.execute_script("return {...window.__bench}")
            elapsed_s = time.monotonic() - started
            sent = feeder.sent - sent_before
            feeder.stop.set()
            time.sleep(SETTLE_S)
            shown = {name: driver.find_element("id", name).text for name in ("last",)}
            shown["bid"] = _first(driver, "#book-bids tr td:nth-child(2)")
            shown["ask"] = _last(driver, "#book-asks tr td:nth-child(2)")
            errors = console_errors(driver)
        book = httpx.get(f"{base}/v1/market/{symbol}/book?depth=1").json()
        ticker = httpx.get(f"{base}/v1/market/{symbol}/ticker").json()
    finally:
        feeder.stop.set()
        feeder.go.set()
        server.should_exit = True
        thread.join(timeout=30)
    api = {"last": ticker["last"], "bid": (book["bids"] or [{"price": None}])[0]["price"],
           "ask": (book["asks"] or [{"price": None}])[0]["price"]}  # fmt: skip
    messages = during["messages"] - before["messages"]
    frames = during["frames"] - before["frames"]
    return {
        "symbol": symbol, "elapsed_s": elapsed_s, "orders_sent": sent,
        "orders_per_s": sent / elapsed_s, "refused": dict(feeder.refused),
        "messages_per_s": messages / elapsed_s, "frames_per_s": frames / elapsed_s,
        "messages_per_frame": messages / max(frames, 1),
        "long_tasks": during["longTasks"] - before["longTasks"],
        "long_task_ms": during["longTaskMs"] - before["longTaskMs"],
        "shown": shown, "api": api, "live": shown == api, "console_errors": errors,
    }  # fmt: skip


def _until(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _first(driver: Any, css: str) -> str | None:
    found = driver.find_elements("css selector", css)
    return found[0].text if found else None


def _last(driver: Any, css: str) -> str | None:
    # The ladder lists asks from the highest down to the best, just above the bids.
    found = driver.find_elements("css selector", css)
    return found[-1].text if found else None


def first_loads(commands: list[cmd.Command], symbol: str, directory: Path,
                runs: int) -> dict[str, dict[str, int]]:  # fmt: skip
    """Per page, the median over ``runs`` fresh browsers of the bytes transferred by a first
    load of the market ``commands`` make (``symbol``'s page for an instrument's): the page
    and its assets, and everything (the API's answers included)."""
    feeder = Feeder(commands, float("inf"))
    feeder.go.set()
    settings = Settings(f"sqlite:///{directory / 'first-load.db'}")
    server, thread, base = _serve(settings, feeder)
    assert feeder.thread is not None
    feeder.thread.join()
    pages = ["/", f"/markets/{symbol}", "/products/P000001", "/account", "/collateral",
             "/ledger"]  # fmt: skip
    sizes: dict[str, dict[str, list[int]]] = {p: {"assets": [], "all": []} for p in pages}
    try:
        for _ in range(runs):
            for page in pages:
                with chromium(DESKTOP) as driver:
                    driver.get(base + page)
                    time.sleep(FIRST_LOAD_SETTLE_S)
                    entries = driver.execute_script(_TRANSFERRED)
                sizes[page]["all"].append(sum(size for _, size, _, _ in entries))
                sizes[page]["assets"].append(sum(
                    size for name, size, _, kind in entries
                    if kind in ("navigation", "script", "link", "css") or "/dashboard/" in name
                ))  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return {p: {k: int(statistics.median(v)) for k, v in s.items()} for p, s in sizes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=360, help="Simulated ticks to replay")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--feed-s", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=1_500.0, help="Orders a second, at most")
    parser.add_argument("--runs", type=int, default=3, help="First loads per page")
    args = parser.parse_args()
    if MISSING:
        sys.exit(f"not installed: {MISSING}")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        commands = simulated_journal(directory, args.ticks, args.seed)
        print(f"liquid seed {args.seed}, {args.ticks} ticks: {len(commands):,} commands")
        live = live_under_load(commands, directory, args.feed_s, args.rate)
        for name, value in live.items():
            print(f"  {name}: {value:.2f}" if isinstance(value, float) else f"  {name}: {value}")
        # Setup and the first 2,000 orders: a market with a book and a tape to load.
        first_orders = [i for i, c in enumerate(commands) if type(c) is cmd.SubmitOrder]
        market = commands[: first_orders[min(2_000, len(first_orders) - 1)]]
        for page, size in first_loads(market, live["symbol"], directory, args.runs).items():
            print(
                f"  first load {page}: {size['assets'] / 1000:.1f} kB page and assets, "
                f"{size['all'] / 1000:.1f} kB with the API's answers"
            )
        if not live["live"] or live["console_errors"]:
            sys.exit("the page did not stay live")


if __name__ == "__main__":
    main()
