"""The exchange's server for load tests: ``dataex serve``'s stack plus a bare endpoint.

    python -m loadtests serve --port 8000 --database sqlite:///load.db
    python -m loadtests serve ... --profile DIR     # cProfile of the event loop and sequencer

(``python -m loadtests.server`` takes the same options; the load test starts it that way.)

It builds the same app as ``dataex serve`` (``exchange.api.create_app`` with the settings from
the environment, ``DATAEX_RATE_LIMIT`` included), with the same collector settings and the
same ``uvicorn.run`` call, and adds a route, ``GET /v1/loadtest/bare``, which returns a
constant JSON body without touching the exchange. Served by the same process, event loop,
FastAPI app and HTTP server as the exchange's routes, the bare route is the baseline a load
test compares the order endpoint with: what is left when the exchange's work is taken away.

``POST /v1/loadtest/order-edge`` is the order endpoint without the exchange: the same key
check, request body, price conversion and response model as ``POST /v1/orders``, answering
as if the order rested, but nothing reaches the sequencer and nothing is journalled. Between
the two baselines, it tells what the API's edge costs and what the exchange behind it costs.

Keep :func:`main` in step with ``exchange/cli/serve.py``: a difference in the stack would
make the baseline measure something else.

A second route, ``GET /v1/loadtest/internals``, tells the load generator the stack (HTTP
parser and event loop), each thread's name (so that it can split the
server's CPU time between the event loop, the sequencer and the thread pool) and the
sequencer's commit count (commands per commit).

``--profile DIR`` runs the two busy threads under cProfile (each profiler sees only its own
thread): the main thread, which runs the event loop and so every route, into
``DIR/server-loop.prof``, and the sequencer's thread into ``DIR/server-sequencer.prof``,
both written when the server stops (SIGTERM). The sequencer's loop is wrapped for that at
run time, in this process only. The profilers slow the server down severalfold: profile
runs tell where the time goes, never how fast it is.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib.util
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from exchange.api import create_app
from exchange.api.deps import RuntimeDep
from exchange.api.routes.orders import Trader, submission
from exchange.api.runtime import Runtime
from exchange.api.schemas import OrderCreate, OrderPublic
from exchange.api.views import order_view
from exchange.orders import OrderRecord
from exchange.sequencer import Sequencer
from exchange.settings import Settings
from matching import OrderType, SelfTradePrevention, Side, TimeInForce

__all__ = [
    "BARE_BODY",
    "BARE_PATH",
    "EDGE_PATH",
    "INTERNALS_PATH",
    "build_app",
    "main",
    "serve",
]

BARE_PATH = "/v1/loadtest/bare"
EDGE_PATH = "/v1/loadtest/order-edge"
INTERNALS_PATH = "/v1/loadtest/internals"
BARE_BODY = {"status": "ok"}
# As in exchange/cli/serve.py: every order leaves long-lived records behind.
GC_THRESHOLD_OBJECTS = 100_000


def build_app(settings: Settings) -> FastAPI:
    """The exchange's app on ``settings`` with the bare baseline route added."""

    def start(_: Runtime) -> None:
        # As ``dataex serve`` does: the state rebuilt from the journal lives as long as the
        # process, so the collector should not walk it again and again.
        gc.freeze()

    app = create_app(settings, on_start=start)

    @app.get(BARE_PATH, tags=["load test"])
    async def bare() -> dict[str, str]:
        """A constant body: the cost of the HTTP stack alone."""
        return BARE_BODY

    @app.post(EDGE_PATH, status_code=201, response_model=OrderPublic, tags=["load test"])
    async def order_edge(body: OrderCreate, me: Trader, runtime: RuntimeDep) -> OrderPublic:
        """``POST /v1/orders`` up to the sequencer and from its answer on, without the
        exchange between: the order is answered as resting, and never journalled."""
        c = submission(body, me)
        now = time.time_ns()
        return order_view(OrderRecord(
            0, c.client_order_id, c.actor, c.symbol, Side(c.side), OrderType(c.order_type),
            c.price_minor, c.quantity_units, TimeInForce(c.tif), c.expire_ns, c.post_only,
            SelfTradePrevention(c.stp), now, now,
        ))  # fmt: skip

    @app.get(INTERNALS_PATH, tags=["load test"])
    async def internals(request: Request) -> dict[str, Any]:
        """What the load generator needs to say where the server's time goes: the native
        id of each thread by its name, and the sequencer's commits and journal head."""
        runtime: Runtime = request.app.state.runtime
        return {
            "stack": {
                # What uvicorn's "auto" choices pick: httptools and uvloop when installed.
                "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
                "event loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            },
            "threads": {str(t.native_id): t.name for t in threading.enumerate()},
            "sequencer_batches": runtime.sequencer.batches,
            "journal_seq": runtime.sequencer.exchange.head_seq,
        }

    return app


def _exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _profile_sequencer(out: Path) -> None:
    """Run every sequencer's loop of this process under a profiler of its own thread."""
    loop = Sequencer._run

    def profiled(self: Sequencer) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            loop(self)
        finally:
            profile.disable()
            profile.dump_stats(out / "server-sequencer.prof")

    Sequencer._run = profiled  # type: ignore[method-assign]


def serve(host: str, port: int, database: str | None, log_level: str, profile: Path | None) -> None:
    """Serve the load-test stack until SIGTERM or Ctrl-C; with ``profile``, write the two
    profiles of the module docstring into that directory when it stops."""
    app = build_app(Settings.from_env(database))
    gc.set_threshold(GC_THRESHOLD_OBJECTS, 50, 100)
    print(f"dataex load-test server on http://{host}:{port}", flush=True)
    if profile is None:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    profile.mkdir(parents=True, exist_ok=True)
    _profile_sequencer(profile)
    # uvicorn raises the SIGTERM it caught again once it has shut down; end by an exception
    # instead of by the signal, so that the profile below is written.
    signal.signal(signal.SIGTERM, _exit)
    loop_profile = cProfile.Profile()
    loop_profile.enable()
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        loop_profile.disable()
        loop_profile.dump_stats(profile / "server-loop.prof")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--database", default=None, help="database URL")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.database, args.log_level, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
