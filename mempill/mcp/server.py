"""The mempill MCP server: one agent's memory over stdio, with the official `mcp` SDK.

`mempill mcp` and `python -m mempill.mcp` both land in `main`. A start-up problem (no
agent id, an invalid one, a database that cannot be opened or that belongs to another
agent) is printed on stderr, and the server still starts so that the client learns it:
the handshake completes, the instructions begin with the problem, and every tool call
is answered with a tool error carrying it (the process exits 2 when the client leaves;
started from a terminal, with no client, it exits 2 at once). At run time, argument
problems are tool errors that name the argument; they never carry a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import traceback
from collections import defaultdict
from typing import Any, NoReturn

import anyio
import pydantic
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations

from mempill import __version__
from mempill.cli import terminal
from mempill.cli.target import (
    ENV_AGENT,
    PASSWORD_IN_ARGUMENTS,
    Target,
    open_target,
    require_owner,
)
from mempill.engine import Engine
from mempill.errors import ConfigError, MempillError
from mempill.mcp.config import ServerConfig, load_config
from mempill.mcp.tools import MemoryTools
from mempill.mcp.transport import relay
from mempill.secrets import has_password

INSTRUCTIONS = """\
mempill is your long-term memory: an append-only store of facts as (subject, predicate,
value) with the time each fact held in the world and where it came from.
* Before answering from memory, call recall (or query_subject for everything about a
  subject). Check `status`: Resolved means `value` is the answer; Contested means several
  values are believed for the same time: tell the user and ask which is right; NoBelief
  means nothing is known for that time.
* recall needs the exact subject and predicate. Before you conclude that you know nothing
  about something, call search with its words (search 'city' finds user/home_city);
  list_subjects and list_predicates show the names memory already uses.
* When the user tells you a fact, call remember. When a fact changed or was wrong, call
  end_fact for the old value (at the time of the change), then remember the new one.
* Reuse existing predicates: before inventing a new one, check list_predicates for the
  subject; remember answers with similar_predicates (e.g. home_city when you wrote city),
  and if one means the same, remember the fact under that name instead.
* Your own inferences go through ingest_claim with provenance ModelDerived and derived_from.
* For questions about time: timeline shows how a fact's value changed across valid time;
  changes lists what was recorded since a moment, or since a snapshot (call snapshot and
  keep its token to catch up exactly later, or to pass as as_of).
* Every result carries a plain-language status_reason; this server deletes nothing (history
  and audit show how a belief came to be).
"""
#: Replaces the last line of INSTRUCTIONS when the server allows erasure.
ERASE_INSTRUCTIONS = (
    "* Every result carries a plain-language status_reason. Nothing is deleted, except by\n"
    "  erase: call it only when the user explicitly asks you to forget something; it cannot\n"
    "  be undone.\n"
)


FIX = (
    "Fix the mempill server's settings in the MCP client's configuration (its env: "
    "MEMPILL_AGENT_ID, MEMPILL_DB_PATH or MEMPILL_PG_DSN, MEMPILL_READ_ONLY, "
    "MEMPILL_ALLOW_ERASE; or its args) "
    "and restart the server."
)


class MemoryServer(MCPServer[Any]):
    """An MCPServer whose tools reject unknown arguments and explain invalid ones.

    With a `failure` (the server could not start) every tool call answers with it.
    """

    def __init__(
        self,
        tools: MemoryTools,
        *,
        read_only: bool,
        allow_erase: bool = False,
        failure: str | None = None,
    ) -> None:
        instructions = INSTRUCTIONS
        if allow_erase:
            last = INSTRUCTIONS.index("* Every result carries")
            instructions = INSTRUCTIONS[:last] + ERASE_INSTRUCTIONS
        if failure is not None:
            instructions = f"mempill could not start: {failure}\n{FIX}\n\n{INSTRUCTIONS}"
        super().__init__(
            "mempill",
            title="mempill memory",
            instructions=instructions,
            version=__version__,
            log_level="WARNING",
        )
        self.read_only = read_only
        self.failure = failure
        self.parameters: dict[str, frozenset[str]] = {}
        names: tuple[str, ...] = (
            MemoryTools.READ if read_only else MemoryTools.READ + MemoryTools.WRITE
        )
        if allow_erase and not read_only:
            names += MemoryTools.ERASE
        for name in names:
            fn = getattr(tools, name)
            writes = name not in MemoryTools.READ
            self.add_tool(
                fn,
                annotations=ToolAnnotations(
                    read_only_hint=not writes,
                    destructive_hint=name in MemoryTools.ERASE,
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
            if name in MemoryTools.ERASE:
                raise ToolError(
                    f"{name} is not available: this mempill server was started without "
                    "--allow-erase (MEMPILL_ALLOW_ERASE=1), so it cannot erase anything"
                )
            raise ToolError(f"unknown tool {name!r}; tools: {', '.join(sorted(self.parameters))}")
        if self.failure is not None:
            failure = self.failure.rstrip(".")
            text = f"Error executing tool {name}: mempill could not start: {failure}. {FIX}"
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
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

    async def run_stdio_async(self) -> None:
        """Serve stdio; a line the SDK cannot read still gets an answer (`transport`)."""
        async with stdio_server() as (read_stream, write_stream):
            sink, source = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            async with anyio.create_task_group() as group:
                group.start_soon(relay, read_stream, sink, write_stream)
                lowlevel = self._lowlevel_server  # what MCPServer.run_stdio_async runs too
                await lowlevel.run(source, write_stream, lowlevel.create_initialization_options())
                group.cancel_scope.cancel()


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
    """Open the configured store (creating a new one and its directories; read-only: an
    existing one, opened read-only) and check that it belongs to this agent."""
    engine = open_target(config.target, create=not config.read_only, read_only=config.read_only)
    try:
        require_owner(engine, config.target, config.agent_id, f"set {ENV_AGENT}={{owner}}")
    except Exception:
        engine.close()
        raise
    return engine


def build_server(
    engine: Engine | None, config: ServerConfig | None, failure: str | None = None
) -> MemoryServer:
    """The server; without an engine (`failure` says why) every tool call reports it."""
    if engine is None or config is None:
        read_only = bool(config and config.read_only)
        tools = MemoryTools(None, config.agent_id if config else "", Target())
        return MemoryServer(tools, read_only=read_only, failure=failure or "no store")
    tools = MemoryTools(engine, config.agent_id, config.target)
    return MemoryServer(tools, read_only=config.read_only, allow_erase=config.allow_erase)


PROG = "mempill mcp"


class Arguments(argparse.ArgumentParser):
    """Bad flags are a start-up failure like any other (reported to the client)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see mempill mcp --help)")


