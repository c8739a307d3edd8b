"""The 0.4 wheel's oracle convention adapted to the engine's `OraclePort`.

The wheel called `oracle.request_adjudication(agent_id, request_dict)` and used the
string it returned as the adjudication handle. The engine mints the handle itself
(from its id factory, inside the transaction that writes the outbox row) and tells the
oracle after the commit. The adapter passes the wheel-shaped request (which carries the
engine's `handle_id`) and remembers the oracle's returned string as an alias, so
`submit_adjudication` accepts either. Aliases live in memory: after a restart, use the
`handle_id` of `list_pending_adjudications`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from mempill.compat.shapes import adjudication_request
from mempill.core.model import AdjudicationRequest
from mempill.errors import ConfigError, NotFoundError

log = logging.getLogger("mempill.compat")


class HandleAliases:
    """Oracle-returned handle → engine handle. Thread-safe.

    An oracle that returns the same string for two different requests makes that string
    ambiguous; it then resolves to nothing rather than to the wrong adjudication.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._to_engine: dict[str, str] = {}
        self._to_oracle: dict[str, str] = {}
        self._ambiguous: set[str] = set()

    def add(self, oracle_handle: str, handle_id: str) -> None:
        with self._lock:
            if oracle_handle in self._ambiguous:
                return
            known = self._to_engine.get(oracle_handle)
            if known is not None and known != handle_id:
                log.warning("oracle returned handle %r twice; it is ambiguous", oracle_handle)
                self._ambiguous.add(oracle_handle)
                del self._to_engine[oracle_handle]
                return
            self._to_engine[oracle_handle] = handle_id
            self._to_oracle[handle_id] = oracle_handle

    def resolve(self, given: str) -> str:
        """The engine handle for `given` (an engine handle resolves to itself)."""
        with self._lock:
            if given in self._ambiguous:
                raise NotFoundError(
                    f"adjudication handle {given!r} was returned by the oracle for several "
                    "requests; use the handle_id from list_pending_adjudications"
                )
            return self._to_engine.get(given, given)

    def oracle_handle(self, handle_id: str) -> str | None:
        with self._lock:
            found = self._to_oracle.get(handle_id)
            return None if found in self._ambiguous else found


class WheelOracle:
    """An `OraclePort` over an object with the wheel's `request_adjudication(agent_id,
    request) -> handle`. Its exceptions reach the engine, which keeps the row pending
    and unnotified for `notify_pending` (the wheel failed the whole ingest instead)."""

    def __init__(self, oracle: Any, aliases: HandleAliases | None = None) -> None:
        if not callable(getattr(oracle, "request_adjudication", None)):
            raise ConfigError(
                "oracle: expected an object with request_adjudication(agent_id, request) "
                f"-> handle, got {type(oracle).__name__}"
            )
        self.oracle = oracle
        self.aliases = aliases or HandleAliases()

    def request_adjudication(self, handle_id: str, request: AdjudicationRequest) -> None:
        payload = adjudication_request(request.payload, handle_id)
        returned = self.oracle.request_adjudication(request.agent_id, payload)
        if isinstance(returned, str) and returned and returned != handle_id:
            self.aliases.add(returned, handle_id)
        elif returned is not None and not isinstance(returned, str):
            log.info("oracle returned %r for %s; not a handle, ignored", returned, handle_id)
