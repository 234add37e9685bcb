"""Agent-based simulation of the exchange: scenarios, agents, runs, reports and sweeps.

    spec = read_scenario("scenarios/liquid.toml")     # the file as read: no seed needed
    scenario = draw_scenario(spec, seed=1)            # its catalogue drawn from the seed
    scenario = load_scenario("scenarios/liquid.toml", seed=1)   # the two in one call
    result = run_simulation(scenario, seed=1)        # through the real sequencer and ledger
    result.journal_hash                               # same scenario and seed: same hash
    summary = summarise(result)                       # JSON-ready measures
    write_report(summary, Path("out"))                # summary.json and index.html
    rows = run_sweep("scenarios/thin.toml", [1, 2, 3], executor=ProcessExecutor(2))

See docs/simulation.md.
"""

from exchange.simulation.clock import VirtualClock
from exchange.simulation.metrics import summarise
from exchange.simulation.report import write_report
from exchange.simulation.runner import (
    RunResult,
    SimulationError,
    conservation_problems,
    run_simulation,
)
from exchange.simulation.scenario import Scenario, ScenarioSpec
from exchange.simulation.scenario_catalogue import draw_scenario, load_scenario, parse_scenario
from exchange.simulation.scenario_reader import ScenarioError, read_scenario
from exchange.simulation.sweep import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    parse_seeds,
    run_sweep,
)

__all__ = [
    "Executor",
    "ProcessExecutor",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "ScenarioSpec",
    "SerialExecutor",
    "SimulationError",
    "VirtualClock",
    "conservation_problems",
    "draw_scenario",
    "load_scenario",
    "parse_scenario",
    "parse_seeds",
    "read_scenario",
    "run_simulation",
    "run_sweep",
    "summarise",
    "write_report",
]
