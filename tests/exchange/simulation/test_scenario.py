"""Scenario files: the shipped ones load, and every error names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.simulation import (
    ScenarioError,
    draw_scenario,
    load_scenario,
    parse_scenario,
    read_scenario,
)
from tests.exchange.simulation.tiny import tiny

SCENARIOS = Path(__file__).parents[3] / "scenarios"


@pytest.mark.parametrize("name", ["thin", "liquid", "parking"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml", seed=1)
    assert scenario.name == name
    assert scenario.listings and scenario.agents


def test_the_thin_market_has_many_call_auction_instruments() -> None:
    scenario = load_scenario(SCENARIOS / "thin.toml", seed=1)
    assert len(scenario.products) >= 100
    assert {listing.trading_mode for listing in scenario.listings} == {"call_auction"}


def test_the_liquid_market_has_a_few_continuous_instruments() -> None:
    scenario = load_scenario(SCENARIOS / "liquid.toml", seed=1)
    assert len(scenario.listings) <= 6
    assert {listing.trading_mode for listing in scenario.listings} == {"continuous"}


def test_the_parking_scenario_has_a_lender_and_core_data() -> None:
    scenario = load_scenario(SCENARIOS / "parking.toml", seed=1)
    assert any(agent.kind == "lender" for agent in scenario.agents)
    assert any(product.classification == "core" for product in scenario.products)


def test_groups_expand_into_numbered_participants_and_products() -> None:
    scenario = parse_scenario(tiny())
    ids = [p.participant_id for p in scenario.participants]
    assert ids[2:4] == ["buyer-01", "buyer-02"]
    assert [p.key for p in scenario.products] == ["flow", "geo-001", "geo-002", "geo-003"]
    assert [listing.symbol for listing in scenario.listings] == [
        "FLOW.NX12C", "GEO-001.NX12I", "GEO-002.NX12I", "GEO-003.NX12I",
    ]  # fmt: skip


def test_draws_depend_on_the_seed_unless_the_catalogue_seed_fixes_them() -> None:
    first, second = parse_scenario(tiny(), seed=1), parse_scenario(tiny(), seed=2)
    assert first.products != second.products
    fixed = tiny({'name = "tiny"': 'name = "tiny"\ncatalogue_seed = 5'})
    assert parse_scenario(fixed, seed=1).products == parse_scenario(fixed, seed=2).products


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("budget = 40_000.0", "budget = 0", "agents[2].budget: must be positive"),
        ("budget = 40_000.0", "budget = -5.0", "agents[2].budget: must be at least 0"),
        ("activity = 0.3", "activity = 1.5", "agents[2].activity: must be at most 1"),
        ("ticks_per_day = 30", "ticks_per_day = 0", "scenario.ticks_per_day: must be positive"),
        ("ticks_per_day = 30", "tick_per_day = 30", "scenario.tick_per_day: is not a known field"),
        ('category = "transport"', 'category = "space"', "products[0].category: 'space' is not"),
        ("quality = 0.9", "quality = 1.2", "products[0].quality: must be at most 1"),
        ("record_count = [10_000, 1_000_000]", "record_count = [10_000]",
         "products[1].record_count: a range is [low, high]"),
        ('provider = "prov"', 'provider = "nobody"', "products[0].provider: no participant"),
        ('terms = "NX12C"', 'terms = "NX99"', "listings[0].terms[0]: no licence terms 'NX99'"),
        ('roles = ["market_maker"]', 'roles = ["provider"]',
         "agents[1].participants: 'mm' needs one of the roles"),
        ('kind = "noise"', 'kind = "whale"', "agents[3].kind: 'whale' is not one of"),
        ('units = 100 }', 'units = 100_000 }', "agents[4].pledged[0].units: must be at most"),
        ('symbol = "FLOW.NX12C"', 'symbol = "GEO-001.NX12I2"',
         "agents[4].pledged[0].symbol: no listed instrument"),
        ("initial_units = 1\n", "initial_units = 9\n",
         "agents[2].initial_units: must be at most 4"),
        ('id = "mm"', 'id = "sim-admin"', "participants[1].id: 'sim-admin' is reserved"),
        ('[terms.NX12I]', '[terms.nx12i]', "terms.nx12i: a terms id must match"),
    ],
)  # fmt: skip
def test_errors_name_the_file_and_the_field(old: str, new: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(tiny({old: new}), source="scenario.toml")
    assert str(caught.value).startswith(f"scenario.toml: {message}"), str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("ticks_per_day = 30", "ticks_per_day = 30.0",
         "scenario.ticks_per_day: must be a whole number, got 30.0"),
        ("budget = 40_000.0", 'budget = "40000"',
         "agents[2].budget: must be a number, got '40000'"),
        ("[market]\n", "[market]\nclose_daily = 1\n",
         "market.close_daily: must be true or false, got 1"),
        ('name = "tiny"', "name = 7",
         "scenario.name: must be non-empty text of at most 200 characters"),
        ("record_count = [10_000, 1_000_000]", 'record_count = [10_000, "many"]',
         "products[1].record_count[1]: must be a number, got 'many'"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_not_coerced(old: str, new: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(tiny({old: new}), source="scenario.toml")
    assert str(caught.value) == f"scenario.toml: {message}"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "tiny"\n', "", "scenario.name: is required"),
        ('provider = "prov"\ncategory', "category", "products[0].provider: is required"),
        ('kind = "lender"\n', "", "agents[4].kind: is required"),
        ("quality = 0.9", "quality = { completeness = 0.9 }",
         "products[0].quality.accuracy: is required"),
    ],
)  # fmt: skip
def test_a_missing_field_is_named(old: str, new: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(tiny({old: new}), source="scenario.toml")
    assert str(caught.value) == f"scenario.toml: {message}"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[market]\n", "[market]\nclose_dayly = true\n", "market.close_dayly"),
        ("trend_weight = 0.2", "trend_weight = 0.2\nresell = false", "agents[3].resell"),
        ("units = 100 }", "units = 100, unit = 1 }", "agents[4].pledged[0].unit"),
        ("[scenario]", "colour = 1\n[scenario]", "colour"),
    ],
)  # fmt: skip
def test_an_unknown_field_is_named(old: str, new: str, message: str) -> None:
    """A field of another kind of agent is unknown too: a buyer's ``resell`` on a noise
    trader would otherwise be silently ignored."""
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(tiny({old: new}), source="scenario.toml")
    expected = f"scenario.toml: {message}: is not a known field (see docs/simulation.md)"
    assert str(caught.value) == expected


def test_reading_needs_no_seed_and_drawing_gives_the_loaded_scenario(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny())
    spec = read_scenario(path)
    assert [draw.key for draw in spec.product_draws] == ["flow", "geo-001", "geo-002", "geo-003"]
    assert draw_scenario(spec, seed=4) == load_scenario(path, seed=4)


def test_invalid_toml_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match=r"^s\.toml: not valid TOML"):
        parse_scenario("[scenario\nname=1", source="s.toml")


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.toml"):
        load_scenario(tmp_path / "missing.toml")


def test_the_cli_exits_2_with_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(tiny({"budget = 40_000.0": "budget = 0"}))
    outcome = CliRunner().invoke(app, ["simulate", str(path), "--seed", "1"])
    assert outcome.exit_code == 2
    assert f"error: {path}: agents[2].budget: must be positive" in outcome.output
    assert "Traceback" not in outcome.output
