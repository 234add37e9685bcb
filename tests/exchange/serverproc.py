"""A real ``dataex serve`` process for end-to-end tests.

``ServerProcess.start`` runs the console script installed next to the test's interpreter on a
free port of 127.0.0.1, with its output in a log file (a pipe nobody reads could fill and
block the server), and waits until ``GET /v1/health`` answers. ``kill`` is a crash (SIGKILL:
no shutdown hook runs); ``stop`` is an orderly shutdown that falls back to a kill. Every wait
has a limit, so a server that hangs fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

__all__ = ["DATAEX", "HOST", "HTTP_TIMEOUT_S", "ServerProcess", "create_admin", "free_port"]

DATAEX = Path(sys.executable).parent / "dataex"
HOST = "127.0.0.1"
HTTP_TIMEOUT_S = 5.0
CLI_TIMEOUT_S = 30.0
START_TIMEOUT_S = 20.0
START_ATTEMPTS = 3
STOP_TIMEOUT_S = 10.0
HEALTH_POLL_S = 0.05
# High enough that concurrent test traffic is never throttled (the default is 500/s a key).
RATE_LIMIT_PER_S = 1_000_000
_PORT_TAKEN = "address already in use"
_API_KEY = re.compile(r"^api key: (\S+)$", re.MULTILINE)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def create_admin(database_url: str, participant_id: str = "admin") -> str:
    """Bootstrap an admin with ``dataex participant create``; return its API key."""
    result = subprocess.run(
        [str(DATAEX), "participant", "create", "Admin", "--role", "admin",
         "--id", participant_id, "--database", database_url],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = _API_KEY.search(result.stdout)
    assert found is not None, result.stdout
    return found.group(1)


class ServerProcess:
    """One ``dataex serve`` process; see the module docstring."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.base_url = f"http://{HOST}:{port}"

    @classmethod
    def start(
        cls,
        database_url: str,
        log_path: Path,
        *,
        own_group: bool = False,
        options: Sequence[str] = (),
    ) -> ServerProcess:
        """Start a server on ``database_url`` and return it once its health check answers;
        ``own_group`` starts it in a process group of its own, to be signalled as a whole;
        ``options`` go to ``dataex serve`` (e.g. ``["--demo"]``).

        The free port is only probed, so another process may take it first; the start is
        then tried again on another port.
        """
        for attempt in range(1, START_ATTEMPTS + 1):
            log = log_path.with_suffix(f".{attempt}{log_path.suffix}")
            server = cls._spawn(database_url, log, own_group=own_group, options=options)
            try:
                server.wait_healthy()
                return server
            except AssertionError:
                server.kill()
                if attempt == START_ATTEMPTS or _PORT_TAKEN not in server.log():
                    raise
            except BaseException:
                server.kill()
                raise
        raise AssertionError("unreachable")

    @classmethod
    def _spawn(
        cls, database_url: str, log_path: Path, *, own_group: bool, options: Sequence[str]
    ) -> ServerProcess:
        port = free_port()
        env = {**os.environ, "DATAEX_RATE_LIMIT": str(RATE_LIMIT_PER_S)}
        env.pop("DATAEX_DATABASE_URL", None)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(DATAEX), "serve", "--host", HOST, "--port", str(port),
                 "--database", database_url, *options],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                process_group=0 if own_group else None,
            )  # fmt: skip
        return cls(process, port, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> dict:
        """The first health report, polling until ``timeout_s``; fails if the server exits."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT_S) as client:
            while True:
                assert self.is_running(), f"the server exited:\n{self.log()}"
                try:
                    response = client.get("/v1/health")
                    if response.status_code == 200:
                        return response.json()
                except httpx.TransportError:
                    pass  # not listening yet
                assert time.monotonic() < deadline, f"no health within {timeout_s} s:\n{self.log()}"
                time.sleep(HEALTH_POLL_S)

    def kill(self) -> None:
        """SIGKILL the server (a crash) and reap it."""
        if self.is_running():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int:
        """Shut the server down as an operator would (SIGTERM); kill it if it does not stop
        within the limit. Returns its exit status."""
        if self.is_running():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode
