"""``dataex participant create``: add a participant and print its API key (once).

For bootstrapping (the first admin) and for operators at the console. It writes to the
journal directly; a server running on the same database picks the participant up within a
second. While a server runs, ``POST /v1/participants`` with an admin key does the same.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from exchange.cli.files import EXIT_BAD_INPUT
from exchange.commands import CreateParticipant
from exchange.errors import ExchangeError
from exchange.participants import Role, new_api_key, secret_digest
from exchange.sequencer import Sequencer, SequencerStopped
from exchange.service import OPERATOR
from ledger import LedgerError
from ledger.database import database_url
from ledger.guards import require_guards
from ledger.store import Ledger

app = typer.Typer(help="Participants of the exchange.", no_args_is_help=True)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32] or "participant"


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Hangzhou Bank'")],
    role: Annotated[list[Role], typer.Option("--role", help="A role; repeat for several")],
    participant_id: Annotated[
        str | None, typer.Option("--id", help="Participant id (default: from the name)")
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="Database URL (default: $DATAEX_DATABASE_URL)")
    ] = None,
) -> None:
    """Create a participant with the given roles and print its API key, shown only once."""
    err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long
    key = new_api_key()
    command = CreateParticipant(
        OPERATOR, participant_id or _slug(name), name, [str(r) for r in role], key.key_id,
        secret_digest(key.secret),
    )  # fmt: skip
    try:
        ledger = Ledger.open(database_url(database))
        # It writes to the journal: not into a ledger whose rows could be changed after.
        require_guards(ledger.engine)
        sequencer = Sequencer(ledger, housekeeping=False).start()
    except (LedgerError, OSError, ValueError) as error:
        err.print(f"[red]error:[/] cannot open the exchange's database: {escape(str(error))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except SQLAlchemyError as error:  # e.g. a schema that does not exist, an unreachable server
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        err.print(f"[red]error:[/] cannot open the exchange's database: {escape(detail)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        participant = sequencer.execute(command).result
    except ExchangeError as error:
        err.print(f"[red]error:[/] {error.message}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except SequencerStopped as error:  # another writer appended at the same moment
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        sequencer.stop()
    roles = ", ".join(sorted(participant.roles))
    Console().print(f"created {participant.participant_id} ({roles})\napi key: {key}")
