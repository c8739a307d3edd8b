"""Showing how two canonical results differ: the differing JSON paths, then side by side."""

from __future__ import annotations

import difflib
import json
from typing import Any

MAX_PATHS = 8


def differing_paths(left: Any, right: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf path where two JSON values differ (`result.primary.value`, `ledger[2]`…)."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(left) | set(right)):
            sub = f"{path}.{key}" if path else str(key)
            found.extend(
                differing_paths(left.get(key, "<absent>"), right.get(key, "<absent>"), sub)
            )
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = []
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            found.extend(differing_paths(a, b, f"{path}[{i}]"))
        return found
    return [] if left == right else [(path or "<root>", left, right)]


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def side_by_side(
    left_title: str, left: Any, right_title: str, right: Any, width: int = 64, context: int = 3
) -> str:
    """Both values pretty-printed in two columns; `|` marks differing lines, `<`/`>` lone ones.

    Only the differing hunks are shown, with `context` lines around them.
    """
    a = json.dumps(left, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
    b = json.dumps(right, indent=1, sort_keys=True, ensure_ascii=False).splitlines()

    def cell(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    rows = [f"{left_title[:width]:<{width}}   {right_title[:width]}", "-" * (2 * width + 3)]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        hunk = f"@@ lines {group[0][1] + 1}-{group[-1][2]}"
        rows.append(f"{hunk:<{width}}   @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows.extend(f"{cell(x):<{width}}   {cell(x)}" for x in a[i1:i2])
                continue
            left_part, right_part = a[i1:i2], b[j1:j2]
            for k in range(max(len(left_part), len(right_part))):
                x = left_part[k] if k < len(left_part) else ""
                y = right_part[k] if k < len(right_part) else ""
                mark = "|" if x and y else "<" if x else ">"
                rows.append(f"{cell(x):<{width}} {mark} {cell(y)}")
    return "\n".join(rows)


def explain(left_title: str, left: Any, right_title: str, right: Any) -> str:
    """The differing paths (a few) followed by the side-by-side view."""
    paths = differing_paths(left, right)
    lines = [f"  {p}: {_short(x)}  vs  {_short(y)}" for p, x, y in paths[:MAX_PATHS]]
    if len(paths) > MAX_PATHS:
        lines.append(f"  … and {len(paths) - MAX_PATHS} more differing paths")
    return "\n".join([*lines, side_by_side(left_title, left, right_title, right)])
