"""``dataex serve``: run the exchange's API (and with ``--demo``, a live demo market)."""

from __future__ import annotations

import gc
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from exchange.api import create_app
from exchange.api.runtime import Runtime
from exchange.cli.files import EXIT_BAD_INPUT
from exchange.settings import Settings

GC_THRESHOLD_OBJECTS = 100_000


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
) -> None:
    """Serve the exchange: REST and WebSocket under /v1, API docs at /docs.

    On start the database is migrated, the journal verified and the exchange rebuilt from it.
    """
    console = Console(soft_wrap=True)  # keys and commands must stay copyable on one line
    try:
        settings = Settings.from_env(database)
    except ValueError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
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
