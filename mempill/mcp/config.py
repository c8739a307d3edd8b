"""The MCP server's configuration, read once at start-up from flags and the environment.

`MEMPILL_AGENT_ID` is required: the server speaks for exactly one agent, and tools take
no agent argument, so an agent can never write into another agent's memory.
`MEMPILL_DB_PATH` / `MEMPILL_PG_DSN` choose the store (neither: in memory), and
`MEMPILL_READ_ONLY=1` opens an existing store read-only and leaves the write tools out.
`MEMPILL_ALLOW_ERASE=1` (or `--allow-erase`) adds the `erase` tool, which forgets for
good: without that explicit opt-in no client can erase anything.
Every problem is a ConfigError with a message that says which setting to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mempill.cli.target import (
    ENV_AGENT,
    ENV_DB,
    Target,
    resolve_agent,
    resolve_target,
    store_path,
)
from mempill.errors import ConfigError

ENV_READ_ONLY = "MEMPILL_READ_ONLY"
ENV_ALLOW_ERASE = "MEMPILL_ALLOW_ERASE"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    agent_id: str
    target: Target
    read_only: bool
    allow_erase: bool = False


def load_config(
    *,
    db: str | None = None,
    pg: str | None = None,
    agent: str | None = None,
    read_only: bool | None = None,
    allow_erase: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Flags win over the environment; a missing or invalid agent id is a ConfigError."""
    environ = os.environ if env is None else env
    agent_id = resolve_agent(agent, environ)
    if agent_id is None:
        raise ConfigError(
            f"{ENV_AGENT} is not set: the MCP server needs the id of the agent whose memory it "
            "serves (1-128 characters of [A-Za-z0-9_.-], e.g. MEMPILL_AGENT_ID=assistant)"
        )
    target = resolve_target(db, pg, environ)
    if read_only is None:
        read_only = _flag(environ.get(ENV_READ_ONLY, ""), ENV_READ_ONLY)
    if read_only and target.db and not store_path(target.db).exists():
        raise ConfigError(
            f"read-only mode needs an existing database, and {target.db!r} does not exist "
            f"(--db / {ENV_DB})"
        )
    if allow_erase is None:
        allow_erase = _flag(environ.get(ENV_ALLOW_ERASE, ""), ENV_ALLOW_ERASE)
    if allow_erase and read_only:
        raise ConfigError(
            f"--allow-erase / {ENV_ALLOW_ERASE} and read-only mode contradict each other: "
            "erasing writes to the store; drop one of them"
        )
    return ServerConfig(
        agent_id=agent_id, target=target, read_only=read_only, allow_erase=allow_erase
    )


def _flag(text: str, name: str) -> bool:
    folded = text.strip().casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ConfigError(f"{name}={text!r}: use 1/true/yes/on or 0/false/no/off")
