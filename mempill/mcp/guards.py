"""What every MCP tool shares: the engine and agent it serves, the owner check, and the
argument checks that run before anything is read (`guarded`, `date_arg`, `keys`).

Engine errors become tool errors with the engine's message, which names the argument;
no traceback reaches the client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from mempill.cli import checks
from mempill.cli.explain import belief_reason
from mempill.cli.target import ENV_AGENT, Target, require_owner
from mempill.core.dates import parse_lenient
from mempill.core.model import BeliefSlot, Projection
from mempill.engine import Engine
from mempill.errors import MempillError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T", bound="ToolBase")


class ToolBase:
    """One agent's engine (None when the server could not start) and its store's target."""

    def __init__(self, engine: Engine | None, agent_id: str, target: Target) -> None:
        self._engine = engine
        self.agent = agent_id
        self.target = target
        self._owned = False

    @property
    def engine(self) -> Engine:
        if self._engine is None:  # the server reports its start-up failure instead
            raise ToolError("mempill has no store open")
        return self._engine

    def check_owner(self) -> None:
        """A single-file store bound to another agent (say, by another process writing
        first after this server started) is an error, not an empty memory."""
        if not self._owned:
            fix = f"set {ENV_AGENT}={{owner}}"
            self._owned = require_owner(self.engine, self.target, self.agent, fix) == self.agent


def guarded(fn: Callable[Concatenate[T, P], R]) -> Callable[Concatenate[T, P], R]:
    """Check the store's owner, then run the tool; mempill errors become tool errors (the
    agent reads the message, not a traceback)."""

    @functools.wraps(fn)
    def wrapper(self: T, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            self.check_owner()
            return fn(self, *args, **kwargs)
        except MempillError as e:
            raise ToolError(str(e)) from e

    return wrapper


def date_arg(value: str | None, what: str) -> str | None:
    """Check a lenient date early so the error names the tool's own argument."""
    if value is not None:
        parse_lenient(checks.text(value, what), what)
    return value


def keys(subject: str, predicate: str | None = None) -> None:
    """The keys of a read: text a stored claim could have (else a tool error)."""
    checks.key(subject, "subject")
    if predicate is not None:
        checks.key(predicate, "predicate")


def compact(projection: Projection) -> dict[str, Any]:
    """A belief as an agent reads it: status, value, each candidate, status_reason."""
    return {
        "subject": projection.subject,
        "predicate": projection.predicate,
        "status": projection.status.value,
        "value": projection.value,
        "values": [slot_dict(slot) for slot in projection.candidates],
        "status_reason": belief_reason(projection),
        "markers": [m.value for m in projection.markers],
    }


def slot_dict(slot: BeliefSlot) -> dict[str, Any]:
    """One believed value: the value, its claim, window, source, confidence, currency."""
    return {
        "value": slot.value,
        "claim_ref": slot.claim_ref,
        "valid_from": slot.valid_from_display,
        "valid_until": slot.valid_until_display,
        "provenance": slot.provenance.value,
        "confidence": slot.value_confidence,
        "currency": slot.currency.value,
    }
