"""The exchange's own valuations of pledged licences, in a serving process.

A facility's LTV is marked from the instrument's reference price: the last trade, or the last
valuation posted if it is newer (exchange/collateral.py). Without valuations, a pledge of a
thinly traded licence would be marked from a stale trade, or at nothing. This monitor posts
them: it values every pledged instrument that has no valuation yet (it wakes when a pledge
commits) or none of the current exchange day (the sequencer's clock, which a simulation
drives), with the pricing cache and the instrument's product and licence terms, as
``POST /v1/valuations`` does, and submits each as a journalled ``PostValuation`` of the
operator, so that replay reproduces the marks made from it.

It runs in a thread of its own, never on the event loop: preparing the valuation market
takes about a second over 100,000 trades. A failure (a market that cannot be valued yet, a
refused command, a stopped sequencer) is logged and the instrument retried after
:data:`RETRY_INTERVAL_S`; nothing here stops the server.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

from exchange.commands import PledgeLicences, PostValuation
from exchange.facility import DAY_NS
from exchange.money import MAX_AMOUNT_MINOR, MINOR_PER_UNIT
from exchange.participants import OPERATOR
from exchange.pricing import (
    BookSnapshot,
    ProductRecord,
    TargetSpec,
    TermsRecord,
    ValuationReport,
    product_from_catalogue,
    terms_from_catalogue,
    value,
)
from exchange.sequencer import Sequencer
from exchange.service import Exchange, Outcome
from exchange.valuation_inputs import book_snapshot

from .pricing import PricingCache

__all__ = ["CHECK_INTERVAL_S", "RETRY_INTERVAL_S", "CollateralMonitor", "valuation_command"]

log = logging.getLogger(__name__)
T = TypeVar("T")

CHECK_INTERVAL_S: Final = 5.0  # how often the day's valuations are looked for
RETRY_INTERVAL_S: Final = 300.0  # after a failure, the instrument waits this long (wall time)
STOP_TIMEOUT_S: Final = 30.0  # a valuation under way may take this long to finish
MAX_METHOD_CHARS: Final = 32  # as PostValuation takes it

Target = tuple[str, ProductRecord, TermsRecord, BookSnapshot | None]


def valuation_command(symbol: str, report: ValuationReport) -> PostValuation:
    """The operator's ``PostValuation`` of ``report`` (currency units per licence, floats):
    each amount rounded to the nearest minor unit, at least one, the range widened if the
    rounding put the value outside it. ValueError for an amount that is not a finite number
    within the exchange's limit.

    >>> from types import SimpleNamespace as Report
    >>> command = valuation_command("X", Report(value=10.004, low=8.0, high=12.5,
    ...                                         n_comparables=4, method="market"))
    >>> command.value_minor, command.low_minor, command.high_minor, command.actor
    (1000, 800, 1250, 'operator')
    """
    amounts = (report.value, report.low, report.high)
    if not all(math.isfinite(a) and 0 <= a * MINOR_PER_UNIT <= MAX_AMOUNT_MINOR for a in amounts):
        raise ValueError(f"a valuation of {symbol} out of range: {amounts}")
    value_minor, low_minor, high_minor = (max(1, round(a * MINOR_PER_UNIT)) for a in amounts)
    return PostValuation(
        OPERATOR, symbol, value_minor, min(low_minor, value_minor), max(high_minor, value_minor),
        report.n_comparables, report.method[:MAX_METHOD_CHARS],
    )  # fmt: skip


class CollateralMonitor:
    def __init__(
        self,
        sequencer: Sequencer,
        pricing: PricingCache,
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
        retry_interval_s: float = RETRY_INTERVAL_S,
    ) -> None:
        self._sequencer = sequencer
        self._pricing = pricing
        self._check_interval_s = check_interval_s
        self._retry_interval_s = retry_interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[str, float] = {}  # symbol -> monotonic time of its next attempt
        self.posted = 0  # valuations posted since the start

    def start(self) -> CollateralMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="collateral-monitor",
                                            daemon=True)  # fmt: skip
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop once the valuation under way, if any, is done (or after STOP_TIMEOUT_S)."""
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None

    def on_commit(self, committed: list[tuple[int, Outcome]]) -> None:
        """A sequencer listener: wake at once when a pledge commits (its instrument may have
        no valuation yet)."""
        if any(type(outcome.command) is PledgeLicences for _, outcome in committed):
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check()
            except Exception:
                # Whatever went wrong is retried on the next check: the server carries on.
                log.exception("the collateral monitor's check failed")
            self._wake.wait(self._check_interval_s)
            self._wake.clear()

    def _read(self, query: Callable[[Exchange], T]) -> T:
        with self._sequencer.lock:
            return query(self._sequencer.exchange)

    def due(self) -> tuple[int, list[Target]]:
        """The exchange's time now, and the pledged instruments to value: those without a
        valuation of the current exchange day and not waiting to be retried."""
        now_monotonic = time.monotonic()

        def read(exchange: Exchange) -> tuple[int, list[Target]]:
            now_ns = max(self._sequencer.clock(), exchange.last_ts_ns)
            day = now_ns // DAY_NS
            desk = exchange.collateral
            targets = []
            for symbol in sorted(desk.by_symbol):
                valuation = desk.valuations.get(symbol)
                if valuation is not None and valuation.ts_ns // DAY_NS >= day:
                    continue
                if self._retry_at.get(symbol, 0.0) > now_monotonic:
                    continue
                instrument = exchange.instruments[symbol]
                terms = terms_from_catalogue(instrument.terms)
                product = exchange.products[instrument.product_id]
                targets.append((symbol, product_from_catalogue(product), terms,
                                book_snapshot(exchange, product.product_id, terms)))  # fmt: skip
            return now_ns, targets

        return self._read(read)

    def check(self) -> int:
        """Value and post what is due (blocking); how many valuations were posted."""
        now_ns, targets = self.due()
        if not targets:
            return 0
        as_of = dt.datetime.fromtimestamp(now_ns // 1_000_000_000, dt.UTC).date()
        try:
            market = self._pricing.market(self._read, as_of)
        except Exception as error:
            log.warning("no valuations of pledged licences on %s: %s", as_of, error)
            self._retry_later(symbol for symbol, *_ in targets)
            return 0
        posted = 0
        for symbol, product, terms, book in targets:
            if self._stopping.is_set():
                break
            try:
                report = value(market, TargetSpec(product, terms, as_of, book=book))
                self._sequencer.execute(valuation_command(symbol, report))
            except Exception as error:
                # A target the method cannot value, a refusal, a sequencer stopping.
                log.warning("no valuation of pledged %s on %s: %s", symbol, as_of, error)
                self._retry_later([symbol])
                continue
            self._retry_at.pop(symbol, None)
            posted += 1
        self.posted += posted
        return posted

    def _retry_later(self, symbols: Iterable[str]) -> None:
        at = time.monotonic() + self._retry_interval_s
        for symbol in symbols:
            self._retry_at[symbol] = at
