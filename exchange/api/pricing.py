"""The calibrated valuation market of a serving process, rebuilt as trades accumulate.

Preparing a market (tables, calibration, indices) costs far more than one valuation, so the
runtime keeps the last one per valuation date and rebuilds it only when the exchange has
traded since and the one it has is older than ``MAX_STALENESS_S``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from exchange.pricing import Market, prepare_market
from exchange.valuation_inputs import pricing_records

__all__ = ["MAX_STALENESS_S", "PricingCache"]

MAX_STALENESS_S = 5.0


class PricingCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._as_of: dt.date | None = None
        self._trade_count = -1
        self._product_count = -1
        self._built_at = 0.0
        self._market: Market | None = None

    def market(self, read: Callable[[Callable[[Any], Any]], Any], as_of: dt.date) -> Market:
        """The market for valuations on ``as_of`` (blocking: call it off the event loop);
        ``read`` runs a query on the exchange's state (``Runtime.read``).

        Raises ValueError when the records cannot be prepared.
        """
        trades, products = read(
            lambda exchange: (exchange.market.trade_count, len(exchange.products))
        )
        with self._lock:
            fresh = (
                self._market is not None
                and self._as_of == as_of
                and self._product_count == products
                and (
                    self._trade_count == trades
                    or time.monotonic() - self._built_at < MAX_STALENESS_S
                )
            )
            if not fresh:
                records = read(pricing_records)
                self._market = prepare_market(*records, as_of=as_of)
                self._as_of, self._trade_count, self._product_count = as_of, trades, products
                self._built_at = time.monotonic()
            assert self._market is not None
            return self._market
