"""What a run measured, as plain JSON-ready values: :func:`summarise` reads a finished
:class:`~exchange.simulation.runner.RunResult` and returns the report's summary.

Measures (docs/simulation.md, "The report", defines each):

- activity: commands journalled by kind, orders submitted and refused by agent kind and
  reason, trades, volume, notional; per instrument and per time bin (days, or hours of the
  session for a run of one day);
- the book: relative spread (basis points of the mid) and depth (units within five levels a
  side) sampled every ``sample_every_ticks``;
- prices against truth: each instrument's last VWAP (its last 20 trades) over its true value;
- valuation accuracy on the last day: for every listed instrument, the market approach
  (``exchange.pricing.value`` on the run's own trades; own trades included, and held out),
  the cost approach, and the naive category median (the median trade price of the
  category's other products), each against the true value: median absolute percentage error
  (MdAPE), share within 20%, median ratio to truth, by how often the instrument traded;
- stylized facts of the bar returns (``bar_ticks``) of continuous instruments that trade in
  at least half the bars: lag-1
  autocorrelation of returns, excess kurtosis, lag-1 autocorrelation of absolute returns
  (and its first 20 lags);
- each lender's facility (``exchange.facility_report``): its LTV history and alerts as the
  exchange recorded them, its end-of-day LTV beside the LTV against the true values, and
  each liquidation's units, proceeds and reserve beside the true value of what it sold.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics
from collections import Counter
from typing import Any

import numpy as np

from exchange.facility_report import facility_summary
from exchange.pricing import TargetSpec, prepare_market, terms_from_catalogue, value
from exchange.simulation.agents import Lender
from exchange.simulation.runner import RunResult
from exchange.valuation_inputs import book_snapshot, pricing_records

__all__ = [
    "LIQUIDITY_BUCKETS",
    "accuracy",
    "autocorrelation",
    "bar_returns",
    "excess_kurtosis",
    "stylized_facts",
    "summarise",
]

MINOR = 100.0
RECENT_TRADES = 20
MIN_RETURNS = 30
MIN_TRADED_SHARE = 0.5
ACF_LAGS = 20
# Instruments by how many trades they had over the run.
LIQUIDITY_BUCKETS = (
    (0, 0, "no trades"),
    (1, 4, "1-4 trades"),
    (5, 19, "5-19 trades"),
    (20, None, "20+ trades"),
)
APPROACHES = ("market", "market_holdout", "cost", "naive")
# Limit: price paths drawn in the report (the most traded instruments).
MAX_PATHS = 6


def summarise(result: RunResult, *, valuation: bool = True) -> dict[str, Any]:
    """The run's summary; ``valuation=False`` skips the valuation study (the slowest part on
    a large run: one ``prepare_market`` and two valuations per instrument)."""
    scenario, exchange = result.scenario, result.exchange
    tick_ns = scenario.tick_ns
    first_ns = _first_session_ns(result)
    trades = _trade_rows(result, first_ns, tick_ns)
    instruments = _instruments(result, trades)
    refused = result.refused
    submitted = result.submitted
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "source": scenario.source,
        "description": scenario.description,
        "seed": result.seed,
        "days": result.days,
        "ticks": result.ticks,
        "ticks_per_day": scenario.ticks_per_day,
        "tick_seconds": tick_ns / 1e9,
        "sample_every_ticks": scenario.sample_every_ticks,
        "start_date": scenario.start_date.isoformat(),
        "journal_hash": result.journal_hash,
        "journal_commands": result.journal_commands,
        "commands_by_verb": dict(sorted(result.commands_by_verb.items())),
        "orders": result.orders,
        "submitted_by_kind": dict(result.submitted_by_kind),
        "refused": dict(refused.most_common()),
        "refused_by_kind": {
            kind: dict(c.most_common()) for kind, c in sorted(result.refused_by_kind.items())
        },
        "refused_share": sum(refused.values()) / submitted if submitted else 0.0,
        "participants": len(exchange.participants.by_id),
        "products": len(exchange.products),
        "instruments_listed": len(result.listed),
        "not_listed": [{"symbol": s, "why": why} for s, why in result.not_listed],
        "trades": len(trades),
        "volume_units": sum(row[2] for row in trades),
        "notional": sum(row[1] * row[2] for row in trades) / MINOR,
        "instruments": instruments,
        "bins": _bins(result, trades),
        "book": _book_series(result),
        "price_paths": _price_paths(result, trades, instruments),
        "stylized_facts": stylized_facts(result, trades),
        "facilities": [_facility(result, lender) for lender in result.lenders],
        "ledger_verified": result.verify_ok,
        "ledger_problem": result.verify_problem,
        "conservation_problems": list(result.conservation),
        "database": result.database_url,
        "wall_s": result.wall_s,
    }
    summary["valuation"] = _valuation(result, trades) if valuation else None
    return summary


# ------------------------------------------------------------------ trades and instruments


def _first_session_ns(result: RunResult) -> int:
    scenario = result.scenario
    start = dt.datetime.combine(scenario.start_date, dt.time(), tzinfo=dt.UTC)
    return (int(start.timestamp()) + scenario.session_start_hour * 3_600) * 10**9


def _trade_rows(result: RunResult, first_ns: int, tick_ns: int) -> list[tuple[str, int, int, int]]:
    """Every trade as (symbol, price minor, units, tick), in trade order."""
    per_day = result.scenario.ticks_per_day
    rows: list[tuple[int, str, int, int, int]] = []
    for symbol in result.listed:
        for trade_id, price, units, ts_ns in result.exchange.market_data.history[symbol]:
            # Trades of the setup (a call market's initial offering) count at tick 0.
            day, offset = divmod(max(0, ts_ns - first_ns), 86_400 * 10**9)
            tick = day * per_day + min(per_day - 1, offset // tick_ns)
            rows.append((trade_id, symbol, price, units, tick))
    rows.sort()
    return [(symbol, price, units, tick) for _, symbol, price, units, tick in rows]


def _instruments(result: RunResult, trades: list[tuple[str, int, int, int]]) -> list[dict]:
    exchange, recorder = result.exchange, result.recorder
    by_symbol: dict[str, list[tuple[int, int]]] = {symbol: [] for symbol in result.listed}
    for symbol, price, units, _tick in trades:
        by_symbol[symbol].append((price, units))
    rows = []
    for symbol in result.listed:
        instrument = exchange.instruments[symbol]
        fills = by_symbol[symbol]
        units = sum(q for _, q in fills)
        recent = fills[-RECENT_TRADES:]
        recent_vwap = (
            (sum(p * q for p, q in recent) / sum(q for _, q in recent)) if recent else None
        )
        truth = result.truth.value_minor(symbol)
        series = recorder.series[symbol]
        spreads = [
            2e4 * (ask - bid) / (ask + bid)
            for bid, ask in zip(series.bid_minor, series.ask_minor, strict=True)
            if bid is not None and ask is not None and ask > bid
        ]
        depth = [b + a for b, a in zip(series.bid_depth_units, series.ask_depth_units, strict=True)]
        rows.append(
            {
                "symbol": symbol,
                "product_id": instrument.product_id,
                "category": exchange.products[instrument.product_id].category.value,
                "trading_mode": instrument.trading_mode.value,
                "trades": len(fills),
                "volume_units": units,
                "vwap": (sum(p * q for p, q in fills) / units / MINOR) if units else None,
                "last_price": fills[-1][0] / MINOR if fills else None,
                "recent_vwap": None if recent_vwap is None else recent_vwap / MINOR,
                "true_value": truth / MINOR,
                "price_to_true": None if recent_vwap is None else recent_vwap / truth,
                "two_sided_share": len(spreads) / len(depth) if depth else 0.0,
                "mean_spread_bp": statistics.fmean(spreads) if spreads else None,
                "mean_depth_units": statistics.fmean(depth) if depth else 0.0,
            }
        )
    return rows


def _bins(result: RunResult, trades: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    """Trades and volume per day, or per hour of the session for a one-day run."""
    scenario = result.scenario
    if result.days > 1:
        width, label = scenario.ticks_per_day, "day"
        names = [
            (scenario.start_date + dt.timedelta(days=d)).isoformat() for d in range(result.days)
        ]
    else:
        hours = max(1, round(scenario.session_hours))
        width, label = max(1, math.ceil(scenario.ticks_per_day / hours)), "hour"
        names = [f"{(scenario.session_start_hour + h) % 24:02d}:00 UTC" for h in range(hours)]
    count = len(names)
    trade_count, volume = [0] * count, [0] * count
    for _symbol, _price, units, tick in trades:
        index = min(count - 1, tick // width)
        trade_count[index] += 1
        volume[index] += units
    return {"unit": label, "labels": names, "trades": trade_count, "volume_units": volume}


def _book_series(result: RunResult) -> dict[str, Any]:
    """Mean relative spread (over instruments with both sides) and total depth per sample."""
    recorder = result.recorder
    spread, depth = [], []
    for i in range(len(recorder.ticks)):
        values, total = [], 0
        for series in recorder.series.values():
            bid, ask = series.bid_minor[i], series.ask_minor[i]
            # A call market's book may be crossed until its next uncross: no spread then.
            if bid is not None and ask is not None and ask > bid:
                values.append(2e4 * (ask - bid) / (ask + bid))
            total += series.bid_depth_units[i] + series.ask_depth_units[i]
        spread.append(statistics.fmean(values) if values else None)
        depth.append(total)
    return {"ticks": list(recorder.ticks), "mean_spread_bp": spread, "depth_units": depth}


def _price_paths(
    result: RunResult, trades: list[tuple[str, int, int, int]], instruments: list[dict]
) -> list[dict]:
    """The most traded instruments' last price at each sample, beside their true value."""
    chosen = [
        row["symbol"] for row in sorted(instruments, key=lambda r: -r["trades"]) if row["trades"]
    ][:MAX_PATHS]
    recorder = result.recorder
    paths = []
    for symbol in chosen:
        ticks_prices = [(tick, price) for s, price, _, tick in trades if s == symbol]
        prices: list[float | None] = []
        j, last = 0, None
        for tick in recorder.ticks:
            while j < len(ticks_prices) and ticks_prices[j][0] <= tick:
                last = ticks_prices[j][1] / MINOR
                j += 1
            prices.append(last)
        paths.append(
            {
                "symbol": symbol,
                "ticks": list(recorder.ticks),
                "last_price": prices,
                "true_value": [v / MINOR for v in recorder.series[symbol].true_value_minor],
            }
        )
    return paths


