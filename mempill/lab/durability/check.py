"""The checks after every crash or power cut (issue 5): what survived, and is it sound?

1. every acknowledged claim is present, with its ledger entry at the acknowledged seq;
2. the ledger is gap-free (1, 2, 3, ...) and every claim row has its ledger entry
   (the atomic commit unit survived whole or not at all);
3. the store passes its integrity check (SQLite `PRAGMA integrity_check` and
   `foreign_key_check`; PostgreSQL amcheck plus foreign-key anti-joins);
4. the belief of every touched line equals the belief obtained by replaying exactly the
   surviving claims, in stream order at their tx times, into a fresh in-memory store;
5. the ledger digest (reference §9) recomputes: the replay, handed the recovered ledger's
   ids, rebuilds a ledger with the same digest as the recovered one;
6. where the writer acknowledged dispositions too (the multi-threaded writer), every
   acknowledged claim's ledger entry has the disposition its receipt said.

Every check takes the agent to check; a multi-agent store is checked agent by agent.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mempill.core.enums import EventKind
from mempill.core.model import ClaimRow, LedgerEntry
from mempill.engine import Engine
from mempill.ids import SeededIds
from mempill.lab.durability import workload
from mempill.stores.sqlite import SQLiteStore

Ack = tuple[str, int]  # (claim_ref, stream_seq) as the writer acknowledged it
AgentAck = tuple[str, str, int, str]  # (agent, claim_ref, stream_seq, disposition)


class ManualClock:
    """A clock the checker sets by hand: each replayed claim at its stored tx time."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    acked: int
    lost: int
    surviving_claims: int
    ledger_entries: int
    ledger_gap_free: bool
    orphan_claims: int
    integrity_ok: bool
    integrity_detail: str
    lines_checked: int
    belief_mismatches: int
    replay_mismatches: int
    digest_mismatches: int = 0  # agents whose ledger digest the replay does not rebuild
    disposition_mismatches: int = 0  # acknowledged claims stored with another disposition
    commits: int = 0  # surviving write transactions (write_stats rows, where recorded)

    @property
    def sound(self) -> bool:
        """Nothing acknowledged was lost and the store is consistent."""
        return (
            self.lost == 0
            and self.ledger_gap_free
            and self.orphan_claims == 0
            and self.integrity_ok
            and self.belief_mismatches == 0
            and self.digest_mismatches == 0
            and self.disposition_mismatches == 0
        )


def unreadable(acked: Sequence[Ack], detail: str) -> CheckResult:
    """The result when the store cannot be opened or read at all: an integrity failure
    in which nothing acknowledged can be shown to have survived."""
    return CheckResult(
        acked=len(acked),
        lost=len(acked),
        surviving_claims=0,
        ledger_entries=0,
        ledger_gap_free=False,
        orphan_claims=0,
        integrity_ok=False,
        integrity_detail=detail[:500],
        lines_checked=0,
        belief_mismatches=0,
        replay_mismatches=0,
    )


def sqlite_integrity(path: Path) -> tuple[bool, str]:
    """`PRAGMA integrity_check` and `foreign_key_check` on one database file."""
    if not path.exists():
        return True, "no database file"
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        found = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        keys = conn.execute("PRAGMA foreign_key_check").fetchall()
    except sqlite3.Error as e:
        return False, f"sqlite: {e}"
    finally:
        conn.close()
    if found != ["ok"]:
        return False, "; ".join(found[:5])
    if keys:
        return False, f"{len(keys)} foreign-key violations, e.g. {keys[0]}"
    return True, "ok"


class ReplayIds:
    """The recovered ledger's ids in the order ingest draws them (a queued claim's handle,
    then its entry id), so that a faithful replay rebuilds the same ledger, digest and all."""

    def __init__(self, entries: Sequence[LedgerEntry]) -> None:
        self._ids: deque[str] = deque()
        for e in entries:
            handle = e.rationale.get("handle_id")
            if handle is not None:
                self._ids.append(str(handle))
            self._ids.append(e.entry_id)
        self._spare = SeededIds("durability-replay")

    def __call__(self) -> str:
        return self._ids.popleft() if self._ids else self._spare()


def _stored(engine: Engine, agent: str) -> tuple[list[ClaimRow], list[LedgerEntry]]:
    with engine.store.read(agent) as reader:
        claims = [c for s, p in reader.lines() for c in reader.line(s, p).claims]
        entries = list(reader.ledger())
    return sorted(claims, key=lambda c: c.stream_seq), entries


