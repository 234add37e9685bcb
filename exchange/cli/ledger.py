"""``dataex ledger``: verify the ledger, print digests and proofs, check proofs, show balances,
and rebuild a ledger of an older format from its journal.

Every command takes ``--database URL`` (default ``$DATAEX_DATABASE_URL``, else
``sqlite:///dataex.db``) and runs the ledger's migrations first. A URL where there is no
dataex database (a missing SQLite file, an empty or mistyped PostgreSQL schema) is an error:
these commands read, they create nothing. Errors print one line on stderr and exit with
status 2; a failed verification or proof check exits with status 1. ``restore-guards``
re-creates the append-only triggers that ``verify`` finds missing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import psycopg
import typer
from sqlalchemy.exc import SQLAlchemyError

from exchange.rebuild import rebuild
from exchange.recovery import RecoveryError
from ledger import (
    ConsistencyProof,
    Digest,
    InclusionProof,
    LedgerError,
    ProofError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.database import DATABASE_URL_ENV, database_url
from ledger.guards import GuardsMissing, restore_guards
from ledger.schema import require_ledger
from ledger.store import Ledger
from ledger.verify import verify
from ledger.witness import (
    WitnessError,
    check_checkpoint,
    database_trees,
    default_witness_path,
    extension_problem,
    read_witness,
)

app = typer.Typer(
    help="The settlement ledger and order-flow journal: verify, digests, proofs, balances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_PROBLEM = 1
EXIT_ERROR = 2
MAX_WORKERS = 64

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar=DATABASE_URL_ENV,
        show_envvar=True,
        help="Database URL (default sqlite:///dataex.db).",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


class UsageProblem(Exception):
    """A mistake in the command's input, reported as one line."""


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _reports_errors(command: F) -> F:
    """Turn the errors a user can cause into one line on stderr, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            raise  # the reader went away (``| head``): the command line ends quietly
        except (LedgerError, UsageProblem, OSError) as error:
            _fail(str(error))
        except SQLAlchemyError as error:
            detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            _fail(f"database: {detail}")
        except (sqlite3.Error, psycopg.Error) as error:  # from the drivers' own cursors
            _fail(f"database: {str(error).strip().splitlines()[0]}")

    return wrapper  # type: ignore[return-value]


def _open(database: str | None) -> Ledger:
    return _open_existing(database, run_migrations=True)


def _open_existing(database: str | None, *, run_migrations: bool) -> Ledger:
    """The ledger at ``database``; :class:`~ledger.schema.NoLedger` where there is none."""
    return Ledger.open(require_ledger(database), run_migrations=run_migrations)


def _read_json(source: str, what: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        data = json.loads(text)
    except OSError as error:
        raise UsageProblem(f"{what} {source!r}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise UsageProblem(f"{what} {source!r} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise UsageProblem(f"{what} {source!r} must be a JSON object")
    return data


def _print_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@app.command("verify")
@_reports_errors
def verify_command(
    database: DatabaseOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_WORKERS,
            help="Processes to check with, each a range of rows (default: one per CPU).",
        ),
    ] = os.cpu_count() or 1,
    witness: Annotated[
        Path | None,
        typer.Option(
            "--witness",
            help="Witness file the database must extend (default: the one dataex serve keeps "
            "for this database, if there is one).",
        ),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="A digest saved from 'dataex ledger digest' (JSON file, or - for stdin) that "
            "the ledger must extend.",
        ),
    ] = None,
) -> None:
    """Recompute the hash chains, the Merkle root, every entry's balance and the projections;
    check that the database extends its witness's last checkpoint and a saved digest."""
    ledger = _open(database)
    extension_notes, extension_problems = _extension_checks(ledger, database, witness, against)
    report = verify(ledger, workers=workers)
    if report.digest is None:
        typer.echo("stopped: not every row could be read")
    else:
        typer.echo(
            f"journal: {report.commands} commands; ledger: {report.entries} entries, "
            f"{report.postings} postings, {report.accounts} account balances"
        )
        digest = report.digest
        typer.echo(f"digest: tree_size={digest.tree_size} root={digest.root_hash.hex()}")
    for note in extension_notes:
        typer.echo(note)
    first = report.first_problem
    guards = report.guard_problems
    if first is None and not extension_problems and not guards:
        typer.echo("ok")
        return
    for problem in [*report.problems, *guards, *extension_problems]:
        typer.echo(f"problem: {problem}", err=True)
    if first is not None:
        _fail(f"first bad row: {first}", EXIT_PROBLEM)
    _fail(str(GuardsMissing(guards)) if guards else extension_problems[0], EXIT_PROBLEM)


