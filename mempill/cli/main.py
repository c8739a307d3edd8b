"""The `mempill` command line: a thin layer over the engine for people and shell scripts.

    mempill --db memory.db --agent me remember user city '"Paris"'
    mempill --db memory.db recall user city --json

Every command takes `--db PATH` (a SQLite file, or a directory of per-agent files) or
`--pg DSN`, and `--agent`, before or after the command name; the environment supplies
defaults (MEMPILL_DB_PATH, MEMPILL_PG_DSN, MEMPILL_AGENT_ID). Output is a readable
table, or JSON with `--json`. Any error ends the command with one line on stderr, never
a traceback (MEMPILL_DEBUG=1 shows it), and an exit status that says which kind of error
it was (`EXIT`, documented in docs/cli-and-mcp.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from mempill import __version__
from mempill.cli import commands, finding, terminal, travel
from mempill.cli.checks import MAX_CLI_LIMIT
from mempill.cli.commands import Output, Session, check_arguments
from mempill.cli.target import (
    ENV_DB,
    ENV_PG,
    PASSWORD_IN_ARGUMENTS,
    bound_agent,
    open_target,
    require_owner,
    resolve_agent,
    resolve_target,
)
from mempill.core.limits import MAX_SEQ
from mempill.errors import (
    ConfigError,
    ConflictError,
    MempillError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from mempill.secrets import has_password

Handler = Callable[[Session, argparse.Namespace], Output]
#: commands that write, and so may create a SQLite store (and its directories) if missing
CREATES = frozenset({"remember", "end", "import"})
#: commands that only read, and so open the store read-only: a SQLite file `mode=ro`
#: without migrations (a 0444 file works, nothing is changed), PostgreSQL without DDL
#: in read-only transactions (a SELECT-only role works)
READS = frozenset(
    {"recall", "subject", "history", "audit", "export", "doctor", "snapshot", "timeline", "changes"}
    | {"search", "subjects", "predicates"}
)
#: commands that act as one agent and so refuse a single file that belongs to another
#: (`remember` is answered by the engine: a Rejected receipt, reason write_authority)
OWNED = READS - {"doctor"} | {"end", "erase", "reindex"}
DATE = "YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339"
#: What `--as-of` takes: a transaction time, or a position from `mempill snapshot`.
AS_OF = f"what was believed then (tx time: {DATE}; or a token from mempill snapshot)"
#: Exit statuses: 0 done (Contested included), 1 refused or failed (a Rejected write, an
#: unknown claim, a conflict, failed doctor checks), 2 bad usage (a flag, argument or
#: setting refused before the store is touched), 3 storage (the store could not be
#: opened, read or written), 70 an internal error (a bug), 130 Ctrl-C, 141 broken pipe.
EXIT = {
    ValidationError: 2,
    ConfigError: 2,
    NotFoundError: 1,
    ConflictError: 1,
    StorageError: 3,
    MempillError: 1,
}
EXIT_STORAGE, EXIT_INTERNAL = 3, 70
ROLE_ACTIONS = ("grant-agent", "grant-service", "revoke-agent", "revoke-service")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (status 2) instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {terminal.visible(message)} (see {self.prog} --help)\n")


def _limit(p: argparse.ArgumentParser, default: int, what: str = "") -> None:
    """`--limit N`: at most N `what` (1..MAX_CLI_LIMIT), `default` when not given."""
    p.add_argument(
        "--limit",
        type=bounded(1, MAX_CLI_LIMIT),
        default=default,
        metavar="N",
        help=f"at most N{what} ({default}; 1..{MAX_CLI_LIMIT})",
    )


def _common(suppress: bool) -> Parser:
    """--db/--pg/--agent/--json, accepted before and after the command name."""
    common = Parser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    common.add_argument(
        "--db", metavar="PATH", default=default, help=f"SQLite file or directory ({ENV_DB})"
    )
    common.add_argument("--pg", metavar="DSN", default=default, help=f"PostgreSQL ({ENV_PG})")
    common.add_argument(
        "--agent", metavar="ID", default=default, help="agent id (MEMPILL_AGENT_ID)"
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON (for scripts)",
    )
    return common


def _line(p: argparse.ArgumentParser) -> None:
    p.add_argument("subject")
    p.add_argument("predicate")


def _times(p: argparse.ArgumentParser, valid_at: bool = True) -> None:
    p.add_argument("--as-of", metavar="DATE|TOKEN", help=AS_OF)
    if valid_at:
        p.add_argument("--valid-at", metavar="DATE", help="what was true then (valid time)")


def _memory_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("remember", "record a fact (provenance External:UserAsserted by default)")
    _line(p)
    p.add_argument("value", help="a JSON value; text that is not JSON is taken as a string")
    p.add_argument("--string", action="store_true", help="take VALUE as a string, never JSON")
    p.add_argument("--from", dest="valid_from", metavar="DATE", help=f"valid from ({DATE})")
    p.add_argument("--until", dest="valid_until", metavar="DATE", help="valid until, exclusive")
    p.add_argument("--confidence", type=float, metavar="X", help="0..1 (default 1)")
    p.add_argument("--provenance", metavar="P", help="External:UserAsserted (default), …")
    p.add_argument("--cardinality", metavar="C", help="Functional (default), SetValued, Unknown")
    p.add_argument("--criticality", metavar="C", help="Low, Medium (default), High, Critical")
    p = add("recall", "what is believed about one fact")
    _line(p)
    _times(p)
    p = add("subject", "everything believed about one subject")
    p.add_argument("subject")
    _times(p)
    p = add("history", "every claim of one fact, oldest first, with its status")
    _line(p)
    _times(p, valid_at=False)
    p = add("end", "end the believed value of a fact (it stops holding at --at, default now)")
    _line(p)
    p.add_argument("--at", metavar="DATE", help=f"when it stopped being true ({DATE}; now)")
    p.add_argument("--value", help="which value to end when several are believed (JSON)")
    p.add_argument("--string", action="store_true", help="take --value as a string")
    p.add_argument("--ref", metavar="CLAIM", help="end this claim (a claim_ref from history)")
    p = add("audit", "the ledger, oldest first")
    p.add_argument("--claim", metavar="REF", help="only entries of this claim_ref")
    p.add_argument(
        "--after", type=bounded(0, MAX_SEQ), default=0, metavar="SEQ", help="after this stream_seq"
    )
    _limit(p, 100)


def _travel_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    add("snapshot", "print the ledger's position now: a token for --as-of and changes --after")
    p = add("timeline", "how the belief of one fact changes across valid time")
    _line(p)
    p.add_argument("--from", dest="valid_from", metavar="DATE", help=f"range start ({DATE})")
    p.add_argument("--until", dest="valid_until", metavar="DATE", help="range end, exclusive")
    p.add_argument("--as-of", metavar="DATE|TOKEN", help=AS_OF)
    p = add("changes", "what changed: each fact touched, its entries and its belief before/after")
    p.add_argument("--since", metavar="DATE|TOKEN", help="after this tx time or snapshot")
    p.add_argument("--until", metavar="DATE|TOKEN", help="up to this tx time or snapshot (now)")
    p.add_argument("--after", metavar="TOKEN", help="after this snapshot (instead of --since)")
    p.add_argument("--subject", help="only this subject")
    p.add_argument("--predicate", help="only this predicate (with --subject)")
    p.add_argument("--valid-at", metavar="DATE", help="the beliefs at this valid time (now)")
    _limit(p, 100, " facts a page")
    p.add_argument(
        "--cursor", type=bounded(0, MAX_SEQ), default=0, metavar="N", help="the next page's cursor"
    )
    p.add_argument("--all", action="store_true", help="follow the cursor through every page")
    p = add("erase", "forget every value stored about a subject, or one fact, for good")
    p.add_argument("subject")
    p.add_argument("predicate", nargs="?", help="only this fact (default: the whole subject)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the ledger)")
    p.add_argument("--yes", action="store_true", help="confirm; without it nothing is erased")


def _finding_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("search", "find facts by words of their subject, predicate or value")
    p.add_argument("text", help="the words to look for (city finds home_city)")
    _limit(p, 20, " facts")
    _times(p)
    p.add_argument("--history", action="store_true", help="also match values no longer believed")
    p = add("subjects", "the subjects remembered, with their facts and beliefs")
    p.add_argument("--prefix", metavar="P", help="only subjects starting with P")
    _limit(p, 100, " subjects a page")
    p.add_argument("--after", metavar="S", help="the subjects after S (the next page)")
    p.add_argument("--all", action="store_true", help="follow the cursor through every page")
    p = add("predicates", "the predicates in use (of one subject, or of every subject)")
    p.add_argument("subject", nargs="?", help="only this subject's predicates")
    add("reindex", "rebuild the word index search uses (changes no memory)")


def bounded(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a decimal integer in [least, most], refused as bad usage."""

    def parse(text: str) -> int:
        try:
            number = int(text.strip(), 10) if len(text) <= 40 else None
        except ValueError:
            number = None
        if number is None or not least <= number <= most:
            raise argparse.ArgumentTypeError(f"expected an integer from {least} to {most}")
        return number

    parse.__name__ = "integer"
    return parse