def _parser() -> Arguments:
    parser = Arguments(
        prog=PROG,
        description="Serve one agent's mempill memory over MCP (stdio). Flags override "
        "MEMPILL_DB_PATH, MEMPILL_PG_DSN, MEMPILL_AGENT_ID, MEMPILL_READ_ONLY and "
        "MEMPILL_ALLOW_ERASE.",
    )
    parser.add_argument("--db", metavar="PATH", help="SQLite file (default: in memory)")
    parser.add_argument("--pg", metavar="DSN", help="PostgreSQL conninfo instead of SQLite")
    parser.add_argument("--agent", metavar="ID", help="the agent whose memory is served")
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=None,
        help="open the store read-only and leave out the write tools",
    )
    parser.add_argument(
        "--allow-erase",
        action="store_true",
        default=None,
        help="add the erase tool, which forgets a subject for good (off by default)",
    )
    return parser


def start(argv: list[str]) -> tuple[Engine | None, ServerConfig | None, str | None]:
    """(engine, config, None), or what is known and the start-up failure's one line."""
    config: ServerConfig | None = None
    try:
        args = _parser().parse_args(argv)
        if args.pg and has_password(args.pg):
            terminal.warn(PROG, PASSWORD_IN_ARGUMENTS)
        config = load_config(
            db=args.db,
            pg=args.pg,
            agent=args.agent,
            read_only=args.read_only,
            allow_erase=args.allow_erase,
        )
        return open_engine(config), config, None
    except Exception as e:  # every failure reaches the client; a bug says it is one
        if os.environ.get("MEMPILL_DEBUG"):
            traceback.print_exc()
        text = terminal.first_line(str(e), type(e).__name__)
        if not isinstance(e, MempillError):
            text = f"internal error: {type(e).__name__}: {text}"
        print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)
        return None, config, text


def main(argv: list[str] | None = None) -> int:
    """Run the server until the client closes stdin; 2 after a start-up failure."""
    with terminal.one_line_warnings(PROG):
        return serve(sys.argv[1:] if argv is None else argv)


def serve(argv: list[str]) -> int:
    """Start, then serve stdio until the client leaves (see `main`)."""
    engine, config, failure = start(argv)
    if failure is not None and sys.stdin is not None and sys.stdin.isatty():
        return 2  # a person at a terminal, not a client: the line above says it all
    try:
        build_server(engine, config, failure).run("stdio")
    except KeyboardInterrupt:
        return 130
    finally:
        if engine is not None:
            engine.close()
    return 2 if failure is not None else 0
