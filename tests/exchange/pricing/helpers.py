"""Small synthetic trade histories (products and their trades) for the pricing tests, generated
from the method's own model form (so a test can say what the calibration must recover), plus
record builders."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from exchange.catalogue import Exclusivity, Scope, Territory, UpdateFrequency
from exchange.pricing import FactorParameters, ProductRecord, TermsRecord, TradeRecord
from exchange.pricing.factors import annuity_months

START = dt.date(2025, 1, 1)
END = dt.date(2026, 6, 30)
FREQUENCIES = tuple(UpdateFrequency)
DURATIONS = (1, 3, 6, 12, 24, 36)
# The model the synthetic trades follow; each value differs from the default it shrinks to.
TRUE = FactorParameters(
    volume_elasticity=0.7,
    quality_elasticities=(0.5, 0.8, 0.1, 0.3),
    exclusivity_premium=3.0,
    commercial_premium=1.8,
    resale_premium=3.2,
    cross_border_premium=1.5,
    duration_rate_per_year=0.6,
    duration_elasticity=1.0,
    real_time_premium=2.0,
    daily_premium=1.6,
    monthly_premium=1.2,
    coverage_elasticity=0.35,
)
MONTHLY_GROWTH = {"energy": 0.02, "finance": -0.01}


def product(
    product_id: str = "P1",
    category: str = "energy",
    region: str = "east",
    record_count: int = 1_000_000,
    coverage_months: float = 24,
    frequency: UpdateFrequency = UpdateFrequency.DAILY,
    quality: tuple[float, float, float, float] = (0.9, 0.9, 0.9, 0.9),
    cost_basis: float = 1_000.0,
) -> ProductRecord:
    return ProductRecord(
        product_id, category, region, record_count, coverage_months, frequency, *quality,
        cost_basis,
    )  # fmt: skip


def terms(
    exclusive: bool = False,
    months: int = 12,
    scope: Scope = Scope.INTERNAL,
    cross_border: bool = False,
) -> TermsRecord:
    return TermsRecord(
        Exclusivity.EXCLUSIVE if exclusive else Exclusivity.NON_EXCLUSIVE,
        months,
        scope,
        Territory.CROSS_BORDER if cross_border else Territory.DOMESTIC,
    )


def model_log_price(p: ProductRecord, t: TermsRecord, day: dt.date, params=TRUE) -> float:
    """log price under ``params`` in the method's own form, with a category trend."""
    months = (day.year - START.year) * 12 + day.month - START.month
    value = 5.0 + MONTHLY_GROWTH.get(p.category, 0.0) * months
    value += params.volume_elasticity * math.log(p.record_count)
    betas = params.quality_elasticities
    value += sum(b * math.log(q) for b, q in zip(betas, p.quality(), strict=True))
    value += math.log(params.freshness_premium(p.update_frequency))
    value += params.coverage_elasticity * math.log(p.coverage_months)
    value += math.log(params.scope_premium(t.scope))
    if t.exclusivity is Exclusivity.EXCLUSIVE:
        value += math.log(params.exclusivity_premium)
    if t.territory is Territory.CROSS_BORDER:
        value += math.log(params.cross_border_premium)
    value += params.duration_elasticity * math.log(
        annuity_months(t.duration_months, params.duration_rate_per_year)
    )
    return value


def synthetic_history(
    seed: int, products: int, trades: int, noise_sd: float = 0.05, categories=("energy",)
) -> tuple[list[ProductRecord], list[TradeRecord]]:
    """Products with random attributes and trades priced by ``model_log_price`` + noise."""
    rng = np.random.default_rng(seed)
    records = [
        product(
            f"P{i:04d}",
            category=categories[i % len(categories)],
            region=("east", "west", "north")[int(rng.integers(3))],
            record_count=int(10 ** rng.uniform(3, 8)),
            coverage_months=float(rng.integers(1, 121)),
            frequency=FREQUENCIES[int(rng.integers(4))],
            quality=tuple(float(q) for q in rng.uniform(0.4, 1.0, 4)),
            cost_basis=float(rng.uniform(100, 10_000)),
        )
        for i in range(products)
    ]
    span = (END - START).days
    out = []
    for i in range(trades):
        p = records[int(rng.integers(products))]
        t = terms(
            exclusive=bool(rng.random() < 0.3),
            months=int(rng.choice(DURATIONS)),
            scope=tuple(Scope)[int(rng.integers(3))],
            cross_border=bool(rng.random() < 0.3),
        )
        day = START + dt.timedelta(days=int(rng.integers(span + 1)))
        price = math.exp(model_log_price(p, t, day) + rng.normal(0, noise_sd))
        out.append(TradeRecord(f"T{i:05d}", p.product_id, t, price, int(rng.integers(1, 5)), day))
    return records, out
