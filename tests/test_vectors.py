"""The vector port, real (issue 18): embedders, the exact in-process index, the persistent
adapters (sqlite-vec, pgvector: skipped with a reason when the extension is missing) and
semantic search through a real engine on every backend."""

from __future__ import annotations

import importlib.util
import math
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Backend

from mempill.core.enums import Cardinality, Criticality, Provenance
from mempill.core.model import ClaimRow
from mempill.errors import ConfigError, ValidationError
from mempill.vectors import ExactIndex, ToyEmbedder, claim_text
from mempill.vectors.batched import BatchedIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(ref: str, subject: str, predicate: str, value: str, agent: str = "alice") -> ClaimRow:
    return ClaimRow(
        agent_id=agent,
        claim_ref=ref,
        subject=subject,
        predicate=predicate,
        value=value,
        cardinality=Cardinality.FUNCTIONAL,
        provenance=Provenance.USER_ASSERTED,
        value_confidence=1.0,
        valid_time_confidence=1.0,
        criticality=Criticality.LOW,
        valid_from=None,
        valid_from_granularity=None,
        valid_until=None,
        valid_until_granularity=None,
        tx_time=T0,
        stream_seq=1,
        derived_from=(),
        derivation_depth=None,
        external_anchor=None,
    )


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


FACTS = [
    row("c1", "user", "home_city", '"Paris"'),
    row("c2", "user", "favourite_food", '"sushi"'),
    row("c3", "weather", "today", '"sunny and warm"'),
    row("c4", "project", "deadline", '"2026-03-01"'),
    row("c5", "user", "employer", '{"name":"Acme","since":2019}'),
]


# ---------------------------------------------------------------- the toy embedder


def test_toy_embedder_is_pinned() -> None:
    """The same numbers on every machine and run: a change of algorithm shows here."""
    (vector,) = ToyEmbedder().embed(["user home_city: Paris"])
    assert len(vector) == 64
    assert [round(x, 6) for x in vector[:10]] == [0, 0.174078, 0, 0, 0, 0, 0, 0, 0.174078, 0.174078]
    assert {i: round(x, 6) for i, x in enumerate(vector) if x < 0} == {
        16: -0.174078,
        25: -0.174078,
        41: -0.174078,
        43: -0.174078,
        51: -0.174078,
    }
    assert (vector.index(max(vector)), round(max(vector), 6)) == (31, 0.522233)
    (paris,) = ToyEmbedder(16).embed(["Paris"])  # paris + ^pa par ari ris is$
    assert {i: round(x, 6) for i, x in enumerate(paris) if x} == {
        3: 0.258199,
        10: 0.258199,
        14: 0.516398,
        15: 0.774597,
    }
    assert math.isclose(math.fsum(x * x for x in vector), 1.0)
    assert ToyEmbedder(16).embed(["Zürich"]) == ToyEmbedder(16).embed(["zurich"])


def test_toy_embedder_puts_shared_words_near() -> None:
    home, live, weather, food = ToyEmbedder().embed(
        ["user home_city: Paris", "where does the user live", "weather today: sunny", "sushi"]
    )
    assert cosine(home, live) > cosine(home, weather)
    assert cosine(home, live) > cosine(home, food)
    assert cosine(live, live) == pytest.approx(1.0)


def test_toy_embedder_edges() -> None:
    assert ToyEmbedder(8).embed(["", "!!!"]) == [(0.0,) * 8, (0.0,) * 8]
    assert ToyEmbedder(8).embed([]) == []
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError):
            ToyEmbedder(bad)  # type: ignore[arg-type]


def test_claim_text() -> None:
    assert claim_text(FACTS[0]) == "user home_city: Paris"
    assert claim_text(FACTS[4]) == "user employer: name Acme since 2019"
    assert claim_text(row("x", "s", "p", '[true,null,1.5,"a b"]')) == "s p: 1.5 a b"
    assert claim_text(row("x", "s", "p", "null")) == "s p:"


# ---------------------------------------------------------------- the exact index


@pytest.fixture
def index() -> ExactIndex:
    built = ExactIndex(ToyEmbedder(), batch=2)
    for fact in FACTS:
        built.index_claim(fact)
    return built


def test_nearest_ranks_by_similarity(index: ExactIndex) -> None:
    found = index.nearest("alice", "where does the user live", 5)
    assert found[0][0] == "c1"
    sims = [sim for _, sim in found]
    assert sims == sorted(sims, reverse=True)
    assert len(found) == 5
    (vector,) = ToyEmbedder().embed(["where does the user live"])
    (home,) = ToyEmbedder().embed([claim_text(FACTS[0])])
    assert found[0][1] == round(cosine(vector, home), 12)
    assert index.nearest("alice", "sushi", 1) == [("c2", index.nearest("alice", "sushi", 5)[0][1])]
    assert index.nearest("alice", "sushi", 0) == []
    assert index.nearest("alice", "!!!", 3) == []  # a query with no words is near nothing
    with pytest.raises(ValidationError):
        index.nearest("alice", "sushi", -1)


def test_ties_go_by_claim_ref() -> None:
    index = ExactIndex(ToyEmbedder())
    for ref in ("b", "c", "a"):
        index.index_claim(row(ref, "user", "home_city", '"Paris"'))
    index.index_claim(row("d", "zzz", "qqq", '"unrelated"'))
    found = index.nearest("alice", "user home city Paris", 4)
    assert [ref for ref, _ in found] == ["a", "b", "c", "d"]
    assert found[0][1] == found[1][1] == found[2][1] == 1.0
    assert found[3][1] < 1.0


def test_reindexing_replaces_and_forget_drops(index: ExactIndex) -> None:
    assert len(index) == 5
    index.index_claim(row("c1", "user", "home_city", '"Lyon"'))  # reindex: replaced
    assert len(index) == 5
    index.forget("alice", ["c1", "c2", "nope"])
    assert index.size("alice") == 3
    refs = [ref for ref, _ in index.nearest("alice", "user home city", 5)]
    assert "c1" not in refs and "c2" not in refs
    index.forget("alice", [])
    assert index.size() == 3


def test_agents_are_isolated(index: ExactIndex) -> None:
    index.index_claim(row("b1", "user", "home_city", '"Paris"', agent="bob"))
    assert index.nearest("bob", "user home city Paris", 10) == [("b1", 1.0)]
    assert "b1" not in [ref for ref, _ in index.nearest("alice", "Paris", 10)]
    assert index.nearest("carol", "Paris", 10) == []
    assert index.agents() == ("alice", "bob")
    assert (index.size("alice"), index.size("bob")) == (5, 1)


def test_erased_rows_are_skipped_and_dropped(index: ExactIndex) -> None:
    index.index_claim(row("e1", "", "", "null"))
    index.index_claim(row("c3", "", "", "null"))  # reindex after an erasure: c3 goes
    assert index.size("alice") == 4
    assert "c3" not in [ref for ref, _ in index.nearest("alice", "weather today sunny", 10)]


