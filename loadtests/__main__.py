"""``python -m loadtests``: load the exchange's API with locust, then check the exchange.

    python -m loadtests --users 4 --duration 10s          # the same as `run --users 4 ...`
    python -m loadtests run --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m loadtests serve --port 8000                 # the load-test server alone
    python -m loadtests crash --kills 50 --seed 7         # kill -9 under order flow, check
    locust -f "$(python -m loadtests locustfile)" ...     # locust by hand against it

The load tests are not part of the installed ``dataex`` package: they run from a checkout
(``PYTHONPATH=/path/to/checkout`` from another directory). ``run``, the default subcommand, is
:mod:`loadtests.harness`'s; its figures and checks land in ``--out`` (``report.md``,
``chart.png``, locust's CSV files), taken from the working directory like every relative path
given here. Exit status 0 when every check passed, 1 when one failed (each named on an
``error:`` line), 2 when the test could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from exchange.cli.flags import FlagsGroup
from loadtests.crash import crash as crash_command
from loadtests.load_plan import MAX_SPAWN_RATE, MAX_STEPS, MAX_USERS, parse_duration

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
DEFAULT_COMMAND = "run"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


class _RunByDefault(FlagsGroup):
    """A group whose arguments go to ``run`` unless they start with a subcommand's name (or
    ask for the group's help), so that ``python -m loadtests --users 4`` runs a load test."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if first not in self.commands and first not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    name="loadtests",
    help="Load tests of the dataex exchange. With no subcommand, the options go to `run`.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command(DEFAULT_COMMAND)
def run(
    users: Annotated[
        int, typer.Option(min=1, max=MAX_USERS, help="Users at full load (each phase)")
    ] = 50,
    spawn_rate: Annotated[
        float, typer.Option(min=0.1, max=MAX_SPAWN_RATE, help="Users started per second")
    ] = 25.0,
    duration: Annotated[
        str,
        typer.Option(
            help="Time under load, e.g. 60s or 2m: 12% bare, 12% order edge, 26% orders, "
            "26% mixed, 24% ws-orders"
        ),
    ] = "60s",
    steps: Annotated[
        int, typer.Option(min=1, max=MAX_STEPS, help="Steps of users in the mixed phase")
    ] = 5,
    database: Annotated[
        str | None,
        typer.Option(
            help="Database URL (default: SQLite in a temporary directory; a PostgreSQL URL "
            "gets a new schema, dropped afterwards; a relative SQLite file is the working "
            "directory's)"
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Directory for the results, relative to the working directory")
    ] = Path("loadtest-results"),
    mix: Annotated[
        str | None,
        typer.Option(help="User weights, e.g. trader=6,market_maker=1,viewer=2,valuer=1"),
    ] = None,
    rates: Annotated[
        str | None, typer.Option(help="Tasks/s per user by role, 0 for no pause, e.g. viewer=10")
    ] = None,
    profile_server: Annotated[
        bool, typer.Option("--profile-server", help="Run the server under cProfile (slow)")
    ] = False,
    phases: Annotated[
        str | None,
        typer.Option(help="Which phases, in order, e.g. orders,ws-orders (default: all of "
                     "bare, edge, orders, mixed, ws-orders)"),
    ] = None,
) -> None:
    """Load the exchange's API with locust, then check the exchange (the default).

    Five phases on 127.0.0.1: the bare endpoint, the order endpoint's edge, the order flow,
    a mix of traders, market makers, viewers and valuers, then order entry over the
    WebSocket session. Then the checks: the ledger
    verifies, cash and licences are conserved, no 5xx, every acknowledged order journalled.
    """
    console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    try:
        duration_s = parse_duration(duration)
    except ValueError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    # The harness imports the exchange (and SQLAlchemy): not needed for --help or a bad option.
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from loadtests.harness import LoadTestError, run_loadtest

    try:
        outcome = run_loadtest(
            users=users,
            spawn_rate=spawn_rate,
            duration_s=duration_s,
            steps=steps,
            out=out,
            database=database,
            mix=mix,
            rates=rates,
            profile_server=profile_server,
            phases=phases,
            echo=lambda line: console.print(line, markup=False, highlight=False),
        )
    except (LoadTestError, ValueError, OSError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except ArgumentError:
        err.print(f"[red]error:[/] not a database URL: {escape(repr(database))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except SQLAlchemyError as error:  # e.g. an unreachable PostgreSQL server
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        err.print(f"[red]error:[/] database: {escape(detail)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if outcome.headline is not None:
        for what, value, target, met in outcome.headline.targets():
            verdict = {True: "met", False: "not met", None: "not measured"}[met]
            console.print(f"{what}: {value} (target {target}: {verdict})", markup=False)
    for check in outcome.checks:
        if check.ok:
            console.print(f"ok: {check.name} ({check.detail})", markup=False)
    for check in outcome.checks:
        if not check.ok:
            err.print(f"[red]error:[/] {escape(check.name)}: {escape(check.detail)}")
    console.print(
        f"report: {outcome.out / 'report.md'}, chart: {outcome.out / 'chart.png'}",
        markup=False,
        highlight=False,
    )
    if not outcome.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    database: Annotated[
        str | None,
        typer.Option(help="Database URL (default: DATAEX_DATABASE_URL, else dataex.db here)"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level")] = "warning",
    profile: Annotated[
        Path | None,
        typer.Option(help="Write cProfile files of the event loop and the sequencer here"),
    ] = None,
) -> None:
    """Serve the load-test stack alone, for locust run by hand.

    The `dataex serve` stack plus the bare and order-edge endpoints; stop it with Ctrl-C or
    SIGTERM.
    """
    from loadtests.server import serve as serve_stack

    serve_stack(host, port, database, log_level, profile)


app.command("crash")(crash_command)  # also ``python -m loadtests.crash``


@app.command("locustfile")
def locustfile() -> None:
    """Print the locustfile's absolute path, for `locust -f` from any directory."""
    typer.echo(str(LOCUSTFILE))


if __name__ == "__main__":
    app()
