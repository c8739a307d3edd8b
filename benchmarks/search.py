"""Text search (issue 18): search latency in a store of `memory_claims` claims (100,000 at
full size), the word index's size per claim, and ingest with the index on vs off.

Per backend (SQLite `open_directory`: a file per agent; PostgreSQL: one fresh schema),
two agents get the same stream in batches of 500 (`ingest_many`), alternating batch by
batch: one with the word index (`text_index=True`, the default), one without. Ingest rates
are claims/s over each agent's batches; `off_over_on` is the ratio within the run. The
index size is the rows and bytes of `terms` per claim (SQLite: the file size of the
indexed agent minus the unindexed one's, after a truncating checkpoint; PostgreSQL:
`pg_total_relation_size('terms')`). Then `memory_queries` searches (one word, a prefix,
two words, a key word, a word in no claim; limit 20) on the indexed agent, each timed:
p50 and p99 in milliseconds, the line cache warm from the first pass.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import mempill
from benchmarks.context import Bench
from benchmarks.drivers import CLOCK_START
from benchmarks.timing import finite, percentile, ratio
from mempill.engine import Engine

BATCH = 500
PREDICATES = (
    "home_city", "work_city", "favouriteColor", "employer_name", "pet_name", "hobby",
    "diet", "birth_place", "language", "phone_model", "car_brand", "music_genre",
    "book_title", "team_name", "school_name", "street_address", "nickname", "job_title",
    "travel_plan", "allergy",
)  # fmt: skip
SUBJECT_LINES = len(PREDICATES)
VOCABULARY = 5_000  # distinct value words; drawn with a Zipf-like skew
QUERIES = ("one word", "prefix", "two words", "key word", "absent")


def word(rank: int) -> str:
    """A pronounceable word of the synthetic vocabulary (rank 0 is the most common)."""
    syllables = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zu", "pe", "da", "gi")
    out, n = [], rank + 7
    while n:
        n, digit = divmod(n, len(syllables))
        out.append(syllables[digit])
    return "".join(out)


def value_of(rng: random.Random) -> str:
    """Three to six words, common ones more often (rank ~ 1 / u: a heavy head)."""
    count = rng.randint(3, 6)
    return " ".join(word(min(VOCABULARY - 1, int(1 / rng.random()) - 1)) for _ in range(count))


def claims(agent: str, total: int, seed: int = 18) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for index in range(total):
        yield {
            "agent_id": agent,
            "subject": f"person{index // SUBJECT_LINES}",
            "predicate": PREDICATES[index % SUBJECT_LINES],
            "value": value_of(rng),
        }


def queries(count: int, seed: int = 19) -> list[tuple[str, str]]:
    """(kind, text) pairs, the kinds in turn; words drawn like the values' words."""
    rng = random.Random(seed)
    found = []
    for index in range(count):
        kind = QUERIES[index % len(QUERIES)]
        one = word(min(VOCABULARY - 1, int(1 / rng.random()) - 1))
        two = word(rng.randrange(VOCABULARY))
        text = {
            "one word": one,
            "prefix": one[:3],
            "two words": f"{one} {two}",
            "key word": rng.choice(("city", "name", "color", "person12")),
            "absent": f"qqq{index}",
        }[kind]
        found.append((kind, text))
    return found


@contextmanager
def stores(bench: Bench, backend: str) -> Iterator[tuple[Engine, Engine, Callable[[], Any]]]:
    """(indexed engine, unindexed engine, sizes()) on one store of `backend`."""
    with ExitStack() as stack:
        options: dict[str, Any] = {"clock": mempill.SteppingClock(CLOCK_START)}
        if backend == "sqlite":
            folder = bench.scratch("search-sqlite")
            on = mempill.open_directory(folder, **options)
            off = mempill.open_directory(folder, text_index=False, **options)
        else:
            from mempill.lab.servers import fresh_schema

            assert bench.pg_dsn is not None
            dsn = stack.enter_context(fresh_schema(bench.pg_dsn, prefix="bench"))
            on = mempill.open_postgres(dsn, **options)
            off = mempill.open_postgres(dsn, text_index=False, **options)
        stack.callback(on.close)
        stack.callback(off.close)

        def sizes() -> dict[str, Any]:
            if backend == "sqlite":
                found = {}
                for name, engine in (("on", on), ("off", off)):
                    conn = engine.store.connection_for(name)  # type: ignore[attr-defined]
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    rows = conn.execute("SELECT count(*) FROM terms").fetchone()[0]
                    found[name] = (rows, os.path.getsize(folder / f"{name}.db"))
                return {"rows": found["on"][0], "bytes": found["on"][1] - found["off"][1]}
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE terms")
                row = conn.execute(
                    "SELECT count(*), pg_total_relation_size('terms') FROM terms"
                ).fetchone()
                assert row is not None
                return {"rows": int(row[0]), "bytes": int(row[1])}

        yield on, off, sizes