def _store_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("export", "write the ledger or the claims as CSV, JSON lines or Parquet")
    p.add_argument("what", choices=("ledger", "claims"))
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), help="default: from --out")
    p.add_argument("--out", help="output file (default: stdout; Parquet needs a file)")
    p = add("import", "replay a claim stream (JSONL, mempill-stream/1) into the store")
    p.add_argument("file")
    p.add_argument("--append", action="store_true", help="system clock and random ids")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add("doctor", "describe the store, count its rows and check its integrity")
    p = add("pg", "PostgreSQL runtime roles under row-level security (run as the owner)")
    p.add_argument(
        "action", choices=("grant-agent", "grant-service", "revoke-agent", "revoke-service")
    )
    p.add_argument("agent_id", nargs="?", metavar="AGENT_ID", help="for grant-agent/revoke-agent")
    p.add_argument("--role", required=True, help="the login role (created if missing)")
    p.add_argument("--password-env", metavar="VAR", help="take a new role's password from $VAR")
    p.add_argument("--print-sql", action="store_true", help="print the SQL; change nothing")
    p.add_argument("--read-only", action="store_true", help="grant SELECT alone (no writes)")
    p.add_argument(
        "--erase", action="store_true", help="also grant UPDATE of the columns erase scrubs"
    )
    add("mcp", "serve one agent's memory over MCP stdio (see mempill mcp --help)")


