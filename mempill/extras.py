"""Optional extras: a feature whose extra is missing says which packages to install.

The packages are read from this distribution's own metadata (pyproject's extras), so the
hint names exactly what the extra would install; it never names the distribution itself,
whose name on the package index belongs to a different project (docs/decisions.md).
"""

from __future__ import annotations

import re
from importlib import metadata

_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def packages(extra: str) -> tuple[str, ...]:
    """The requirements an extra adds (its nested self-references expanded)."""
    try:
        requires = metadata.requires("mempill") or []
    except metadata.PackageNotFoundError:
        return ()
    found: list[str] = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        match = _EXTRA.search(marker)
        if match is None or match.group(1) != extra:
            continue
        name = requirement.strip()
        if name.startswith("mempill["):
            for nested in name[len("mempill[") : -1].split(","):
                found.extend(p for p in packages(nested.strip()) if p not in found)
        elif name not in found:
            found.append(name)
    return tuple(found)


def hint(extra: str) -> str:
    """How to install an extra: its packages, or the editable install of the checkout."""
    checkout = f"pip install -e '.[{extra}]' in the mempill checkout"
    wanted = packages(extra)
    if not wanted:
        return checkout
    quoted = " ".join(f"'{p}'" for p in wanted)
    return f"pip install {quoted} (or {checkout})"


def missing(feature: str, extra: str) -> str:
    """The message for a feature whose optional dependencies are not installed."""
    return f"{feature} needs the {extra} extra: {hint(extra)}"


def third_party(error: ModuleNotFoundError) -> bool:
    """True when the missing module is a dependency, not part of this project."""
    top = (error.name or "").split(".")[0]
    return bool(top) and top not in ("mempill", "conformance", "benchmarks")
