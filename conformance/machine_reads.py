"""The differential machine's reads: point queries, snapshots, timelines, the changes feed.

A mixin of `conformance.machine.DifferentialMachine` (which holds the sessions, `run` and
the step bookkeeping), kept apart so each file stays readable. The vocabulary every rule
draws from — few agents, subjects and predicates so that lines collide, and the instants
that windows and queries use — lives here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hypothesis.strategies as st
from hypothesis.stateful import precondition, rule

if TYPE_CHECKING:
    from conformance.session import HarnessSession

AGENTS = ("a1", "a2")
SUBJECTS = ("s1", "s2")
PREDICATES = ("p1", "p2")
DATES = ("2020", "2020-07-01", "2021", "2022-03", "2026-01-01T00:01:00Z", "2026-06")
#: Strategies drawn inside rules are built once (see machine.py).
BOOLEANS = st.booleans()
AGENT = st.sampled_from(AGENTS)
SUBJECT = st.sampled_from(SUBJECTS)
PREDICATE = st.sampled_from(PREDICATES)
DATE = st.sampled_from(DATES)
#: Valid-time ranges of a timeline: open, half-open, closed (start before end).
RANGE = st.sampled_from(
    (
        (None, None),
        ("2020-07-01", None),
        (None, "2022-03"),
        ("2020", "2021"),
        ("2020-07-01", "2026-06"),
    )
)
CURSOR = st.sampled_from((None, None, 1, 3, 6))
#: Query words: whole words and prefixes of the keys and values the machine writes.
QUERY = st.sampled_from(("p1", "p", "s2", "s", "x", "y", "k", "m", "1", "p2 x", "zzz"))
LIMIT = st.integers(1, 3)


class ReadRules:
    """Rules that read; every one waits for the first claim (`written`)."""

    sessions: dict[str, HarnessSession]
    snapshots: dict[str, list[str]]
    written: int

    run: Callable[[dict[str, Any]], Any]  # the machine's differential step
    _label: Callable[[], str]  # `$n` of the operation just run

    def _instants(self, data: st.DataObject, agent: str | None = None) -> dict[str, str]:
        """An `as_of` (an earlier clock reading or, for `agent`, one of its snapshots) and a
        `valid_at`, each drawn or left out."""
        readings = next(iter(self.sessions.values())).readings
        earlier = [f"@{i}" for i, moment in enumerate(readings, 1) if moment is not None]
        chosen: dict[str, str] = {}
        past: bool = data.draw(BOOLEANS)
        snaps = self.snapshots.get(agent or "", [])
        snapshot: bool = data.draw(BOOLEANS)
        if snaps and snapshot:
            chosen["as_of"] = data.draw(st.sampled_from(snaps))
        elif earlier and past:
            chosen["as_of"] = data.draw(st.sampled_from(earlier))
        if data.draw(BOOLEANS):
            chosen["valid_at"] = data.draw(DATE)
        return chosen

    @precondition(lambda self: self.written > 0)
    @rule(
        data=st.data(),
        agent=AGENT,
        subject=SUBJECT,
        predicate=PREDICATE,
        kind=st.sampled_from(("query_memory", "query_subject", "query_history")),
    )
    def query(
        self, data: st.DataObject, agent: str, subject: str, predicate: str, kind: str
    ) -> None:
        op: dict[str, Any] = {"op": kind, "agent_id": agent, "subject": subject}
        if kind != "query_subject":
            op["predicate"] = predicate
        instants = self._instants(data, agent)
        if kind == "query_history":
            instants.pop("valid_at", None)
        self.run({**op, **instants})

    @precondition(lambda self: self.written > 0)
    @rule(data=st.data(), history=st.booleans())
    def query_hot(self, data: st.DataObject, history: bool) -> None:
        """Reads of the hot line, where most collisions happen."""
        kind = "query_history" if history else "query_memory"
        self.query(data, "a1", SUBJECTS[0], PREDICATES[0], kind)

    @precondition(lambda self: self.written > 0)
    @rule(agent=AGENT)
    def snapshot(self, agent: str) -> None:
        """Name the agent's ledger position; later reads go back to it by `$label`."""
        self.run({"op": "snapshot", "agent_id": agent})
        self.snapshots.setdefault(agent, []).append(self._label())

    @precondition(lambda self: self.written > 0)
    @rule(data=st.data(), agent=AGENT, subject=SUBJECT, predicate=PREDICATE, window=RANGE)
    def timeline(
        self,
        data: st.DataObject,
        agent: str,
        subject: str,
        predicate: str,
        window: tuple[str | None, str | None],
    ) -> None:
        op: dict[str, Any] = {
            "op": "query_timeline",
            "agent_id": agent,
            "subject": subject,
            "predicate": predicate,
        }
        for key, moment in zip(("valid_from", "valid_until"), window, strict=True):
            if moment is not None:
                op[key] = moment
        instants = self._instants(data, agent)
        instants.pop("valid_at", None)
        self.run({**op, **instants})

    @precondition(lambda self: self.written > 0)
    @rule(data=st.data(), agent=AGENT, cursor=CURSOR, limit=LIMIT, one_subject=BOOLEANS)
    def changes(
        self,
        data: st.DataObject,
        agent: str,
        cursor: int | None,
        limit: int,
        one_subject: bool,
    ) -> None:
        """The changes feed after a snapshot or since an instant, optionally until one."""
        op: dict[str, Any] = {"op": "query_changes", "agent_id": agent, "limit": limit}
        lower = self._instants(data, agent).get("as_of")
        if lower is not None:
            op["after" if lower.startswith("$") else "since"] = lower
        upper = self._instants(data, agent).get("as_of")
        if upper is not None:
            op["until"] = upper
        if cursor is not None:
            op["cursor"] = cursor
        if one_subject:
            op["subject"] = SUBJECTS[0]
        self.run(op)

    @precondition(lambda self: self.written > 0)
    @rule(data=st.data(), agent=AGENT, text=QUERY, history=BOOLEANS, limit=LIMIT)
    def search(self, data: st.DataObject, agent: str, text: str, history: bool, limit: int) -> None:
        """Text search, now or at an earlier position / valid instant."""
        op: dict[str, Any] = {"op": "search", "agent_id": agent, "text": text, "limit": limit}
        if history:
            op["include_history"] = True
        self.run({**op, **self._instants(data, agent)})

    @precondition(lambda self: self.written > 0)
    @rule(agent=AGENT, subject=st.none() | SUBJECT, limit=LIMIT)
    def discover(self, agent: str, subject: str | None, limit: int) -> None:
        """Subjects (one page) and predicates (of a subject or all)."""
        self.run({"op": "list_subjects", "agent_id": agent, "limit": limit})
        op = {"op": "list_predicates", "agent_id": agent}
        self.run(op if subject is None else {**op, "subject": subject})
