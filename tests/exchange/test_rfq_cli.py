"""``dataex rfq`` against the served app: a request, a quote, an acceptance, what each party
sees, and every refusal as one ``error:`` line with the server's reason and exit status 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import pytest
from typer.testing import CliRunner, Result

from exchange.cli import app
from exchange.cli import rfq as rfq_cli
from tests.exchange.api.helpers import BUYERS, PROVIDER, SYMBOL, Api, serve

runner = CliRunner()
BUYER, OTHER = BUYERS


@pytest.fixture
def api(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with serve(database_url) as served:
        served.market()
        monkeypatch.setattr(rfq_cli, "_open", lambda url: nullcontext(served.client))
        yield served


def dataex(api: Api, who: str, *arguments: str) -> Result:
    return runner.invoke(app, ["rfq", *arguments], env={"DATAEX_API_KEY": api.keys[who]})


def refused(result: Result) -> str:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_a_request_is_quoted_accepted_and_settled(api: Api) -> None:
    made = dataex(api, BUYER, "request", SYMBOL, "2", "--to", PROVIDER, "--client-id", "r1")
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith(f"rfq 1: 2 x {SYMBOL}, open, deadline ")
    assert f"requester {BUYER}, asked {PROVIDER}" in made.stdout
    quoted = dataex(api, PROVIDER, "quote", "1", "12.00")
    assert quoted.stdout == "quote 1 on rfq 1: 12.00, live\n", quoted.output
    # The responder does not see who asks.
    assert "requester undisclosed" in dataex(api, PROVIDER, "show", "1").stdout
    shown = dataex(api, BUYER, "show", "1").stdout
    assert f"  quote 1: 12.00 by {PROVIDER}, live" in shown
    listed = dataex(api, BUYER, "list")
    assert listed.exit_code == 0 and SYMBOL in listed.stdout and "12.00" in listed.stdout
    accepted = dataex(api, BUYER, "accept", "1", "1")
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout.startswith(f"trade 1: {BUYER} bought 2 x {SYMBOL} from {PROVIDER} "
                                      "at 12.00 (fee ")  # fmt: skip
    holding = api.expect(200, "GET", "/v1/balances", BUYER)
    assert [(h["symbol"], h["units"]) for h in holding["holdings"]] == [(SYMBOL, 2)]
    assert holding["cash_available"] == "99976.00"  # 100,000.00 less 2 x 12.00


def test_refusals_are_one_line_with_the_servers_reason(api: Api) -> None:
    dataex(api, BUYER, "request", SYMBOL, "2", "--to", PROVIDER)
    dataex(api, PROVIDER, "quote", "1", "12.00")
    assert "VALIDATION_UNKNOWN_RFQ" in refused(dataex(api, OTHER, "show", "1"))
    assert "[HTTP 403]" in refused(dataex(api, PROVIDER, "accept", "1", "1"))
    assert "[HTTP 422]" in refused(dataex(api, PROVIDER, "quote", "1", "twelve"))
    assert "VALIDATION_PRICE_OFF_TICK" in refused(dataex(api, PROVIDER, "quote", "1", "12.50"))
    assert dataex(api, BUYER, "accept", "1", "1").exit_code == 0
    assert "VALIDATION_RFQ_CLOSED" in refused(dataex(api, BUYER, "accept", "1", "1"))
    assert "one of the two" in refused(dataex(api, BUYER, "request", SYMBOL, "1"))
    assert "--within" in refused(
        dataex(api, BUYER, "request", SYMBOL, "1", "--all-eligible", "--within", "0")
    )


def test_no_key_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["rfq", "list"], env={"DATAEX_API_KEY": ""})
    assert result.exit_code == 2
    assert result.stderr == "error: set DATAEX_API_KEY to your API key\n"
