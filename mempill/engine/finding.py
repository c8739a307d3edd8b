"""Finding memories: discovery, text search, semantic search and reindexing (docs/search.md).

Every call parses its arguments first (a ValidationError touches no storage), reads the
clock once and runs in one read snapshot of one agent. Text search asks the word index
(`terms`) only for candidate lines; whether a line is a hit, and its score, is decided by
the rule of `core/search.py` on the line's belief as `query_memory` computes it, so every
backend returns the same hits in the same order.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mempill.core import parse
from mempill.core.enums import BeliefStatus, HistoryStatus
from mempill.core.fold import history
from mempill.core.limits import MAX_KEY_CHARS
from mempill.core.model import ClaimRow, Projection
from mempill.core.search import (
    MAX_QUERY_CHARS,
    PredicateCount,
    SearchHit,
    SearchResult,
    SubjectCount,
    SubjectsPage,
    capped_value_words,
    claim_terms,
    indexed_below,
    key_words,
    prefix_bounds,
    query_words,
    score,
)
from mempill.core.travel import Cut
from mempill.engine.batch import Batch
from mempill.engine.oracle import read_snapshot
from mempill.engine.runner import TransactionRunner
from mempill.engine.travel import read_cut
from mempill.errors import ConfigError, ValidationError
from mempill.ports import Reader, VectorPort

#: The largest page of `list_subjects`.
MAX_SUBJECTS_PAGE = 10_000
#: The most hits one search returns.
MAX_SEARCH_LIMIT = 1_000
#: Semantic search asks the vector port for this many neighbours per hit wanted (at least
#: SEMANTIC_MIN_K): several claims of one line, or claims no longer believed, take places.
SEMANTIC_FACTOR = 4
SEMANTIC_MIN_K = 64
#: History statuses whose values match with `include_history=True`: values the line
#: believed at some valid time. Invalidated, quarantined, denied and pending ones never do.
HISTORY_MATCHES = frozenset(
    {HistoryStatus.CURRENT, HistoryStatus.CONTESTED, HistoryStatus.ENDED, HistoryStatus.SUPERSEDED}
)

Line = tuple[str, str]


# ---------------------------------------------------------------- arguments


def _limit(value: Any, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValidationError(
            f"limit: expected an integer from 1 to {most:,}, got {parse.show(value)}"
        )
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{what}: expected True or False, got {parse.show(value)}")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    """None, or clean text of at most MAX_KEY_CHARS characters (empty allowed)."""
    if value is None:
        return None
    found = parse.text(value, what)
    if len(found) > MAX_KEY_CHARS:
        raise ValidationError(
            f"{what}: {len(found):,} characters; keys have at most {MAX_KEY_CHARS:,}"
        )
    return found


def _query(value: Any) -> str:
    found = parse.text(value, "text")
    if len(found) > MAX_QUERY_CHARS:
        raise ValidationError(
            f"text: {len(found):,} characters; a query has at most {MAX_QUERY_CHARS:,}"
        )
    return found


def _believes(belief: Projection) -> bool:
    return belief.status is not BeliefStatus.NO_BELIEF


# ---------------------------------------------------------------- discovery


def list_subjects(
    runner: TransactionRunner, agent_id: Any, prefix: Any, limit: Any, after: Any
) -> SubjectsPage:
    """The agent's subjects in code point order, `limit` a page; only the page's lines are
    folded (for the `believed` counts)."""
    agent = parse.agent_id(agent_id)
    start = _optional_text(prefix, "prefix")
    cursor = _optional_text(after, "after")
    most = _limit(limit, MAX_SUBJECTS_PAGE)
    now = runner.clock()

    def read(reader: Reader) -> SubjectsPage:
        by_subject: dict[str, list[str]] = {}
        for s, p in reader.lines():
            if start is not None and not s.startswith(start):
                continue
            if cursor is not None and s <= cursor:
                continue
            by_subject.setdefault(s, []).append(p)
        subjects = sorted(by_subject)
        page = subjects[:most]
        found = tuple(
            SubjectCount(
                subject=s,
                lines=len(by_subject[s]),
                believed=sum(
                    _believes(runner.project(reader, agent, s, p, None, None, now))
                    for p in by_subject[s]
                ),
            )
            for s in page
        )
        more = len(subjects) > most
        return SubjectsPage(agent_id=agent, subjects=found, next_cursor=page[-1] if more else None)

    return read_snapshot(runner, agent, read)


def list_predicates(
    runner: TransactionRunner, agent_id: Any, subject: Any
) -> tuple[PredicateCount, ...]:
    """The predicates in use (of `subject`, or of every subject) in code point order, each
    with its lines and how many believe something now (every such line is folded)."""
    agent = parse.agent_id(agent_id)
    only = None if subject is None else parse.key(subject, "subject")
    now = runner.clock()

    def read(reader: Reader) -> tuple[PredicateCount, ...]:
        lines: list[Line] = (
            list(reader.lines())
            if only is None
            else [(only, p) for p in reader.predicates(only, None)]
        )
        counts: dict[str, list[int]] = {}
        for s, p in lines:
            count = counts.setdefault(p, [0, 0])
            count[0] += 1
            count[1] += _believes(runner.project(reader, agent, s, p, None, None, now))
        return tuple(
            PredicateCount(predicate=p, lines=counts[p][0], believed=counts[p][1])
            for p in sorted(counts)
        )

    return read_snapshot(runner, agent, read)


# ---------------------------------------------------------------- search


def search(
    runner: TransactionRunner,
    vector: VectorPort,
    agent_id: Any,
    text: Any,
    *,
    limit: Any = 20,
    as_of: Any = None,
    valid_at: Any = None,
    include_history: Any = False,
    semantic: Any = False,
) -> SearchResult:
    """Text search (the rule of core/search.py), or semantic search over the vector port."""
    agent = parse.agent_id(agent_id)
    query = _query(text)
    found_words = query_words(query)
    most = _limit(limit, MAX_SEARCH_LIMIT)
    wide = _flag(include_history, "include_history")
    by_meaning = _flag(semantic, "semantic")
    cut = read_cut(as_of, agent, "as_of")
    valid = parse.optional_moment(valid_at, "valid_at")
    if by_meaning:
        if not query.strip():
            raise ValidationError("text: must not be blank")
    elif not found_words:
        raise ValidationError(
            "text: no word to search for (words are letters and digits; punctuation alone "
            "matches nothing)"
        )
    now = runner.clock()
    finder = _Finder(runner, agent, cut, valid, now, wide)
    if by_meaning:
        pairs = _nearest(vector, agent, query, max(most * SEMANTIC_FACTOR, SEMANTIC_MIN_K))
        hits = read_snapshot(runner, agent, lambda r: finder.by_meaning(r, pairs, most))
    else:
        hits = read_snapshot(runner, agent, lambda r: finder.by_words(r, found_words, most))
    return SearchResult(
        agent_id=agent, query=query, words=found_words, semantic=by_meaning, hits=hits
    )


def _nearest(vector: VectorPort, agent: str, query: str, k: int) -> tuple[tuple[str, float], ...]:
    """The port's nearest claims, checked: (claim_ref, finite similarity) pairs."""
    nearest: Callable[[str, str, int], Sequence[tuple[str, float]]] | None = getattr(
        vector, "nearest", None
    )
    if not callable(nearest):
        raise ConfigError(
            "semantic search needs a vector port with nearest(): open the engine with "
            "vector=... (e.g. mempill.vectors.ExactIndex(embedder))"
        )
    found = []
    for pair in nearest(agent, query, k):
        ref, similarity = pair
        if not isinstance(ref, str) or not isinstance(similarity, (int, float)):
            raise ConfigError(f"vector port: nearest() gave {parse.show(pair)}, not (ref, float)")
        if math.isfinite(similarity):
            found.append((ref, float(similarity)))
    return tuple(found)


