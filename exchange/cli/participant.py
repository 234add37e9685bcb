"""``dataex participant``: the operator's console for participants.

``create`` adds a participant and prints its API key (once): for bootstrapping (the first
admin) and for operators at the console. ``list`` shows them; ``disable`` and ``enable``
shut a participant out (cancelling its open orders) and let it back in; ``rotate-key``
prints a new key (the old one stops working at once) and ``revoke-key`` withdraws one
(``exchange/participants.py`` says what each does). Each writes to the journal directly as
the exchange's operator; a server running on the same database picks the change up within
a second. While a server runs, the admin API under ``/v1/participants`` does the same.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from exchange.cli.files import EXIT_BAD_INPUT
from exchange.commands import (
    Command,
    CreateParticipant,
    DisableParticipant,
    EnableParticipant,
    RevokeApiKey,
    RotateApiKey,
)
from exchange.errors import ExchangeError
from exchange.participants import Participant, Role, new_api_key, secret_digest
from exchange.sequencer import Sequencer, SequencerStopped
from exchange.service import OPERATOR, Outcome
from ledger import LedgerError
from ledger.database import database_url
from ledger.guards import require_guards
from ledger.store import Ledger

app = typer.Typer(help="Participants of the exchange.", no_args_is_help=True)


Database = Annotated[
    str | None, typer.Option(help="Database URL (default: $DATAEX_DATABASE_URL)")
]
ParticipantId = Annotated[str, typer.Argument(help="The participant's id, e.g. mm-alpha")]
WhyOption = Annotated[str, typer.Option("--reason", help="Why, for the journal")]
# A page of `list` at most: a console table, not an export.
MAX_LISTED = 10_000


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32] or "participant"


def _error(message: str) -> typer.Exit:
    """Print ``message`` as one error line; the exit to raise."""
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(EXIT_BAD_INPUT)


def _open(database: str | None) -> Sequencer:
    """A sequencer over the exchange's database (its state recovered), started."""
    try:
        ledger = Ledger.open(database_url(database))
        # It writes to the journal: not into a ledger whose rows could be changed after.
        require_guards(ledger.engine)
        return Sequencer(ledger, housekeeping=False).start()
    except (LedgerError, OSError, ValueError) as error:
        raise _error(f"cannot open the exchange's database: {error}") from None
    except SQLAlchemyError as error:  # e.g. a schema that does not exist, an unreachable server
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise _error(f"cannot open the exchange's database: {detail}") from None


def _execute(database: str | None, command: Command) -> Outcome:
    """``command``'s outcome, journalled as the operator's; one error line and exit 2 if
    it is refused or cannot be written."""
    sequencer = _open(database)
    try:
        return sequencer.execute(command)
    except ExchangeError as error:
        raise _error(error.message) from None
    except SequencerStopped as error:  # another writer appended at the same moment
        raise _error(str(error)) from None
    finally:
        sequencer.stop()


def _status(participant: Participant) -> str:
    return "disabled" if participant.disabled else "active"


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Hangzhou Bank'")],
    role: Annotated[list[Role], typer.Option("--role", help="A role; repeat for several")],
    participant_id: Annotated[
        str | None, typer.Option("--id", help="Participant id (default: from the name)")
    ] = None,
    database: Database = None,
) -> None:
    """Create a participant with the given roles and print its API key, shown only once."""
    key = new_api_key()
    participant = _execute(database, CreateParticipant(
        OPERATOR, participant_id or _slug(name), name, [str(r) for r in role], key.key_id,
        secret_digest(key.secret),
    )).result  # fmt: skip
    roles = ", ".join(sorted(participant.roles))
    Console().print(f"created {participant.participant_id} ({roles})\napi key: {key}")


@app.command("list")
def list_participants(
    role: Annotated[Role | None, typer.Option(help="Only those holding this role")] = None,
    disabled: Annotated[
        bool | None, typer.Option("--disabled/--active", help="Only disabled, or only active")
    ] = None,
    database: Database = None,
) -> None:
    """List participants by id: id, status, roles, API key id (none once revoked), name."""
    sequencer = _open(database)
    try:
        with sequencer.lock:
            participants = sequencer.exchange.participants.listed(
                after="", limit=MAX_LISTED, role=role, disabled=disabled
            )
    finally:
        sequencer.stop()
    # Tab-separated, for a person and for `cut`: printed as is, not through rich.
    for participant in participants:
        roles = ",".join(sorted(participant.roles))
        typer.echo(
            f"{participant.participant_id}\t{_status(participant)}\t{roles}\t"
            f"{participant.key_id or '-'}\t{participant.name}"
        )
    if len(participants) == MAX_LISTED:
        Console(stderr=True).print(f"(the first {MAX_LISTED} by id; narrow with --role)")


@app.command("disable")
def disable(
    participant_id: ParticipantId, reason: WhyOption = "", database: Database = None
) -> None:
    """Disable a participant: its key stops working, it can no longer act, and its open
    orders are cancelled. Its cash and licences stay."""
    participant, cancelled = _execute(
        database, DisableParticipant(OPERATOR, participant_id, reason)
    ).result
    Console().print(
        f"{participant.participant_id} is disabled; {len(cancelled)} open orders cancelled"
    )


@app.command("enable")
def enable(
    participant_id: ParticipantId, reason: WhyOption = "", database: Database = None
) -> None:
    """Let a disabled participant back in (its cancelled orders stay cancelled)."""
    participant = _execute(database, EnableParticipant(OPERATOR, participant_id, reason)).result
    Console().print(f"{participant.participant_id} is active")


@app.command("rotate-key")
def rotate_key(participant_id: ParticipantId, database: Database = None) -> None:
    """Issue a new API key and print it, shown only once; the old key stops working at
    once (no grace period)."""
    key = new_api_key()
    _execute(database, RotateApiKey(
        OPERATOR, participant_id, key.key_id, secret_digest(key.secret)
    ))  # fmt: skip
    Console().print(f"new key for {participant_id}; the old one no longer works\napi key: {key}")


@app.command("revoke-key")
def revoke_key(
    participant_id: ParticipantId,
    key_id: Annotated[str, typer.Argument(help="The key's id: the part before the dot")],
    database: Database = None,
) -> None:
    """Revoke a participant's API key: it stops working, and the participant has none
    until ``rotate-key`` issues one."""
    _execute(database, RevokeApiKey(OPERATOR, participant_id, key_id))
    Console().print(f"revoked {key_id}; {participant_id} has no API key now")
