"""Finding memories (issue 18): discovery, text search, reindex, on every backend.

The word index only finds candidate lines; the rule of `mempill/core/search.py` decides the
hits on the belief `query_memory` gives. The property test holds every search to that rule
computed by brute force over every line, so a candidate the index misses fails it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import psycopg
import pytest
from conftest import START, Backend
from hypothesis import given
from support import AGENT, put, request
from test_properties import PROFILE

import mempill
from mempill import (
    BeliefStatus,
    ConfigError,
    Engine,
    HistoryStatus,
    SeededIds,
    SteppingClock,
    ValidationError,
)
from mempill.core.canonical import canonical_json
from mempill.core.model import ClaimRow, plain
from mempill.core.search import (
    INDEX_BLOCK,
    capped_value_words,
    indexed_below,
    key_words,
    query_words,
    score,
)

_agents = itertools.count()
ALLOWED = {HistoryStatus.CURRENT, HistoryStatus.CONTESTED, HistoryStatus.ENDED}
ALLOWED |= {HistoryStatus.SUPERSEDED}


def hits(result: Any) -> list[tuple[str, str, float, tuple[str, ...]]]:
    return [(h.subject, h.predicate, h.score, h.matched) for h in result]


def raw(backend: Backend, engine: Engine, sql: str, agent: str = AGENT) -> list[Any]:
    """SQL on the store itself (as its owner)."""
    if backend.is_postgres:
        assert backend.dsn is not None
        with psycopg.connect(backend.dsn, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []
    conn = engine.store.connection_for(agent)  # type: ignore[attr-defined]
    return list(conn.execute(sql).fetchall())


# ---------------------------------------------------------------- the acceptance points


def test_city_finds_home_city_accents_case_and_camel_case(engine: Engine) -> None:
    put(engine, "Zürich", "user", "home_city")
    put(engine, "blue", "user", "favouriteColor")
    assert hits(engine.search(AGENT, "city")) == [("user", "home_city", 2.0, ("city",))]
    assert hits(engine.search(AGENT, "ZURICH")) == [("user", "home_city", 2.0, ("zurich",))]
    assert hits(engine.search(AGENT, "zür")) == [("user", "home_city", 1.0, ("zur",))]
    assert hits(engine.search(AGENT, "favourite color")) == [
        ("user", "favouriteColor", 4.0, ("favourite", "color"))
    ]
    found = engine.search(AGENT, "user")
    assert [h.predicate for h in found] == ["favouriteColor", "home_city"]  # ties: code point
    (hit,) = engine.search(AGENT, "zurich", valid_at="2026-06-01")
    assert hit.belief == engine.query_memory(AGENT, "user", "home_city", valid_at="2026-06-01")
    assert engine.search(AGENT, "nowhere").hits == ()


def test_invalidated_quarantined_pending_and_erased_values_are_never_hits(
    engine: Engine,
) -> None:
    put(engine, "Oslo", "q", "line", valid_from="2024-01-01", valid_until="2023-01-01")
    put(engine, "Rome", "p", "line", value_confidence=0.1)  # PendingLowConfidence
    engine.invalidate(AGENT, put(engine, "Lima", "i", "line").claim_ref)
    put(engine, "Kyiv", "e", "line")
    engine.erase(AGENT, "e", reason="asked to")
    put(engine, "Oslo Rome Lima Kyiv", "kept", "other")
    assert engine.query_history(AGENT, "q", "line").entries[0].status is HistoryStatus.QUARANTINED
    for word in ("oslo", "rome", "lima", "kyiv", "line"):
        for wide in (False, True):
            found = hits(engine.search(AGENT, word, include_history=wide))
            assert [h[:2] for h in found] == ([] if word == "line" else [("kept", "other")])


def test_as_of_and_valid_at_change_the_hits_as_the_fold_says(engine: Engine) -> None:
    berlin = put(engine, "Berlin", "user", "city", valid_from="2010", valid_time_confidence=1.0)
    before = engine.snapshot(AGENT)
    engine.end(AGENT, berlin.claim_ref, "2020")
    put(engine, "Paris", "user", "city", valid_from="2020", valid_time_confidence=1.0)
    now = {w: hits(engine.search(AGENT, w)) for w in ("berlin", "paris")}
    assert now == {"berlin": [], "paris": [("user", "city", 2.0, ("paris",))]}
    wide = engine.search(AGENT, "berlin", include_history=True)
    assert [(h.subject, h.predicate) for h in wide] == [("user", "city")]
    for query, options in [
        ("berlin", {"valid_at": "2015-06-01"}),
        ("berlin", {"as_of": before}),
        ("berlin", {"as_of": before.token}),
        ("paris", {"as_of": before}),
        ("paris", {"valid_at": "2015-06-01"}),
        ("berlin", {"as_of": START, "valid_at": "2015"}),
    ]:
        options.setdefault("valid_at", "2026-06-01")  # else each call's clock reading
        belief = engine.query_memory(AGENT, "user", "city", **options)
        value = belief.value if belief.status is not BeliefStatus.NO_BELIEF else None
        found = engine.search(AGENT, query, **options)
        expected = [("user", "city")] if value == query.title() else []
        assert [(h.subject, h.predicate) for h in found] == expected, (query, options)
        assert [h.belief for h in found] == [belief] * len(expected)


def test_scores_order_and_limit(engine: Engine) -> None:
    put(engine, "x", "home", "city")  # home: 2 + city: 2
    put(engine, "x", "homes", "cityscape")  # 1 + 1
    put(engine, "x", "a", "home_city")  # 2 + 2
    put(engine, "the home city", "b", "note")  # value words: 2 + 2
    put(engine, "x", "c", "city")  # 0 + 2
    expected = [
        ("a", "home_city", 4.0, ("home", "city")),
        ("b", "note", 4.0, ("home", "city")),
        ("home", "city", 4.0, ("home", "city")),
        ("c", "city", 2.0, ("city",)),
        ("homes", "cityscape", 2.0, ("home", "city")),
    ]
    assert hits(engine.search(AGENT, "Home CITY home")) == expected
    for limit in range(1, 6):
        assert hits(engine.search(AGENT, "home city", limit=limit)) == expected[:limit]
    result = engine.search(AGENT, "home city")
    assert (result.words, result.semantic, result.query) == (("home", "city"), False, "home city")


def test_a_line_whose_index_promises_more_than_its_belief_does_not_take_the_page(
    engine: Engine,
) -> None:
    """The terms of an invalidated value put `z/home` first among the candidates (its
    bound is 4), but its belief scores 2: `y/homes_city` (3) still comes first."""
    engine.invalidate(AGENT, put(engine, "city", "z", "home").claim_ref)
    put(engine, "x", "z", "home")
    put(engine, "x", "y", "homes_city")
    expected = [("y", "homes_city", 3.0, ("home", "city")), ("z", "home", 2.0, ("home",))]
    assert hits(engine.search(AGENT, "home city")) == expected
    assert hits(engine.search(AGENT, "home city", limit=1)) == expected[:1]


@pytest.mark.parametrize(
    "call",
    [
        {"text": ""},
        {"text": "  ...  "},
        {"text": 5},
        {"text": None},
        {"text": "a\x00b"},
        {"text": "\ud800"},
        {"text": "x" * 10_001},
        {"limit": 0},
        {"limit": 1001},
        {"limit": True},
        {"limit": "3"},
        {"as_of": "yesterday-ish"},
        {"as_of": "snapshot:1@2026-01-01T00:00:00Z#000000000000"},
        {"valid_at": 12.5},
        {"include_history": "yes"},
        {"semantic": 1},
        {"agent_id": "../etc"},
    ],
)
def test_hostile_arguments_are_validation_errors(engine: Engine, call: dict[str, Any]) -> None:
    put(engine, "Paris")
    args = {"agent_id": AGENT, "text": "paris", **call}
    with pytest.raises(ValidationError):
        engine.search(args.pop("agent_id"), args.pop("text"), **args)


def test_semantic_search_without_a_vector_port_is_a_config_error(engine: Engine) -> None:
    put(engine, "Paris")
    with pytest.raises(ConfigError, match="vector port"):
        engine.search(AGENT, "paris", semantic=True)


class WordVectors:
    """A small exact vector port: similarity = shared words / query words (deterministic)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], set[str]] = {}
        self.forgotten: list[str] = []

    def index_claim(self, row: ClaimRow) -> None:
        self.rows[(row.agent_id, row.claim_ref)] = set(capped_value_words(json.loads(row.value)))

    def nearest(self, agent_id: str, text: str, k: int) -> list[tuple[str, float]]:
        asked = set(query_words(text))
        found = [
            (ref, len(asked & words) / len(asked))
            for (agent, ref), words in self.rows.items()
            if agent == agent_id and asked & words
        ]
        return sorted(found, key=lambda p: (-p[1], p[0]))[:k]

    def forget(self, agent_id: str, claim_refs: Sequence[str]) -> None:
        self.forgotten += claim_refs
        for ref in claim_refs:
            self.rows.pop((agent_id, ref), None)


