"""``dataex serve``: run the exchange's API (and with ``--demo``, a live demo market)."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from exchange.api import create_app
from exchange.api.runtime import Runtime
from exchange.cli.files import EXIT_BAD_INPUT
from exchange.settings import Settings
from ledger.store import Ledger
from ledger.witness import WitnessError, check_witness, default_witness_path

GC_THRESHOLD_OBJECTS = 100_000
# The database does not extend its witness: refused, as a failed verification is.
EXIT_WITNESS_REFUSED = 1


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
) -> None:
    """Serve the exchange: REST and WebSocket under /v1, API docs at /docs.

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
        from exchange.demo import CONTINUOUS_SYMBOL, BackgroundTraders, seed_demo

        guest = seed_demo(runtime.sequencer)
        traders.append(BackgroundTraders(runtime.sequencer).start())
        base = f"http://{host}:{port}"
        console.print(f"[bold]dataex demo market[/] on {base}  (API docs: {base}/docs)")
        console.print(f"Your key, as [bold]{guest.participant_id}[/] (shown once): {guest.api_key}")
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
    console.print(f"dataex serving {settings.database_url} on http://{host}:{port}")
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    except Exception as error:  # e.g. an unreachable database: one line, not a traceback
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


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
