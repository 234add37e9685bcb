"""One database, one sequencer: a second ``dataex serve`` on a database another server holds is
refused in one line and exits non-zero; the first serves on; console writers still append."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exchange.api.runtime import Runtime
from exchange.lease import Lease, LeaseHeld
from exchange.settings import Settings
from ledger.database import dispose_engines
from tests.exchange.serverproc import (
    DATAEX,
    HOST,
    HTTP_TIMEOUT_S,
    ServerProcess,
    create_admin,
    free_port,
)

SECOND_START_TIMEOUT_S = 60.0


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    yield database_url
    dispose_engines()


def test_a_second_lease_on_the_same_database_is_refused_until_the_first_is_released(
    url: str,
) -> None:
    first = Lease.acquire(url)
    try:
        with pytest.raises(LeaseHeld, match="another dataex server holds"):
            Lease.acquire(url)
    finally:
        first.release()
    Lease.acquire(url).release()  # given back: the next one gets it


def test_a_runtime_holds_the_lease_until_it_closes(url: str) -> None:
    runtime = Runtime.open(Settings(url))
    try:
        with pytest.raises(LeaseHeld):
            Runtime.open(Settings(url))
    finally:
        runtime.close()
    Runtime.open(Settings(url)).close()


def test_another_database_has_a_lease_of_its_own(tmp_path: Path) -> None:
    with Lease.acquire(f"sqlite:///{tmp_path / 'a.db'}"):
        Lease.acquire(f"sqlite:///{tmp_path / 'b.db'}").release()


def test_a_second_server_is_refused_in_one_line_and_the_first_serves_on(
    url: str, tmp_path: Path
) -> None:
    create_admin(url)
    first = ServerProcess.start(url, tmp_path / "first.log")
    try:
        second = subprocess.run(
            [str(DATAEX), "serve", "--host", HOST, "--port", str(free_port()),
             "--database", url],
            capture_output=True, text=True, timeout=SECOND_START_TIMEOUT_S, check=False,
        )  # fmt: skip
        assert second.returncode != 0, second.stdout + second.stderr
        lines = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: another dataex server holds "), lines
        assert "serving" not in lines[0] and "Traceback" not in lines[0]
        # The line names the database (without a password).
        assert url.split("?")[0].split("://")[1].split("@")[-1] in lines[0]
        # The first one still serves, and takes a participant a console writer appends
        # while it runs (the lease is the sequencer's, not every writer's).
        assert first.wait_healthy()["status"] == "ok"
        create_admin(url, "ops")
        with httpx.Client(base_url=first.base_url, timeout=HTTP_TIMEOUT_S) as client:
            assert client.get("/v1/health").status_code == 200
    finally:
        first.stop()
    assert "another dataex server" not in first.log()
