"""The ``dataex`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from exchange.cli.ledger import app as ledger_app
from exchange.cli.match import match
from exchange.cli.participant import app as participant_app
from exchange.cli.serve import serve

app = typer.Typer(
    name="dataex",
    help="dataex: an exchange and laboratory for data-product licences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("match")(match)
app.command("serve")(serve)
app.add_typer(ledger_app, name="ledger")
app.add_typer(participant_app, name="participant")


def main() -> None:
    """Console-script entry point."""
    app()
