"""Parameter grids: ``--set KEY=V1,V2`` settings, their combinations, and the scenario fields
they change before validation."""

from __future__ import annotations

import pytest

from exchange.simulation import ScenarioError, parse_scenario
from exchange.simulation.grid import (
    MAX_GRID_POINTS,
    Setting,
    apply_point,
    grid_points,
    parse_setting,
)
from tests.exchange.simulation.tiny import tiny


def test_a_setting_reads_toml_values_and_bare_words() -> None:
    assert parse_setting("participants.noise.count=10,20,40") == Setting(
        "participants.noise.count", (10, 20, 40)
    )
    assert parse_setting("agents.noise.activity=0.1, 0.2").values == (0.1, 0.2)
    assert parse_setting("market.close_daily=true,false").values == (True, False)
    assert parse_setting('products.flow.region="Zhe,jiang",Shanghai').values == (
        "Zhe,jiang",
        "Shanghai",
    )
    assert parse_setting("products.geo.quality=[0.7, 0.8],0.9").values == ([0.7, 0.8], 0.9)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("participants.noise.count", "not KEY=VALUE"),
        ("participants..count=1", "not a dotted path"),
        ("scenario.days=", "an empty value"),
        ("scenario.days=1,,2", "an empty value"),
        ("scenario.days=1,1", "given twice"),
    ],
)
def test_a_malformed_setting_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_setting(text)


def test_a_grid_is_every_combination_the_last_setting_fastest() -> None:
    points = grid_points([Setting("a", (1, 2)), Setting("b", ("x", "y"))])
    assert points == [
        (("a", 1), ("b", "x")),
        (("a", 1), ("b", "y")),
        (("a", 2), ("b", "x")),
        (("a", 2), ("b", "y")),
    ]
    assert grid_points([]) == [()]
    with pytest.raises(ValueError, match="a is set twice"):
        grid_points([Setting("a", (1,)), Setting("a", (2,))])
    big = Setting("a", tuple(range(MAX_GRID_POINTS + 1)))
    with pytest.raises(ValueError, match="at most"):
        grid_points([big])


def test_entries_of_arrays_are_named_by_id_kind_participants_or_index() -> None:
    document = {
        "scenario": {"days": 2},
        "participants": [{"id": "mm"}, {"id": "noise", "count": 6}],
        "agents": [
            {"kind": "buyer", "participants": "a"},
            {"kind": "buyer", "participants": "b"},
            {"kind": "noise", "participants": "noise"},
        ],
    }
    changed = apply_point(
        document,
        (
            ("scenario.days", 1),
            ("participants.noise.count", 10),
            ("agents.noise.activity", 0.4),
            ("agents.b.activity", 0.2),
            ("agents.0.activity", 0.1),
            ("truth.noise_sd", 0.3),
        ),
    )
    assert changed["scenario"]["days"] == 1
    assert changed["participants"][1]["count"] == 10
    assert [agent.get("activity") for agent in changed["agents"]] == [0.1, 0.2, 0.4]
    assert changed["truth"] == {"noise_sd": 0.3}
    assert document["participants"][1]["count"] == 6, "the original is left as it was"
    for key, problem in [
        ("agents.buyer.activity", "entries 0, 1 of agents: name one by its index"),
        ("agents.nobody.activity", "no entry of agents has the id, kind or participants"),
        ("agents.7.activity", "agents has 3 entries"),
        ("participants.noise", "names an entry of participants, not a field"),
        ("scenario.days.low", "scenario.days is a value, not a table"),
    ]:
        with pytest.raises(ValueError, match=problem):
            apply_point(document, ((key, 1),))


def test_a_setting_changes_the_scenario_and_is_validated_with_it() -> None:
    scenario = parse_scenario(tiny(), settings=(("participants.noise.count", 3),))
    noise = [p for p in scenario.participants if p.group == "noise"]
    assert len(noise) == 3
    with pytest.raises(ScenarioError, match=r"scenario\.toml: agents\[3\]\.activity"):
        parse_scenario(tiny(), settings=(("agents.noise.activity", -1.0),))
    with pytest.raises(ScenarioError, match=r"--set agents\.dealer\.activity: no entry of agents"):
        parse_scenario(tiny(), settings=(("agents.dealer.activity", 0.1),))
