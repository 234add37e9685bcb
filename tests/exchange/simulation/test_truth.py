"""The generating process of true values."""

from __future__ import annotations

import math

from exchange.simulation import parse_scenario
from exchange.simulation.truth import TrueValues, log_reference_value, log_terms_premium
from tests.exchange.simulation.tiny import tiny


def test_the_reference_value_follows_the_documented_formula() -> None:
    scenario = parse_scenario(tiny())
    flow = scenario.products[0]
    truth = scenario.truth
    expected = (
        math.log(100 * truth.category_base["transport"])
        + truth.record_elasticity * math.log(2.0)  # 2 million records
        + truth.quality_elasticity * math.log(0.9)
        + truth.freshness_premium["daily"]
        + truth.noise_sd * flow.noise_z
    )  # twelve months of coverage and an unnamed region add nothing
    assert math.isclose(log_reference_value(flow, scenario), expected)


def test_licence_terms_carry_their_premia() -> None:
    scenario = parse_scenario(tiny())
    truth = scenario.truth
    assert log_terms_premium(scenario.terms["NX12I"], scenario) == 0.0  # the reference terms
    assert math.isclose(
        log_terms_premium(scenario.terms["NX12C"], scenario), truth.scope_premium["commercial"]
    )


def test_values_stay_put_without_volatility_and_move_with_it() -> None:
    still = TrueValues(parse_scenario(tiny({"volatility_per_day = 0.02": ""})), seed=1)
    before = still.value_minor("FLOW.NX12C")
    for _ in range(50):
        still.advance()
    assert still.value_minor("FLOW.NX12C") == before
    moving = TrueValues(parse_scenario(tiny()), seed=1)
    for _ in range(50):
        moving.advance()
    assert moving.value_minor("FLOW.NX12C") != before


def test_the_cost_basis_is_drawn_around_the_value_unless_given() -> None:
    scenario = parse_scenario(tiny({"quality = 0.9": "quality = 0.9\ncost_basis = 123.45"}))
    values = TrueValues(scenario, seed=1)
    assert values.cost_basis_minor["flow"] == 12_345
    geo = scenario.products[1]
    drawn = math.exp(
        log_reference_value(geo, scenario)
        + scenario.truth.cost_bias
        + scenario.truth.cost_sd * geo.cost_z
    )
    assert values.cost_basis_minor[geo.key] == round(drawn)