class _Finder:
    """One search's fold of candidate lines in one read snapshot."""

    def __init__(
        self,
        runner: TransactionRunner,
        agent: str,
        cut: Cut | None,
        valid: datetime | None,
        now: datetime,
        wide: bool,
    ) -> None:
        self.runner, self.agent, self.cut, self.valid = runner, agent, cut, valid
        self.now, self.wide = now, wide

    def belief(self, reader: Reader, line: Line) -> Projection:
        return self.runner.project(reader, self.agent, *line, self.cut, self.valid, self.now)

    def history_values(self, reader: Reader, line: Line) -> list[tuple[str, Any]]:
        """(claim_ref, value) of each claim the line believed at some valid time."""
        with self.runner.line(reader, self.agent, *line, self.cut) as folded:
            found = history(
                folded,
                agent_id=self.agent,
                subject=line[0],
                predicate=line[1],
                as_of=None if self.cut is None else self.cut.at,
                now=self.now,
                config=self.runner.config,
            )
        return [(e.claim_ref, e.value) for e in found.entries if e.status in HISTORY_MATCHES]

    def by_words(self, reader: Reader, query: tuple[str, ...], most: int) -> tuple[SearchHit, ...]:
        """The hits, best first. Candidates are folded in order of the score their index
        terms allow (an upper bound of the line's score), until no remaining one can enter."""
        bounds: dict[Line, int] = {}
        recent = self.unindexed(reader)
        for word in query:
            gains: dict[Line, int] = {}
            low, high = prefix_bounds(word)
            found = list(reader.term_lines(low, high))
            found += [(s, p, t) for (s, p), terms in recent for t in terms if low <= t < high]
            for s, p, term in found:
                gain = 2 if term == word else 1
                if gains.get((s, p), 0) < gain:
                    gains[(s, p)] = gain
            for line, gain in gains.items():
                bounds[line] = bounds.get(line, 0) + gain
        ranked: list[tuple[int, str, str]] = []  # (-score, subject, predicate), best first
        hits: dict[Line, SearchHit] = {}
        waiting = [(-bound, s, p) for (s, p), bound in bounds.items()]
        heapq.heapify(waiting)  # popped best first: the order need not be sorted in full
        while waiting:
            candidate = heapq.heappop(waiting)
            if len(ranked) >= most and candidate > ranked[most - 1]:
                break  # neither this line nor any after it can enter the page
            line = (candidate[1], candidate[2])
            hit = self.word_hit(reader, line, query)
            if hit is not None:
                bisect.insort(ranked, (-int(hit.score), *line))
                hits[line] = hit
        return tuple(hits[(s, p)] for _, s, p in ranked[:most])

    def unindexed(self, reader: Reader) -> list[tuple[Line, tuple[str, ...]]]:
        """The line and terms of each claim of the head's block: the claims the word index
        holds only once the head leaves the block (none when it holds every claim)."""
        block = self.runner.store.index_block
        if not block:
            return []
        head = reader.head()[0]
        claims = reader.recorded_claims(indexed_below(head, block), head + 1)
        return [((s, p), claim_terms(s, p, value)) for _, s, p, value in claims]

    def word_hit(self, reader: Reader, line: Line, query: tuple[str, ...]) -> SearchHit | None:
        belief = self.belief(reader, line)
        values = [slot.value for slot in belief.candidates] if _believes(belief) else []
        if self.wide:
            values += [value for _, value in self.history_values(reader, line)]
        if not values:  # the line believes nothing (ever, with include_history)
            return None
        found = set(key_words(line[0])) | set(key_words(line[1]))
        for value in values:
            found.update(capped_value_words(value))
        points = score(query, found)
        if points <= 0:
            return None
        matched = tuple(w for w in query if any(x.startswith(w) for x in found))
        return SearchHit(
            subject=line[0], predicate=line[1], score=float(points), matched=matched, belief=belief
        )

    def by_meaning(
        self, reader: Reader, pairs: tuple[tuple[str, float], ...], most: int
    ) -> tuple[SearchHit, ...]:
        """The lines of the nearest claims that the belief (or, wide, the history) holds,
        each scored by its best similarity."""
        near: dict[Line, list[tuple[str, float]]] = {}
        for ref, similarity in pairs:
            row: ClaimRow | None = reader.claim(ref)
            if row is None or row.agent_id != self.agent:  # erased or unknown
                continue
            near.setdefault((row.subject, row.predicate), []).append((ref, similarity))
        found: list[SearchHit] = []
        for line, refs in near.items():
            belief = self.belief(reader, line)
            allowed = {r for slot in belief.candidates for r in slot.claim_refs}
            if not _believes(belief):
                allowed.clear()
            if self.wide:
                allowed.update(ref for ref, _ in self.history_values(reader, line))
            scores = [similarity for ref, similarity in refs if ref in allowed]
            if scores:
                found.append(
                    SearchHit(
                        subject=line[0],
                        predicate=line[1],
                        score=max(scores),
                        matched=(),
                        belief=belief,
                    )
                )
        found.sort(key=lambda h: (-h.score, h.subject, h.predicate))
        return tuple(found[:most])


# ---------------------------------------------------------------- reindex


def reindex(runner: TransactionRunner, vector: VectorPort, agent_id: Any) -> int:
    """Rebuild the agent's word index in one write transaction (its rows deleted, every
    claim's written again), then give every claim to the vector port; the claims indexed."""
    runner.writable("reindex")
    agent = parse.agent_id(agent_id)
    if read_snapshot(runner, agent, lambda r: r.head()[0]) == 0:
        return 0  # no ledger: nothing to index, and no agent database to create

    def work(batch: Batch) -> tuple[ClaimRow, ...]:
        txn = batch.txn
        txn.delete_terms()
        rows = tuple(row for row in txn.all_claims() if row.subject)  # erased: ''
        for row in rows:
            txn.append_terms(row.claim_ref, claim_terms(row.subject, row.predicate, row.value))
        return rows

    rows = runner.write(agent, work)[0]
    for row in rows:
        vector.index_claim(row)
    return len(rows)
