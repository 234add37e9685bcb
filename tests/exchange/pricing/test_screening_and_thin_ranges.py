"""Trades not at arm's length are screened out of the fit and the comparables' prices; the
back-test's range scale bounds its quantile from above, so a thin market's range is not
narrowed by a lucky back-test; and the faster comparables search ranks exactly as a full
sort does."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.pricing import TargetSpec, TradeRecord, find_comparables, prepare_market, value
from exchange.pricing.comparables import (
    MAX_INSTRUMENTS_PER_PRODUCT,
    MAX_OWN_INSTRUMENTS,
    MIN_SIMILARITY,
)
from exchange.pricing.interval import COVERAGE, _scale, upper_quantile_rank
from exchange.pricing.market_approach import Z_80
from exchange.pricing.similarity import similarity
from exchange.pricing.study import run_study
from exchange.pricing.synthetic import generate_market
from tests.exchange.pricing.helpers import product, terms

DAY = dt.date(2026, 6, 1)


def _steady_trades(product_id: str, count: int, price: float) -> list[TradeRecord]:
    return [
        TradeRecord(f"{product_id}-{i}", product_id, terms(), price * (1 + 0.01 * (i % 3)), 1,
                    DAY - dt.timedelta(days=i % 90))
        for i in range(count)
    ]  # fmt: skip


def test_a_related_party_trade_is_left_out_of_the_fit_and_the_comparables_price() -> None:
    subject = product("S", record_count=2_000_000)
    others = [product("A", record_count=1_000_000), product("B", record_count=4_000_000)]
    related_party = TradeRecord("S-related", "S", terms(), 2_500.0, 1, DAY)
    trades = [
        *_steady_trades("S", 40, 5_000.0), related_party,
        *_steady_trades("A", 10, 4_000.0), *_steady_trades("B", 10, 6_000.0),
    ]  # fmt: skip
    market = prepare_market([subject, *others], trades, as_of=DAY)
    screened = market.calibration.screened
    assert screened is not None and int(screened.sum()) == 1
    assert market.trades.trade_id[int(np.flatnonzero(screened)[0])] == "S-related"
    assert "1 of 61 trades left out as not at arm's length" in market.calibration.note
    report = value(market, TargetSpec(subject, terms(), DAY))
    own = report.own_trades
    assert len(own) == 1 and own[0].comparable.trades == 40
    # The arm's-length trades ran from 5,000 to 5,100; the half-price one would pull their
    # VWAP below 5,000.
    assert 5_000 <= own[0].comparable.price <= 5_100


def test_steady_trades_are_not_screened() -> None:
    subject, other = product("S"), product("A", record_count=3_000_000)
    market = prepare_market(
        [subject, other], _steady_trades("S", 30, 5_000.0) + _steady_trades("A", 30, 7_000.0),
        as_of=DAY,
    )  # fmt: skip
    assert market.calibration.screened is None


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.sampled_from([0.5, 0.8, 0.9]), st.sampled_from([0.5, 0.75, 0.9]))
def test_the_upper_quantile_rank_is_the_least_that_bounds_the_quantile(
    cases: int, quantile: float, confidence: float
) -> None:
    rank = upper_quantile_rank(cases, quantile, confidence)

    def below(k: int) -> float:  # P(Binomial(cases, quantile) < k)
        return math.fsum(
            math.comb(cases, j) * quantile**j * (1 - quantile) ** (cases - j) for j in range(k)
        )

    assert 1 <= rank <= cases
    assert rank == cases or below(rank) >= confidence - 1e-12
    assert below(rank - 1) < confidence + 1e-12


def test_a_small_back_test_scales_the_range_by_more_than_its_point_estimate() -> None:
    """Forty cases: the raw scale is an order statistic above their 80th percentile, and the
    margin shrinks as the cases grow."""
    margins = []
    for cases in (40, 400):
        errors = np.linspace(0.01, 1.0, cases)
        scale, raw = _scale(errors, np.ones(cases), np.zeros(cases))
        point = float(np.quantile(errors, COVERAGE)) / Z_80
        assert raw > point and scale >= min(raw, 1.0)
        margins.append(raw / point)
    assert margins[0] > margins[1] > 1


def test_the_80_percent_range_covers_the_truth_75_to_88_percent_at_2_percent_traded() -> None:
    rows = run_study(seed=4, products=2_500, shares=[0.02], targets=500)
    reconciled = next(row for row in rows if row.approach == "reconciled")
    assert 75 <= reconciled.coverage_80_pct <= 88, reconciled


_WORLD = generate_market(7, 600, 0.4, 60)
_MARKET = prepare_market(_WORLD.products, _WORLD.trades, as_of=_WORLD.as_of)


def _reference_search(target: TargetSpec, limit: int) -> list[tuple[int, bool]]:
    """Every candidate ranked by a full stable sort, then the subject's own first: what the
    search must return, as (instrument row, own)."""
    snapshot = _MARKET.snapshot(target.as_of)
    rows = snapshot.by_category[_MARKET.category_code(target.product.category)]  # type: ignore[index]
    scores = similarity(
        _MARKET.target_features(target.product, target.terms), _MARKET.features.take(rows)
    )
    own_row = _MARKET.products.row_of[target.product.product_id]
    own: list[tuple[int, bool]] = []
    others: list[tuple[int, bool]] = []
    per_product: dict[int, int] = {}
    for position in np.argsort(-scores, kind="stable"):
        product_row = int(_MARKET.instruments.product[rows[position]])
        if product_row == own_row:
            if not target.exclude_own_trades and len(own) < MAX_OWN_INSTRUMENTS:
                own.append((int(rows[position]), True))
        elif (
            scores[position] >= MIN_SIMILARITY
            and len(others) < limit
            and per_product.get(product_row, 0) < MAX_INSTRUMENTS_PER_PRODUCT
        ):
            per_product[product_row] = per_product.get(product_row, 0) + 1
            others.append((int(rows[position]), False))
    return own + others


@settings(max_examples=40, deadline=None)
@given(st.integers(0, len(_WORLD.targets) - 1), st.integers(3, 40), st.booleans())
def test_the_comparables_search_ranks_as_a_full_sort(which: int, limit: int, exclude: bool) -> None:
    target = _WORLD.targets[which].target
    target = TargetSpec(target.product, target.terms, target.as_of, exclude_own_trades=exclude)
    found, _ = find_comparables(_MARKET, target, limit)
    assert [(c.instrument_row, c.own) for c in found] == _reference_search(target, limit)
    for comparable in found:
        assert math.isclose(
            math.prod(comparable.similarity_parts.values()), comparable.similarity, rel_tol=1e-9
        )