def test_semantic_search_keeps_believed_claims_and_erasure_forgets(backend: Backend) -> None:
    vectors = WordVectors()
    engine = backend.open(vector=vectors)
    old = put(engine, "red apple", "fruit", "best", valid_from="2010", valid_time_confidence=1.0)
    engine.end(AGENT, old.claim_ref, "2020")
    put(engine, "green apple", "fruit", "best", valid_from="2020", valid_time_confidence=1.0)
    engine.invalidate(AGENT, put(engine, "red car", "car", "colour").claim_ref)
    secret = put(engine, "red wine", "bob", "drink").claim_ref
    found = engine.search(AGENT, "red apple", semantic=True)
    assert [(h.subject, h.score) for h in found] == [("bob", 0.5), ("fruit", 0.5)]
    wide = engine.search(AGENT, "red apple", semantic=True, include_history=True)
    assert [(h.subject, h.score) for h in wide] == [("fruit", 1.0), ("bob", 0.5)]
    engine.erase(AGENT, "bob", reason="asked to")
    assert vectors.forgotten == [secret]
    assert engine.search(AGENT, "red wine", semantic=True).hits == ()
    vectors.rows.clear()
    assert engine.reindex(AGENT) == 3  # the erased claim is not given again
    assert len(vectors.rows) == 3