def measure(bench: Bench, backend: str) -> dict[str, Any]:
    total, asked = bench.sizes.memory_claims, bench.sizes.memory_queries
    spent = {"on": 0.0, "off": 0.0}
    with stores(bench, backend) as (on, off, sizes):
        streams = {"on": claims("on", total), "off": claims("off", total)}
        engines = {"on": on, "off": off}
        for start in range(0, total, BATCH):
            order = ("on", "off") if (start // BATCH) % 2 == 0 else ("off", "on")
            for name in order:
                batch = [next(streams[name]) for _ in range(min(BATCH, total - start))]
                began = time.perf_counter()
                engines[name].ingest_many(batch)
                spent[name] += time.perf_counter() - began
            bench.progress.every(f"search: {backend} ingest {start + BATCH:,}/{total:,}")
        index = sizes()
        timings: dict[str, list[float]] = {kind: [] for kind in QUERIES}
        hits = 0
        for kind, text in queries(asked):
            on.search("on", text)  # the line cache warm, as for any repeated read
            began = time.perf_counter()
            result = on.search("on", text)
            timings[kind].append((time.perf_counter() - began) * 1000)
            hits += len(result)
        everything = [t for ms in timings.values() for t in ms]
        rates = {name: total / spent[name] for name in spent}
        return {
            "claims": total,
            "searches": len(everything),
            "mean_hits": hits / max(1, len(everything)),
            "p50_ms": finite(percentile(everything, 50)),
            "p99_ms": finite(percentile(everything, 99)),
            "by_kind": {
                kind: {"p50_ms": finite(percentile(ms, 50)), "p99_ms": finite(percentile(ms, 99))}
                for kind, ms in timings.items()
            },
            "terms_per_claim": index["rows"] / total,
            "index_bytes_per_claim": index["bytes"] / total,
            "ingest_on_rate": finite(rates["on"]),
            "ingest_off_rate": finite(rates["off"]),
            "off_over_on": finite(ratio(rates["off"], rates["on"])),
        }


def run(bench: Bench) -> dict[str, Any]:
    result: dict[str, Any] = {"sqlite": measure(bench, "sqlite")}
    if bench.pg_dsn is None:
        result["postgres"] = {"skipped": bench.pg_error or "no PostgreSQL server"}
    else:
        result["postgres"] = measure(bench, "postgres")
    return result


def report(results: dict[str, Any]) -> list[str]:
    found = results.get("search") or {}
    if not found:
        return []
    out = [
        "## Text search",
        "",
        "Searches (limit 20, one word / prefix / two words / key word / absent in turn) in "
        "an agent of the given claims, each timed after a first run of the same query; the "
        "word index's rows and bytes per claim; `ingest_many` rates of one agent with the "
        "index and one without, batches alternating (ratio within the run).",
        "",
        "| backend | claims | p50 ms | p99 ms | terms/claim | index bytes/claim "
        "| ingest on/s | off/s | off ÷ on |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend in ("sqlite", "postgres"):
        row = found.get(backend) or {}
        if row.get("skipped"):
            out.append(f"| {backend} | not measured: {row['skipped']} |||||||| ")
            continue

        def cell(key: str, spec: str, data: dict[str, Any] = row) -> str:
            value = data.get(key)
            return "—" if not isinstance(value, (int, float)) else format(value, spec)

        out.append(
            f"| {backend} | {cell('claims', ',d')} | {cell('p50_ms', '.2f')} | "
            f"{cell('p99_ms', '.2f')} | {cell('terms_per_claim', '.1f')} | "
            f"{cell('index_bytes_per_claim', ',.0f')} | {cell('ingest_on_rate', ',.0f')} | "
            f"{cell('ingest_off_rate', ',.0f')} | {cell('off_over_on', '.2f')} |"
        )
    return [*out, ""]
