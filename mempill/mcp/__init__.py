"""The mempill MCP server (`mempill mcp`, `python -m mempill.mcp`).

Kept import-light: the `mcp` SDK is loaded by `mempill.mcp.server`, only when serving.
Inside this package the SDK is always imported absolutely (`from mcp.server…`), which
resolves to the top-level `mcp` distribution, never to this package.
"""

from __future__ import annotations

import sys

from mempill import extras

MISSING_SDK = f"mempill mcp: error: {extras.missing('the MCP server', 'mcp')}"


def run(argv: list[str]) -> int:
    """Start the server; a missing SDK is a one-line error (status 2), not a traceback."""
    try:
        from mempill.mcp.server import main
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("mcp", "pydantic"):
            raise
        print(MISSING_SDK, file=sys.stderr)
        return 2
    return main(argv)