# ---------------------------------------------------------------- identical on every backend

STREAM: list[tuple[str, Any]] = [
    ("put", ("Zürich", "user", "home_city", {"valid_from": "2019"})),
    ("put", (["tea", "coffee"], "user", "drinks", {"cardinality": "SetValued"})),
    ("put", ({"street": "Bahnhofstrasse", "n": 12}, "user", "address", {})),
    ("put", ("Paris", "bob", "home_city", {})),
    ("put", ("Lyon", "bob", "home_city", {})),  # contested with Paris
    ("put", ("Oslo", "bob", "workCity", {"valid_from": "2024", "valid_until": "2023"})),
    ("snapshot", None),
    ("put", ("Basel", "user", "home_city", {"valid_from": "2023"})),
    ("put", ("Ünïcödé street", "ü", "straße", {})),
]
QUERIES = [
    ("city", {}), ("zurich", {}), ("zurich", {"include_history": True}), ("street 12", {}),
    ("lyon paris", {}), ("oslo", {"include_history": True}), ("bas", {"valid_at": "2020"}),
    ("basel zurich", {"as_of": "$snap"}), ("unicode strasse", {}), ("c", {"limit": 2}),
]  # fmt: skip


def replay(engine: Engine) -> str:
    snap = None
    for kind, args in STREAM:
        if kind == "snapshot":
            snap = engine.snapshot(AGENT)
        else:
            value, subject, predicate, fields = args
            put(engine, value, subject, predicate, **fields)
    results: list[Any] = []
    for query, given_options in QUERIES:
        options = {k: snap if v == "$snap" else v for k, v in given_options.items()}
        results.append(plain(engine.search(AGENT, query, **options)))
    results.append(plain(engine.list_subjects(AGENT)))
    results.append(plain(engine.list_predicates(AGENT)))
    return canonical_json(results)


