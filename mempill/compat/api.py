"""`mempill.compat`: the published 0.4 wheel's dict-in/dict-out API over the engine.

Callers of the wheel switch by changing their opener: `compat.open_in_memory()`,
`compat.open_for_agent(base_dir, agent_id)`, `compat.open_oracle_in_memory(oracle)`,
`compat.open_oracle_for_agent(base_dir, agent_id, oracle)`, `compat.open_postgres(dsn)`
or `compat.wrap(engine)` return a `CompatEngine` with the wheel's methods. Requests are
parsed by `compat.requests`, results rendered by `compat.shapes`; behaviour is the
engine's, which follows reference §11 where the wheel was wrong (restating corroborates,
audit is chronological and filtered before its limit, …). See docs/compat.md and docs/decisions.md.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mempill.clock import Clock, system_clock
from mempill.compat import requests as req
from mempill.compat import shapes
from mempill.compat.oracle import HandleAliases, WheelOracle
from mempill.core import parse
from mempill.core.config import EngineConfig
from mempill.core.dates import parse_lenient
from mempill.core.enums import AssertionKind, HistoryStatus
from mempill.core.model import ClaimRow, ValidityReceipt
from mempill.engine import Engine, RetryPolicy
from mempill.errors import ConfigError, StorageError, ValidationError
from mempill.ids import IdFactory, time_ordered_ids
from mempill.openers import open_default, open_default_in_memory
from mempill.openers import open_postgres as mempill_open_postgres

log = logging.getLogger("mempill.compat")
PathLike = str | os.PathLike[str]
#: How many ledger entries `query_audit` reads per page while seeking `from_tx_time`.
AUDIT_SEEK_PAGE = 500

__all__ = [
    "CompatEngine",
    "HandleAliases",
    "WheelOracle",
    "date_granularity_of",
    "open_for_agent",
    "open_in_memory",
    "open_oracle_for_agent",
    "open_oracle_in_memory",
    "open_postgres",
    "wrap",
]


class CompatEngine:
    """The wheel's `Engine`/`OracleEngine` methods over a typed `Engine` (`.engine`)."""

    def __init__(self, engine: Engine, aliases: HandleAliases | None = None) -> None:
        self.engine = engine
        self.aliases = aliases or HandleAliases()

    def __enter__(self) -> CompatEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.close()

    def __repr__(self) -> str:
        return f"<mempill.compat.CompatEngine backend={self.engine.store.backend!r}>"

    def _rows(self, agent_id: str, refs: Iterable[str]) -> dict[str, ClaimRow]:
        """Claim rows by ref (rows are immutable, so a later snapshot reads the same)."""
        wanted = set(refs)
        found = self.engine.read(agent_id, lambda r: {ref: r.claim(ref) for ref in wanted})
        return {ref: row for ref, row in found.items() if row is not None}

    # ------------------------------------------------------------ writes

    def ingest_claim(self, request: Any) -> dict[str, Any]:
        """Write one claim: `{claim_ref, disposition, contested_with, reason, …}`."""
        return shapes.receipt_dict(self.engine.ingest(req.ingest_request(request)))

    def assert_validity(self, request: Any) -> dict[str, Any]:
        """Bound / Reopen (and Invalidate) one claim; refusals come back as `Rejected`."""
        ask = req.assertion(request)
        if ask.kind is AssertionKind.BOUND:
            assert ask.at is not None and ask.granularity is not None
            done = self.engine.end(
                ask.agent_id,
                ask.target,
                ask.at,
                provenance=ask.provenance,
                confidence=ask.confidence,
            )
            effective = done.effective_at
            if done.no_op and effective is not None:  # as in the wheel: the bound in force
                done = replace(done, assertion_ref=self._bound_ref(ask.agent_id, done, effective))
            detail = {
                "bound_at": shapes.valid_text(parse.moment(ask.at, "at")),
                "bound_at_granularity": ask.granularity.value,
            }
        else:
            act = self.engine.reopen if ask.kind is AssertionKind.REOPEN else self.engine.invalidate
            done = act(ask.agent_id, ask.target, provenance=ask.provenance)
            effective = self._recorded_at(ask.agent_id, done)
            detail = {f"{ask.kind.value.lower()}_at": shapes.tx_text(effective)}
        text = shapes.valid_text if ask.kind is AssertionKind.BOUND else shapes.tx_text
        return {
            "claim_ref": done.claim_ref,
            "assertion_ref": done.assertion_ref,
            "kind": {ask.kind.value: detail},
            "effective_at": text(effective),
            "disposition": done.disposition.value,
            "no_op": done.no_op,
            "reason": done.reason,
        }

    def _bound_ref(self, agent_id: str, receipt: ValidityReceipt, at: datetime) -> str | None:
        """The ref of the Bound in force at `at` (what an idempotent repeat points to)."""
        assertions = self.engine.read(agent_id, lambda r: r.claim_assertions(receipt.claim_ref))
        bounds = [a for a in assertions if a.kind is AssertionKind.BOUND and a.bound_at == at]
        return bounds[-1].assertion_ref if bounds else None

    def _recorded_at(self, agent_id: str, receipt: ValidityReceipt) -> datetime | None:
        """The tx time of the ledger entry that recorded an assertion (None for a no-op)."""
        if receipt.assertion_ref is None:
            return None
        entries = self.engine.read(agent_id, lambda r: r.claim_entries(receipt.claim_ref))
        for entry in reversed(entries):
            if entry.rationale.get("assertion_ref") == receipt.assertion_ref:
                return entry.recorded_at
        return None

    # ------------------------------------------------------------ reads

    def query_memory(self, request: Any) -> dict[str, Any]:
        """`{"belief": {...}}` for one line at (`as_of_tx_time`, `valid_at`)."""
        ask = req.line_query(request, "query_memory", predicate=True)
        assert ask.predicate is not None
        belief = self.engine.query_memory(
            ask.agent_id, ask.subject, ask.predicate, as_of=ask.as_of, valid_at=ask.valid_at
        )
        rows = self._rows(ask.agent_id, shapes.belief_refs(belief))
        return {"belief": shapes.belief_dict(belief, rows)}

    def query_subject(self, request: Any) -> list[dict[str, Any]]:
        """One row per predicate of a subject, sorted by predicate."""
        ask = req.line_query(request, "query_subject", predicate=False)
        beliefs = self.engine.query_subject(
            ask.agent_id, ask.subject, as_of=ask.as_of, valid_at=ask.valid_at
        )
        refs = {s.claim_ref for b in beliefs for s in (*b.candidates, *b.members)}
        rows = self._rows(ask.agent_id, refs)
        return [shapes.subject_row(b, rows) for b in beliefs]

    def query_history(self, request: Any) -> dict[str, Any]:
        """`{"entries": [...]}`: every claim of the line (`as_of_tx_time` is optional)."""
        ask = req.line_query(request, "query_history", predicate=True, valid_at=False)
        assert ask.predicate is not None
        found = self.engine.query_history(ask.agent_id, ask.subject, ask.predicate, ask.as_of)
        line = self.engine.read(
            ask.agent_id, lambda r: r.line(found.subject, found.predicate, ask.as_of)
        )
        rows = {row.claim_ref: row for row in line.claims}
        return {
            "entries": [
                shapes.history_dict(
                    e, rows[e.claim_ref], [a for a in line.assertions if a.claim_ref == e.claim_ref]
                )
                for e in found.entries
            ]
        }

    def query_audit(self, request: Any) -> dict[str, Any]:
        """Ledger entries in ascending `stream_seq`, filtered (claim_ref, from_tx_time)
        before `limit`; `next_cursor` goes into `after_seq` for the next page."""
        ask = req.audit_query(request)
        after = ask.after_seq
        if ask.from_tx_time is not None:
            after = self._seek(ask.agent_id, ask.claim_ref, after, ask.from_tx_time)
        page = self.engine.query_audit(ask.agent_id, ask.claim_ref, after, ask.limit)
        return {
            "entries": [shapes.ledger_dict(e) for e in page.entries],
            "next_cursor": page.next_cursor,
        }

    def _seek(self, agent_id: str, ref: str | None, after: int, since: datetime) -> int:
        """The cursor just before the first entry recorded at or after `since`.

        Ledger tx times never decrease along stream_seq, so the entries from there on
        are exactly those recorded at or after `since`. This pages through the earlier
        ones: linear in the ledger, unlike every other compat call.
        """
        while True:
            page = self.engine.query_audit(agent_id, ref, after, AUDIT_SEEK_PAGE)
            for entry in page.entries:
                if entry.recorded_at >= since:
                    return entry.stream_seq - 1
            if page.next_cursor is None:
                return page.entries[-1].stream_seq if page.entries else after
            after = page.next_cursor

    def resolve_live_claim_for_line(
        self, agent_id: str, subject: str, predicate: str
    ) -> dict[str, Any]:
        """`single` when exactly one live claim holds the line's belief now, `empty` when
        none does, else `ambiguous` (a contest, a set, or a corroborated value)."""
        belief = self.engine.query_memory(agent_id, subject, predicate)
        refs = [ref for slot in belief.candidates for ref in slot.claim_refs]
        status = "empty" if not refs else "single" if len(refs) == 1 else "ambiguous"
        return {
            "status": status,
            "claim_ref": refs[0] if status == "single" else None,
            "live_count": len(refs) if status == "ambiguous" else None,
            "claim_refs": refs,
        }

    # ------------------------------------------------------------ the oracle loop

    def reconcile(self, request: Any) -> dict[str, Any]:
        """Queue an adjudication for each Contested line without one (never bounds).

        `outcomes` pairs every claim that holds a reconciled line's belief afterwards
        with its current state, e.g. `[ref, "QueuedForAdjudication"]` for an escalation.
        """
        agent_id, lines = req.reconcile_lines(request)
        report = self.engine.reconcile(agent_id, lines)
        outcomes: list[list[str]] = []
        for line in report.lines:
            found = self.engine.query_history(agent_id, line.subject, line.predicate)
            outcomes.extend(
                [e.claim_ref, e.state.value]
                for e in found.entries
                if e.status in (HistoryStatus.CURRENT, HistoryStatus.CONTESTED)
            )
        return {
            "outcomes": outcomes,
            "oracle_escalations": report.escalations,
            "lines": [line.to_dict() for line in report.lines],
            "notified": list(report.notified),
        }

    def submit_adjudication(self, request: Any) -> dict[str, Any]:
        """Apply a verdict; `handle_id` may be the engine's or the one the oracle returned."""
        ask = req.submission(request)
        handle = self.aliases.resolve(ask.handle_id)
        outcome = self.engine.submit_adjudication(handle, ask.verdict, ask.evidence)
        return shapes.outcome_dict(outcome, ask.handle_id)

    def list_pending_adjudications(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Pending outbox rows, oldest first (every agent when `agent_id` is None)."""
        return [
            shapes.pending_dict(p, self.aliases.oracle_handle(p.handle_id))
            for p in self.engine.list_pending(agent_id)
        ]

    def sweep_expired_adjudications(self) -> int:
        """Expire pending adjudications past their `expires_at`; returns how many."""
        return self.engine.sweep_expired()

    def notify_pending(self, agent_id: str | None = None) -> int:
        """Retry the oracle for rows it never acknowledged (not in the wheel)."""
        return self.engine.notify_pending(agent_id)


# ---------------------------------------------------------------- openers


def wrap(engine: Engine) -> CompatEngine:
    """The dict API over an existing engine (its wheel-oracle aliases, if it has them)."""
    if not isinstance(engine, Engine):
        raise ConfigError(f"wrap: expected a mempill Engine, got {type(engine).__name__}")
    oracle = engine.oracle
    return CompatEngine(engine, oracle.aliases if isinstance(oracle, WheelOracle) else None)


def _adapter(oracle: Any) -> WheelOracle | None:
    return None if oracle is None else WheelOracle(oracle)


def open_in_memory(
    *,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
) -> CompatEngine:
    """One in-memory database per agent; gone when closed (the wheel's `open_in_memory`)."""
    return wrap(open_default_in_memory(config=config, clock=clock, ids=ids, retry=retry))


def open_oracle_in_memory(
    oracle: Any,
    *,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
) -> CompatEngine:
    """In memory, with an oracle in the wheel's convention."""
    engine = open_default_in_memory(
        oracle=WheelOracle(oracle), config=config, clock=clock, ids=ids, retry=retry
    )
    return wrap(engine)


def open_for_agent(
    base_dir: PathLike,
    agent_id: str,
    *,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
) -> CompatEngine:
    """`base_dir/<agent_id>.db`, bound to `agent_id`: writes for another agent are
    Rejected (`write_authority`). `base_dir` must exist (StorageError, as in the wheel).
    The same file opens with `mempill.open_directory`."""
    return _open_agent_file(base_dir, agent_id, None, config, clock, ids, retry)


def open_oracle_for_agent(
    base_dir: PathLike,
    agent_id: str,
    oracle: Any,
    *,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
) -> CompatEngine:
    """`open_for_agent` with an oracle in the wheel's convention."""
    return _open_agent_file(base_dir, agent_id, oracle, config, clock, ids, retry)


def _open_agent_file(
    base_dir: PathLike,
    agent_id: str,
    oracle: Any,
    config: EngineConfig | None,
    clock: Clock,
    ids: IdFactory,
    retry: RetryPolicy | None,
) -> CompatEngine:
    agent = parse.agent_id(agent_id)
    adapter = _adapter(oracle)
    try:
        folder = Path(base_dir)
    except TypeError as e:
        raise ConfigError(f"base_dir: expected a path, got {type(base_dir).__name__}") from e
    if "\x00" in str(folder):
        raise ConfigError("base_dir: a path cannot contain U+0000")
    if not os.path.isdir(folder):  # as in the wheel: the directory must exist
        raise StorageError(
            f"base_dir: {str(folder)!r} is not an existing directory; create it first "
            "(mempill.open_directory(base_dir) creates it)"
        )
    legacy, warn = folder / f"agent_{agent}.db", False
    with contextlib.suppress(OSError):  # a path too long to look up: the opener says so
        warn = legacy.exists()
    if warn:
        log.warning(
            "%s is a mempill 0.4 database; it is not read or migrated (this store uses %s)",
            legacy,
            legacy.with_name(f"{agent}.db"),
        )
    path = folder / f"{agent}.db"
    engine = open_default(path, oracle=adapter, config=config, clock=clock, ids=ids, retry=retry)
    if not engine.store.may_write(agent):  # binds a new file to this agent
        engine.close()
        raise ConfigError(f"{path} belongs to another agent; it cannot be opened for {agent!r}")
    return wrap(engine)


def open_postgres(conninfo: str, oracle: Any = None, **options: Any) -> CompatEngine:
    """PostgreSQL (topology B); `options` go to `mempill.open_postgres` (an option it does
    not know is a ConfigError)."""
    known = set(inspect.signature(mempill_open_postgres).parameters) - {"conninfo", "oracle"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"open_postgres: unknown option(s) {', '.join(unknown)}")
    return wrap(mempill_open_postgres(conninfo, oracle=_adapter(oracle), **options))


def date_granularity_of(value: str) -> str | None:
    """The wheel's helper: `2024` → "year", `2024-09` → "month", `2024-09-15` → "day",
    RFC 3339 → "instant"; None when mempill's lenient parser does not accept it."""
    try:
        return parse_lenient(value, "date")[1].value
    except ValidationError:
        return None
