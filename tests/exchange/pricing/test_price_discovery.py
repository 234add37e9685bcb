"""Tape statistics (last, VWAP, OHLCV bars) and book helpers (mid, imbalance)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.pricing import book_imbalance, last_price, mid_price, ohlcv_bars, vwap, vwap_windows
from exchange.pricing.bars import MAX_BARS

TAPE = [(0, 100, 2), (5, 110, 1), (12, 90, 1), (35, 95, 4)]


def test_last_price_is_the_last_print_and_none_for_an_empty_tape():
    assert last_price(TAPE) == 95
    assert last_price([]) is None


def test_vwap_weights_prices_by_quantity_within_a_half_open_window():
    assert vwap(TAPE) == pytest.approx((200 + 110 + 90 + 380) / 8)
    assert vwap(TAPE, start_ns=5, end_ns=35) == pytest.approx(100.0)
    assert vwap(TAPE, start_ns=36) is None


def test_vwap_windows_trail_from_now_inclusive():
    windows = vwap_windows(TAPE, now_ns=35, windows_ns={"short": 23, "long": 100})
    assert windows == {"short": pytest.approx((90 + 380) / 5), "long": pytest.approx(97.5)}


def test_bars_group_prints_by_interval_and_keep_integer_sums_exact():
    bars = ohlcv_bars(TAPE, interval_ns=10)
    assert [(b.start_ns, b.open, b.high, b.low, b.close, b.volume, b.notional) for b in bars] == [
        (0, 100, 110, 100, 110, 3, 310),
        (10, 90, 90, 90, 90, 1, 90),
        (30, 95, 95, 95, 95, 4, 380),
    ]
    assert isinstance(bars[0].notional, int)
    assert bars[0].vwap == pytest.approx(310 / 3)


def test_fill_empty_adds_flat_bars_at_the_previous_close():
    bars = ohlcv_bars(TAPE, interval_ns=10, fill_empty=True)
    assert [b.start_ns for b in bars] == [0, 10, 20, 30]
    assert (bars[2].open, bars[2].close, bars[2].volume, bars[2].vwap) == (90, 90, 0, None)


def test_bars_align_on_the_origin():
    bars = ohlcv_bars(TAPE, interval_ns=10, origin_ns=5)
    assert [b.start_ns for b in bars] == [-5, 5, 35]


def test_bars_refuse_a_bad_interval_unordered_prints_and_too_many_bars():
    with pytest.raises(ValueError, match="positive"):
        ohlcv_bars(TAPE, interval_ns=0)
    with pytest.raises(ValueError, match="comes after"):
        ohlcv_bars([(5, 1, 1), (4, 1, 1)], interval_ns=1)
    with pytest.raises(ValueError, match="bars"):
        ohlcv_bars([(0, 1, 1), (MAX_BARS + 5, 1, 1)], interval_ns=1, fill_empty=True)


prints = st.lists(
    st.tuples(st.integers(0, 1_000), st.integers(1, 500), st.integers(1, 20)), max_size=40
).map(sorted)


@given(prints, st.integers(1, 300))
def test_bars_conserve_volume_and_notional_and_bound_vwap(tape, interval_ns):
    bars = ohlcv_bars(tape, interval_ns)
    assert sum(b.volume for b in bars) == sum(q for _, _, q in tape)
    assert sum(b.notional for b in bars) == sum(p * q for _, p, q in tape)
    for bar in bars:
        assert bar.low <= bar.open <= bar.high and bar.low <= bar.close <= bar.high
        assert bar.low <= bar.vwap <= bar.high


def test_mid_needs_both_sides():
    assert mid_price([(99, 5)], [(101, 1)]) == 100.0
    assert mid_price([], [(101, 1)]) is None


def test_imbalance_is_signed_share_of_depth_over_the_best_levels():
    assert book_imbalance([(99, 3), (98, 1)], [(101, 1)]) == pytest.approx(0.6)
    assert book_imbalance([(99, 1)], [(101, 3)]) == pytest.approx(-0.5)
    assert book_imbalance([], []) is None
    deep_bids = [(100 - i, 1) for i in range(10)]
    assert book_imbalance(deep_bids, [(101, 5)], max_levels=5) == 0.0
