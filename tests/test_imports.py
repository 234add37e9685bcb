"""No import circles: the import graph of ``exchange``, ``ledger`` and ``matching``, read from
their source with ``ast`` (every import counts: top-level, inside a function, or under
``TYPE_CHECKING``), has no cycle through the packages that must stay acyclic.

A circle means neither module can be read, tested or loaded without the other; the fix is to
move what both need below both, or to pass a value in instead of importing its maker."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("exchange", "ledger", "matching")
# Packages whose modules must be on no import cycle at all (through any module).
ACYCLIC = ("exchange.pricing",)


def source_modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's ``__init__``)."""
    modules: dict[str, tuple[Path, bool]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            modules[".".join(parts)] = (path, is_package)
    return modules


def import_graph(modules: dict[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """Module -> the modules of ``modules`` it imports. ``from p import name`` is an edge to
    ``p.name`` when that is a module, else to ``p`` (whose ``__init__`` defines the name)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets: set[str | None] = set()
        here = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else known(base))
        graph[name] = {target for target in targets if target is not None and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        yield sorted(component)


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_function_level_and_type_checking_imports(tmp_path):
    package = tmp_path / "exchange"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from exchange.b import g\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (package / "c.py").write_text("import exchange.a\n")
    graph = import_graph(
        {k: v for k, v in source_modules(tmp_path).items() if k.startswith("exchange")}
    )
    assert graph["exchange.a"] == {"exchange.b"}
    assert graph["exchange.b"] == {"exchange.a"}
    assert list(cycles(graph)) == [["exchange.a", "exchange.b"]]


@pytest.mark.parametrize("package", ACYCLIC)
def test_no_module_of_the_package_is_on_an_import_cycle(package):
    graph = import_graph(source_modules())
    assert any(in_package(module, package) for module in graph), f"no module of {package}"
    found = [c for c in cycles(graph) if any(in_package(module, package) for module in c)]
    described = [" | ".join(f"{m} -> {sorted(set(graph[m]) & set(c))}" for m in c) for c in found]
    assert found == [], "import cycles:\n" + "\n".join(described)
