"""Command-line errors are one line, never a traceback: bad and unreachable database URLs, a
missing schema or file, a reader that closes the pipe; ``serve`` says "serving" only once its
listener is bound."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.exchange.serverproc import DATAEX, HOST, create_admin, free_port

REPOSITORY = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


def dataex(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATAEX_DATABASE_URL"}
    return subprocess.run(
        [str(DATAEX), *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        env=env, cwd=cwd,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert "serving" not in lines[0]
    return lines[0]


def test_serve_with_a_bad_database_url(tmp_path: Path) -> None:
    line = one_error_line(dataex("serve", "--port", str(free_port()), "--database", "notaurl"))
    assert line == "error: not a database URL: 'notaurl'"


def test_serve_with_an_unreachable_database_hides_the_password() -> None:
    url = f"postgresql+psycopg://postgres:secret-pw@{HOST}:{free_port()}/test"
    line = one_error_line(
        dataex("serve", "--port", str(free_port()), "--database", url, "--no-witness")
    )
    assert "postgres:***@" in line and "secret-pw" not in line


def test_serve_says_serving_only_once_its_listener_is_bound(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'exchange.db'}"
    create_admin(url)
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dataex("serve", "--host", HOST, "--port", str(port), "--database", url)
    assert result.returncode != 0
    assert "serving" not in result.stdout + result.stderr
    assert "address already in use" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_participant_create_on_a_missing_schema() -> None:
    server_url = os.environ.get("DATAEX_TEST_POSTGRES_URL")
    if not server_url:
        pytest.skip("DATAEX_TEST_POSTGRES_URL is not set")
    url = f"{server_url}?options=-csearch_path%3Dno_such_schema_{uuid.uuid4().hex[:8]}"
    result = dataex("participant", "create", "Ops", "--role", "admin", "--database", url)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "cannot open the exchange's database" in line


def test_check_proof_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "proof.json"
    result = dataex("ledger", "check-proof", str(missing), "--digest", str(missing))
    assert result.returncode == 2
    assert one_error_line(result) == f"error: proof {str(missing)!r}: No such file or directory"


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'exchange.db'}"
    for index in range(3):
        create_admin(url, f"admin-{index}")
    for args in (["ledger", "balances"], ["ledger", "digest"]):
        process = subprocess.Popen(
            [str(DATAEX), *args, "--database", url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        process.stdout.close()  # the reader is gone before the command writes anything
        stderr = process.stderr.read().decode()
        process.wait(timeout=TIMEOUT_S)
        assert stderr == "", (args, stderr)
        assert process.returncode == 1, args


def test_loadtest_with_a_bad_database_url(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtests", "run", "--database", "notaurl",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=REPOSITORY,
    )  # fmt: skip
    assert result.returncode == 2
    assert one_error_line(result) == "error: not a database URL: 'notaurl'"
