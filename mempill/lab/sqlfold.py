"""The read fold (reference §5) in DuckDB SQL: claim views, belief and history of every line.

`belief_sql`, `history_sql` and `claim_views_sql` each return one SELECT over the loaded
tables (`claims`, `ledger`, `assertions`, as `mempill.lab.ledgers` registers them) for
the points of `points`: a relation with columns `as_of` (a transaction time, NULL: the
whole ledger) and `valid_at` (NULL: `as_of`, else now). `sqlviews` wraps them in table
macros. Each step mirrors the Python fold, and the tests hold every answer equal to
`Engine.query_memory` / `query_history` (docs/duckdb.md says what is compared):

* `views`: a claim's own ledger entries and validity assertions up to the cut
  (`core/view.py`): ingest and current disposition, denied, invalidated, trusted, the
  effective window (an active Bound cuts it; a Reopen pops the latest Bound, a Reopen
  with no Bound left is a no-op: the stack depth is the running sum of +1/-1 reflected at
  zero, and the active Bound is the last one that left the final depth).
* `belief`: the live claims whose window holds `valid_at`; the authoritative tier, else
  the inferred one; grouped by canonical value (`core/fold.py` `_belief`, `project`,
  `_markers`, `currency_of`).

The configuration the engine folds with (trust threshold, currency ages, depth cap) is
written into the SQL as constants. Where a SELECT reuses one of its own aliases, the alias
must not also be a column of its FROM (DuckDB resolves the column first): `live` spells
out `coalesce(a.invalidated, false)` for that reason.
"""

from __future__ import annotations

from datetime import timedelta

from mempill.core.config import EngineConfig
from mempill.core.view import OUT_OF_BELIEF, PENDING_INGEST


