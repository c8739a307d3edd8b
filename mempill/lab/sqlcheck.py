"""Hold the SQL fold to the engine: `belief_over` against `query_memory`, `history_over`
against `query_history`, line by line at many (as_of, valid_at) points.

`grid` picks the points from a store's own times (transaction times of its ledger, every
valid-time boundary and the instant just before it, the ends of time); `compare_belief`
and `compare_history` return one row per (point, line) with both answers and a `match`
column. The tests run them over the scenario corpus and generated workloads; the
notebooks show them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mempill.core.canonical import canonical_json
from mempill.core.dates import END_OF_TIME, MICROSECOND
from mempill.core.enums import Marker
from mempill.core.model import Projection
from mempill.engine import Engine

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

Line = tuple[str, str, str]
#: What `compare_belief` compares (columns of `belief_over`).
FIELDS = (
    "status", "reason", "value", "claim_ref", "valid_from", "valid_until", "candidates",
    "candidate_refs", "corroboration_count", "criticality", "currency", "markers",
    "inferred_values", "pending_refs",
)  # fmt: skip
#: Depend on the age of the claims at `as_of`, and so on the clock when `as_of` is None.
AGEING = frozenset({"currency"})
BEGINNING = datetime(1, 1, 1, tzinfo=END_OF_TIME.tzinfo)
NO_CLAIMS: dict[str, Any] = {
    **dict.fromkeys(FIELDS),
    "status": "NoBelief",
    "reason": "no_claims",
    "corroboration_count": 0,
    **{k: [] for k in ("candidates", "candidate_refs", "markers", "inferred_values")},
    "pending_refs": [],
}


def spread(values: Sequence[Any], count: int) -> list[Any]:
    """`count` values spread evenly over a sorted sequence, first and last included."""
    if len(values) <= count:
        return list(values)
    if count == 1:
        return [values[-1]]
    return list(
        dict.fromkeys(values[round(i * (len(values) - 1) / (count - 1))] for i in range(count))
    )


def _instants(series: Iterable[Any]) -> set[datetime]:
    import pandas as pd

    return {t.to_pydatetime() for t in series if not pd.isna(t)}


def grid(frames: dict[str, pd.DataFrame], *, as_of: int = 12, valid_at: int = 12) -> pd.DataFrame:
    """Points (as_of, valid_at): `as_of` tx times of the ledger (spread, the last one
    included) and None; `valid_at` valid-time boundaries, each also just before itself."""
    import pandas as pd

    from mempill.lab.ledgers import times

    txs = spread(sorted(_instants(frames["ledger"]["recorded_at"])), as_of)
    claims, assertions = frames["claims"], frames["assertions"]
    bounds = _instants(claims["valid_from"]) | _instants(claims["valid_until"])
    bounds |= _instants(assertions["bound_at"]) | {BEGINNING, END_OF_TIME}
    around = {b - MICROSECOND for b in bounds if b > BEGINNING} | bounds
    valid = spread(sorted(around), valid_at)
    rows = [(t, v) for t in [None, *txs] for v in valid]
    return pd.DataFrame(
        {"as_of": times([t for t, _ in rows]), "valid_at": times([v for _, v in rows])}
    )


def lines_of(frames: dict[str, pd.DataFrame]) -> list[Line]:
    """Every line with a claim (erased rows, subject '', excluded), sorted."""
    claims = frames["claims"]
    found = claims[claims["subject"] != ""][["agent_id", "subject", "predicate"]]
    return sorted({(str(a), str(s), str(p)) for a, s, p in found.itertuples(index=False)})


def from_projection(projection: Projection) -> dict[str, Any]:
    """The compared fields of an engine answer, in `belief_over`'s terms (canonical JSON)."""
    primary = projection.primary
    slots = projection.candidates
    return {
        "status": projection.status.value,
        "reason": projection.reason,
        "value": None if primary is None else canonical_json(primary.value),
        "claim_ref": None if primary is None else primary.claim_ref,
        "valid_from": None if primary is None else primary.valid_from,
        "valid_until": None if primary is None else primary.valid_until,
        "candidates": [canonical_json(s.value) for s in slots],
        "candidate_refs": [s.claim_ref for s in slots],
        "corroboration_count": projection.corroboration_count,
        "criticality": None if projection.criticality is None else projection.criticality.value,
        "currency": None if projection.currency is None else projection.currency.value,
        "markers": [m.value for m in projection.markers],
        "inferred_values": [canonical_json(s.value) for s in projection.inferred],
        "pending_refs": [s.claim_ref for s in projection.pending],
    }


