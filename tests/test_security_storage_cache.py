"""Issue 22, finding 1 (memory): reads cannot grow the engine's memory.

The line cache stores no absent line (any key a caller makes up) and counts bytes, not
just claims, so it stays within `cache_bytes` however long the values or keys and however
many ledger entries a line has. The last test drives 100,000 distinct absent keys, long
keys and refused megabyte keys through `query_memory` and `reconcile` on a SQLite store in
a fresh process and checks that its resident memory stays flat (grows < 20 MiB); before
this change the same script grew by more than 2 GiB.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from conftest import Backend, RecordingOracle
from support import AGENT, put, request

import mempill
from mempill import ValidationError
from mempill.core.linestate import ENTRY_BYTES

#: What the RSS test allows the process to grow by (allocator slack, statement caches).
RSS_BOUND_MIB = 20


def test_absent_lines_are_never_cached(backend: Backend) -> None:
    engine = backend.open(oracle=RecordingOracle())
    for i in range(500):
        engine.query_memory(AGENT, f"nobody-{i}", "city")
        engine.query_history(AGENT, "user", f"nothing-{i}")
    engine.query_subject(AGENT, "nobody")
    engine.reconcile(AGENT, [(f"none-{i}", "p") for i in range(500)])
    assert engine.lines.stats() == (0, 0) and engine.lines.held_bytes() == 0
    put(engine, "Paris")  # a write publishes the line it created
    assert engine.lines.stats() == (1, 1)
    engine.ingest(request("x", subject="rejected", value_confidence=7))  # Rejected: no claim
    engine.query_memory(AGENT, "rejected", "city")
    lines, claims = engine.lines.stats()
    assert claims == 1 and lines <= 2  # a line of rejections only has no claim to hold
    assert engine.query_memory(AGENT, "user", "city").value == "Paris"


def test_the_cache_stays_within_its_byte_budget(backend: Backend) -> None:
    budget = 1_000_000
    no_burst = mempill.EngineConfig(quarantine_burst_threshold=10**6)
    engine = backend.open(cache_bytes=budget, config=no_burst)
    big = "v" * 60_000
    for i in range(40):  # 40 lines of 60 KB: 2.4 MB of values
        put(engine, big, f"s{i}", "p")
        engine.query_memory(AGENT, f"s{i}", "p")
        assert engine.lines.held_bytes() <= budget
    lines, claims = engine.lines.stats()
    assert 10 <= lines < 17 and claims == lines  # ~62 KB a line: about sixteen fit
    for i in range(40):  # a line evicted for its bytes reads again, exactly
        assert engine.query_memory(AGENT, f"s{i}", "p").value == big
    echoed = backend.open(config=no_burst)
    first = put(echoed, "Paris")
    echo = request("Paris", provenance="RecallReEntry", derived_from=[first.claim_ref])
    echoed.ingest_many([echo] * 200)
    assert echoed.query_memory(AGENT, "user", "city").value == "Paris"
    # one claim, 201 entries: the entries are counted, not the claim alone
    assert echoed.lines.stats() == (1, 1)
    assert echoed.lines.held_bytes() > 201 * ENTRY_BYTES


def test_the_byte_estimate_follows_the_memory_held(tmp_path: Path) -> None:
    """The estimate (core/linestate.py) against tracemalloc: within 0.8x to 1.6x."""
    engine = mempill.open_default_in_memory()
    for line in range(300):
        engine.ingest_many([request(f"value {i}", f"subject {line}") for i in range(5)])
    keys = [(AGENT, f"subject {line}", "city") for line in range(300)]
    engine.lines.forget(keys)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _, subject, predicate in keys:
            engine.query_memory(AGENT, subject, predicate)
        gc.collect()
        measured = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert 0.8 <= engine.lines.held_bytes() / measured <= 1.6
    engine.close()


def test_refused_keys_never_reach_the_cache(backend: Backend) -> None:
    engine = backend.open()
    for i in range(50):
        with pytest.raises(ValidationError):
            engine.query_memory(AGENT, "k" * 2**20, f"p{i}")
    assert engine.lines.stats() == (0, 0)


RSS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import mempill

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    engine = mempill.open_directory(sys.argv[1], cache_claims=1000)
    engine.remember("a", "user", "city", "Paris")
    for i in range(2000):  # warm up: allocator arenas, statement caches
        engine.query_memory("a", f"warm-{i}", "p")
    before = rss_mib()
    for i in range(100_000):  # distinct absent keys
        engine.query_memory("a", f"absent-{i}", "p")
    long = "\\u4e2d" * 1000  # long keys (still keys), 1,000 lines a call
    for i in range(0, 100_000, 1000):
        engine.reconcile("a", [(f"{long}{j}", "p") for j in range(i, i + 1000)])
    for i in range(2000):  # megabyte keys: refused before any read
        try:
            engine.query_memory("a", "k" * 2**20, f"p{i}")
        except mempill.ValidationError:
            pass
    assert engine.recall("a", "user", "city").value == "Paris"
    print(before, rss_mib())
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_memory_stays_flat_under_100k_distinct_absent_and_long_keys(tmp_path: Path) -> None:
    root = Path(mempill.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(tmp_path / "agents")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    before, after = map(float, done.stdout.split())
    assert after - before < RSS_BOUND_MIB, (before, after)
