"""The deterministic claim stream the durability writer ingests, and its replay.

A seed fixes the stream: which line, value, provenance, confidence, criticality, valid
window and parents each claim has, and its claim_ref. The mix reaches most routes of
the decision table (first value, corroboration, succession, set members, Contested,
PendingConflict, PendingLowConfidence, CommittedInferred, derivation chains), so the
belief replay compares non-trivial folds. Every request commits a claim row: none is
rejected, none is a recall echo, parents always name earlier claims.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from mempill.core.enums import Cardinality, Criticality, Provenance
from mempill.core.model import ClaimRow, IngestRequest, ValidTime
from mempill.ids import SeededIds

AGENT = "durability"
START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(milliseconds=1)
CHECK_AT = datetime(2027, 1, 1, tzinfo=UTC)  # "now" for every comparison read
VALID_PROBES = (None, datetime(2012, 6, 1, tzinfo=UTC), datetime(2021, 6, 1, tzinfo=UTC))
SUBJECTS = tuple(f"person-{i}" for i in range(6))
PADDING = "lorem ipsum dolor sit amet " * 20  # ~540 bytes: more pages, more checkpoints
VALUES: dict[str, tuple[object, ...]] = {
    "employer": ("Acme", "Globex", "Initech"),
    "city": ("Oslo", "Lyon", "Porto", "Graz"),
    "skill": ("sql", "rust", "python", "go", "ocaml"),
    "title": ("engineer", "manager"),
    "bio": tuple({"text": f"{name}: {PADDING}", "v": i} for i, name in enumerate("abc")),
}
CARDINALITY = {"skill": Cardinality.SET_VALUED}
CRITICALITIES = (Criticality.LOW, Criticality.MEDIUM, Criticality.HIGH, Criticality.CRITICAL)


THREAD_SEEDS = 10_000  # thread i of writer seed S ingests the stream of seed S*10000 + i


def thread_seed(seed: int, index: int) -> int:
    """The stream seed of thread `index` of a multi-threaded writer seeded `seed`."""
    return seed * THREAD_SEEDS + index


def agent_name(index: int, agents: int) -> str:
    """The agent thread `index` writes into: `durability` when there is one agent, else
    `durability-<index mod agents>`."""
    return AGENT if agents == 1 else f"{AGENT}-{index % agents}"


def lines() -> tuple[tuple[str, str], ...]:
    """Every line the stream can touch."""
    return tuple((s, p) for s in SUBJECTS for p in VALUES)


def _window(rng: random.Random) -> tuple[ValidTime | None, float | None]:
    roll = rng.random()
    if roll < 0.55:
        return None, None
    start = datetime(rng.randint(2005, 2024), rng.randint(1, 12), 1, tzinfo=UTC)
    end = None if rng.random() < 0.6 else start.replace(year=start.year + rng.randint(1, 8))
    confidence = 0.9 if roll < 0.9 else 0.4  # some windows are untrusted
    return ValidTime(valid_from=start, valid_until=end), confidence


def requests(seed: int, agent: str = AGENT) -> Iterator[IngestRequest]:
    """The endless request stream of one writer (or writer thread) into `agent`; the same
    seed gives the same stream, whose claim_refs no other seed's stream shares."""
    rng = random.Random(seed)
    ids = SeededIds(f"durability-{seed}")
    refs: list[str] = []
    while True:
        predicate = rng.choice(tuple(VALUES))
        roll = rng.random()
        parents: tuple[str, ...] = ()
        if roll < 0.12 and refs:
            provenance = Provenance.MODEL_DERIVED
            parents = tuple(sorted(set(rng.sample(refs[-50:], min(len(refs), rng.randint(1, 2))))))
        elif roll < 0.3:
            provenance = Provenance.EXTERNAL_FIRST_HAND
        else:
            provenance = Provenance.USER_ASSERTED
        window, time_confidence = _window(rng)
        ref = ids()
        refs.append(ref)
        yield IngestRequest(
            agent_id=agent,
            subject=rng.choice(SUBJECTS),
            predicate=predicate,
            value=rng.choice(VALUES[predicate]),
            provenance=provenance,
            cardinality=CARDINALITY.get(predicate, Cardinality.FUNCTIONAL),
            value_confidence=0.2 if rng.random() < 0.05 else rng.choice((0.6, 0.8, 0.95)),
            valid_time=window,
            valid_time_confidence=time_confidence,
            criticality=rng.choice(CRITICALITIES),
            derived_from=parents,
            claim_ref=ref,
        )


def replay_request(row: ClaimRow) -> IngestRequest:
    """The request that reproduces a stored claim row when ingested at its tx time."""
    window = None
    if row.valid_from is not None or row.valid_until is not None:
        window = ValidTime(
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            from_granularity=row.valid_from_granularity,
            until_granularity=row.valid_until_granularity,
        )
    return IngestRequest(
        agent_id=row.agent_id,
        subject=row.subject,
        predicate=row.predicate,
        value=json.loads(row.value),
        provenance=row.provenance,
        cardinality=row.cardinality,
        value_confidence=row.value_confidence,
        valid_time=window,
        valid_time_confidence=row.valid_time_confidence,
        criticality=row.criticality,
        derived_from=row.derived_from,
        claim_ref=row.claim_ref,
    )