def _names(values: frozenset[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


_CHAIN = """
WITH pts AS (
    SELECT DISTINCT CAST(as_of AS TIMESTAMPTZ) AS as_of, CAST(valid_at AS TIMESTAMPTZ) AS valid_at
    FROM @POINTS@
), pt AS (
    SELECT as_of, coalesce(valid_at, as_of, now()) AS valid_at,
           coalesce(as_of, 'infinity'::TIMESTAMPTZ) AS cut, coalesce(as_of, now()) AS age_at
    FROM pts
), cuts AS (
    SELECT DISTINCT as_of, cut FROM pt
), c AS (
    SELECT k.cut, c.* FROM cuts k JOIN claims c ON c.tx_time <= k.cut WHERE c.subject <> ''
), e AS (
    SELECT k.cut, l.agent_id, l.claim_ref,
        arg_min(l.disposition::VARCHAR, l.stream_seq)
            FILTER (WHERE l.event_kind = 'ClaimCommitted') AS first_commit,
        arg_max(l.disposition::VARCHAR, l.stream_seq)
            FILTER (WHERE l.event_kind <> 'RecallReEntryDetected') AS last_state,
        bool_or(l.event_kind = 'AdjudicationResolved' AND l.disposition = 'Superseded') AS denied,
        max(l.stream_seq) FILTER (WHERE l.event_kind = 'DependentFlaggedPendingReview')
            AS review_seq
    FROM cuts k JOIN ledger l ON l.recorded_at <= k.cut
    WHERE l.claim_ref IS NOT NULL
    GROUP BY ALL
), a_walk AS (
    SELECT k.cut, a.agent_id, a.claim_ref, a.stream_seq, a.kind::VARCHAR AS kind,
        {'at': a.bound_at, 'granularity': a.bound_granularity::VARCHAR, 'handle': a.handle_id}
            AS bound,
        sum(CASE a.kind::VARCHAR WHEN 'Bound' THEN 1 WHEN 'Reopen' THEN -1 ELSE 0 END) OVER (
            PARTITION BY k.cut, a.agent_id, a.claim_ref ORDER BY a.stream_seq
            ROWS UNBOUNDED PRECEDING) AS walk
    FROM cuts k JOIN assertions a ON a.tx_time <= k.cut
), a_depth AS (
    SELECT *, walk - least(0, min(walk) OVER (
        PARTITION BY cut, agent_id, claim_ref ORDER BY stream_seq ROWS UNBOUNDED PRECEDING))
        AS depth
    FROM a_walk
), a_final AS (
    SELECT *, last_value(depth) OVER (
        PARTITION BY cut, agent_id, claim_ref ORDER BY stream_seq
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS final_depth
    FROM a_depth
), a AS (
    SELECT cut, agent_id, claim_ref, bool_or(kind = 'Invalidate') AS invalidated,
        arg_max(bound, stream_seq)
            FILTER (WHERE kind = 'Bound' AND depth = final_depth AND final_depth > 0) AS active
    FROM a_final GROUP BY ALL
), v AS (
    SELECT c.*,
        coalesce(e.first_commit, e.last_state, 'CommittedCheap') AS ingest,
        coalesce(e.last_state, ingest) AS state,
        coalesce(e.denied, false) AS denied,
        coalesce(a.invalidated, false) AS invalidated,
        ingest NOT IN (@OUT_OF_BELIEF@) AND NOT coalesce(a.invalidated, false)
            AND NOT coalesce(e.denied, false) AS live,
        ingest = 'CommittedInferred' AS inferred,
        c.valid_from IS NOT NULL AND c.valid_time_confidence >= @TRUST@ AS trusted,
        CASE WHEN trusted THEN c.valid_from END AS window_from,
        a.active.at AS active_bound,
        active_bound IS NOT NULL
            AND (NOT trusted OR c.valid_until IS NULL OR active_bound < c.valid_until) AS cut_short,
        CASE WHEN cut_short THEN active_bound WHEN trusted THEN c.valid_until END AS window_until,
        CASE WHEN cut_short THEN a.active.granularity
             WHEN trusted THEN c.valid_until_granularity::VARCHAR END AS until_granularity,
        coalesce(a.active.handle IS NOT NULL, false) AS bound_by_oracle,
        CASE WHEN state = 'PendingReview' THEN e.review_seq END AS review_flag_seq
    FROM c
    LEFT JOIN e ON e.cut = c.cut AND e.agent_id = c.agent_id AND e.claim_ref = c.claim_ref
    LEFT JOIN a ON a.cut = c.cut AND a.agent_id = c.agent_id AND a.claim_ref = c.claim_ref
), pv AS (
    SELECT p.as_of, p.valid_at, p.age_at, v.*,
        (v.window_from IS NULL OR v.window_from <= p.valid_at)
            AND (v.window_until IS NULL OR p.valid_at < v.window_until) AS holds
    FROM pt p JOIN v ON v.cut = p.cut
), lf AS (
    SELECT cut, as_of, valid_at, age_at, agent_id, subject, predicate,
        bool_or(live) AS has_live,
        coalesce(bool_or(live AND window_until <= valid_at), false) AS ended_before,
        coalesce(bool_or(live AND window_from > valid_at), false) AS starts_after,
        coalesce(bool_and(cardinality = 'SetValued') FILTER (WHERE live), false) AS set_valued,
        coalesce(bool_or(live AND holds AND NOT inferred), false) AS authoritative,
        coalesce(bool_or(live AND holds AND state = 'QueuedForAdjudication'), false) AS queued
    FROM pv GROUP BY ALL
), t AS (
    SELECT pv.*,
        row_number() OVER (
            PARTITION BY pv.cut, pv.valid_at, pv.agent_id, pv.subject, pv.predicate, pv.value
            ORDER BY pv.tx_time DESC, pv.stream_seq DESC) AS value_rank,
        row_number() OVER (
            PARTITION BY pv.cut, pv.valid_at, pv.agent_id, pv.subject, pv.predicate
            ORDER BY pv.tx_time DESC, pv.stream_seq DESC) AS line_rank
    FROM pv JOIN lf ON lf.cut = pv.cut AND lf.valid_at = pv.valid_at
        AND lf.agent_id = pv.agent_id AND lf.subject = pv.subject AND lf.predicate = pv.predicate
    WHERE pv.live AND pv.holds AND pv.inferred = NOT lf.authoritative
), g AS (
    SELECT cut, valid_at, age_at, agent_id, subject, predicate, value,
        min(stream_seq) AS first_seq,
        count(*) - 1 AS corroborations,
        max(tx_time) AS refreshed,
        bool_or(valid_from IS NOT NULL OR valid_until IS NOT NULL) AS has_time,
        bool_or(line_rank = 1) AS is_primary,
        any_value({'ref': claim_ref, 'from': window_from, 'until': window_until})
            FILTER (WHERE value_rank = 1) AS rep,
        max(CASE criticality::VARCHAR WHEN 'Low' THEN 1 WHEN 'Medium' THEN 2 WHEN 'High' THEN 3
            ELSE 4 END) AS crit,
        max(review_flag_seq) AS flag_seq,
        max(stream_seq) FILTER (WHERE NOT inferred AND review_flag_seq IS NULL) AS clean_seq,
        bool_or(provenance = 'RecallReEntry') AS recall,
        bool_or(derivation_depth IS NULL OR derivation_depth > @DEPTH_CAP@) AS low_anchor
    FROM t GROUP BY ALL
), gc AS (
    SELECT *,
        corroborations >= @BOOST@ AS boosted,
        greatest(epoch_us(age_at) - epoch_us(refreshed), 0) AS age_us,
        CASE WHEN age_us < (CASE WHEN boosted THEN @AGING2@ ELSE @AGING1@ END) THEN 'Fresh'
             WHEN age_us < (CASE WHEN boosted THEN @DECAY2@ ELSE @DECAY1@ END)
                THEN 'AgingUnconfirmed'
             ELSE 'Decayed' END AS currency,
        flag_seq IS NOT NULL AND (clean_seq IS NULL OR clean_seq <= flag_seq) AS review_open
    FROM g
), bl AS (
    SELECT lf.cut, lf.as_of, lf.valid_at, lf.agent_id, lf.subject, lf.predicate,
        any_value(lf.has_live) AS has_live, any_value(lf.ended_before) AS ended_before,
        any_value(lf.starts_after) AS starts_after, any_value(lf.set_valued) AS set_valued,
        any_value(lf.authoritative) AS authoritative, any_value(lf.queued) AS queued,
        count(g.first_seq) AS n_groups,
        coalesce(bool_or(g.has_time), false) AS has_time,
        list(g.value ORDER BY g.first_seq) FILTER (WHERE g.first_seq IS NOT NULL) AS vals,
        list(g.rep.ref ORDER BY g.first_seq) FILTER (WHERE g.first_seq IS NOT NULL) AS refs,
        any_value(g.rep) FILTER (WHERE g.is_primary) AS top,
        any_value(g.value) FILTER (WHERE g.is_primary) AS top_value,
        any_value(g.corroborations) FILTER (WHERE g.is_primary) AS top_corroborations,
        max(g.corroborations) AS most_corroborations,
        max(g.crit) AS crit,
        list(g.currency ORDER BY g.refreshed DESC, g.first_seq)[1] AS newest_currency,
        coalesce(bool_or(g.currency <> 'Fresh'), false) AS any_aged,
        coalesce(bool_or(g.review_open), false) AS review_open,
        coalesce(bool_or(g.recall), false) AS recall,
        coalesce(bool_or(g.low_anchor), false) AS low_anchor
    FROM lf LEFT JOIN gc g ON g.cut = lf.cut AND g.valid_at = lf.valid_at
        AND g.agent_id = lf.agent_id AND g.subject = lf.subject AND g.predicate = lf.predicate
    GROUP BY lf.cut, lf.as_of, lf.valid_at, lf.agent_id, lf.subject, lf.predicate
), pend AS (
    SELECT cut, valid_at, agent_id, subject, predicate,
        list(claim_ref ORDER BY stream_seq) AS pending_refs,
        list(value ORDER BY stream_seq) FILTER (WHERE ingest = 'PendingConflict') AS conflicts
    FROM pv WHERE ingest IN (@PENDING@) AND NOT invalidated AND holds
    GROUP BY ALL
), inf AS (
    SELECT cut, valid_at, agent_id, subject, predicate,
        list(value ORDER BY first_seq) AS inferred_values
    FROM (
        SELECT pv.cut, pv.valid_at, pv.agent_id, pv.subject, pv.predicate, pv.value,
            min(pv.stream_seq) AS first_seq
        FROM pv JOIN lf ON lf.cut = pv.cut AND lf.valid_at = pv.valid_at AND lf.agent_id =
            pv.agent_id AND lf.subject = pv.subject AND lf.predicate = pv.predicate
        WHERE lf.authoritative AND pv.live AND pv.holds AND pv.inferred
        GROUP BY ALL
    )
    GROUP BY ALL
), belief AS (
    SELECT bl.cut, bl.as_of, bl.valid_at, bl.agent_id, bl.subject, bl.predicate,
        CASE WHEN n_groups = 0 THEN 'NoBelief'
             WHEN n_groups = 1 THEN (CASE WHEN has_time THEN 'Resolved' ELSE 'TimingUncertain' END)
             WHEN set_valued THEN 'Resolved'
             ELSE 'Contested' END AS status,
        CASE WHEN n_groups > 0 THEN NULL
             WHEN NOT has_live THEN 'no_claims'
             WHEN ended_before AND starts_after THEN 'window_gap'
             WHEN starts_after THEN 'not_yet_valid'
             ELSE 'window_ended' END AS reason,
        status IN ('Resolved', 'TimingUncertain') AS has_primary,
        CASE WHEN has_primary THEN top_value END AS value,
        CASE WHEN has_primary THEN top.ref END AS claim_ref,
        CASE WHEN has_primary THEN top."from" END AS valid_from,
        CASE WHEN has_primary THEN top."until" END AS valid_until,
        coalesce(vals, []::VARCHAR[]) AS candidates,
        coalesce(refs, []::VARCHAR[]) AS candidate_refs,
        CASE WHEN has_primary THEN top_corroborations ELSE coalesce(most_corroborations, 0) END
            AS corroboration_count,
        (['Low', 'Medium', 'High', 'Critical'])[crit] AS criticality,
        newest_currency AS currency,
        list_concat(
            CASE WHEN queued THEN ['QueuedForAdjudication'] ELSE []::VARCHAR[] END,
            CASE WHEN conflicts IS NOT NULL
                      AND NOT list_has_all(coalesce(vals, []::VARCHAR[]), conflicts)
                 THEN ['PendingConflict'] ELSE []::VARCHAR[] END,
            CASE WHEN review_open THEN ['PendingReview'] ELSE []::VARCHAR[] END,
            CASE WHEN recall THEN ['RecallTainted'] ELSE []::VARCHAR[] END,
            CASE WHEN low_anchor THEN ['LowDerivationAnchor'] ELSE []::VARCHAR[] END,
            CASE WHEN n_groups > 1 AND status = 'Resolved' AND any_aged
                 THEN ['AgedSetMember'] ELSE []::VARCHAR[] END,
            CASE WHEN n_groups > 0 AND NOT authoritative THEN ['Inferred'] ELSE []::VARCHAR[] END
        ) AS markers,
        coalesce(inf.inferred_values, []::VARCHAR[]) AS inferred_values,
        coalesce(pend.pending_refs, []::VARCHAR[]) AS pending_refs
    FROM bl
    LEFT JOIN pend USING (cut, valid_at, agent_id, subject, predicate)
    LEFT JOIN inf USING (cut, valid_at, agent_id, subject, predicate)
)
"""

_BELIEF = """
SELECT as_of, valid_at, agent_id, subject, predicate, status, reason, value, claim_ref,
    valid_from, valid_until, candidates, candidate_refs, corroboration_count, criticality,
    currency, markers, inferred_values, pending_refs
FROM belief
ORDER BY as_of NULLS LAST, valid_at, agent_id, subject, predicate
"""

_HISTORY = """
SELECT pv.as_of, pv.agent_id, pv.subject, pv.predicate,
    row_number() OVER (
        PARTITION BY pv.cut, pv.agent_id, pv.subject, pv.predicate
        ORDER BY coalesce(pv.window_from, pv.tx_time), pv.tx_time, pv.stream_seq) AS position,
    pv.claim_ref, pv.value, pv.provenance, pv.criticality,
    pv.window_from AS valid_from, pv.window_until AS valid_until,
    pv.ingest AS ingest_disposition, pv.state,
    CASE WHEN pv.invalidated THEN 'Invalidated'
         WHEN pv.denied THEN 'Denied'
         WHEN pv.ingest = 'Quarantined' THEN 'Quarantined'
         WHEN pv.ingest IN (@PENDING@) THEN 'Pending'
         WHEN pv.holds AND t.claim_ref IS NOT NULL
            THEN (CASE WHEN b.status = 'Contested' THEN 'Contested' ELSE 'Current' END)
         WHEN pv.holds THEN 'Inferred'
         WHEN pv.window_from > pv.valid_at THEN 'Pending'
         WHEN pv.bound_by_oracle THEN 'Superseded'
         ELSE 'Ended' END AS status,
    pv.tx_time, pv.stream_seq
FROM pv
LEFT JOIN t ON t.cut = pv.cut AND t.valid_at = pv.valid_at AND t.agent_id = pv.agent_id
    AND t.claim_ref = pv.claim_ref
LEFT JOIN belief b ON b.cut = pv.cut AND b.valid_at = pv.valid_at AND b.agent_id = pv.agent_id
    AND b.subject = pv.subject AND b.predicate = pv.predicate
ORDER BY pv.as_of NULLS LAST, pv.agent_id, pv.subject, pv.predicate, position
"""

_CLAIM_VIEWS = """
SELECT k.as_of, v.agent_id, v.subject, v.predicate, v.claim_ref, v.value, v.cardinality,
    v.provenance, v.criticality, v.value_confidence, v.valid_time_confidence,
    v.valid_from, v.valid_until, v.tx_time, v.stream_seq, v.ingest, v.state, v.live,
    v.invalidated, v.denied, v.inferred, v.trusted, v.window_from, v.window_until,
    v.until_granularity, v.active_bound, v.bound_by_oracle, v.review_flag_seq
FROM cuts k JOIN v ON v.cut = k.cut
ORDER BY k.as_of NULLS LAST, v.agent_id, v.stream_seq
"""


def _micros(days: float) -> int:
    return timedelta(days=days) // timedelta(microseconds=1)


def _constants(config: EngineConfig) -> dict[str, str]:
    aging, decayed = config.aging_unconfirmed_threshold_days, config.decayed_threshold_days
    return {
        "@OUT_OF_BELIEF@": _names(frozenset(d.value for d in OUT_OF_BELIEF)),
        "@PENDING@": _names(frozenset(d.value for d in PENDING_INGEST)),
        "@TRUST@": f"CAST({float(config.valid_time_confidence_threshold)!r} AS DOUBLE)",
        "@DEPTH_CAP@": str(int(config.derivation_depth_cap_for_currency_boost)),
        "@BOOST@": str(int(config.corroboration_count_for_currency_boost)),
        "@AGING1@": str(_micros(aging)),
        "@AGING2@": str(_micros(aging * 2)),
        "@DECAY1@": str(_micros(decayed)),
        "@DECAY2@": str(_micros(decayed * 2)),
    }


def _sql(final: str, points: str, config: EngineConfig) -> str:
    text = _CHAIN + final
    for marker, value in {**_constants(config), "@POINTS@": points}.items():
        text = text.replace(marker, value)
    return text


def belief_sql(points: str, config: EngineConfig) -> str:
    """One row per (point, line with a claim visible at the point's `as_of`)."""
    return _sql(_BELIEF, points, config)


def history_sql(points: str, config: EngineConfig) -> str:
    """One row per (point, claim visible at `as_of`), statuses at `valid_at`."""
    return _sql(_HISTORY, points, config)


def claim_views_sql(points: str, config: EngineConfig) -> str:
    """One row per (distinct `as_of` of the points, claim visible then): the fold's views."""
    return _sql(_CLAIM_VIEWS, points, config)
