"""``--help`` of every ``dataex`` command: a flag is shown as a flag, never as taking a
``<bool>`` value, and options that take a value keep their type."""

from __future__ import annotations

from collections.abc import Iterator

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from exchange.cli import app

runner = CliRunner()


def _command_paths(group: TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from _command_paths(command, (*path, name))
        else:
            yield (*path, name)


def test_no_help_shows_a_flag_as_taking_a_value() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    paths = list(_command_paths(root))
    assert ("simulate",) in paths and ("value", "product") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.output, path
        assert "<bool>" not in result.output, (path, result.output)


def test_flags_keep_both_names_and_valued_options_keep_their_type() -> None:
    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "--verify" in result.output and "--no-verify" in result.output
    assert "--progress" in result.output and "--no-progress" in result.output
    assert "<int range>" in result.output  # --seed, --days, --ticks


def test_a_flag_still_parses_as_a_flag(tmp_path) -> None:
    # Blanking the type in help leaves parsing alone: --no-progress takes no value.
    result = runner.invoke(
        app, ["simulate", str(tmp_path / "missing.toml"), "--seed", "1", "--no-progress"]
    )
    assert result.exit_code == 2
    assert "missing.toml" in result.output
    assert "Got unexpected extra argument" not in result.output