def _unaged(answer: dict[str, Any]) -> dict[str, Any]:
    """Without what depends on the clock (for `as_of=None`: the engine's now vs DuckDB's)."""
    markers = [m for m in answer["markers"] if m != Marker.AGED_SET_MEMBER.value]
    return {**answer, "currency": None, "markers": markers}


def _query(con: duckdb.DuckDBPyConnection, sql: str, points: pd.DataFrame) -> list[dict[str, Any]]:
    name = "sqlcheck_points"
    con.register(name, points)
    try:
        relation = con.sql(sql.format(points=name))
        columns = relation.columns
        return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]
    finally:
        con.unregister(name)


def compare_belief(
    engine: Engine,
    con: duckdb.DuckDBPyConnection,
    points: pd.DataFrame,
    lines: Sequence[Line],
) -> pd.DataFrame:
    """One row per (point, line): `belief_over` and `query_memory`, and whether they match.

    Columns: as_of, valid_at, agent_id, subject, predicate, sql_status, engine_status,
    sql_value, engine_value, match, differs (the fields that differ, comma-separated)."""
    import pandas as pd

    found = {
        (r["as_of"], r["valid_at"], r["agent_id"], r["subject"], r["predicate"]): r
        for r in _query(con, "SELECT * FROM belief_over('{points}')", points)
    }
    rows = []
    for as_of, valid_at in points[["as_of", "valid_at"]].itertuples(index=False):
        at = None if pd.isna(as_of) else as_of.to_pydatetime()
        instant = valid_at.to_pydatetime()
        for agent, subject, predicate in lines:
            projection = engine.query_memory(agent, subject, predicate, as_of=at, valid_at=instant)
            expected = from_projection(projection)
            row = found.get((at, instant, agent, subject, predicate), NO_CLAIMS)
            got = {f: row[f] for f in FIELDS}
            if at is None:
                expected, got = _unaged(expected), _unaged(got)
            differs = [f for f in FIELDS if got[f] != expected[f]]
            rows.append(
                (at, instant, agent, subject, predicate, got["status"], expected["status"],
                 got["value"], expected["value"], not differs, ", ".join(differs))
            )  # fmt: skip
    columns = ["as_of", "valid_at", "agent_id", "subject", "predicate", "sql_status",
               "engine_status", "sql_value", "engine_value", "match", "differs"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def compare_history(
    engine: Engine,
    con: duckdb.DuckDBPyConnection,
    as_ofs: Sequence[datetime],
    lines: Sequence[Line],
) -> pd.DataFrame:
    """One row per (as_of, line): `history_over` and `query_history` as lists of
    (claim_ref, status, ingest, state, valid_from, valid_until) in order, and `match`."""
    import pandas as pd

    from mempill.lab.ledgers import times

    points = pd.DataFrame({"as_of": times(list(as_ofs)), "valid_at": times([None] * len(as_ofs))})
    found: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for r in _query(con, "SELECT * FROM history_over('{points}')", points):
        key = (r["as_of"], r["agent_id"], r["subject"], r["predicate"])
        found.setdefault(key, []).append(
            (r["claim_ref"], r["status"], r["ingest_disposition"], r["state"],
             r["valid_from"], r["valid_until"])
        )  # fmt: skip
    rows = []
    for at in as_ofs:
        for agent, subject, predicate in lines:
            history = engine.query_history(agent, subject, predicate, as_of=at)
            expected = [
                (e.claim_ref, e.status.value, e.ingest_disposition.value, e.state.value,
                 e.valid_from, e.valid_until)
                for e in history.entries
            ]  # fmt: skip
            got = found.get((at, agent, subject, predicate), [])
            rows.append((at, agent, subject, predicate, len(got), len(expected), got == expected))
    columns = ["as_of", "agent_id", "subject", "predicate", "sql_claims", "engine_claims", "match"]
    return pd.DataFrame(rows, columns=columns)
