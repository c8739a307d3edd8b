"""The package reads as its architecture: layers import downwards only, and no module
imports another that imports it back (a static read of every import, lazy ones included)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mempill"

#: What each layer may import from mempill (besides itself). Read top-down: the core knows
#: nothing above it; the engine knows the core and the seams; the stores know the core and
#: the seams but never the engine; the surfaces may use everything but the lab.
SEAMS = {"mempill.errors", "mempill.clock", "mempill.ids", "mempill.ports", "mempill.secrets"}
ALLOWED: dict[str, set[str] | None] = {
    "mempill.errors": set(),
    "mempill.core": {"mempill.errors", "mempill.extras"},
    "mempill.clock": set(),
    "mempill.ids": set(),
    "mempill.ports": {"mempill.core", "mempill.errors"},
    "mempill.secrets": set(),
    "mempill.engine": {"mempill.core", *SEAMS},
    "mempill.stores": {"mempill.core", *SEAMS},
    "mempill.vectors": {"mempill.core", *SEAMS},
    "mempill.extras": set(),
    "mempill.openers": {
        "mempill.core",
        "mempill.engine",
        "mempill.stores",
        "mempill.extras",
        *SEAMS,
    },
    "mempill.streams": {"mempill.core", "mempill.engine", *SEAMS},
    "mempill.compat": {"mempill.core", "mempill.engine", "mempill.openers", *SEAMS},
    "mempill.cli": {
        "mempill",
        "mempill.core",
        "mempill.engine",
        "mempill.stores",
        "mempill.openers",
        "mempill.streams",
        "mempill.extras",
        "mempill.mcp",
        *SEAMS,
    },
    "mempill.mcp": {
        "mempill",
        "mempill.core",
        "mempill.engine",
        "mempill.openers",
        "mempill.extras",
        "mempill.cli",
        *SEAMS,
    },
    "mempill.lab": None,  # the research toolkit may use everything
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> Iterator[str]:
    """Every mempill module `name` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import module` imports the submodule; otherwise the names' module
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for written in targets:
            target = written
            while target and target not in MODULES:  # `import mempill.x.y` names a module
                target = target.rpartition(".")[0]
            if target.startswith("mempill") and target != name:
                yield target


GRAPH = {name: set(imports(name, path)) for name, path in MODULES.items()}


def layer(name: str) -> str:
    for prefix in sorted(ALLOWED, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return name


def test_the_graph_was_read() -> None:
    assert "mempill.core.decide" in GRAPH["mempill.engine.ingest"]
    assert "mempill.engine.engine" in GRAPH["mempill.engine"]
    assert "mempill.stores.postgres" in GRAPH["mempill.openers"]  # a lazy import counts


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Strongly connected components of the import graph (Tarjan) are single modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in GRAPH[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n != "mempill"))
def test_layers_import_downwards(name: str) -> None:
    allowed = ALLOWED[layer(name)]
    if allowed is None:
        return
    wrong = {target for target in GRAPH[name] if layer(target) not in allowed | {layer(name)}}
    assert wrong == set(), f"{name} ({layer(name)}) imports {sorted(wrong)}"


def test_every_module_belongs_to_a_layer() -> None:
    assert {n for n in GRAPH if layer(n) not in ALLOWED} == {"mempill"}


def test_modules_stay_small() -> None:
    """STYLE: modules around 400 lines at most (a little slack before this test fails)."""
    big = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: lines for n, lines in big.items() if lines > 500} == {}
