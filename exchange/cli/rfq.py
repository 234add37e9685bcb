"""``dataex rfq``: a participant's console for requests for quote, against a running server.

    dataex rfq request SYMBOL QUANTITY (--to ID ... | --all-eligible) [--within MINUTES]
                       [--disclose] [--client-id ID]
    dataex rfq quote RFQ_ID PRICE [--client-id ID]
    dataex rfq accept RFQ_ID QUOTE_ID
    dataex rfq cancel RFQ_ID
    dataex rfq list [--limit N]
    dataex rfq show RFQ_ID

Each command is one REST call (``/v1/rfqs``, docs/confidential.md) to ``--url`` (default
``$DATAEX_URL``, else http://127.0.0.1:8000) with the API key in ``$DATAEX_API_KEY``, never
on the command line, where other users of the machine could read it. Prices are decimal
strings in currency units, as the API takes them. What the server refuses is one ``error:``
line with its reason and exit status 2; a server that cannot be reached or fails is one line
and exit status 1.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import AbstractContextManager
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from exchange.cli.files import EXIT_BAD_INPUT

app = typer.Typer(help="Requests for quote, from a participant's console.", no_args_is_help=True)

KEY_ENV = "DATAEX_API_KEY"
URL_ENV = "DATAEX_URL"
DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_SERVER = 1
# Limits: a request's life (the exchange takes at most 7 days) and one call's wait.
MAX_WITHIN_MINUTES = 7 * 24 * 60
TIMEOUT_S = 10.0

Url = Annotated[
    str | None, typer.Option("--url", help=f"The server (default: ${URL_ENV}, else {DEFAULT_URL}).")
]


def _open(url: str) -> AbstractContextManager[httpx.Client]:
    """A client of the server at ``url`` (the tests put the app's own client here)."""
    return httpx.Client(base_url=url, timeout=TIMEOUT_S)


def _stop(message: str, status: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def _call(url: str | None, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The JSON answer of ``method path``; a refusal or a failure stops the command."""
    key = os.environ.get(KEY_ENV, "")
    if not key:
        _stop(f"set {KEY_ENV} to your API key", EXIT_BAD_INPUT)
    base = url or os.environ.get(URL_ENV) or DEFAULT_URL
    try:
        with _open(base) as client:
            response = client.request(method, path, json=body, headers={"X-API-Key": key})
    except httpx.HTTPError as error:
        _stop(f"cannot reach {base}: {error}", EXIT_SERVER)
    if response.is_success:
        return response.json()
    try:
        answer = response.json()
        detail = f"{answer['detail']} ({answer['reason']})"
    except (ValueError, KeyError, TypeError):
        # Not the exchange's error shape (a proxy's page, say): its first line.
        detail = (response.text.strip().splitlines() or [response.reason_phrase])[0][:200]
    status = EXIT_BAD_INPUT if response.is_client_error else EXIT_SERVER
    _stop(f"{detail} [HTTP {response.status_code}]", status)


def _rfq_line(rfq: dict[str, Any]) -> str:
    asked = "all eligible" if rfq["all_eligible"] else ", ".join(rfq["responders"] or ["-"])
    requester = rfq["requester"] or "undisclosed"
    return (
        f"rfq {rfq['rfq_id']}: {rfq['quantity']} x {rfq['symbol']}, {rfq['status']}, "
        f"deadline {rfq['deadline']}, requester {requester}, asked {asked}"
    )


@app.command("request")
def request(
    symbol: Annotated[str, typer.Argument(help="The instrument.")],
    quantity: Annotated[int, typer.Argument(help="Licence units.")],
    to: Annotated[
        list[str] | None, typer.Option("--to", metavar="ID", help="A responder (repeatable).")
    ] = None,
    all_eligible: Annotated[
        bool, typer.Option("--all-eligible", help="Ask every participant able to sell.")
    ] = False,
    within: Annotated[
        int, typer.Option(metavar="MINUTES", help="Quotes and acceptance until then.")
    ] = 60,
    disclose: Annotated[bool, typer.Option(help="Show the responders who asks.")] = False,
    client_id: Annotated[
        str | None, typer.Option(metavar="ID", help="Your id for it: a retry answers the original.")
    ] = None,
    url: Url = None,
) -> None:
    """Ask for quotes."""
    if bool(to) == all_eligible:
        _stop("name responders with --to, or ask --all-eligible (one of the two)", EXIT_BAD_INPUT)
    if not 1 <= within <= MAX_WITHIN_MINUTES:
        _stop(f"--within must be 1..{MAX_WITHIN_MINUTES} minutes, not {within}", EXIT_BAD_INPUT)
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=within)
    body: dict[str, Any] = {
        "symbol": symbol, "quantity": quantity, "responders": to or [],
        "all_eligible": all_eligible, "deadline": deadline.isoformat(),
        "disclose_requester": disclose,
    }  # fmt: skip
    if client_id is not None:
        body["client_request_id"] = client_id
    typer.echo(_rfq_line(_call(url, "POST", "/v1/rfqs", body)))


@app.command("quote")
def quote(
    rfq_id: Annotated[int, typer.Argument(help="The request.")],
    price: Annotated[str, typer.Argument(help="Per licence, in currency units (e.g. 1200.00).")],
    client_id: Annotated[
        str | None, typer.Option(metavar="ID", help="Your id for it: a retry answers the original.")
    ] = None,
    url: Url = None,
) -> None:
    """Quote on a request you were asked to (it replaces your earlier quote)."""
    body = {"price": price} | ({} if client_id is None else {"client_quote_id": client_id})
    made = _call(url, "POST", f"/v1/rfqs/{rfq_id}/quotes", body)
    typer.echo(f"quote {made['quote_id']} on rfq {made['rfq_id']}: {made['price']}, "
               f"{made['status']}")  # fmt: skip


@app.command("accept")
def accept(
    rfq_id: Annotated[int, typer.Argument(help="Your request.")],
    quote_id: Annotated[int, typer.Argument(help="The quote to take.")],
    url: Url = None,
) -> None:
    """Accept a quote on your request: it trades and settles at once."""
    trade = _call(url, "POST", f"/v1/rfqs/{rfq_id}/accept", {"quote_id": quote_id})
    typer.echo(
        f"trade {trade['trade_id']}: {trade['buyer']} bought {trade['quantity']} x "
        f"{trade['symbol']} from {trade['seller']} at {trade['price']} (fee {trade['fee']}), "
        f"published {trade['publish_at']}"
    )


@app.command("cancel")
def cancel(rfq_id: Annotated[int, typer.Argument(help="Your request.")], url: Url = None) -> None:
    """Withdraw your open request."""
    typer.echo(_rfq_line(_call(url, "DELETE", f"/v1/rfqs/{rfq_id}")))


@app.command("list")
def list_requests(
    limit: Annotated[int, typer.Option(min=1, max=500, help="The most recent this many.")] = 50,
    url: Url = None,
) -> None:
    """The requests you made or were asked to, newest first."""
    rfqs = _call(url, "GET", f"/v1/rfqs?limit={limit}")
    table = Table(title=f"{len(rfqs)} requests for quote")
    for heading in ("rfq", "symbol", "quantity", "status", "deadline", "requester", "quotes",
                    "best"):  # fmt: skip
        table.add_column(heading, justify="right" if heading in ("rfq", "quantity") else "left",
                         no_wrap=heading in ("symbol", "best"))  # fmt: skip
    for rfq in rfqs:
        live = [q["price"] for q in rfq["quotes"] if q["status"] == "live"]
        best = min(live, key=float) if live else "-"
        table.add_row(str(rfq["rfq_id"]), escape(rfq["symbol"]), str(rfq["quantity"]),
                      rfq["status"], _minutes(rfq["deadline"]), escape(rfq["requester"] or "-"),
                      str(len(rfq["quotes"])), best)  # fmt: skip
    Console().print(table)


def _minutes(moment: str | None) -> str:
    """An ISO 8601 time to the minute, for a table (``show`` gives it whole)."""
    return "-" if moment is None else moment[:16].replace("T", " ")


@app.command("show")
def show(rfq_id: Annotated[int, typer.Argument(help="The request.")], url: Url = None) -> None:
    """One request and the quotes you may see on it."""
    rfq = _call(url, "GET", f"/v1/rfqs/{rfq_id}")
    typer.echo(_rfq_line(rfq))
    for made in rfq["quotes"]:
        typer.echo(f"  quote {made['quote_id']}: {made['price']} by {made['responder']}, "
                   f"{made['status']}")  # fmt: skip
