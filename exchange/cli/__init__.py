"""The ``dataex`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from exchange.cli.export import export_command
from exchange.cli.flags import FlagsGroup
from exchange.cli.ledger import app as ledger_app
from exchange.cli.match import match
from exchange.cli.participant import app as participant_app
from exchange.cli.replay import replay_command
from exchange.cli.serve import serve
from exchange.cli.simulate import simulate_command, sweep_command
from exchange.cli.value import app as value_app

app = typer.Typer(
    cls=FlagsGroup,
    name="dataex",
    help="dataex: an exchange and laboratory for data-product licences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("match")(match)
app.command("serve")(serve)
app.command("replay")(replay_command)
app.command("export")(export_command)
app.command("simulate")(simulate_command)
app.command("sweep")(sweep_command)
app.add_typer(ledger_app, name="ledger")
app.add_typer(participant_app, name="participant")
app.add_typer(value_app, name="value")


def main() -> None:
    """Console-script entry point."""
    app()