def build_parser() -> Parser:
    parser = Parser(
        prog="mempill",
        description="An append-only, bi-temporal claim store for agent memory.",
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"mempill {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common(suppress=True)

    def add(name: str, about: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=about, description=about, parents=[common]
        )
        return sub

    _memory_commands(add)
    _travel_commands(add)
    _finding_commands(add)
    _store_commands(add)
    return parser


def handler(command: str) -> Handler:
    """The function for a command that runs on an open engine."""
    if command == "export":
        from mempill.cli.exports import export

        return export
    for module in (travel, finding):
        if command in module.COMMANDS:
            chosen: Handler = getattr(module, command)
            return chosen
    if command == "doctor":
        from mempill.cli.doctor import doctor

        return lambda session, _: doctor(session)
    found: Handler = getattr(commands, command)
    return found


def run(args: argparse.Namespace) -> Output:
    if args.pg and has_password(args.pg):
        terminal.warn("mempill", PASSWORD_IN_ARGUMENTS)
    target = resolve_target(args.db, args.pg)
    if target.kind == "sqlite-memory":
        raise ConfigError(f"no store: pass --db PATH or --pg DSN (or set {ENV_DB} / {ENV_PG})")
    agent = resolve_agent(args.agent)
    check_arguments(args)
    travel.check_travel_arguments(args)
    finding.check_finding_arguments(args)
    if args.command == "pg":
        from mempill.cli.pgroles import pg_roles

        return pg_roles(target, args)
    if args.command == "import":
        from mempill.cli.imports import import_stream

        return import_stream(target, agent, args)
    opened = open_target(target, create=args.command in CREATES, read_only=args.command in READS)
    with opened as engine:
        if agent is not None and args.command in OWNED:
            require_owner(engine, target, agent, "use --agent {owner}")
        session = Session(engine, target, agent or bound_agent(engine))
        return handler(args.command)(session, args)


def emit(output: Output, as_json: bool) -> None:
    """Print a result: JSON, or text with every control character escaped (`terminal`)."""
    if as_json and output.data is not None:
        print(terminal.json_text(output.data, indent=2))
    elif output.text:
        print(terminal.lines(output.text))


def fail(message: str, code: int = 1) -> int:
    print(f"mempill: error: {terminal.first_line(message, 'failed')}", file=sys.stderr)
    return code


def exit_code(error: MempillError) -> int:
    """The status of a mempill error: its nearest class in `EXIT`."""
    for kind in type(error).__mro__:
        if kind in EXIT:
            return EXIT[kind]
    return 1


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["mcp"]:
        from mempill.mcp import run as serve

        return serve(args_list[1:])
    for stream in (sys.stdout, sys.stderr):  # text from argv may hold undecodable bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(args_list)
    if args.command is None:
        build_parser().print_help()
        return 2
    with terminal.one_line_warnings("mempill"):
        return execute(args)


def execute(args: argparse.Namespace) -> int:
    """Run a parsed command: print its output, or one error line; the exit status."""
    try:
        output = run(args)
        emit(output, args.json)
        if output.exit_code:
            fail(output.error or "failed")
        return output.exit_code
    except BrokenPipeError:  # `mempill … | head`: the reader left; stop quietly, like SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MempillError as e:
        if os.environ.get("MEMPILL_DEBUG"):
            raise
        return fail(str(e) or type(e).__name__, exit_code(e))
    except OSError as e:  # a file the command reads or writes (export --out, …)
        if os.environ.get("MEMPILL_DEBUG"):
            raise
        return fail(str(e) or type(e).__name__, EXIT_STORAGE)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: still one line, the traceback on request
        if os.environ.get("MEMPILL_DEBUG"):
            raise
        message = f"internal error: {type(e).__name__}: {e} (MEMPILL_DEBUG=1 shows more)"
        return fail(message, EXIT_INTERNAL)


if __name__ == "__main__":
    raise SystemExit(main())