def _lost(acked: Sequence[Ack], claims: Sequence[ClaimRow], entries: Sequence[LedgerEntry]) -> int:
    present = {c.claim_ref for c in claims}
    by_seq = {e.stream_seq: e.claim_ref for e in entries}
    return sum(1 for ref, seq in acked if ref not in present or by_seq.get(seq) != ref)


def replay(
    claims: Sequence[ClaimRow], entries: Sequence[LedgerEntry], agent: str = workload.AGENT
) -> tuple[Engine, int]:
    """A fresh in-memory engine fed exactly `claims`, in stream order at their tx times;
    also how many claims got another disposition or tx time than the recovered ledger."""
    clock = ManualClock(workload.START)
    engine = Engine(SQLiteStore(), clock=clock, ids=ReplayIds(entries))
    decided = {
        e.claim_ref: e.disposition
        for e in reversed(entries)
        if e.event_kind is EventKind.CLAIM_COMMITTED
    }
    mismatches = 0
    for claim in claims:
        clock.at = claim.tx_time
        receipt = engine.ingest(workload.replay_request(claim))
        if receipt.disposition is not decided.get(claim.claim_ref):
            mismatches += 1
    with engine.store.read(agent) as reader:
        for claim in claims:
            replayed = reader.claim(claim.claim_ref)
            if replayed is None or replayed.tx_time != claim.tx_time:
                mismatches += 1
    clock.at = workload.CHECK_AT
    return engine, mismatches


def belief_mismatches(
    recovered: Engine,
    replayed: Engine,
    lines: Iterable[tuple[str, str]],
    agent: str = workload.AGENT,
) -> tuple[int, int]:
    """(lines checked, lines whose projection differs at any probe of valid time)."""
    checked = differing = 0
    for subject, predicate in lines:
        checked += 1
        for valid_at in workload.VALID_PROBES:
            left = recovered.query_memory(agent, subject, predicate, valid_at=valid_at)
            right = replayed.query_memory(agent, subject, predicate, valid_at=valid_at)
            if left.to_dict() != right.to_dict():
                differing += 1
                break
    return checked, differing


def _disposition_mismatches(entries: Sequence[LedgerEntry], dispositions: Mapping[str, str]) -> int:
    """Acknowledged claims whose recovered ledger entry has another disposition than their
    receipt (a claim that is missing altogether counts as lost, not here)."""
    stored = {
        e.claim_ref: e.disposition.value
        for e in entries
        if e.claim_ref is not None and e.claim_ref in dispositions
    }
    return sum(1 for ref, value in stored.items() if dispositions[ref] != value)


def check(
    recovered: Engine,
    acked: Sequence[Ack],
    integrity: Callable[[], tuple[bool, str]],
    *,
    agent: str = workload.AGENT,
    dispositions: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run every check on one agent of a recovered store (its engine's clock must read
    CHECK_AT); `dispositions` maps acknowledged claim_refs to their receipts' dispositions."""
    ok, detail = integrity()
    claims, entries = _stored(recovered, agent)
    seqs = [e.stream_seq for e in entries]
    entry_refs = {e.claim_ref for e in entries}
    replayed, replay_errors = replay(claims, entries, agent)
    try:
        touched = sorted(set(workload.lines()) | {(c.subject, c.predicate) for c in claims})
        checked, differing = belief_mismatches(recovered, replayed, touched, agent)
        digest_ok = recovered.ledger_digest(agent) == replayed.ledger_digest(agent)
    finally:
        replayed.close()
    return CheckResult(
        acked=len(acked),
        lost=_lost(acked, claims, entries),
        surviving_claims=len(claims),
        ledger_entries=len(entries),
        ledger_gap_free=seqs == list(range(1, len(seqs) + 1)),
        orphan_claims=sum(1 for c in claims if c.claim_ref not in entry_refs),
        integrity_ok=ok,
        integrity_detail=detail,
        lines_checked=checked,
        belief_mismatches=differing,
        replay_mismatches=replay_errors,
        digest_mismatches=0 if digest_ok else 1,
        disposition_mismatches=_disposition_mismatches(entries, dispositions or {}),
        commits=len(recovered.write_stats(agent)),
    )
