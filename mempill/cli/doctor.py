"""`mempill doctor`: open a store, describe it, count its rows and check its integrity.

Everything is read-only: the store is opened read-only (a SQLite file `mode=ro` with no
migration, PostgreSQL in one read-only transaction), so doctor never changes a database,
its journal mode or a file of the folder that is not an agent store.

The consistency checks are the ones a reader of reference §1 would ask for and are the
same SQL on both backends: every agent's `stream_seq` is gap-free from 1, tx times
never go backwards along it, and every claim row has a ledger entry. SQLite adds
`PRAGMA integrity_check` and `foreign_key_check`; PostgreSQL reports its version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from mempill.cli.commands import Output, Session
from mempill.cli.tables import table
from mempill.cli.terminal import visible
from mempill.errors import StorageError
from mempill.secrets import redact

TABLES = ("claims", "ledger", "assertions", "edges", "pending_adjudications", "write_stats")
SQL = {
    "schema_version": "SELECT max(version) FROM schema_migrations",
    "ledger_runs": "SELECT agent_id, count(*), min(stream_seq), max(stream_seq) "
    "FROM ledger GROUP BY agent_id",
    "tx_backwards": "SELECT count(*) FROM (SELECT recorded_at, LAG(recorded_at) OVER "
    "(PARTITION BY agent_id ORDER BY stream_seq) AS previous FROM ledger) AS t "
    "WHERE previous IS NOT NULL AND recorded_at < previous",
    "claims_without_entry": "SELECT count(*) FROM claims AS c WHERE NOT EXISTS (SELECT 1 "
    "FROM ledger AS l WHERE l.agent_id = c.agent_id AND l.claim_ref = c.claim_ref "
    "AND l.event_kind = 'ClaimCommitted')",
    "pending_by_status": "SELECT status, count(*) FROM pending_adjudications GROUP BY status",
}
PRAGMAS = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "page_size")
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


class Connection(Protocol):
    """What sqlite3 and psycopg connections share: `execute(sql)` with `fetchall()`."""

    def execute(self, sql: str) -> Any: ...


@dataclass
class Report:
    """One database's findings."""

    facts: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {**self.facts, "counts": self.counts, "checks": self.checks, "ok": self.ok}


def _all(conn: Connection, sql: str) -> list[Any]:
    rows: list[Any] = conn.execute(sql).fetchall()
    return rows


def shared_checks(conn: Connection, report: Report) -> None:
    """Counts and the consistency checks common to both backends."""
    report.facts["schema_version"] = _all(conn, SQL["schema_version"])[0][0]
    for name in TABLES:
        report.counts[name] = int(_all(conn, f"SELECT count(*) FROM {name}")[0][0])
    pending = {str(s): int(n) for s, n in _all(conn, SQL["pending_by_status"])}
    report.facts["pending_adjudications"] = pending
    runs = _all(conn, SQL["ledger_runs"])
    report.facts["agents"] = sorted(str(r[0]) for r in runs)
    broken = [f"{a}: {n} entries, seq {lo}..{hi}" for a, n, lo, hi in runs if lo != 1 or hi != n]
    report.check(
        "stream_seq gap-free",
        not broken,
        "; ".join(broken) or f"{len(runs)} agent(s), every ledger numbered 1..n",
    )
    backwards = int(_all(conn, SQL["tx_backwards"])[0][0])
    report.check(
        "tx time ordered", backwards == 0, f"{backwards} entries earlier than the one before"
    )
    orphans = int(_all(conn, SQL["claims_without_entry"])[0][0])
    report.check(
        "claims in ledger", orphans == 0, f"{orphans} claim rows without a ClaimCommitted entry"
    )


