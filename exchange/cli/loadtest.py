"""``dataex loadtest``: load the exchange's API with locust, then check the exchange.

The load tests live in the source tree (``loadtests/``), not in the installed package: the
command runs from a checkout, whose ``loadtests`` it finds next to this package. What it does
is :mod:`loadtests.harness`'s; the figures and checks land in ``--out`` (``report.md``,
``chart.png``, locust's CSV files). Exit status 0 when every check passed, 1 when one failed
(each named on an ``error:`` line), 2 when the test could not run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

import exchange
from exchange.cli.files import EXIT_BAD_INPUT

EXIT_CHECK_FAILED = 1
MAX_USERS = 500
MAX_DURATION_S = 600.0
MAX_SPAWN_RATE = 500.0
MAX_STEPS = 10
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m)?\s*$")


def parse_duration(text: str) -> float:
    """``"60s"``, ``"2m"`` or ``"90"`` (seconds) as seconds; ``ValueError`` otherwise."""
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 60s or 2m")
    seconds = float(found.group(1)) * (60 if found.group(2) == "m" else 1)
    if not 0 < seconds <= MAX_DURATION_S:
        raise ValueError(f"the duration must be more than 0 and at most {MAX_DURATION_S:g} s")
    return seconds


def _source_root() -> Path | None:
    """The checkout this package runs from, if it has the load tests."""
    root = Path(exchange.__file__).resolve().parent.parent
    return root if (root / "loadtests" / "locustfile.py").is_file() else None


def loadtest(
    users: Annotated[
        int, typer.Option(min=1, max=MAX_USERS, help="Users at full load (each phase)")
    ] = 50,
    spawn_rate: Annotated[
        float, typer.Option(min=0.1, max=MAX_SPAWN_RATE, help="Users started per second")
    ] = 25.0,
    duration: Annotated[
        str,
        typer.Option(
            help="Time under load, e.g. 60s or 2m: 15% bare, 15% order edge, 35% orders, 35% mixed"
        ),
    ] = "60s",
    steps: Annotated[
        int, typer.Option(min=1, max=MAX_STEPS, help="Steps of users in the mixed phase")
    ] = 5,
    database: Annotated[
        str | None,
        typer.Option(
            help="Database URL (default: SQLite in a temporary directory; a "
            "PostgreSQL URL gets a new schema, dropped afterwards)"
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the results")] = Path("loadtest-results"),
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
) -> None:
    """Load the exchange's API on 127.0.0.1 with locust (bare endpoint, order flow, then a
    mix of traders, market makers, viewers and valuers), then check the exchange: the ledger
    verifies, cash and licences are conserved, no 5xx, every acknowledged order journalled."""
    console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    root = _source_root()
    if root is None:
        err.print(
            "[red]error:[/] dataex loadtest runs from a source checkout (loadtests/ "
            "next to the exchange package was not found)"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        duration_s = parse_duration(duration)
    except ValueError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    # The load tests are not part of the installed package: import them from the checkout.
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from loadtests.harness import LoadTestError, run_loadtest

    try:
        outcome = run_loadtest(
            root,
            users=users,
            spawn_rate=spawn_rate,
            duration_s=duration_s,
            steps=steps,
            out=out,
            database=database,
            mix=mix,
            rates=rates,
            profile_server=profile_server,
            echo=lambda line: console.print(line, markup=False, highlight=False),
        )
    except (LoadTestError, ValueError, OSError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
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
    console.print(f"report: {out / 'report.md'}, chart: {out / 'chart.png'}")
    if not outcome.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)