def _extension_checks(
    ledger: Ledger, database: str | None, witness: Path | None, against: str | None
) -> tuple[list[str], list[str]]:
    """What the witness (``--witness``, else the server's default one if it exists) and the
    auditor's digest (``--against``) say of the database: lines to print, and problems.

    Both are read before the database, so that a checkpoint a running server writes
    meanwhile is never newer than the rows it is checked against.
    """
    if witness is not None and not witness.exists():
        raise UsageProblem(f"no witness at {str(witness)!r}")
    digest = None
    if against is not None:
        try:
            digest = Digest.from_json(_read_json(against, "digest"))
        except ProofError as error:
            raise UsageProblem(f"digest {against!r}: {error}") from None
    path = witness or default_witness_path(database_url(database))
    state = read_witness(path) if path is not None and path.exists() else None
    notes: list[str] = []
    if path is not None and state is None:
        notes.append(f"witness: none at {path}")
    if state is None and digest is None:
        return notes, []
    trees = database_trees(ledger)
    problems: list[str] = []
    if state is not None:
        if state.note is not None:
            notes.append(f"note: {state.note}")
        try:
            check_checkpoint(trees, state)
            if state.checkpoint is None:
                notes.append(f"witness {path}: no checkpoint yet")
            else:
                notes.append(f"witness {path}: the database extends {state.checkpoint}")
        except WitnessError as error:
            problems.append(str(error))
    if digest is not None:
        problem = extension_problem(trees.ledger, digest, "ledger", "entries")
        if problem is None:
            notes.append(
                f"against {against}: the ledger extends the digest of {digest.tree_size} entries"
            )
        else:
            problems.append(f"against {against}: {problem}")
    return notes, problems


@app.command("digest")
@_reports_errors
def digest_command(database: DatabaseOption = None) -> None:
    """Print the digest (tree size and root hash) of the settlement ledger as JSON."""
    _print_json(_open(database).digest().to_json())