def test_a_stream_searches_identically_on_every_backend(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def make(name: str, dsn: str | None = None) -> Engine:
        options: dict[str, Any] = {
            "clock": SteppingClock(START),
            "ids": SeededIds(7),
        }
        if name == "sqlite-mem":
            return mempill.open_default_in_memory(**options)
        if name == "sqlite-file":
            return mempill.open_directory(tmp_path / "agents", **options)
        assert dsn is not None
        return mempill.open_postgres(dsn, pool_min_size=0, **options)

    from conftest import selected_backends

    outputs = {}
    for name in selected_backends():
        if name == "postgres":
            from mempill.lab.servers import fresh_schema

            server = request.getfixturevalue("postgres_server")
            with fresh_schema(server) as dsn, make(name, dsn) as engine:
                outputs[name] = replay(engine)
        else:
            with make(name) as engine:
                outputs[name] = replay(engine)
    assert len(set(outputs.values())) == 1, outputs.keys()
    found = json.loads(next(iter(outputs.values())))
    lines = [[(h["subject"], h["predicate"]) for h in result["hits"]] for result in found[:10]]
    assert lines[0] == [("bob", "home_city"), ("user", "home_city")]
    assert lines[3] == [("user", "address"), ("ü", "straße")]  # a number, a key, ß → ss
    assert lines[7] == [("user", "home_city")] and found[7]["words"] == ["basel", "zurich"]
    assert lines[8] == [("ü", "straße")]


# ---------------------------------------------------------------- the rule, by brute force

SUBJECTS = ["user", "bob", "Zoë"]
PREDICATES = ["home_city", "favouriteColor", "city", "note"]
VALUES = ["Zürich", "Paris city", "blue sky", {"note": "Paris"}, 12, "zurich-lake", ["sky", "Bob"]]
WINDOWS = [None, ("2010", None), ("2015", "2020"), ("2020", "2010")]
SEARCH_OP = st.one_of(
    st.tuples(
        st.just("ingest"),
        st.tuples(
            st.sampled_from(SUBJECTS),
            st.sampled_from(PREDICATES),
            st.sampled_from(range(len(VALUES))),
            st.sampled_from(range(len(WINDOWS))),
            st.sampled_from([1.0, 0.1]),
            st.sampled_from(["Functional", "SetValued"]),
        ),
    ),
    st.tuples(st.just("end"), st.tuples(st.integers(0, 20), st.sampled_from(["2012", "2018"]))),
    st.tuples(st.just("invalidate"), st.integers(0, 20)),
    st.tuples(st.just("erase"), st.sampled_from(SUBJECTS)),
    st.tuples(st.just("snapshot"), st.none()),
)
SEARCHES = ["city", "zur", "paris", "home", "sky", "c", "12", "favourite color", "bo", "note p"]


def run(engine: Engine, agent: str, ops: list[tuple[str, Any]]) -> list[Any]:
    refs: list[str] = []
    snaps: list[Any] = []
    for kind, args in ops:
        if kind == "ingest":
            s, p, v, w, confidence, cardinality = args
            window = WINDOWS[w]
            fields: dict[str, Any] = {"value_confidence": confidence, "cardinality": cardinality}
            if window is not None:
                fields.update(valid_from=window[0], valid_until=window[1])
                fields["valid_time_confidence"] = 1.0
            refs.append(put(engine, VALUES[v], s, p, agent_id=agent, **fields).claim_ref)
        elif kind == "snapshot":
            snaps.append(engine.snapshot(agent))
        elif kind == "erase":
            engine.erase(agent, args, reason="test")
        elif refs and kind == "end":
            with contextlib.suppress(mempill.MempillError):  # erased, or another bound
                engine.end(agent, refs[args[0] % len(refs)], args[1])
        elif refs:
            with contextlib.suppress(mempill.MempillError):  # an erased claim
                engine.invalidate(agent, refs[args % len(refs)])
    return snaps


def shown(belief: Any) -> str:
    """The belief as canonical JSON, but for `valid_at` (None: each call's clock reading)."""
    return canonical_json({k: v for k, v in plain(belief).items() if k != "valid_at"})


def by_rule(
    engine: Engine, agent: str, query: str, wide: bool, **options: Any
) -> list[tuple[str, str, float, tuple[str, ...], str]]:
    """The hits the rule gives over every line, folding each with query_memory."""
    asked = query_words(query)
    found = []
    for s, p in itertools.product(SUBJECTS, PREDICATES):
        belief = engine.query_memory(agent, s, p, **options)
        values = [c.value for c in belief.candidates]
        if belief.status is BeliefStatus.NO_BELIEF:
            values = []
        if wide:
            as_of = options.get("as_of")
            history = engine.query_history(agent, s, p, as_of=as_of)
            values += [e.value for e in history.entries if e.status in ALLOWED]
        if not values:
            continue
        words = set(key_words(s)) | set(key_words(p))
        for value in values:
            words |= set(capped_value_words(value))
        points = score(asked, words)
        if points:
            matched = tuple(w for w in asked if any(x.startswith(w) for x in words))
            found.append((s, p, float(points), matched, shown(belief)))
    return sorted(found, key=lambda h: (-h[2], h[0], h[1]))


@PROFILE
@given(
    ops=st.lists(SEARCH_OP, min_size=1, max_size=18),
    query=st.sampled_from(SEARCHES),
    wide=st.booleans(),
    valid_at=st.sampled_from([None, "2011", "2016", "2030"]),
    limit=st.integers(1, 4),
)
def test_every_search_is_the_rule_over_every_line(
    backend: Backend,
    ops: list[tuple[str, Any]],
    query: str,
    wide: bool,
    valid_at: str | None,
    limit: int,
) -> None:
    engine = backend.open()
    agent = f"rule-{next(_agents)}"
    snaps = run(engine, agent, ops)
    for as_of in [None, *snaps[:2]]:
        options = {"as_of": as_of, "valid_at": valid_at}
        expected = by_rule(engine, agent, query, wide, **options)
        found = engine.search(agent, query, include_history=wide, limit=1000, **options)
        got = [(*h, shown(x.belief)) for h, x in zip(hits(found), found, strict=True)]
        assert got == expected
        page = engine.search(agent, query, include_history=wide, limit=limit, **options)
        assert hits(page) == [h[:4] for h in expected[:limit]]


# ---------------------------------------------------------------- discovery


def test_list_subjects_pages_in_code_point_order_with_counts(engine: Engine) -> None:
    for subject in ["b", "a", "B", "é", "ab", "aa"]:
        put(engine, "x", subject, "p")
    put(engine, "y", "a", "q")
    engine.invalidate(AGENT, put(engine, "z", "a", "r").claim_ref)
    put(engine, "x", "gone", "p")
    engine.erase(AGENT, "gone", reason="test")
    page = engine.list_subjects(AGENT, limit=2)
    assert [(s.subject, s.lines, s.believed) for s in page] == [("B", 1, 1), ("a", 3, 2)]
    assert page.next_cursor == "a"
    rest = engine.list_subjects(AGENT, after=page.next_cursor, limit=10)
    assert [s.subject for s in rest] == ["aa", "ab", "b", "é"] and rest.next_cursor is None
    assert [s.subject for s in engine.list_subjects(AGENT, prefix="a")] == ["a", "aa", "ab"]
    assert engine.list_subjects("nobody").subjects == ()
    for bad in ({"limit": 0}, {"limit": 10_001}, {"prefix": 3}, {"after": "a\x00"}):
        with pytest.raises(ValidationError):
            engine.list_subjects(AGENT, **bad)
    predicates = engine.list_predicates(AGENT)
    assert [(p.predicate, p.lines, p.believed) for p in predicates] == [
        ("p", 6, 6),
        ("q", 1, 1),
        ("r", 1, 0),
    ]
    assert [(p.predicate, p.lines, p.believed) for p in engine.list_predicates(AGENT, "a")] == [
        ("p", 1, 1),
        ("q", 1, 1),
        ("r", 1, 0),
    ]
    assert engine.list_predicates(AGENT, "gone") == ()
    with pytest.raises(ValidationError):
        engine.list_predicates(AGENT, "")


# ---------------------------------------------------------------- the index


def fill_block(engine: Engine, agent: str = AGENT) -> None:
    """INDEX_BLOCK claims no test query matches (words `zz`, `nI` and numbers): every claim
    written before them is below the head's block afterwards, so in the word index."""
    for i in range(INDEX_BLOCK):
        engine.ingest(request(i, "zz", f"n{i}", agent_id=agent))


def test_the_word_index_holds_the_claims_below_the_heads_block(backend: Backend) -> None:
    """After every claim: the index holds exactly the claims below `indexed_below` (SQLite:
    the head's block; PostgreSQL: every claim, its block is 0), one entry per claim here so
    claim i is at stream_seq i + 1; and search finds them all, indexed or not."""
    engine = backend.open()
    block = engine.store.index_block
    assert block == (0 if backend.is_postgres else INDEX_BLOCK)
    for i in range(2 * INDEX_BLOCK + 3):
        put(engine, f"in {i}", f"s{i}", "home_city")
        indexed = raw(backend, engine, "SELECT count(DISTINCT claim_ref) FROM terms")[0][0]
        assert indexed == max(indexed_below(i + 1, block) - 1, 0), i
        found = engine.search(AGENT, "home city", limit=1_000).hits
        assert sorted(h.subject for h in found) == sorted(f"s{j}" for j in range(i + 1))


def test_search_is_the_same_from_the_index_and_from_the_heads_block(backend: Backend) -> None:
    """The same lines, scores and order whether their claims are in the head's block (read
    by the search), in the index, or indexed twice (reindex, then the block written again)."""
    engine = backend.open()
    put(engine, "Zürich", "user", "home_city")
    put(engine, {"street": "Bahnhofstrasse", "city": "Zürich"}, "user", "address")
    put(engine, "Zug", "user", "work_city")
    put(engine, "Lyon", "cityHall", "mayor")
    put(engine, "Bern", "bob", "home_city")
    engine.erase(AGENT, "bob", reason="test")  # an erased claim is found neither way
    queries = ["city", "zur", "zürich street", "hall mayor", "work", "bob", "bern"]

    def answers() -> list[Any]:
        return [hits(engine.search(AGENT, q)) for q in queries] + [
            hits(engine.search(AGENT, q, include_history=True)) for q in queries
        ]

    in_block = answers()
    assert all(in_block[:5]) and not any(in_block[5:7])
    unindexed = engine.store.index_block > 0  # SQLite: the claims are in the head's block
    assert (raw(backend, engine, "SELECT count(*) FROM terms") == [(0,)]) is unindexed
    assert engine.reindex(AGENT) == 4  # now in the index, and in the head's block as well
    assert answers() == in_block
    fill_block(engine)  # the block is written again over the rows reindex wrote: no error
    assert answers() == in_block


def test_reindex_restores_search_after_the_index_is_lost(backend: Backend) -> None:
    engine = backend.open()
    put(engine, "Zürich", "user", "home_city")
    put(engine, "Kyiv", "bob", "home_city")
    engine.erase(AGENT, "bob", reason="test")
    fill_block(engine)
    terms = raw(
        backend,
        engine,
        "SELECT DISTINCT term FROM terms WHERE term >= 'a' AND term NOT LIKE 'n%' "
        "AND term <> 'zz' ORDER BY term",
    )
    assert [t[0] for t in terms] == ["city", "home", "user", "zurich"]
    digest = engine.content_digest(AGENT)
    raw(backend, engine, "DELETE FROM terms")
    assert engine.search(AGENT, "city").hits == ()
    assert engine.reindex(AGENT) == 1 + INDEX_BLOCK
    assert engine.content_digest(AGENT) == digest, "the index is not content"
    assert hits(engine.search(AGENT, "city")) == [("user", "home_city", 2.0, ("city",))]
    assert engine.reindex("nobody") == 0


def test_claims_written_without_the_index_are_found_after_reindex(backend: Backend) -> None:
    engine = backend.open(text_index=False)
    put(engine, "Paris", "user", "work_city")
    assert raw(backend, engine, "SELECT count(*) FROM terms") == [(0,)]
    in_block = engine.store.index_block > 0  # SQLite: a search reads the head's block itself
    assert bool(engine.search(AGENT, "city").hits) is in_block
    fill_block(engine)  # past the head's block: written without the index, found by none
    assert raw(backend, engine, "SELECT count(*) FROM terms") == [(0,)]
    assert engine.search(AGENT, "city").hits == ()
    assert engine.reindex(AGENT) == 1 + INDEX_BLOCK
    assert [h.predicate for h in engine.search(AGENT, "paris")] == ["work_city"]


def test_a_read_only_engine_refuses_to_reindex(backend: Backend) -> None:
    if backend.name == "sqlite-mem":
        pytest.skip("an in-memory store cannot be read-only")
    writer = backend.open()
    put(writer, "Paris")
    reader = backend.open(read_only=True)
    with pytest.raises(ValidationError, match="read-only"):
        reader.reindex(AGENT)
    assert [h.subject for h in reader.search(AGENT, "paris")] == ["user"]
    with pytest.raises(ConfigError):
        backend.open(text_index="no")
