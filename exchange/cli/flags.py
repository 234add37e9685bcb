"""Help that shows a flag as a flag.

typer 0.29 prints a type beside every option in ``--help``, flags included, so that
``--verify/--no-verify <bool>`` and ``--help <bool>`` read as if they took a value. It prints
an option's metavar instead of its type when it has one: :class:`FlagsGroup`, the class of the
``dataex`` app, gives every flag of every command below it an empty metavar, before any of
them parses its arguments or prints its help. Options that take a value keep their type.
"""

from __future__ import annotations

from collections.abc import Iterable

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

Command = TyperCommand | TyperGroup  # what typer builds for a function and for an app

__all__ = ["FlagsGroup", "show_flags_as_flags"]


class FlagsGroup(TyperGroup):
    """A command group whose commands' flags, and its own, show no type in their help."""

    def get_params(self, ctx: typer.Context) -> list[object]:  # type: ignore[override]
        params = super().get_params(ctx)
        _untyped_flags(params)
        return params  # type: ignore[return-value]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Command | None:  # type: ignore[override]
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, Command):
            show_flags_as_flags(command, ctx)
        return command  # type: ignore[return-value]


def show_flags_as_flags(command: Command, ctx: typer.Context) -> None:
    """Give the flags of ``command`` (its help option too) and of every command below it an
    empty metavar. The help option is the one ``command`` keeps for every context: its names
    come from ``ctx``, which a subcommand's context inherits."""
    _untyped_flags(command.get_params(ctx))
    if isinstance(command, TyperGroup):
        for subcommand in command.commands.values():
            if isinstance(subcommand, Command):
                show_flags_as_flags(subcommand, ctx)


def _untyped_flags(params: Iterable[object]) -> None:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