@app.command("proof")
@_reports_errors
def proof_command(
    seq: Annotated[int, typer.Argument(help="Sequence number of the entry (1-based).")],
    tree_size: Annotated[
        int | None, typer.Option(help="Prove against this earlier tree size.")
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Print an inclusion proof of entry SEQ, with the entry's canonical bytes, as JSON."""
    ledger = _open(database)
    try:
        proof, entry = ledger.inclusion_proof(seq, tree_size)
    except ProofError as error:
        raise UsageProblem(str(error)) from None
    document = entry.document
    _print_json(
        {
            "type": "inclusion",
            "seq": seq,
            "entry": document.decode(),
            "leaf_hash": leaf_hash(document).hex(),
            **proof.to_json(),
        }
    )


@app.command("consistency")
@_reports_errors
def consistency_command(
    old_size: Annotated[int, typer.Argument(help="Tree size of the older digest.")],
    new_size: Annotated[int | None, typer.Option(help="Tree size of the newer digest.")] = None,
    database: DatabaseOption = None,
) -> None:
    """Print a consistency proof from tree size OLD_SIZE to the current (or --new-size) tree."""
    try:
        proof = _open(database).consistency_proof(old_size, new_size)
    except ProofError as error:
        raise UsageProblem(str(error)) from None
    _print_json({"type": "consistency", **proof.to_json()})


@app.command("check-proof")
@_reports_errors
def check_proof_command(
    proof_file: Annotated[str, typer.Argument(help="Proof JSON file, or - for stdin.")],
    digest_file: Annotated[
        str, typer.Option("--digest", help="Digest JSON the proof must lead to (newer one).")
    ],
    old_digest_file: Annotated[
        str | None, typer.Option("--old-digest", help="Older digest JSON (consistency proofs).")
    ] = None,
) -> None:
    """Check a proof with nothing but the digest(s): no database is read."""
    data = _read_json(proof_file, "proof")
    try:
        digest = Digest.from_json(_read_json(digest_file, "digest"))
        if data.get("type") == "inclusion":
            proof = InclusionProof.from_json(data)
            leaf = _leaf_of(data)
            verify_inclusion(leaf, proof, digest)
            typer.echo(f"ok: entry {proof.leaf_index + 1} is in the tree of {digest.tree_size}")
        elif data.get("type") == "consistency":
            if old_digest_file is None:
                raise UsageProblem("a consistency proof needs --old-digest")
            old = Digest.from_json(_read_json(old_digest_file, "old digest"))
            verify_consistency(ConsistencyProof.from_json(data), old, digest)
            typer.echo(
                f"ok: the tree of {old.tree_size} is a prefix of the tree of {digest.tree_size}"
            )
        else:
            raise UsageProblem("proof 'type' must be 'inclusion' or 'consistency'")
    except ProofError as error:
        _fail(f"proof does not verify: {error}", EXIT_PROBLEM)


def _leaf_of(data: dict[str, Any]) -> bytes:
    # The entry's own bytes are what a client trusts; a stated leaf hash must agree with them.
    entry = data.get("entry")
    stated = data.get("leaf_hash")
    if entry is None and stated is None:
        raise UsageProblem("an inclusion proof needs 'entry' or 'leaf_hash'")
    computed = leaf_hash(entry.encode()) if isinstance(entry, str) else None
    if isinstance(stated, str):
        try:
            stated_bytes = bytes.fromhex(stated)
        except ValueError:
            raise ProofError("'leaf_hash' is not hex") from None
        if computed is not None and computed != stated_bytes:
            raise ProofError("'leaf_hash' is not the hash of 'entry'")
        return stated_bytes
    if computed is None:
        raise UsageProblem("'entry' must be a string")
    return computed


@app.command("balances")
@_reports_errors
def balances_command(
    participant: Annotated[
        str | None, typer.Option("--participant", help="Only this participant's accounts.")
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Print the projected balances: account, asset, balance (integer units)."""
    balances = _open(database).balances(participant)
    if not balances:
        typer.echo("no balances")
        return
    width = max(len(account) for account, _ in balances)
    asset_width = max(len(asset) for _, asset in balances)
    for (account, asset), units in balances.items():
        typer.echo(f"{account:<{width}}  {asset:<{asset_width}}  {units:>15}")


@app.command("restore-guards")
@_reports_errors
def restore_guards_command(database: DatabaseOption = None) -> None:
    """Re-create the append-only triggers the schema defines and the database lacks (or
    holds altered); those in place are left as they are, so running it twice is harmless."""
    restored = restore_guards(_open(database).engine)
    if not restored:
        typer.echo("every append-only guard is in place")
        return
    for name in restored:
        typer.echo(f"restored {name}")
    typer.echo("run 'dataex ledger verify' to check the rows written while they were missing")


@app.command("rebuild")
@_reports_errors
def rebuild_command(
    source: Annotated[
        str, typer.Option("--from", help="URL of the database whose journal is carried over.")
    ],
    target: Annotated[
        str, typer.Option("--to", help="URL of a new, empty database to write.")
    ],
) -> None:
    """Carry a journal into a new database, with the entries this version settles for it.

    For a database written in an older ledger format (such as one that recorded holds for
    open orders as entries): its journal is read unchanged, every command executed again,
    and the journal and its settlement written to the new database, whose journal must hash
    to the same head.
    """
    # The source is read as it is: migrating it would refuse the very format carried over.
    old = _open_existing(source, run_migrations=False)
    if database_url(target) == database_url(source):
        raise UsageProblem("--from and --to name the same database")
    try:
        carried = rebuild(old, Ledger.open(database_url(target)))
    except RecoveryError as error:
        raise UsageProblem(str(error)) from None
    typer.echo(f"carried {carried} journalled commands into {target}")
