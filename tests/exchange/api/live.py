"""An app served by uvicorn on 127.0.0.1 in a thread of the test's process, for clients that
need a real socket (a browser, schemathesis over HTTP)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import uvicorn
from fastapi import FastAPI

__all__ = ["served"]

START_TIMEOUT_S = 30.0


@contextmanager
def served(app: FastAPI, *, lifespan: Literal["on", "off"] = "on") -> Iterator[str]:
    """``app`` served on a free port of 127.0.0.1 until the block ends; yields its base URL.
    With ``lifespan="off"`` the app is served without opening its runtime (no database)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start serving on port {port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()
