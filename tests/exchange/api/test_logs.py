"""No API key reaches a log (exchange/api/redaction.py): a real ``dataex serve``, logging at
uvicorn's most verbose level (every request line, every ASGI scope with its headers and query
string, every WebSocket frame), is sent keys every way a client could send them, and its
whole output is searched for them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from exchange.api.redaction import MASK, RedactSecrets
from tests.exchange.serverproc import (
    DATAEX,
    HOST,
    HTTP_TIMEOUT_S,
    RATE_LIMIT_PER_S,
    ServerProcess,
    create_admin,
    free_port,
)

WS_TIMEOUT_S = 5.0


@pytest.fixture
def admin_key(database_url: str) -> str:
    """An admin's key, made before the server starts (the server reads the journal once)."""
    return create_admin(database_url)


@pytest.fixture
def server(database_url: str, admin_key: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """``dataex serve`` at log level trace, its output (stdout and stderr) in one file."""
    log_path = tmp_path / "serve.log"
    port = free_port()
    env = {**os.environ, "DATAEX_RATE_LIMIT": str(RATE_LIMIT_PER_S)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(DATAEX), "serve", "--host", HOST, "--port", str(port),
             "--database", database_url, "--log-level", "trace"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    served = ServerProcess(process, port, log_path)
    try:
        served.wait_healthy()
        yield served
    finally:
        served.stop()


def _secrets(key: str) -> list[str]:
    """What of ``key`` must not be logged: the key, and its secret alone."""
    return [key, key.partition(".")[2]]


def _ws_url(server: ServerProcess, query: str = "") -> str:
    return f"ws://{HOST}:{server.port}/v1/ws/private{query}"


def test_no_api_key_is_logged_however_it_is_sent(admin_key: str, server: ServerProcess):
    headers = {"X-API-Key": admin_key}
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT_S) as client:
        created = client.post("/v1/participants", headers=headers, json={
            "participant_id": "ann", "name": "Ann", "roles": ["buyer"]})  # fmt: skip
        assert created.status_code == 201, created.text
        ann_key = created.json()["api_key"]
        assert client.get("/v1/participants/me", headers={"X-API-Key": ann_key}).is_success
        # Where a key does not belong: in the URL, and a wrong one (someone's, mistyped).
        in_query = client.get("/v1/participants/me", params={"api_key": ann_key})
        assert in_query.status_code == 401
        wrong = f"{ann_key}x"
        assert client.get("/v1/participants/me", headers={"X-API-Key": wrong}).status_code == 401
        assert client.post("/v1/orders", headers=headers, content=b'{"api_key": "'
                           + ann_key.encode() + b'"}').status_code in (400, 403, 422)  # fmt: skip

    with connect(_ws_url(server), additional_headers={"X-API-Key": ann_key},
                 open_timeout=WS_TIMEOUT_S) as websocket:  # fmt: skip
        assert json.loads(websocket.recv(WS_TIMEOUT_S))["participant_id"] == "ann"
    with connect(_ws_url(server), open_timeout=WS_TIMEOUT_S) as websocket:
        websocket.send(json.dumps({"type": "auth", "api_key": admin_key}))
        assert json.loads(websocket.recv(WS_TIMEOUT_S))["participant_id"] == "admin"
    with connect(_ws_url(server, f"?api_key={ann_key}"), open_timeout=WS_TIMEOUT_S) as websocket:
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(WS_TIMEOUT_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    server.stop()  # so that everything it logged is in the file
    log = server.log()
    for key in (admin_key, ann_key, wrong):
        for secret in _secrets(key):
            assert secret not in log, f"{secret!r} is in the server's log"
    # The log is the verbose one this test means to search: request lines, the query string
    # and the headers of each scope, masked.
    assert '"GET /v1/participants/me?api_key=' in log, log[-3000:]
    assert "x-api-key" in log and MASK in log, log[-3000:]


def test_the_filter_masks_the_arguments_and_the_exception_of_a_record():
    key = "dxk_0123456789abcdef.thesecret-of_it"
    try:
        raise ValueError(f"refused {key}")
    except ValueError as error:
        record = logging.LogRecord("exchange.test", logging.ERROR, __file__, 1,
                                   "%s asked with %s (%d)", (f"api_key={key}", error, 3),
                                   exc_info=(type(error), error, error.__traceback__))  # fmt: skip
    assert RedactSecrets().filter(record)
    text = logging.Formatter().format(record)
    assert "thesecret" not in text, text
    assert "dxk_0123456789abcdef" in text and "(3)" in text