def sqlite_report(conn: Connection, path: str, bound: str | None) -> Report:
    report = Report(facts={"path": path})
    if bound is not None:
        report.facts["bound_agent"] = bound
    report.facts["sqlite_version"] = _all(conn, "SELECT sqlite_version()")[0][0]
    pragmas = {name: _all(conn, f"PRAGMA {name}")[0][0] for name in PRAGMAS}
    pragmas["synchronous"] = SYNCHRONOUS.get(pragmas["synchronous"], pragmas["synchronous"])
    report.facts["pragmas"] = pragmas
    shared_checks(conn, report)
    problems = [str(r[0]) for r in _all(conn, "PRAGMA integrity_check")]
    report.check("integrity_check", problems == ["ok"], "; ".join(problems[:5]))
    fk = _all(conn, "PRAGMA foreign_key_check")
    report.check("foreign_key_check", not fk, f"{len(fk)} violation(s)")
    return report


def sqlite_reports(session: Session) -> list[Report]:
    from mempill.stores.sqlite import SQLiteStore

    store = session.engine.store
    assert isinstance(store, SQLiteStore)
    if store.topology == "file":
        bound = store.bound_agent()
        # A single-file store has one connection whatever the agent named here.
        conn = store.connection_for(bound or "doctor")
        assert conn is not None
        return [sqlite_report(conn, str(store.database_path(bound or "doctor")), bound)]
    reports = []
    for agent in store.agents():
        path = str(store.database_path(agent))
        try:
            conn = store.connection_for(agent)
        except StorageError as e:  # say so, and go on with the other agents' files
            reports.append(Report(facts={"path": path}))
            reports[-1].check("opens read-only", False, str(e))
            continue
        if conn is not None:
            reports.append(sqlite_report(conn, path, None))
    return reports


def postgres_report(dsn: str) -> Report:
    """One read-only, repeatable-read transaction: the checks see one snapshot, and a role
    that may only SELECT (or a standby) can run them."""
    import psycopg

    from mempill.stores.postgres import translate

    try:
        with psycopg.connect(dsn) as conn:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            report = Report(facts={"location": redact(dsn)})
            report.facts["server_version"] = _all(conn, "SHOW server_version")[0][0]
            report.facts["schema"] = _all(conn, "SELECT current_schema()")[0][0]
            shared_checks(conn, report)
            conn.rollback()
    except psycopg.Error as e:
        raise translate(e) from e
    return report


def doctor(session: Session) -> Output:
    target = session.target
    if target.pg:
        reports = [postgres_report(target.pg)]
        backend = "postgres"
    else:
        reports = sqlite_reports(session)
        backend = "sqlite"
    ok = all(r.ok for r in reports)
    ignored = [{"path": path, "reason": why} for path, why in session.engine.ignored_files()]
    data = {
        "backend": backend,
        "store": target.describe(),
        "databases": [r.to_dict() for r in reports],
        "ignored_files": ignored,
        "ok": ok,
    }
    text = doctor_text(backend, target.describe(), reports, ok, ignored)
    if ok:
        return Output(data, text)
    failed = sorted({c["check"] for r in reports for c in r.checks if not c["ok"]})
    return Output(data, text, 1, f"doctor: failed checks: {', '.join(failed)}")


def doctor_text(
    backend: str, where: str, reports: list[Report], ok: bool, ignored: list[dict[str, str]]
) -> str:
    lines = [f"store: {where} ({backend})"]
    if not reports:
        lines.append("no agent databases yet")
    if ignored:
        lines.append("")
        lines.append(f"ignored {len(ignored)} file(s) that are not agent stores:")
        skipped = [(os.path.basename(f["path"]), f["reason"]) for f in ignored]
        lines.append(table(("FILE (in the store's folder)", "WHY"), skipped))
    for report in reports:
        lines.append("")
        lines.extend(f"{key}: {_fact(value)}" for key, value in report.facts.items())
        if report.counts:
            lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in report.counts.items()))
        rows = [("ok" if c["ok"] else "FAIL", c["check"], c["detail"]) for c in report.checks]
        lines.append(table(("", "CHECK", "DETAIL"), rows))
    lines.append("")
    lines.append("all checks passed" if ok else "SOME CHECKS FAILED")
    return "\n".join(lines)


def _fact(value: Any) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    elif isinstance(value, list):
        text = ", ".join(map(str, value)) or "-"
    else:
        text = str(value)
    return visible(text)  # a path may hold a line break or an escape sequence