def test_claims_are_embedded_in_batches() -> None:
    class Counting(ToyEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[int] = []

        def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
            self.calls.append(len(texts))
            return super().embed(texts)

    embedder = Counting()
    index = ExactIndex(embedder, batch=3)
    for i in range(7):
        index.index_claim(row(f"r{i}", "user", f"p{i}", '"x"'))
    assert embedder.calls == [3, 3] and index.queued() == 1
    index.nearest("alice", "user", 2)
    assert embedder.calls == [3, 3, 1, 1]  # the queued claim, then the query
    assert index.queued() == 0


def test_a_failing_embedder_never_fails_indexing_but_fails_queries() -> None:
    class Flaky(ToyEmbedder):
        down = True

        def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
            if self.down:
                raise RuntimeError("model server is down")
            return super().embed(texts)

    embedder = Flaky()
    index = ExactIndex(embedder, batch=1)
    index.index_claim(FACTS[0])  # logged, queued
    assert index.queued() == 1
    with pytest.raises(RuntimeError, match="down"):
        index.nearest("alice", "Paris", 1)
    embedder.down = False
    assert index.nearest("alice", "Paris", 1)[0][0] == "c1"


def test_bad_embedders_are_refused() -> None:
    class Wrong:
        def __init__(self, answer: Any) -> None:
            self.answer = answer

        def embed(self, texts: Sequence[str]) -> Any:
            return self.answer(texts)

    with pytest.raises(ConfigError, match="embed"):
        ExactIndex(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="batch"):
        ExactIndex(ToyEmbedder(), batch=0)
    for answer, message in (
        (lambda texts: [], "0 vectors for 1 texts"),
        (lambda texts: [[1.0, math.nan]], "NaN"),
        (lambda texts: [[]], "dimensions"),
    ):
        with pytest.raises(ConfigError, match=message):
            ExactIndex(Wrong(answer)).nearest("alice", "x", 1)
    index = ExactIndex(ToyEmbedder(8))
    index.index_claim(FACTS[0])
    assert index.size() == 1  # embedded: the index now holds 8-dimension vectors
    index.embedder = ToyEmbedder(16)
    with pytest.raises(ConfigError, match="dimension 16"):
        index.nearest("alice", "Paris", 1)


def test_threads_share_one_index() -> None:
    index = ExactIndex(ToyEmbedder(), batch=5)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                index.index_claim(row(f"t{n}-{i:02d}", "user", f"fact {i}", f'"value {n}"'))
                index.nearest("alice", f"fact {i}", 3)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(index) == 160


# ---------------------------------------------------------------- through the engine


def test_semantic_search_through_the_engine(backend: Backend) -> None:
    index = ExactIndex(ToyEmbedder())
    assert len(index) == 0 and bool(index)  # empty, yet not mistaken for "no port"
    engine = backend.open(vector=index)
    engine.remember("alice", "user", "home_city", "Paris")
    engine.remember("alice", "user", "favourite_food", "sushi")
    engine.remember("alice", "weather", "today", "sunny and warm")
    assert index.size("alice") == 3  # indexed after each COMMIT
    found = engine.search("alice", "where does the user live", semantic=True)
    assert found.semantic is True
    assert (found.hits[0].subject, found.hits[0].predicate) == ("user", "home_city")
    assert found.hits[0].belief.value == "Paris"

    fresh = ExactIndex(ToyEmbedder())  # a restart: the in-process index starts empty
    again = backend.open(vector=fresh) if backend.name != "sqlite-mem" else None
    if again is not None:
        assert again.reindex("alice") >= 3
        assert fresh.size("alice") == 3


def test_erasure_forgets_vectors(backend: Backend) -> None:
    index = ExactIndex(ToyEmbedder())
    engine = backend.open(vector=index)
    engine.remember("alice", "user", "home_city", "Paris")
    engine.remember("alice", "weather", "today", "sunny")
    engine.erase("alice", "user", reason="asked to forget")
    assert index.size("alice") == 1
    refs = index.nearest("alice", "user home city Paris", 5)
    assert len(refs) == 1


# ---------------------------------------------------------------- persistent adapters


def adapter_agrees(adapter: BatchedIndex) -> None:
    """Same embedder, same claims: the adapter ranks as ExactIndex does (float32 storage:
    similarities equal to 1e-5)."""
    exact = ExactIndex(ToyEmbedder())
    extra = [*FACTS, row("b1", "user", "home_city", '"Paris"', agent="bob")]
    for fact in extra:
        exact.index_claim(fact)
        adapter.index_claim(fact)
    assert adapter.size("alice") == 5 and adapter.size() == 6
    for query in ("where does the user live", "sushi", "weather", "Acme employer 2019"):
        want = exact.nearest("alice", query, 4)
        got = adapter.nearest("alice", query, 4)
        assert [ref for ref, _ in got] == [ref for ref, _ in want], query
        assert [sim for _, sim in got] == pytest.approx([sim for _, sim in want], abs=1e-5)
    ((ref, sim),) = adapter.nearest("bob", "Paris", 3)
    assert ref == "b1" and sim == pytest.approx(exact.nearest("bob", "Paris", 3)[0][1], abs=1e-5)
    for ref in ("b", "a"):
        adapter.index_claim(row(ref, "same", "text", '"here"', agent="carol"))
    assert [ref for ref, _ in adapter.nearest("carol", "same text here", 2)] == ["a", "b"]
    adapter.forget("alice", ["c1"])
    adapter.index_claim(row("c3", "", "", "null"))
    assert adapter.size("alice") == 3
    assert "c1" not in [ref for ref, _ in adapter.nearest("alice", "user home city", 5)]


def sqlite_vec_or_skip(path: Path) -> Any:
    pytest.importorskip("sqlite_vec", reason="sqlite-vec is not installed (the vectors extra)")
    from mempill.vectors import SqliteVecIndex

    try:
        return SqliteVecIndex(path, ToyEmbedder())
    except ConfigError as e:
        if "cannot load extensions" in str(e):
            pytest.skip(f"sqlite-vec cannot be loaded here: {e}")
        raise


def test_sqlite_vec_agrees_with_the_exact_index(tmp_path: Path) -> None:
    path = tmp_path / "vectors.db"
    adapter = sqlite_vec_or_skip(path)
    with adapter:
        adapter_agrees(adapter)
    assert path.stat().st_mode & 0o777 == 0o600
    from mempill.vectors import SqliteVecIndex

    with SqliteVecIndex(path, ToyEmbedder()) as reopened:  # persisted
        assert reopened.size("alice") == 3 and reopened.dimensions == 64
        reopened.embedder = ToyEmbedder(8)
        with pytest.raises(ConfigError, match="dimension 8"):
            reopened.nearest("alice", "Paris", 1)


def test_sqlite_vec_missing_says_how_to_install(tmp_path: Path) -> None:
    if importlib.util.find_spec("sqlite_vec") is not None:
        pytest.skip("sqlite-vec is installed: the missing-package message cannot be shown")
    from mempill.vectors import SqliteVecIndex

    with pytest.raises(ConfigError, match=r"pip install 'sqlite-vec>=0\.1'"):
        SqliteVecIndex(tmp_path / "v.db", ToyEmbedder())


@pytest.fixture
def pg_vectors(postgres_server: str) -> Iterator[tuple[str, str]]:
    pytest.importorskip("psycopg")
    import psycopg

    schema = f"v_{uuid.uuid4().hex[:12]}"
    try:
        yield postgres_server, schema
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres_only
def test_pgvector_agrees_with_the_exact_index(pg_vectors: tuple[str, str]) -> None:
    from mempill.vectors import PgVectorIndex

    dsn, schema = pg_vectors
    try:
        adapter = PgVectorIndex(dsn, ToyEmbedder(), schema=schema)
    except ConfigError as e:
        assert "CREATE EXTENSION vector failed" in str(e)
        pytest.skip(f"pgvector is not installed on this PostgreSQL: {e}")
    with adapter:
        adapter_agrees(adapter)
    with PgVectorIndex(dsn, ToyEmbedder(), schema=schema) as reopened:  # persisted
        assert reopened.size("alice") == 3 and reopened.dimensions == 64
