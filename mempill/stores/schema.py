"""The embedded schema migrations shipped in `stores/migrations/<backend>/`."""

from __future__ import annotations

from functools import cache
from importlib import resources


def embedded_migrations(backend: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of the migrations shipped in `stores/migrations/<backend>/`
    (read once per process: every new agent database is migrated)."""
    return list(_read(backend))


@cache
def _read(backend: str) -> tuple[tuple[int, str, str], ...]:
    folder = resources.files("mempill.stores") / "migrations" / backend
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            version = int(item.name.split("_", 1)[0])
            found.append((version, item.name, item.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def split_statements(script: str) -> list[str]:
    """Split a migration file into statements at lines ending with `;` (once per script)."""
    return list(_split(script))


@cache
def _split(script: str) -> tuple[str, ...]:
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if line.strip().startswith("--") and not current:
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return tuple(s for s in statements if s)
