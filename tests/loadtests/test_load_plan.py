"""A load test's parameters: the mix, the rates, and where load may be sent."""

from __future__ import annotations

import pytest

from loadtests.load_plan import LoadPlan, check_loopback


def test_a_role_left_out_of_the_mix_gets_no_users_and_keeps_its_default_rate() -> None:
    plan = LoadPlan.parse("trader=3,viewer=1", "viewer=20")
    assert plan.mix == {"trader": 3.0, "market_maker": 0.0, "viewer": 1.0, "valuer": 0.0}
    assert plan.rates == {"trader": 0.0, "market_maker": 10.0, "viewer": 20.0, "valuer": 1.0}


@pytest.mark.parametrize(
    ("mix", "rates", "message"),
    [
        ("pirate=1", "", "ROLE=NUMBER"),
        ("trader=many", "", "'many' is not a number"),
        ("trader=-1", "", "trader must be in"),
        ("trader=0", "", "at least one role"),
        ("trader=1", "viewer=1e9", "viewer must be in"),
    ],
)
def test_a_mistaken_plan_is_refused_by_name(mix: str, rates: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadPlan.parse(mix, rates)


@pytest.mark.parametrize("host", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80"])
def test_loopback_targets_are_accepted(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize(
    "host", ["http://10.0.0.5:8000", "http://example.com", "http://0.0.0.0:80"]
)
def test_any_other_target_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match=r"must be on 127\.0\.0\.1"):
        check_loopback(host)
