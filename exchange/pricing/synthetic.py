"""Synthetic markets with known true values, for measuring the valuation (``study.py``).

``generate_market(seed, products, traded_share, targets)`` draws a universe of products from
``seed`` alone (the same products at every traded share), lets ``traded_share`` of them trade,
and draws targets (products, traded or not, under random licence terms) whose true value per
licence on the market's last day is known. The generator is deliberately *not* of the
valuation's own form, so that no setting of the method can be exact:

- **category-specific scale effects**: value grows with record count with an elasticity of
  its own per category (0.25 to 0.60), and concavely (a small quadratic term in log records);
- **quality**: 1.2 x log of the mean quality score, and for finance and health an extra
  premium on accuracy;
- **frequency effects**: real-time, daily and monthly premia over static data, doubled in
  fast-moving categories (finance, transport, energy) and halved in the others;
- **regional effects**: a level per region (log sd 0.15);
- **coverage**: 0.2 x log(1 + coverage in years), a saturating effect;
- **licence terms**: duration as a power law (months / 12)^0.6, exclusivity x1.9 (more for
  high-quality data), commercial x1.5, resale x2.3 (x2.6 in retail), cross-border x1.2
  (x1.4 in finance);
- **drift**: each category's level moves by a trend of -1% to +2% a month, a yearly cycle of
  +-3% and a random walk of 1.5% a month over the 36 months of data;
- **a latent product effect** (log sd 0.10) that no observable explains;
- **trade noise**: log-normal, sd 0.07 (0.15 for exclusive licences, which trade by sealed
  bid), more for small datasets;
- **non-arm's-length outliers**: 4% of trades are related-party transfers at a discount
  (x exp(N(-0.7, 0.25)), about half price) and 1% are distressed or bundled sales at a
  premium (x exp(N(0.6, 0.2))); they are in the trades but not in the true value.

Cost basis = the product's reference value x exp(N(log 0.5, 0.4)): replacement cost is about
half of what use is worth, loosely. Income inputs are drawn for 30% of targets: five yearly
cash flows whose present value at 10% is the true value x exp(N(0, 0.30)) (an honest but noisy
forecast). A pure function of its arguments: the same arguments give the same market.

**Confidential trading** (``confidential_share``, docs/confidential.md): owners will not
trade their most valuable data in public, so the traded products are ranked by their value
with noise (log value + N(0, 0.5)) and, from the top, each trades only in confidence until
at least ``confidential_share`` of the trades are confidential. Each confidential trade
carries its seller (the product's provider: one of products / 20, drawn from the seed, so
that a seller has several products) and its publication under the exchange's default policy
(``exchange.publication``): a product traded only in confidence has no order-book trades,
so every such trade is illiquid and waits two days, or 28 if large in scale (a notional of
500,000 CNY), when its price is published only as a band. The selection draws from a stream
of its own: the public trades are the same trades whatever the share, less those taken.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from exchange.catalogue import Exclusivity, Scope, Territory, UpdateFrequency
from exchange.pricing.records import (
    IncomeInputs,
    ProductRecord,
    TargetSpec,
    TermsRecord,
    TradeRecord,
)
from exchange.publication import DAY_NS, DEFAULT_POLICY, deferral_ns, price_band

__all__ = [
    "MAX_SYNTHETIC_PRODUCTS",
    "ConfidentialRecord",
    "SyntheticMarket",
    "SyntheticTarget",
    "generate_market",
    "synthetic_problem",
]

CATEGORIES = ("transport", "finance", "health", "energy", "retail", "geospatial",
              "public_services", "other")  # fmt: skip
REGIONS = tuple(f"R{i:02d}" for i in range(12))
FREQUENCIES = (UpdateFrequency.REAL_TIME, UpdateFrequency.DAILY, UpdateFrequency.MONTHLY,
               UpdateFrequency.STATIC)  # fmt: skip
FREQUENCY_LOG_PREMIUM = {UpdateFrequency.REAL_TIME: 0.40, UpdateFrequency.DAILY: 0.22,
                         UpdateFrequency.MONTHLY: 0.08, UpdateFrequency.STATIC: 0.0}  # fmt: skip
FAST_CATEGORIES = frozenset({"finance", "transport", "energy"})
DURATIONS = (1, 3, 6, 12, 24, 36)
START = dt.date(2024, 1, 1)
MONTHS = 36
END = dt.date(2026, 12, 31)
DAYS = (END - START).days
# Limits: a study is a measurement, not a load test.
MAX_SYNTHETIC_PRODUCTS = 200_000
MAX_SYNTHETIC_TARGETS = 100_000
# Non-arm's-length trades: (share of trades, mean log multiple, sd of the log multiple).
RELATED_PARTY = (0.04, -0.7, 0.25)
DISTRESSED_PREMIUM = (0.01, 0.6, 0.2)
INCOME_SHARE = 0.3
INCOME_DISCOUNT_RATE = 0.10
INCOME_YEARS = 5
# Confidential trading: the noise in the ranking of products by value (log sd), and the
# products per provider (each product's seller).
CONFIDENTIAL_RANK_LOG_SD = 0.5
PRODUCTS_PER_PROVIDER = 20


@dataclass(frozen=True, slots=True)
class SyntheticTarget:
    """A target to value and its true value per licence on its date."""

    target: TargetSpec
    true_value: float
    traded: bool


@dataclass(frozen=True, slots=True)
class ConfidentialRecord:
    """A trade made in confidence: its seller, the day it is published (by the default
    policy) and, for a large-in-scale trade, the band ``[low, high)`` its price is published
    as (currency units; None: published exactly)."""

    trade: TradeRecord
    seller: str
    published_on: dt.date
    band: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class SyntheticMarket:
    """Products, public trades (up to ``as_of``), confidential trades, and targets with
    their true values. ``traded`` holds the products with any trade, ``confidential_products``
    those that trade only in confidence."""

    products: tuple[ProductRecord, ...]
    trades: tuple[TradeRecord, ...]
    traded: frozenset[str]
    as_of: dt.date
    targets: tuple[SyntheticTarget, ...]
    confidential: tuple[ConfidentialRecord, ...] = ()
    confidential_products: frozenset[str] = frozenset()


def synthetic_problem(
    products: int, traded_share: float, targets: int, confidential_share: float = 0.0
) -> str | None:
    """What makes these parameters impossible, or None."""
    if not 1 <= products <= MAX_SYNTHETIC_PRODUCTS:
        return f"products must be in 1..{MAX_SYNTHETIC_PRODUCTS}, not {products}"
    if not (math.isfinite(traded_share) and 0 < traded_share <= 1):
        return f"traded share {traded_share} is not in (0, 1]"
    if not 1 <= targets <= MAX_SYNTHETIC_TARGETS:
        return f"targets must be in 1..{MAX_SYNTHETIC_TARGETS}, not {targets}"
    # Below 1: a market whose every trade is confidential has no public trade at all.
    if not (math.isfinite(confidential_share) and 0 <= confidential_share < 1):
        return f"confidential share {confidential_share} is not in [0, 1)"
    return None


def _draw_terms(rng: np.random.Generator) -> TermsRecord:
    return TermsRecord(
        Exclusivity.EXCLUSIVE if rng.random() < 0.15 else Exclusivity.NON_EXCLUSIVE,
        int(rng.choice(DURATIONS)),
        (Scope.INTERNAL, Scope.COMMERCIAL, Scope.RESALE)[rng.choice(3, p=(0.5, 0.35, 0.15))],
        Territory.CROSS_BORDER if rng.random() < 0.2 else Territory.DOMESTIC,
    )


def _month(day: dt.date) -> float:
    return (day - START).days / (DAYS / MONTHS)


def generate_market(
    seed: int,
    products: int,
    traded_share: float,
    targets: int,
    confidential_share: float = 0.0,
) -> SyntheticMarket:
    """A market of ``products`` products, ``traded_share`` of which trade, at least
    ``confidential_share`` of the trades in confidence, and ``targets`` targets valued on its
    last day. Raises ValueError for impossible parameters. O(products + trades log trades)."""
    problem = synthetic_problem(products, traded_share, targets, confidential_share)
    if problem is not None:
        raise ValueError(problem)
    rng = np.random.default_rng(seed)
    scale_elasticity = {c: rng.uniform(0.25, 0.60) for c in CATEGORIES}
    level = {c: rng.normal(math.log(5000), 0.5) for c in CATEGORIES}
    region_effect = {r: rng.normal(0, 0.15) for r in REGIONS}
    trend = {c: rng.uniform(-0.01, 0.02) for c in CATEGORIES}
    phase = {c: rng.uniform(0, 2 * math.pi) for c in CATEGORIES}
    walk = {c: np.concatenate([[0.0], np.cumsum(rng.normal(0, 0.015, MONTHS + 1))])
            for c in CATEGORIES}  # fmt: skip
    region_weights = rng.dirichlet(np.full(len(REGIONS), 2.0))
    records: list[ProductRecord] = []
    reference: dict[str, float] = {}
    for i in range(products):
        category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        region = REGIONS[int(rng.choice(len(REGIONS), p=region_weights))]
        record_count = int(10 ** rng.uniform(3.0, 8.0))
        coverage = float(round(math.exp(rng.uniform(0, math.log(120)))))
        frequency = FREQUENCIES[int(rng.choice(4, p=(0.2, 0.35, 0.25, 0.2)))]
        quality = np.clip(rng.beta(8.0, 2.0) + rng.normal(0, 0.06, 4), 0.3, 1.0)
        q_mean = float(np.mean(quality))
        big_l = math.log(record_count / 1e5)
        log_value = (
            level[category] + region_effect[region]
            + scale_elasticity[category] * big_l - 0.015 * big_l**2
            + 1.2 * math.log(q_mean)
            + (0.8 * (float(quality[1]) - 0.85) if category in ("finance", "health") else 0.0)
            + FREQUENCY_LOG_PREMIUM[frequency] * (2.0 if category in FAST_CATEGORIES else 0.5)
            + 0.2 * math.log(1 + coverage / 12)
            + rng.normal(0, 0.10)
        )  # fmt: skip
        product_id = f"P{i:06d}"
        reference[product_id] = math.exp(log_value)
        cost = reference[product_id] * math.exp(rng.normal(math.log(0.5), 0.4))
        records.append(
            ProductRecord(product_id, category, region, record_count, coverage, frequency,
                          *(float(q) for q in quality), cost)
        )  # fmt: skip

    def index(category: str, day: dt.date) -> float:
        m = _month(day)
        step = walk[category][min(int(m), MONTHS)]
        cycle = 0.03 * math.sin(2 * math.pi * m / 12 + phase[category])
        return math.exp(trend[category] * m + cycle + step)

    def true_value(product: ProductRecord, terms: TermsRecord, day: dt.date) -> float:
        multiplier = (terms.duration_months / 12) ** 0.6
        if terms.exclusivity is Exclusivity.EXCLUSIVE:
            multiplier *= 1.9 + 0.5 * (sum(product.quality()) / 4 - 0.8) / 0.2
        if terms.scope is Scope.COMMERCIAL:
            multiplier *= 1.5
        elif terms.scope is Scope.RESALE:
            multiplier *= 2.6 if product.category == "retail" else 2.3
        if terms.territory is Territory.CROSS_BORDER:
            multiplier *= 1.4 if product.category == "finance" else 1.2
        return reference[product.product_id] * multiplier * index(product.category, day)

    # The trades and the targets come from their own stream, so that the products are the
    # same at every traded share.
    trade_rng = np.random.default_rng([seed, round(traded_share * 1_000_000)])
    trades, traded = _trade(trade_rng, records, traded_share, true_value)
    picked = trade_rng.choice(products, size=min(targets, products), replace=False)
    chosen: list[SyntheticTarget] = []
    for row in picked:
        product = records[int(row)]
        terms = _draw_terms(trade_rng)
        truth = true_value(product, terms, END)
        income = None
        if trade_rng.random() < INCOME_SHARE:
            forecast = truth * math.exp(trade_rng.normal(0, 0.30))
            annuity = sum((1 + INCOME_DISCOUNT_RATE) ** -t for t in range(1, INCOME_YEARS + 1))
            flows = tuple([forecast / annuity] * INCOME_YEARS)
            income = IncomeInputs(flows, INCOME_DISCOUNT_RATE)
        chosen.append(
            SyntheticTarget(
                TargetSpec(product, terms, END, income=income),
                truth,
                product.product_id in traded,
            )
        )
    confidential: list[ConfidentialRecord] = []
    if confidential_share > 0:
        confidential_rng = np.random.default_rng(
            [seed, round(traded_share * 1_000_000), round(confidential_share * 1_000_000)]
        )
        # Providers from the seed alone, so that a product has the same one at every share.
        providers = max(1, products // PRODUCTS_PER_PROVIDER)
        provider_of = np.random.default_rng([seed, 0, 0, 1]).integers(providers, size=products)
        trades, confidential = _confide(
            confidential_rng, trades, reference, confidential_share,
            {record.product_id: f"S{provider_of[i]:05d}" for i, record in enumerate(records)},
        )  # fmt: skip
    return SyntheticMarket(
        tuple(records), tuple(trades), frozenset(traded), END, tuple(chosen),
        tuple(confidential), frozenset(c.trade.product_id for c in confidential),
    )  # fmt: skip


def _confide(
    rng: np.random.Generator,
    trades: list[TradeRecord],
    reference: dict[str, float],
    share: float,
    seller_of: dict[str, str],
) -> tuple[list[TradeRecord], list[ConfidentialRecord]]:
    """The public trades and the confidential ones: the traded products ranked by log value
    plus noise, and from the top every trade of each product confidential until they are at
    least ``share`` of ``trades``."""
    count_of: dict[str, int] = {}
    for trade in trades:
        count_of[trade.product_id] = count_of.get(trade.product_id, 0) + 1
    score = {p: math.log(reference[p]) + rng.normal(0, CONFIDENTIAL_RANK_LOG_SD) for p in count_of}
    secret: set[str] = set()
    taken = 0
    for product_id in sorted(count_of, key=lambda p: (-score[p], p)):
        if taken >= share * len(trades):
            break
        secret.add(product_id)
        taken += count_of[product_id]
    public = [trade for trade in trades if trade.product_id not in secret]
    confidential = []
    for trade in trades:
        if trade.product_id in secret:
            price_minor = max(1, round(trade.price * 100))
            notional_minor = price_minor * trade.quantity
            # No order-book trades: every confidential trade here is in an illiquid market.
            wait_days = deferral_ns(DEFAULT_POLICY, notional_minor, liquid=False) // DAY_NS
            band = None
            if DEFAULT_POLICY.band_large_in_scale and (
                notional_minor >= DEFAULT_POLICY.large_in_scale_minor
            ):
                low, high = price_band(price_minor, DEFAULT_POLICY.band_significant_figures)
                band = (low / 100, high / 100)
            confidential.append(
                ConfidentialRecord(trade, seller_of[trade.product_id],
                                   trade.traded_at + dt.timedelta(days=wait_days), band)
            )  # fmt: skip
    return public, confidential


def _trade(
    rng: np.random.Generator,
    products: list[ProductRecord],
    share: float,
    true_value: Callable[[ProductRecord, TermsRecord, dt.date], float],
) -> tuple[list[TradeRecord], set[str]]:
    """Let ``share`` of the products trade: 1-3 instruments each, listed on a random day,
    trading a heavy-tailed number of times until the end (exclusive ones once or twice)."""
    trades: list[TradeRecord] = []
    traded: set[str] = set()
    chosen = rng.choice(len(products), size=max(1, round(share * len(products))), replace=False)
    for p in chosen:
        product = products[int(p)]
        traded.add(product.product_id)
        # dict, not set: iteration order must not depend on the process's hash seed.
        instruments = dict.fromkeys(_draw_terms(rng) for _ in range(int(rng.integers(1, 4))))
        small = 0.04 * max(0.0, 5 - math.log10(product.record_count))
        for terms in instruments:
            listed = int(rng.integers(0, DAYS - 60))
            exclusive = terms.exclusivity is Exclusivity.EXCLUSIVE
            if exclusive:
                count = int(rng.integers(1, 3))
            else:
                count = 1 + int(rng.poisson(math.exp(rng.normal(1.6, 0.9))))
            noise_sd = (0.15 if exclusive else 0.07) + small
            for day in np.sort(rng.integers(listed, DAYS + 1, size=count)):
                when = START + dt.timedelta(days=int(day))
                log_noise = rng.normal(0, noise_sd)
                draw = rng.random()
                if draw < RELATED_PARTY[0]:
                    log_noise += rng.normal(RELATED_PARTY[1], RELATED_PARTY[2])
                elif draw < RELATED_PARTY[0] + DISTRESSED_PREMIUM[0]:
                    log_noise += rng.normal(DISTRESSED_PREMIUM[1], DISTRESSED_PREMIUM[2])
                price = true_value(product, terms, when) * math.exp(log_noise)
                trades.append(
                    TradeRecord(f"T{len(trades):07d}", product.product_id, terms, price,
                                1 + int(rng.geometric(0.4)), when)
                )  # fmt: skip
    return trades, traded
