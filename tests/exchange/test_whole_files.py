"""Output files that appear whole (exchange/whole_files.py): in place only once complete,
nothing left by a failure, and the permissions any file the user creates there would have."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.whole_files import replacing, replacing_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(params=[0o022, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_appears_whole_with_the_users_permissions(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "out.bin"
    with replacing(path) as file:
        file.write(b"half")
        assert not path.exists(), "nothing at the path while it is written"
        file.write(b" and the rest")
    assert path.read_bytes() == b"half and the rest"
    assert _mode(path) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("before\n")
    with pytest.raises(RuntimeError), replacing_text(path) as file:
        file.write("after\n")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_text_is_utf8_with_the_newlines_given(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    with replacing_text(path) as file:
        file.write("杭州\r\nline\n")
    assert path.read_bytes() == "杭州\r\nline\n".encode()


def test_a_commands_output_has_the_users_permissions(tmp_path: Path, umask: int) -> None:
    trades = tmp_path / "trades.csv"
    result = CliRunner().invoke(
        app, ["match", str(EXAMPLES / "orders.csv"), "--trades-out", str(trades)]
    )
    assert result.exit_code == 0, result.output
    assert _mode(trades) == 0o666 & ~umask
