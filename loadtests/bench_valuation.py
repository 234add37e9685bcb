"""Accuracy and speed of the valuation against markets whose true values are known.

    python -m loadtests.bench_valuation                      # both generators, 5/20/50% traded
    python -m loadtests.bench_valuation --speed-only         # one valuation, 100k trades,
                                                             # and dataex value batch of 1,500
    python -m loadtests.bench_valuation --products 4000 --targets 500   # quicker

Each run generates products with a known true value per licence, lets a share of them trade
(5%, 20%, 50%), values a sample of the products that did *not* trade (each under randomly
drawn licence terms, on the last day of the data), and compares three estimates with the
truth: the market approach as concluded by ``exchange.pricing.value`` (with its cost fallback
when fewer than three comparables exist), the cost approach, and a naive baseline (the median
trade price of the same category, whatever the product and terms). Reported: median absolute
percentage error, share within 10% and 20%, median ratio (value / true), coefficient of
dispersion of the ratio (mean absolute deviation from the median ratio, in % of it), and the
share of true values inside the reported 80% range.

Two generators, neither of the method's form (the method is log-linear with an annuity for
duration and a category time-dummy index):

- ``interactions``: multiplicative, but concave in scale (quadratic in log records), quality
  elasticity larger for finance and health, freshness premia that depend on the category, a
  coverage effect that saturates, an exclusivity premium that grows with quality, duration
  priced as a power law, and category-specific resale and cross-border premia. Indices: a trend,
  a yearly cycle and a random walk. Noise: log-normal, wider for exclusive licences (sealed
  bids) and small datasets.
- ``additive``: value a sum of parts (a category base, a power of record count, a quality
  bonus above a threshold) with a step penalty for low quality and a bonus for long coverage;
  licence terms as surcharges partly fixed in amount; duration linear up to three years, flat
  after. Indices: one category jumps by 25% mid-way, the others trend. Noise: Student-t with 3
  degrees of freedom (heavy tails), its scale varying by category.

Both have a product-specific latent deviation that no observable explains (log sd 0.10 and
0.08), so no method can be exact. The method is not tuned to either generator: it was
developed on seeds 3-5 and its figures are quoted for seeds 1 and 2; its defaults, kernels and
curve settings are those documented in docs/valuation.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from exchange.catalogue import Exclusivity, Scope, Territory, UpdateFrequency
from exchange.pricing import (
    ProductRecord,
    TargetSpec,
    TermsRecord,
    TradeRecord,
    prepare_market,
    value,
)

CATEGORIES = ("transport", "finance", "health", "energy", "retail", "geospatial",
              "public_services", "other")  # fmt: skip
REGIONS = tuple(f"R{i:02d}" for i in range(12))
FREQUENCIES = (UpdateFrequency.REAL_TIME, UpdateFrequency.DAILY, UpdateFrequency.MONTHLY,
               UpdateFrequency.STATIC)  # fmt: skip
DURATIONS = (1, 3, 6, 12, 24, 36)
START = dt.date(2024, 1, 1)
MONTHS = 36
END = dt.date(2026, 12, 31)
DAYS = (END - START).days


@dataclass(frozen=True, slots=True)
class World:
    """A generated market: products, trades, and the true value of a target."""

    products: list[ProductRecord]
    trades: list[TradeRecord]
    traded: set[str]
    true_value: Callable[[ProductRecord, TermsRecord, dt.date], float]
    latent: dict[str, float]  # each product's unexplainable log deviation


def _draw_terms(rng: np.random.Generator) -> TermsRecord:
    return TermsRecord(
        Exclusivity.EXCLUSIVE if rng.random() < 0.15 else Exclusivity.NON_EXCLUSIVE,
        int(rng.choice(DURATIONS)),
        (Scope.INTERNAL, Scope.COMMERCIAL, Scope.RESALE)[rng.choice(3, p=(0.5, 0.35, 0.15))],
        Territory.CROSS_BORDER if rng.random() < 0.2 else Territory.DOMESTIC,
    )


def _draw_products(rng: np.random.Generator, count: int, records_log10: tuple[float, float],
                   quality_beta: tuple[float, float]) -> list[dict]:  # fmt: skip
    region_weights = rng.dirichlet(np.full(len(REGIONS), 2.0))
    rows = []
    for i in range(count):
        q0 = rng.beta(*quality_beta)
        quality = np.clip(q0 + rng.normal(0, 0.06, 4), 0.3, 1.0)
        rows.append(
            {
                "product_id": f"P{i:05d}",
                "category": CATEGORIES[rng.integers(len(CATEGORIES))],
                "region": REGIONS[rng.choice(len(REGIONS), p=region_weights)],
                "record_count": int(10 ** rng.uniform(*records_log10)),
                "coverage_months": float(round(math.exp(rng.uniform(0, math.log(120))))),
                "update_frequency": FREQUENCIES[rng.choice(4, p=(0.2, 0.35, 0.25, 0.2))],
                "quality": tuple(float(q) for q in quality),
            }
        )
    return rows


def _month(day: dt.date) -> float:
    return (day - START).days / (DAYS / MONTHS)


TrueValue = Callable[[ProductRecord, TermsRecord, dt.date], float]
Noise = Callable[[ProductRecord, TermsRecord], float]


def _trade(
    rng: np.random.Generator,
    products: list[ProductRecord],
    share: float,
    true_value: TrueValue,
    noise: Noise,
) -> tuple[list[TradeRecord], set[str]]:
    """Let ``share`` of the products trade: 1-3 instruments each, listed at a random day,
    trading a heavy-tailed number of times until the end (exclusive ones once or twice)."""
    trades: list[TradeRecord] = []
    chosen = rng.choice(len(products), size=max(1, round(share * len(products))), replace=False)
    traded = set()
    for p in chosen:
        product = products[p]
        traded.add(product.product_id)
        # dict, not set: iteration order must not depend on the process's hash seed.
        instruments = dict.fromkeys(_draw_terms(rng) for _ in range(rng.integers(1, 4)))
        for terms in instruments:
            listed = int(rng.integers(0, DAYS - 60))
            if terms.exclusivity is Exclusivity.EXCLUSIVE:
                count = int(rng.integers(1, 3))
            else:
                count = 1 + int(rng.poisson(math.exp(rng.normal(1.6, 0.9))))
            for day in np.sort(rng.integers(listed, DAYS + 1, size=count)):
                when = START + dt.timedelta(days=int(day))
                price = true_value(product, terms, when) * math.exp(noise(product, terms))
                trades.append(
                    TradeRecord(f"T{len(trades):07d}", product.product_id, terms, price,
                                1 + int(rng.geometric(0.4)), when)
                )  # fmt: skip
    return trades, traded


def interactions_world(seed: int, count: int, share: float) -> World:
    """The multiplicative generator with interactions (see the module docstring)."""
    rng = np.random.default_rng(seed)
    rows = _draw_products(rng, count, (3.0, 8.0), (8.0, 2.0))
    level = {c: rng.normal(math.log(5000), 0.5) for c in CATEGORIES}
    region = {r: rng.normal(0, 0.15) for r in REGIONS}
    trend = {c: rng.uniform(-0.01, 0.02) for c in CATEGORIES}
    phase = {c: rng.uniform(0, 2 * math.pi) for c in CATEGORIES}
    walk = {c: np.concatenate([[0.0], np.cumsum(rng.normal(0, 0.015, MONTHS + 1))])
            for c in CATEGORIES}  # fmt: skip
    latent: dict[str, float] = {}
    products: list[ProductRecord] = []
    reference: dict[str, float] = {}
    for row in rows:
        quality = row["quality"]
        q_mean = sum(quality) / 4
        big_l = math.log(row["record_count"] / 1e5)
        category = row["category"]
        fresh = {UpdateFrequency.REAL_TIME: 0.45, UpdateFrequency.DAILY: 0.25,
                 UpdateFrequency.MONTHLY: 0.08, UpdateFrequency.STATIC: 0.0}  # fmt: skip
        fresh_scale = 1.6 if category in ("finance", "transport", "energy") else 0.7
        log_v = (
            level[category] + region[row["region"]] + 0.42 * big_l - 0.02 * big_l**2
            + 1.4 * math.log(q_mean)
            + (0.8 * (quality[1] - 0.85) if category in ("finance", "health") else 0.0)
            + fresh[row["update_frequency"]] * fresh_scale
            + 0.25 * math.log(1 + row["coverage_months"] / 12)
        )  # fmt: skip
        latent[row["product_id"]] = float(rng.normal(0, 0.10))
        reference[row["product_id"]] = math.exp(log_v + latent[row["product_id"]])
        cost = reference[row["product_id"]] * math.exp(rng.normal(math.log(0.5), 0.5))
        products.append(
            ProductRecord(row["product_id"], category, row["region"], row["record_count"],
                          row["coverage_months"], row["update_frequency"], *quality, cost)
        )  # fmt: skip

    def index(category: str, day: dt.date) -> float:
        m = _month(day)
        step = walk[category][min(int(m), MONTHS)]
        cycle = 0.04 * math.sin(2 * math.pi * m / 12 + phase[category])
        return math.exp(trend[category] * m + cycle + step)

    def true_value(product: ProductRecord, terms: TermsRecord, day: dt.date) -> float:
        q_mean = sum(product.quality()) / 4
        multiplier = (terms.duration_months / 12) ** 0.55
        if terms.exclusivity is Exclusivity.EXCLUSIVE:
            multiplier *= 1.8 + 0.6 * (q_mean - 0.8) / 0.2
        if terms.scope is Scope.COMMERCIAL:
            multiplier *= 1.45
        elif terms.scope is Scope.RESALE:
            multiplier *= 2.6 if product.category == "retail" else 2.2
        if terms.territory is Territory.CROSS_BORDER:
            multiplier *= 1.4 if product.category == "finance" else 1.15
        return reference[product.product_id] * multiplier * index(product.category, day)

    def noise(product: ProductRecord, terms: TermsRecord) -> float:
        sd = 0.06 + 0.10 * (terms.exclusivity is Exclusivity.EXCLUSIVE)
        sd += 0.05 * max(0.0, 5 - math.log10(product.record_count))
        return float(rng.normal(0, sd))

    trades, traded = _trade(rng, products, share, true_value, noise)
    return World(products, trades, traded, true_value, latent)


def additive_world(seed: int, count: int, share: float) -> World:
    """The additive generator with thresholds and heavy tails (see the module docstring)."""
    rng = np.random.default_rng(seed + 10_000)
    rows = _draw_products(rng, count, (2.0, 9.0), (5.0, 2.0))
    base = {c: rng.uniform(500, 4000) for c in CATEGORIES}
    per_scale = {c: rng.uniform(20, 120) for c in CATEGORIES}
    region = {r: rng.uniform(-300, 300) for r in REGIONS}
    jump_category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    trend = {c: rng.uniform(-0.005, 0.015) for c in CATEGORIES}
    noise_scale = {c: rng.uniform(0.5, 1.5) for c in CATEGORIES}
    products: list[ProductRecord] = []
    reference: dict[str, float] = {}
    latent: dict[str, float] = {}
    for row in rows:
        quality = row["quality"]
        q_mean = sum(quality) / 4
        category = row["category"]
        realtime = row["update_frequency"] is UpdateFrequency.REAL_TIME
        v = base[category] + per_scale[category] * row["record_count"] ** 0.3
        v += 4000 * max(0.0, q_mean - 0.7) * (2.0 if realtime else 1.0)
        v += region[row["region"]]
        if q_mean < 0.6:
            v *= 0.5
        if row["coverage_months"] > 60:
            v *= 1.2
        latent[row["product_id"]] = float(rng.normal(0, 0.08))
        v = max(v, 50.0) * math.exp(latent[row["product_id"]])
        reference[row["product_id"]] = v
        # Cost: a fixed build cost plus collection that grows with scale; blind to quality,
        # freshness, region and the market's category levels.
        cost = 300 + 8 * row["record_count"] ** 0.35
        products.append(
            ProductRecord(row["product_id"], category, row["region"], row["record_count"],
                          row["coverage_months"], row["update_frequency"], *quality, cost)
        )  # fmt: skip

    def index(category: str, day: dt.date) -> float:
        m = _month(day)
        jump = 1.25 if category == jump_category and m >= 20 else 1.0
        return (1 + trend[category] * m) * jump

    def true_value(product: ProductRecord, terms: TermsRecord, day: dt.date) -> float:
        v = reference[product.product_id]
        price = v * (1 + 0.08 * (min(terms.duration_months, 36) - 12) / 12)
        if terms.exclusivity is Exclusivity.EXCLUSIVE:
            price += 1.5 * v + 2000
        if terms.scope is Scope.COMMERCIAL:
            price += 0.4 * v + 500
        elif terms.scope is Scope.RESALE:
            price += 1.2 * v + 500
        if terms.territory is Territory.CROSS_BORDER:
            price *= 1.25
        return max(price, 10.0) * index(product.category, day)

    def noise(product: ProductRecord, terms: TermsRecord) -> float:
        return float(0.08 * noise_scale[product.category] * rng.standard_t(3))

    trades, traded = _trade(rng, products, share, true_value, noise)
    return World(products, trades, traded, true_value, latent)


GENERATORS = {"interactions": interactions_world, "additive": additive_world}


def _metrics(estimates: list[float], truths: list[float],
             ranges: list[tuple[float, float]] | None) -> dict[str, float]:  # fmt: skip
    ratio = np.array(estimates) / np.array(truths)
    error = np.abs(ratio - 1)
    median_ratio = float(np.median(ratio))
    result = {
        "mdape": 100 * float(np.median(error)),
        "within10": 100 * float(np.mean(error <= 0.10)),
        "within20": 100 * float(np.mean(error <= 0.20)),
        "median_ratio": median_ratio,
        "cod": 100 * float(np.mean(np.abs(ratio - median_ratio))) / median_ratio,
        "coverage": float("nan"),
    }
    if ranges is not None:
        inside = [low <= t <= high for (low, high), t in zip(ranges, truths, strict=True)]
        result["coverage"] = 100 * float(np.mean(inside))
    return result


def accuracy(generator: str, seed: int, products: int, share: float, targets: int) -> dict:
    world = GENERATORS[generator](seed, products, share)
    rng = np.random.default_rng(seed + 7)
    started = time.perf_counter()
    market = prepare_market(world.products, world.trades, as_of=END)
    prepare_s = time.perf_counter() - started
    untraded = [p for p in world.products if p.product_id not in world.traded]
    sample = [untraded[i] for i in rng.choice(len(untraded), min(targets, len(untraded)),
                                                replace=False)]  # fmt: skip
    by_category: dict[str, list[float]] = {}
    for trade in world.trades:
        category = market.product(trade.product_id).category  # type: ignore[union-attr]
        by_category.setdefault(category, []).append(trade.price)
    naive_of = {c: statistics.median(prices) for c, prices in by_category.items()}
    overall = statistics.median(t.price for t in world.trades)
    truths, market_values, ranges, costs, naive = [], [], [], [], []
    fallbacks = 0
    for product in sample:
        terms = _draw_terms(rng)
        report = value(market, TargetSpec(product, terms, END))
        truths.append(world.true_value(product, terms, END))
        market_values.append(report.value)
        ranges.append((report.low, report.high))
        costs.append(max(report.cost.value, 1e-9))
        naive.append(naive_of.get(product.category, overall))
        fallbacks += report.method != "market"
    return {
        "generator": generator,
        "share": share,
        "trades": len(world.trades),
        "targets": len(sample),
        "fallback_pct": 100 * fallbacks / len(sample),
        "prepare_s": prepare_s,
        "market": _metrics(market_values, truths, ranges),
        "cost": _metrics(costs, truths, None),
        "naive": _metrics(naive, truths, None),
        "estimates": {e.name: (e.value, e.source) for e in market.calibration.estimates},
    }


def speed(seed: int, products: int, trades_wanted: int, runs: int) -> dict:
    """Median milliseconds of one valuation on a market of ``products`` products and about
    ``trades_wanted`` trades, after a warm-up; also the preparation time."""
    share = 0.5
    world = interactions_world(seed, products, share)
    trades = world.trades
    while len(trades) < trades_wanted:  # top up with more trading days, same process
        more = interactions_world(seed + len(trades), products, share).trades
        trades = trades + [
            TradeRecord(f"X{len(trades) + i}", t.product_id, t.terms, t.price, t.quantity,
                        t.traded_at)
            for i, t in enumerate(more)
        ]  # fmt: skip
    trades = trades[:trades_wanted]
    started = time.perf_counter()
    market = prepare_market(world.products, trades, as_of=END)
    prepare_s = time.perf_counter() - started
    rng = np.random.default_rng(seed + 3)
    targets = [TargetSpec(world.products[int(i)], _draw_terms(rng), END)
               for i in rng.integers(0, len(world.products), size=runs)]  # fmt: skip
    for target in targets[:20]:
        value(market, target)  # warm-up
    gc.collect()
    gc.disable()
    timings = []
    try:
        for target in targets:
            started = time.perf_counter()
            value(market, target)
            timings.append(1000 * (time.perf_counter() - started))
    finally:
        gc.enable()
    return {
        "products": len(world.products),
        "trades": len(trades),
        "instruments": len(market.instruments.terms),
        "prepare_s": prepare_s,
        "median_ms": statistics.median(timings),
        "p90_ms": float(np.quantile(timings, 0.9)),
    }


def batch_speed(seed: int, products: int, trades_wanted: int, targets: int) -> dict:
    """Wall-clock seconds of ``dataex value batch`` (a process of its own, reading the CSV
    files, preparing the market and valuing ``targets`` targets on one date) on the speed
    benchmark's market."""
    import csv
    import subprocess
    import tempfile
    from pathlib import Path

    from exchange.pricing.csvio import PRODUCT_COLUMNS, TARGET_REQUIRED_COLUMNS, TRADE_COLUMNS

    world = interactions_world(seed, products, 0.5)
    trades = world.trades
    while len(trades) < trades_wanted:  # the same top-up as ``speed``
        more = interactions_world(seed + len(trades), products, 0.5).trades
        trades = trades + [
            TradeRecord(f"X{len(trades) + i}", t.product_id, t.terms, t.price, t.quantity,
                        t.traded_at)
            for i, t in enumerate(more)
        ]  # fmt: skip
    trades = trades[:trades_wanted]
    rng = np.random.default_rng(seed + 4)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        with (base / "products.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(PRODUCT_COLUMNS)
            for p in world.products:
                writer.writerow([p.product_id, p.category, p.region, p.record_count,
                                 p.coverage_months, p.update_frequency.value, *p.quality(),
                                 p.cost_basis])  # fmt: skip
        with (base / "trades.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(TRADE_COLUMNS)
            for t in trades:
                writer.writerow([t.trade_id, t.product_id, t.terms.exclusivity.value,
                                 t.terms.duration_months, t.terms.scope.value,
                                 t.terms.territory.value, t.price, t.quantity,
                                 t.traded_at.isoformat()])  # fmt: skip
        with (base / "targets.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(TARGET_REQUIRED_COLUMNS)
            for i in rng.integers(0, len(world.products), size=targets):
                t = _draw_terms(rng)
                writer.writerow([world.products[int(i)].product_id, t.exclusivity.value,
                                 t.duration_months, t.scope.value, t.territory.value,
                                 END.isoformat()])  # fmt: skip
        command = [sys.executable, "-c", "from exchange.cli import app; app()", "value",
                   "batch", "--products", str(base / "products.csv"), "--trades",
                   str(base / "trades.csv"), "--targets", str(base / "targets.csv"),
                   "--out", str(base / "valuations.csv")]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - started
    return {"trades": len(trades), "targets": targets, "seconds": seconds}


def _print_accuracy(result: dict) -> None:
    print(
        f"\n{result['generator']}, {result['share']:.0%} traded: {result['trades']:,} trades, "
        f"{result['targets']} untraded targets, {result['fallback_pct']:.1f}% cost fallback, "
        f"prepared in {result['prepare_s']:.2f} s"
    )
    print(f"  {'approach':<8} {'MdAPE%':>7} {'<=10%':>6} {'<=20%':>6} {'ratio':>6} {'COD':>6} "
          f"{'cover%':>7}")  # fmt: skip
    for name in ("market", "cost", "naive"):
        m = result[name]
        cover = "-" if math.isnan(m["coverage"]) else f"{m['coverage']:.1f}"
        print(
            f"  {name:<8} {m['mdape']:>7.2f} {m['within10']:>6.1f} {m['within20']:>6.1f} "
            f"{m['median_ratio']:>6.3f} {m['cod']:>6.1f} {cover:>7}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--generators", nargs="*", default=list(GENERATORS), choices=list(GENERATORS)
    )
    parser.add_argument("--shares", nargs="*", type=float, default=[0.05, 0.20, 0.50])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--targets", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--speed-trades", type=int, default=100_000)
    parser.add_argument("--speed-runs", type=int, default=300)
    parser.add_argument("--show-parameters", action="store_true")
    parser.add_argument("--batch-targets", type=int, default=1_500)
    args = parser.parse_args(argv)
    if not args.speed_only:
        for generator in args.generators:
            for share in args.shares:
                result = accuracy(generator, args.seed, args.products, share, args.targets)
                _print_accuracy(result)
                if args.show_parameters:
                    for name, (used, source) in result["estimates"].items():
                        print(f"    {name:<34} {used:8.3f} {source}")
    s = speed(args.seed, 10_000, args.speed_trades, args.speed_runs)
    print(
        f"\nspeed: {s['products']:,} products, {s['trades']:,} trades, {s['instruments']:,} "
        f"instruments; prepare {s['prepare_s']:.2f} s; one valuation median "
        f"{s['median_ms']:.2f} ms (p90 {s['p90_ms']:.2f} ms) over {args.speed_runs} targets"
    )
    b = batch_speed(args.seed, 10_000, args.speed_trades, args.batch_targets)
    print(
        f"batch: dataex value batch of {b['targets']:,} targets on {b['trades']:,} trades "
        f"(reading the files, preparing, valuing, writing) in {b['seconds']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
