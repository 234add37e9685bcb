"""The load test's verdicts (loadtests/report.py): each target read from one run's figures."""

from __future__ import annotations

import pytest

from loadtests.report import Headline


def _verdicts(headline: Headline) -> dict[str, tuple[str, bool | None]]:
    return {what: (measured, met) for what, measured, _target, met in headline.targets()}


@pytest.mark.parametrize(
    ("orders_per_s", "edge_per_s", "measured", "met"),
    [(800.0, 2_000.0, "0.40", False), (1_100.0, 2_000.0, "0.55", True), (800.0, None, "-", None)],
)
def test_order_submissions_are_judged_against_the_edge_endpoint(
    orders_per_s: float, edge_per_s: float | None, measured: str, met: bool | None
) -> None:
    headline = Headline(users=10, orders_per_s=orders_per_s, orders_p99_ms=12.0,
                        order_commands_per_s=None, bare_per_s=None,
                        edge_per_s=edge_per_s)  # fmt: skip
    assert _verdicts(headline)["order submissions / the order endpoint's edge"] == (measured, met)


def test_the_session_is_judged_against_rest_in_the_same_run() -> None:
    headline = Headline(users=10, orders_per_s=800.0, orders_p99_ms=12.0,
                        order_commands_per_s=None, bare_per_s=None,
                        ws_orders_per_s=4_200.0, ws_orders_p99_ms=19.0)  # fmt: skip
    verdicts = _verdicts(headline)
    assert verdicts["session orders (WS new_order) / REST order submissions"] == ("5.25", True)
    assert verdicts["p99 ack latency of WS new_order"] == ("19 ms", True)
