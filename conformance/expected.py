"""The expectations recorded beside each stream: `<name>.expected.jsonl`.

One canonical line per operation (its result or error, and the ledger entries it
appended), then one line with every agent's ledger digest and content digest (every stored
row: claims, assertions, edges, the outbox).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from mempill.core.canonical import canonical_json
from mempill.streams import OpRecord


def expected_path(stream_path: str | Path) -> Path:
    """`name.jsonl` → `name.expected.jsonl`, beside it."""
    path = Path(stream_path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".expected.jsonl")


def expectation_lines(
    records: Iterable[OpRecord], digests: Mapping[str, str], content: Mapping[str, str]
) -> list[str]:
    """The canonical lines of one run: one per operation, then the digests."""
    final = {"digests": dict(digests), "content": dict(content)}
    return [r.canonical() for r in records] + [canonical_json(final)]


def write_expected(path: str | Path, lines: Iterable[str]) -> None:
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_expected(path: str | Path) -> list[str] | None:
    """The recorded lines, or None when the stream has no expectations yet."""
    path = Path(path)
    if not path.exists():
        return None
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
