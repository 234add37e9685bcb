"""``dataex serve``: run the exchange's API (and with ``--demo``, a live demo market)."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from exchange.api import create_app
from exchange.api.runtime import Runtime
from exchange.cli.files import EXIT_BAD_INPUT
from exchange.lease import LeaseHeld
from exchange.settings import Settings
from ledger.guards import GuardsMissing
from ledger.schema import shown_url
from ledger.store import Ledger
from ledger.witness import WitnessError, check_witness, default_witness_path

GC_THRESHOLD_OBJECTS = 100_000
# The database does not extend its witness: refused, as a failed verification is.
EXIT_WITNESS_REFUSED = 1
# Another server holds the database's lease, or its append-only guards are missing.
EXIT_REFUSED = 1


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    database: Annotated[
        str | None,
        typer.Option(help="Database URL (default: $DATAEX_DATABASE_URL or sqlite:///dataex.db)"),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo market and keep it trading")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
    witness: Annotated[
        Path | None,
        typer.Option(
            "--witness",
            help="Witness file of the database's checkpoints (default: beside a SQLite file, "
            "NAME.witness for NAME.db; otherwise under ~/.local/share/dataex/witness/)",
        ),
    ] = None,
    no_witness: Annotated[
        bool, typer.Option("--no-witness", help="Keep no witness and check none at start")
    ] = False,
    reports: Annotated[
        Path | None,
        typer.Option(
            "--reports",
            metavar="DIR",
            help="Open the simulation and load-test reports under DIR from the dashboard",
        ),
    ] = None,
) -> None:
    """Serve the exchange: REST and WebSocket under /v1, API docs at /docs, the dashboard at /.

    On start the database is migrated, checked against its witness (it must extend the last
    checkpoint written, or the server refuses to start), the journal verified and the
    exchange rebuilt from it. While it serves, the committed journal and ledger digests are
    appended to the witness a few times a second, and at stop.
    """
    console = Console(soft_wrap=True)  # keys and commands must stay copyable on one line
    try:
        settings = Settings.from_env(database)
    except ValueError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        make_url(settings.database_url)
    except ArgumentError:
        console.print(f"[red]error:[/] not a database URL: {escape(repr(settings.database_url))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if reports is not None:
        if not reports.is_dir():
            console.print(f"[red]error:[/] --reports {escape(str(reports))}: not a directory")
            raise typer.Exit(EXIT_BAD_INPUT)
        settings = replace(settings, reports_dir=str(reports))
    witness_path = _checked_witness(console, settings.database_url, witness, no_witness)
    if witness_path is not None:
        settings = replace(settings, witness_path=str(witness_path))
    traders = []

    def start(runtime: Runtime) -> None:
        # The state rebuilt from the journal lives as long as the process: keep the
        # collector from walking it again and again.
        gc.freeze()
        if not demo:
            return
        from exchange.demo import (
            CONTINUOUS_SYMBOL,
            BackgroundTraders,
            facility_party_keys,
            seed_demo,
        )

        guest = seed_demo(runtime.sequencer)
        party_keys = facility_party_keys(runtime.sequencer)
        traders.append(BackgroundTraders(runtime.sequencer).start())
        base = f"http://{host}:{port}"
        console.print(f"[bold]dataex demo market[/] on {base}  (API docs: {base}/docs)")
        console.print(f"Your key, as [bold]{guest.participant_id}[/] (shown once): {guest.api_key}")
        console.print(
            f"The loan facility's keys (shown once), for the collateral page ({base}/collateral):"
        )
        for participant_id, party_key in party_keys.items():
            console.print(f"  Key of [bold]{participant_id}[/]: {party_key}")
        console.print("The book:")
        console.print(f"  curl {base}/v1/market/{CONTINUOUS_SYMBOL}/book")
        console.print("A first order:")
        console.print(
            f"  curl -X POST {base}/v1/orders -H 'X-API-Key: {guest.api_key}' "
            '-H \'Content-Type: application/json\' -d \'{"client_order_id": "first", '
            f'"symbol": "{CONTINUOUS_SYMBOL}", "side": "buy", "price": "125.00", '
            '"quantity": 2}\''
        )

    def stop(_: Runtime) -> None:
        for trader in traders:
            trader.stop()

    app = create_app(settings, on_start=start, on_stop=stop)
    # Every order leaves long-lived records behind; collect the young generation less often.
    gc.set_threshold(GC_THRESHOLD_OBJECTS, 50, 100)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off")
    shown = shown_url(settings.database_url)
    server = _AnnouncingServer(
        config, lambda: console.print(f"dataex serving {shown} on http://{host}:{port}")
    )
    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(_serve(app, server))
    except (LeaseHeld, GuardsMissing, WitnessError) as error:
        console.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(EXIT_REFUSED) from None
    except SQLAlchemyError as error:  # e.g. an unreachable database
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        console.print(f"[red]error:[/] database {escape(shown)}: {escape(detail)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception as error:  # whatever else stops the start: one line, not a traceback
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        console.print(f"[red]error:[/] cannot serve {escape(shown)}: {escape(detail)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that says so once its listener is bound, and not before."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await super().startup(sockets)
        if self.started:
            self._announce()


async def _serve(app: FastAPI, server: uvicorn.Server) -> None:
    """Open the app (its lifespan: the lease, the database, the exchange), serve until told
    to stop, then close the app.

    The lifespan runs here rather than inside uvicorn, so that a start-up failure is an
    exception of this command, reported in one line, rather than a traceback in the web
    server's log. uvicorn ends its run by raising again the SIGTERM or SIGINT that stopped
    it, with the handlers it found installed: the ones installed here only take note, so
    that the app is still closed (the sequencer stopped, the lease given back) after it.
    """
    async with app.router.lifespan_context(app):
        previous = {sig: signal.signal(sig, _noted) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            await server.serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _noted(_signal: int, _frame: object) -> None:
    """The stop signal uvicorn raises again once it has stopped: already acted on."""


def _checked_witness(
    console: Console, database_url: str, witness: Path | None, no_witness: bool
) -> Path | None:
    """The witness file to keep (None: none), once the database is found to extend it;
    otherwise one line and exit: the server refuses to start.

    The server checks again as it opens the database (``Runtime.open``), but a refusal there
    would surface as a traceback of the web server's start-up. A witness not written yet
    (the first start) needs no check here.
    """
    if witness is not None and no_witness:
        console.print("[red]error:[/] --witness and --no-witness exclude each other")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        path = None if no_witness else witness or default_witness_path(database_url)
        if path is None or not path.exists():
            return path
        state = check_witness(Ledger.open(database_url), path)
    except WitnessError as error:
        console.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(EXIT_WITNESS_REFUSED) from None
    except SQLAlchemyError as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        console.print(f"[red]error:[/] database: {escape(detail)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if state.note is not None:
        console.print(f"note: {escape(state.note)}")
    return path
