"""The ``dataex`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import os
import sys

import typer

from exchange.cli.collateral import app as collateral_app
from exchange.cli.export import export_command
from exchange.cli.flags import FlagsGroup
from exchange.cli.ledger import app as ledger_app
from exchange.cli.match import match
from exchange.cli.participant import app as participant_app
from exchange.cli.replay import replay_command
from exchange.cli.rfq import app as rfq_app
from exchange.cli.serve import serve
from exchange.cli.simulate import simulate_command, sweep_command
from exchange.cli.value import app as value_app

# As click exits when the reader of its output has gone.
EXIT_CLOSED_PIPE = 1

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
app.add_typer(collateral_app, name="collateral")
app.add_typer(ledger_app, name="ledger")
app.add_typer(participant_app, name="participant")
app.add_typer(rfq_app, name="rfq")
app.add_typer(value_app, name="value")


def main() -> None:
    """Console-script entry point.

    A reader that goes away (``dataex ledger balances | head -1``) ends the command quietly
    with status 1, as click does for output written while the command runs; this covers
    what is still buffered when the command returns, which Python would otherwise report,
    at exit, as an ignored BrokenPipeError.
    """
    try:
        try:
            app()
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # Nothing more can reach the reader: point standard output at nothing, so that the
        # interpreter's own flush at exit finds nothing to complain about.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_CLOSED_PIPE)
