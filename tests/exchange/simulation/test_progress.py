"""Progress of long runs: ``on_tick`` and ``on_run`` count what is done, and the bars of
``dataex simulate`` and ``dataex sweep`` go to standard error when it is a terminal, never
into what they print on standard output."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.simulation import parse_scenario, run_simulation
from exchange.simulation.sweep import SerialExecutor, run_sweep
from tests.exchange.simulation.tiny import tiny

ROOT = Path(__file__).parents[3]
SHORT = {"days = 2": "days = 1"}
RUN_TIMEOUT_S = 120


def test_on_tick_is_called_after_every_tick(tmp_path: Path) -> None:
    ticks: list[int] = []
    result = run_simulation(
        parse_scenario(tiny(), seed=1),
        1,
        stop_after_ticks=7,
        database_url=f"sqlite:///{tmp_path / 'run.db'}",
        check=False,
        on_tick=ticks.append,
    )
    assert ticks == list(range(1, 8))
    assert result.ticks == 7


def test_on_run_counts_each_run_as_its_row_arrives(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    done: list[int] = []
    rows = run_sweep(
        scenario,
        [5, 6, 7],
        executor=SerialExecutor(),
        stop_after_ticks=3,
        directory=tmp_path / "runs",
        on_run=done.append,
    )
    assert done == [1, 2, 3]
    assert [row["seed"] for row in rows] == [5, 6, 7]


def _with_terminal_stderr(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``dataex ARGS`` with standard error on a pseudo-terminal and standard output on
    a pipe; the exit status, standard output, and what the terminal showed."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "from exchange.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the follower closed: the process has exited
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    return process.wait(timeout=RUN_TIMEOUT_S), out, shown.decode(errors="replace")


@pytest.mark.parametrize(
    ("command", "label", "counted"),
    [
        (["simulate", "SCENARIO", "--seed", "1", "--ticks", "6", "--no-verify"], "simulating",
         "6/6"),
        (["sweep", "SCENARIO", "--seeds", "1-2", "--workers", "1", "--ticks", "3", "--out",
          "sweep.csv"], "sweeping", "2/2"),
    ],
)  # fmt: skip
def test_the_bar_is_on_a_terminals_stderr_and_not_in_stdout(
    command: list[str], label: str, counted: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    args = [str(scenario) if arg == "SCENARIO" else arg for arg in command]
    code, out, shown = _with_terminal_stderr(args, tmp_path)
    assert code == 0, out + shown
    assert label in shown and counted in shown, shown
    assert label not in out
    quiet_code, quiet_out, quiet_shown = _with_terminal_stderr([*args, "--no-progress"], tmp_path)
    assert quiet_code == 0, quiet_out + quiet_shown
    assert label not in quiet_shown
    # Standard output is the same plain text with the bar or without it: the same runs.
    assert "\x1b" not in out
    assert _hash_lines(out) == _hash_lines(quiet_out) != []


def _hash_lines(text: str) -> list[str]:
    """The journal hashes printed: the summary's last line, or each row of the sweep's table
    (whose other columns include the wall time)."""
    return [
        line.split()[-1]
        for line in text.splitlines()
        if line.startswith("journal hash") or line.strip()[:1].isdigit()
    ]


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    result = CliRunner().invoke(
        app, ["simulate", str(scenario), "--seed", "1", "--ticks", "4", "--no-verify"]
    )
    assert result.exit_code == 0, result.output
    assert "simulating" not in result.stderr
    assert "simulating" not in result.stdout
