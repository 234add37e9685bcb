"""The load tests stay out of the product: the installed packages never refer to ``loadtests``
(which is not installed), and the load tests' paths are the caller's or the package's own,
never the checkout's by accident."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from loadtests.harness import PACKAGE_PARENT, absolute_database

CHECKOUT = Path(__file__).resolve().parents[2]
INSTALLED = ("exchange", "ledger", "matching")


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _installed_sources() -> list[Path]:
    return [path for package in INSTALLED for path in sorted((CHECKOUT / package).rglob("*.py"))]


def test_the_installed_packages_import_no_load_test() -> None:
    sources = _installed_sources()
    assert len(sources) > 50  # the walk found the packages
    importers = [
        f"{path.relative_to(CHECKOUT)}: {name}"
        for path in sources
        for name in _imported_modules(path)
        if name == "loadtests" or name.startswith("loadtests.")
    ]
    assert importers == []


def test_the_installed_packages_do_not_mention_the_load_tests() -> None:
    # Not even a path to them or an importlib string: what is installed cannot find them.
    mentions = [
        str(path.relative_to(CHECKOUT))
        for path in _installed_sources()
        if "loadtests" in path.read_text(encoding="utf-8")
    ]
    assert mentions == []


def test_the_load_tests_import_themselves_from_their_own_directory() -> None:
    assert PACKAGE_PARENT == CHECKOUT


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///load.db", "sqlite:///{cwd}/load.db"),
        ("sqlite:///runs/load.db", "sqlite:///{cwd}/runs/load.db"),
        ("sqlite:////var/tmp/load.db", "sqlite:////var/tmp/load.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://u:p@127.0.0.1/test", "postgresql+psycopg://u:p@127.0.0.1/test"),
    ],
)
def test_a_relative_sqlite_file_is_the_working_directorys(
    url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_database(url) == expected.format(cwd=tmp_path.resolve())
