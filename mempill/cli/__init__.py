"""The `mempill` command: `main` parses and dispatches; `commands`, `travel`, `doctor`,
`exports` and `imports` implement the commands; `target` opens the store a command names
(shared with the MCP server), `explain` and `tables` turn results into plain words and
tables, `terminal` keeps control characters in them from reaching a terminal, `files`
writes exports privately."""

from mempill.cli.main import main

__all__ = ["main"]
