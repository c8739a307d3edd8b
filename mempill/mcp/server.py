"""The mempill MCP server: one agent's memory over stdio, with the official `mcp` SDK.

`mempill mcp` and `python -m mempill.mcp` both land in `main`. Start-up problems (no
agent id, an invalid one, a database bound to another agent) end the process with a
one-line message on stderr before any protocol traffic. At run time, argument
problems are tool errors that name the argument; they never carry a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections import defaultdict
from typing import Any

import pydantic
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations

from mempill import __version__
from mempill.cli.target import ENV_AGENT, bound_agent, open_target
from mempill.engine import Engine
from mempill.errors import ConfigError, MempillError
from mempill.mcp.config import ServerConfig, load_config
from mempill.mcp.tools import MemoryTools

INSTRUCTIONS = """\
mempill is your long-term memory: an append-only store of facts as (subject, predicate,
value) with the time each fact held in the world and where it came from.
* Before answering from memory, call recall (or query_subject for everything about a
  subject). Check `status`: Resolved means `value` is the answer; Contested means several
  values are believed for the same time: tell the user and ask which is right; NoBelief
  means nothing is known for that time.
* When the user tells you a fact, call remember. When a fact changed or was wrong, call
  end_fact for the old value (at the time of the change), then remember the new one.
* Your own inferences go through ingest_claim with provenance ModelDerived and derived_from.
* Every result carries a plain-language status_reason; nothing is ever deleted (history
  and audit show how a belief came to be).
"""


class MemoryServer(MCPServer[Any]):
    """An MCPServer whose tools reject unknown arguments and explain invalid ones."""

    def __init__(self, tools: MemoryTools, *, read_only: bool) -> None:
        super().__init__(
            "mempill",
            title="mempill memory",
            instructions=INSTRUCTIONS,
            version=__version__,
            log_level="WARNING",
        )
        self.read_only = read_only
        self.parameters: dict[str, frozenset[str]] = {}
        names = MemoryTools.READ if read_only else MemoryTools.READ + MemoryTools.WRITE
        for name in names:
            fn = getattr(tools, name)
            writes = name in MemoryTools.WRITE
            self.add_tool(
                fn,
                annotations=ToolAnnotations(
                    read_only_hint=not writes,
                    destructive_hint=False,
                    idempotent_hint=not writes,
                    open_world_hint=False,
                ),
            )
            self.parameters[name] = frozenset(inspect.signature(fn).parameters)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Check the tool and argument names, then run the tool; reword schema errors."""
        known = self.parameters.get(name)
        if known is None:
            if name in MemoryTools.WRITE:
                raise ToolError(f"{name} is not available: this mempill server is read-only")
            raise ToolError(f"unknown tool {name!r}; tools: {', '.join(sorted(self.parameters))}")
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise ToolError(
                f"Error executing tool {name}: unknown argument(s) {', '.join(map(repr, unknown))}"
                f"; {name} takes {', '.join(sorted(known))}"
            )
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as e:
            if isinstance(e.__cause__, pydantic.ValidationError):
                raise ToolError(
                    f"Error executing tool {name}: {argument_errors(e.__cause__)}"
                ) from e
            raise


def argument_errors(error: pydantic.ValidationError) -> str:
    """`missing required argument 'subject'; invalid argument 'limit': …` from pydantic."""
    missing: list[str] = []
    invalid: dict[str, list[str]] = defaultdict(list)
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        name = loc[0] if loc else "?"
        if item["type"] == "missing" and len(loc) == 1:
            missing.append(name)
        elif item["msg"] not in invalid[name]:
            invalid[name].append(item["msg"])
    parts = [f"missing required argument {name!r}" for name in missing]
    parts += [f"invalid argument {name!r}: {' or '.join(msgs)}" for name, msgs in invalid.items()]
    return "; ".join(parts)


def open_engine(config: ServerConfig) -> Engine:
    """Open the configured store and check that it will take this agent's writes."""
    engine = open_target(config.target)
    owner = bound_agent(engine)
    if owner is not None and owner != config.agent_id:
        engine.close()
        raise ConfigError(
            f"{config.target.db} belongs to agent {owner!r}, not {config.agent_id!r}; set "
            f"{ENV_AGENT}={owner} or use another database file"
        )
    return engine


def build_server(engine: Engine, config: ServerConfig) -> MemoryServer:
    return MemoryServer(MemoryTools(engine, config.agent_id), read_only=config.read_only)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mempill mcp",
        description="Serve one agent's mempill memory over MCP (stdio). Flags override "
        "MEMPILL_DB_PATH, MEMPILL_PG_DSN, MEMPILL_AGENT_ID and MEMPILL_READ_ONLY.",
    )
    parser.add_argument("--db", metavar="PATH", help="SQLite file (default: in memory)")
    parser.add_argument("--pg", metavar="DSN", help="PostgreSQL conninfo instead of SQLite")
    parser.add_argument("--agent", metavar="ID", help="the agent whose memory is served")
    parser.add_argument(
        "--read-only", action="store_true", default=None, help="leave out the write tools"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the server until the client closes stdin; 2 on a start-up error."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(db=args.db, pg=args.pg, agent=args.agent, read_only=args.read_only)
        engine = open_engine(config)
    except MempillError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"mempill mcp: error: {first}", file=sys.stderr)
        return 2
    try:
        build_server(engine, config).run("stdio")
    except KeyboardInterrupt:
        return 130
    finally:
        engine.close()
    return 0
