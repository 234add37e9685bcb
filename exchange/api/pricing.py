"""The calibrated valuation market of a serving process, rebuilt as trades accumulate.

Preparing a market (tables, calibration, indices) costs far more than one valuation (about a
second over 100,000 trades), so the runtime keeps the last one per valuation date and rebuilds
it only when the exchange has traded since and the one it has is older than
``MAX_STALENESS_S``.

The rebuild runs in a worker process: in this one it would hold the interpreter, and with it
the event loop and the sequencer, for the whole second. Here only the copy of the trade
history (under the sequencer's lock) and the pickling to and from the worker remain, tens of
milliseconds. Should the worker die, the rebuild runs here and the next one starts a new worker.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from exchange.pricing import Market, prepare_market
from exchange.valuation_inputs import PricingInputs, copy_inputs, records_from

__all__ = ["MAX_STALENESS_S", "PricingCache"]

# A market a few seconds old values a data product as well as one of this instant (the
# method works on days of history).
MAX_STALENESS_S = 30.0
_DAY_NS = 86_400 * 1_000_000_000


def _prepare(inputs: PricingInputs, as_of: dt.date) -> Market:
    """The worker's task: records from the copied inputs, then the calibrated market."""
    return prepare_market(*records_from(inputs), as_of=as_of)


class PricingCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._as_of: dt.date | None = None
        # What the market was built from: the trades, publications and confidential trades
        # counted, and the day (aggregates of confidential trades change when a month ends).
        self._activity: tuple[int, int, int, int] | None = None
        self._product_count = -1
        self._built_at = 0.0
        self._market: Market | None = None
        self._worker: ProcessPoolExecutor | None = None

    def market(self, read: Callable[[Callable[[Any], Any]], Any], as_of: dt.date) -> Market:
        """The market for valuations on ``as_of`` (blocking: call it off the event loop);
        ``read`` runs a query on the exchange's state (``Runtime.read``).

        Raises ValueError when the records cannot be prepared.
        """
        activity, products = read(
            lambda exchange: (
                (
                    exchange.market_data.trade_count,
                    exchange.confidential.published_count,
                    len(exchange.confidential.trades),
                    exchange.last_ts_ns // _DAY_NS,
                ),
                len(exchange.products),
            )
        )
        with self._lock:
            fresh = (
                self._market is not None
                and self._as_of == as_of
                and self._product_count == products
                and (
                    self._activity == activity
                    or time.monotonic() - self._built_at < MAX_STALENESS_S
                )
            )
            if not fresh:
                self._market = self._rebuild(read(copy_inputs), as_of)
                self._as_of, self._activity, self._product_count = as_of, activity, products
                self._built_at = time.monotonic()
            assert self._market is not None
            return self._market

    def _rebuild(self, inputs: PricingInputs, as_of: dt.date) -> Market:
        if self._worker is None:
            # A clean interpreter, not a fork of this threaded one.
            context = multiprocessing.get_context("spawn")
            self._worker = ProcessPoolExecutor(max_workers=1, mp_context=context)
        try:
            return self._worker.submit(_prepare, inputs, as_of).result()
        except BrokenProcessPool:
            # The worker died (killed, out of memory): this once here, a new worker next time.
            self._worker = None
            return _prepare(inputs, as_of)

    def close(self) -> None:
        """Stop the worker process, if one was started."""
        with self._lock:
            if self._worker is not None:
                self._worker.shutdown(cancel_futures=True)
                self._worker = None
