"""``python -m loadtests.crash``: kill the server again and again under order flow, then check
that nothing it acknowledged was lost.

    python -m loadtests.crash --kills 50 --seed 7
    python -m loadtests.crash --kills 10 --seed 7 --clients 4 \\
        --database postgresql+psycopg://postgres@127.0.0.1:5432/crash
    python -m loadtests crash --kills 3 --seed 1          # the same, as a subcommand

It starts ``dataex serve`` on 127.0.0.1, builds a market through the API, and drives order
flow from ``--clients`` threads (resting limit orders, IOC orders that trade, amends and
cancels, each submission with a ``client_order_id``, a lost answer retried unchanged) while
it records every acknowledgement; it kills the server with SIGKILL ``--kills`` times at
moments drawn from ``--seed`` (some during start-up) and starts it again on the same
database. Then it checks that every acknowledged order, cancel and amend is in the final
state, that a retried submission returns the original answer, that ``dataex ledger verify``
is ok, that cash and licences are conserved and that ``dataex replay`` reproduces the
settlement (see :mod:`loadtests.crash_run` for the steps and :mod:`loadtests.crash_checks`
for the checks).

The database: by default a new SQLite file in the run's directory; a PostgreSQL URL gets a
new schema, dropped afterwards; another SQLite URL is used as it is and must be new. The run's
directory (``--out``/``crash-seed<S>-<random>``) keeps the server's log and every request
(``requests.jsonl``). The same seed gives the same kill schedule and the same choices of each
client; the interleaving of threads and kills still differs from run to run.

It prints a summary table and each check. Exit status 0 when every check passed; 1 when one
failed or the server did not survive a kill (an ``error:`` line says what was lost); 2 when
the test could not run; 130 when interrupted (the server is killed on every way out).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from loadtests.crash_run import CrashOutcome

__all__ = ["app", "crash"]

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
MAX_KILLS = 1_000
MAX_CLIENTS = 32


def crash(
    kills: Annotated[
        int, typer.Option(min=1, max=MAX_KILLS, help="SIGKILLs of the server, each restarted")
    ] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the kill schedule and the clients")] = 1,
    clients: Annotated[
        int, typer.Option(min=1, max=MAX_CLIENTS, help="Client threads, one trader each")
    ] = 4,
    database: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Database URL (default: a new SQLite file in the run's directory; a "
            "PostgreSQL URL gets a new schema, dropped afterwards)",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Directory for the run's directory, relative to the working one")
    ] = Path("crash-results"),
) -> None:
    """Kill the server (SIGKILL) at seeded moments under order flow, restart it, and check
    that every acknowledged order, cancel and amend survived."""
    console = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    # The run imports the exchange (and SQLAlchemy): not needed for --help or a bad option.
    from sqlalchemy.exc import SQLAlchemyError

    from loadtests.crash_run import CrashTestError, ServerFailed, run_crash_test

    try:
        outcome = run_crash_test(
            kills=kills,
            seed=seed,
            clients=clients,
            out=out,
            database=database,
            echo=lambda line: console.print(line, markup=False),
        )
    except KeyboardInterrupt:
        err.print("[red]error:[/] interrupted; the server was killed")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ServerFailed as error:
        err.print(f"[red]error:[/] {escape(str(error))} (seed {seed})")
        raise typer.Exit(EXIT_CHECK_FAILED) from None
    except (CrashTestError, ValueError, OSError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except SQLAlchemyError as error:  # a URL that is not one, a server that does not answer
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        err.print(f"[red]error:[/] database: {escape(detail)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None

    console.print(_summary(outcome))
    checks = Table(title="checks")
    for column in ("check", "result", "detail"):
        checks.add_column(column, overflow="fold")
    for check in outcome.checks:
        verdict = "[green]ok[/]" if check.ok else "[red]FAILED[/]"
        checks.add_row(escape(check.name), verdict, escape(check.detail))
    console.print(checks)
    for start in outcome.refused_starts:
        console.print(f"note: the server exited on start {start}", markup=False)
    console.print(f"run directory: {outcome.run_dir}", markup=False)
    if not outcome.ok:
        for check in outcome.checks:
            if not check.ok:
                err.print(f"[red]error:[/] {escape(check.name)}: {escape(check.detail)} "
                          f"(seed {seed})")  # fmt: skip
        raise typer.Exit(EXIT_CHECK_FAILED)


def _summary(outcome: CrashOutcome) -> Table:
    """The run in figures: kills, starts, requests, answers, acknowledgements, checks."""
    flow = outcome.flow
    acks = Counter(r.kind for r in flow.requests if r.acknowledged)
    kinds = Counter(kill.kind for kill in outcome.kills)
    late = sum(kill.kind != kill.drawn for kill in outcome.kills)
    by_class = Counter(f"{status // 100}xx" for status in flow.statuses.elements())
    passed = sum(check.ok for check in outcome.checks)
    rows = {
        "database": outcome.database,
        "clients": f"{outcome.clients}",
        "kills (SIGKILL)": f"{len(outcome.kills)} "
        f"({', '.join(f'{n} {kind}' for kind, n in kinds.items())}"
        + (f"; {late} drawn for start-up came after it answered" if late else "")
        + ")",
        "server starts": f"{outcome.starts} ({len(outcome.refused_starts)} exited on start)",
        "requests sent": f"{flow.attempts:,} ({len(flow.requests):,} distinct)",
        "answers": f"{by_class.total():,} "
        f"({', '.join(f'{n:,} {c}' for c, n in sorted(by_class.items()))})",
        "sent with no answer": f"{flow.lost_answers:,} (server killed or down; sent again)",
        "acknowledgements": f"{acks.total():,} ({acks['submit']:,} orders, "
        f"{acks['cancel']:,} cancels, {acks['amend']:,} amends)",
        "submissions retried": f"{len(flow.retries):,} at once, "
        f"{outcome.retried_at_end:,} at the end",
        "checks": f"{passed} passed, {len(outcome.checks) - passed} failed",
        "duration": f"{outcome.duration_s:.1f} s",
    }
    table = Table(title=f"crash test, seed {outcome.seed}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in rows.items():
        table.add_row(what, escape(value))
    return table


app = typer.Typer(
    name="loadtests.crash",
    help=__doc__.split("\n\n")[0] if __doc__ else None,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(crash)


if __name__ == "__main__":
    app()