# ------------------------------------------------------------------ stylized facts


def bar_returns(prices_by_tick: list[tuple[int, int]], bar_ticks: int, ticks: int) -> np.ndarray:
    """Log returns of the last trade price per bar of ``bar_ticks`` ticks, over bars from the
    first traded bar to the last bar of the run (a bar without trades repeats the last price,
    a zero return). ``prices_by_tick`` is (tick, price) in time order.

    >>> bar_returns([(0, 100), (1, 110), (2, 99)], 1, 3).round(4).tolist()
    [0.0953, -0.1054]
    """
    bars = -(-ticks // bar_ticks)
    last: dict[int, int] = {}
    for tick, price in prices_by_tick:
        last[tick // bar_ticks] = price
    if not last:
        return np.zeros(0)
    closes, price = [], None
    for bar in range(min(last), bars):
        price = last.get(bar, price)
        closes.append(price)
    series = np.log(np.asarray(closes, dtype=np.float64))
    return np.diff(series)


def autocorrelation(x: np.ndarray, lag: int) -> float | None:
    """Sample autocorrelation at ``lag`` (None if undefined).

    >>> round(autocorrelation(np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]), 1), 3)
    -0.833
    """
    if len(x) <= lag + 1:
        return None
    centred = x - x.mean()
    denominator = float(np.dot(centred, centred))
    if denominator == 0.0:
        return None
    return float(np.dot(centred[:-lag], centred[lag:]) / denominator)


def excess_kurtosis(x: np.ndarray) -> float | None:
    """m4 / m2^2 - 3: 0 for a normal distribution, positive for fat tails."""
    if len(x) < 4:
        return None
    centred = x - x.mean()
    m2 = float(np.mean(centred**2))
    if m2 == 0.0:
        return None
    return float(np.mean(centred**4) / m2**2 - 3.0)


def stylized_facts(result: RunResult, trades: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    """Per continuous instrument with at least 30 bar returns and a trade in at least half
    of its bars, and their mean."""
    scenario = result.scenario
    per: list[dict[str, Any]] = []
    acf_abs_lags: list[list[float | None]] = []
    for symbol in result.listed:
        if result.exchange.instruments[symbol].trading_mode.value != "continuous":
            continue
        burn_in = scenario.burn_in_ticks
        prices = [
            (tick - burn_in, price)
            for s, price, _, tick in trades
            if s == symbol and tick >= burn_in
        ]
        returns = bar_returns(prices, scenario.bar_ticks, result.ticks - burn_in)
        traded_bars = len({tick // scenario.bar_ticks for tick, _ in prices})
        # Bars without a trade repeat the last price: with too many of them the returns
        # measure how often the instrument trades, not how its price moves.
        if len(returns) < MIN_RETURNS or traded_bars < MIN_TRADED_SHARE * (len(returns) + 1):
            continue
        absolute = np.abs(returns)
        lags = [autocorrelation(absolute, k) for k in range(1, ACF_LAGS + 1)]
        acf_abs_lags.append(lags)
        per.append(
            {
                "symbol": symbol,
                "returns": len(returns),
                "return_sd": float(returns.std()),
                "acf1_returns": autocorrelation(returns, 1),
                "excess_kurtosis": excess_kurtosis(returns),
                "acf1_abs_returns": lags[0],
            }
        )
    if not per:
        return {
            "bar_seconds": scenario.bar_ticks * scenario.tick_ns / 1e9,
            "instruments": [],
            "burn_in_ticks": scenario.burn_in_ticks,
            "mean": None,
            "acf_abs_returns": [],
        }

    def mean_of(key: str) -> float | None:
        values = [row[key] for row in per if row[key] is not None]
        return statistics.fmean(values) if values else None

    acf_mean = []
    for k in range(ACF_LAGS):
        values = [lags[k] for lags in acf_abs_lags if lags[k] is not None]
        acf_mean.append(statistics.fmean(values) if values else None)
    return {
        "bar_seconds": scenario.bar_ticks * scenario.tick_ns / 1e9,
        "burn_in_ticks": scenario.burn_in_ticks,
        "instruments": per,
        "mean": {
            key: mean_of(key)
            for key in ("acf1_returns", "excess_kurtosis", "acf1_abs_returns", "return_sd")
        },
        "acf_abs_returns": acf_mean,
    }


# ------------------------------------------------------------------ valuation accuracy


def _valuation(result: RunResult, trades: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    exchange = result.exchange
    if not result.listed:
        return {"as_of": None, "rows": [], "approaches": {}, "by_liquidity": {}}
    products, trade_records = pricing_records(exchange)
    as_of = result.scenario.start_date + dt.timedelta(days=max(0, result.days - 1))
    if trade_records:
        as_of = max(as_of, max(t.traded_at for t in trade_records))
    market = prepare_market(products, trade_records, as_of=as_of)
    by_id = {record.product_id: record for record in products}
    counts = Counter(symbol for symbol, *_ in trades)
    category_prices: dict[str, list[tuple[str, float]]] = {}
    for record in trade_records:
        category = by_id[record.product_id].category
        for _ in range(record.quantity):
            category_prices.setdefault(category, []).append((record.product_id, record.price))
    rows = []
    for symbol in result.listed:
        instrument = exchange.instruments[symbol]
        product = by_id[instrument.product_id]
        terms = terms_from_catalogue(instrument.terms)
        book = book_snapshot(exchange, instrument.product_id, terms)
        own = value(market, TargetSpec(product, terms, as_of, book=book))
        holdout = value(
            market, TargetSpec(product, terms, as_of, book=book, exclude_own_trades=True)
        )
        others = [
            p for pid, p in category_prices.get(product.category, []) if pid != product.product_id
        ]
        rows.append(
            {
                "symbol": symbol,
                "category": product.category,
                "trades": counts.get(symbol, 0),
                "true_value": result.truth.value_minor(symbol) / MINOR,
                "market": own.value,
                "market_method": own.method,
                "market_holdout": holdout.value,
                "market_holdout_method": holdout.method,
                "cost": own.cost.value,
                "naive": statistics.median(others) if others else None,
            }
        )
    approaches = {name: accuracy(rows, name) for name in APPROACHES}
    by_liquidity: dict[str, dict[str, Any]] = {}
    for low, high, label in LIQUIDITY_BUCKETS:
        bucket = [r for r in rows if r["trades"] >= low and (high is None or r["trades"] <= high)]
        if bucket:
            by_liquidity[label] = {name: accuracy(bucket, name) for name in APPROACHES}
    return {
        "as_of": as_of.isoformat(),
        "rows": rows,
        "approaches": approaches,
        "by_liquidity": by_liquidity,
    }


def accuracy(rows: list[dict[str, Any]], approach: str) -> dict[str, Any]:
    """How close ``approach``'s values came to the true values over ``rows``.

    >>> rows = [{"true_value": 100.0, "x": 110.0}, {"true_value": 100.0, "x": 80.0}]
    >>> round(accuracy(rows, "x")["mdape_pct"], 6)
    15.0
    """
    pairs = [
        (row[approach], row["true_value"])
        for row in rows
        if row.get(approach) is not None and row[approach] > 0
    ]
    method_key = f"{approach}_method"
    fallbacks = sum(1 for row in rows if row.get(method_key) == "cost_fallback")
    if not pairs:
        return {
            "n": 0,
            "mdape_pct": None,
            "within_20_pct": None,
            "median_ratio": None,
            "fallbacks": fallbacks,
        }
    errors = [abs(estimate / truth - 1) for estimate, truth in pairs]
    return {
        "n": len(pairs),
        "mdape_pct": 100 * statistics.median(errors),
        "within_20_pct": 100 * sum(1 for e in errors if e <= 0.2) / len(errors),
        "median_ratio": statistics.median(estimate / truth for estimate, truth in pairs),
        "fallbacks": fallbacks,
    }


def _facility(result: RunResult, lender: Lender) -> dict[str, Any]:
    """One lender's facility: the exchange's record of it and the lender's view beside the
    truth (money in the exchange's record as decimal strings, in the lender's in minor
    units; LTV in basis points)."""
    f = None if lender.facility_id is None else result.exchange.collateral.facilities.get(
        lender.facility_id
    )  # fmt: skip
    return {
        "lender": lender.participant,
        "borrower": lender.params.borrower,
        "facility": None if f is None else facility_summary(result.exchange, f),
        "path": [dataclasses.asdict(point) for point in lender.path],
        "alerts": [dataclasses.asdict(alert) for alert in lender.alerts],
        "liquidations": [
            {**dataclasses.asdict(outcome), "orders": sorted(outcome.orders)}
            for outcome in lender.liquidations
        ],
    }
