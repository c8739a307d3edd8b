"""What gets embedded and how: the `Embedder` protocol, `claim_text` and `ToyEmbedder`.

An embedder turns texts into vectors (one per text, all of one dimension); the user supplies
it (a sentence-transformers model, an API client, ...). `ToyEmbedder` is the deterministic,
dependency-free one the tests use: texts sharing words (or word pieces) come out near.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from mempill.core.model import ClaimRow
from mempill.core.search import words
from mempill.errors import ConfigError

Vector = tuple[float, ...]


class Embedder(Protocol):
    """Turns texts into vectors: `embed(texts)` returns one vector per text, in order, all of
    the same dimension. Called in batches (a list of up to the index's `batch` texts)."""

    def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]]: ...


def _value_text(value: Any) -> Iterator[str]:
    """The text of a JSON value: its strings as written, object keys, numbers; not
    true/false/null (the words of the value, as `mempill.core.search.value_words` reads them,
    but unsplit and unfolded, so a real model sees `New York`, not `new york`)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        yield repr(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _value_text(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _value_text(item)


def claim_text(row: ClaimRow) -> str:
    """The text embedded for a claim: `"{subject} {predicate}: {value text}"`, where the value
    text is the claim's canonical JSON value's strings, object keys and numbers joined by
    spaces (true, false and null add nothing). `user`, `home_city`, `"Paris"` gives
    `"user home_city: Paris"`; `{"city": "Paris", "since": 2019}` gives `"city Paris since
    2019"` after the colon. A value that is not JSON (never stored by mempill) is used as is."""
    try:
        value = json.loads(row.value)
    except ValueError:
        body = row.value
    else:
        body = " ".join(part for part in _value_text(value) if part)
    return f"{row.subject} {row.predicate}: {body}".rstrip()


def checked(vectors: Sequence[Sequence[float]], count: int) -> list[Vector]:
    """The embedder's answer for `count` texts as float tuples; ConfigError unless it gave one
    finite vector per text, all of one non-zero dimension."""
    found = [tuple(float(x) for x in vector) for vector in vectors]
    if len(found) != count:
        raise ConfigError(f"the embedder returned {len(found)} vectors for {count} texts")
    sizes = {len(vector) for vector in found}
    if len(sizes) > 1 or 0 in sizes:
        raise ConfigError(f"the embedder returned vectors of dimensions {sorted(sizes)}")
    if not all(math.isfinite(x) for vector in found for x in vector):
        raise ConfigError("the embedder returned a vector with NaN or infinite components")
    return found


def unit(vector: Sequence[float]) -> Vector | None:
    """`vector` scaled to length 1; None for the zero vector (it is near nothing)."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0.0:
        return None
    return tuple(x / norm for x in vector)


class ToyEmbedder:
    """A deterministic embedder for tests and demos, with no dependencies.

    Each word of the text (`mempill.core.search.words`: split at non-alphanumerics and
    camelCase, accents stripped, case folded) adds weight 1 to one signed bucket, and each
    character trigram of `^word$` adds 0.5 to another; a bucket and its sign come from the
    SHA-256 digest of the feature (so the output is the same on every machine and run, unlike
    `hash()`). The sum is scaled to length 1; a text without words gives the zero vector.
    Texts sharing words are near; sharing word pieces (`city`/`cities`) counts a little. It
    knows no synonyms: it is not a language model."""

    WORD_WEIGHT = 1.0
    TRIGRAM_WEIGHT = 0.5

    def __init__(self, dimensions: int = 64) -> None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise ConfigError(
                f"ToyEmbedder: dimensions must be a positive integer, got {dimensions!r}"
            )
        self.dimensions = dimensions

    def __repr__(self) -> str:
        return f"ToyEmbedder(dimensions={self.dimensions})"

    def _add(self, vector: list[float], feature: str, weight: float) -> None:
        digest = hashlib.sha256(feature.encode("utf-8")).digest()
        bucket = int.from_bytes(digest[:8], "big") % self.dimensions
        vector[bucket] += weight if digest[8] & 1 else -weight

    def embed_one(self, text: str) -> Vector:
        vector = [0.0] * self.dimensions
        for word in words(text):
            self._add(vector, "w:" + word, self.WORD_WEIGHT)
            padded = f"^{word}$"
            for i in range(len(padded) - 2):
                self._add(vector, "t:" + padded[i : i + 3], self.TRIGRAM_WEIGHT)
        scaled = unit(vector)
        return tuple(vector) if scaled is None else scaled

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [self.embed_one(text) for text in texts]
