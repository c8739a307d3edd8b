"""The word splitter's one-pass form says exactly what the rule's word-by-word form says.

`reference_words` and `reference_value_words` are the rule written the plain way (the
engine's form before it was made cheaper: split at case changes, then find each run of
letters and digits, fold each word); the engine's `words`, `value_words`,
`capped_value_words` and `claim_terms` must agree with them on any text and any JSON value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
from hypothesis import example, given
from test_properties import PROFILE

from mempill.core.search import (
    MAX_VALUE_WORDS,
    MAX_WORD,
    _fold,
    capped_value_words,
    claim_terms,
    value_words,
    words,
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[^\W_]+")


def reference_words(text: str) -> Iterator[str]:
    for piece in _CAMEL.split(text):
        for word in _WORD.findall(piece):
            yield _fold(word)


def reference_value_words(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from reference_words(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        yield from reference_words(repr(value))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from reference_words(str(k))
            yield from reference_value_words(v)
    elif isinstance(value, list):
        for item in value:
            yield from reference_value_words(item)


def reference_capped(value: Any) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for word in reference_value_words(value):
        if word and word not in seen:
            seen[word] = None
            if len(seen) == MAX_VALUE_WORDS:
                break
    return tuple(seen)


#: Letters of both cases, digits, separators, accents, ligatures and other scripts.
ALPHABET = st.sampled_from([*"aZz09_- .,éÉßﬁ\u0301Å日本ΣςİıǅⅫ²\u00aa", "x" * 70, "Ab" * 40])
TEXT = st.lists(ALPHABET, max_size=30).map("".join) | st.text(max_size=60)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(TEXT, inner, max_size=6),
    max_leaves=40,
)


@PROFILE
@given(TEXT)
@example("homeCity home_city HOME-city Zürich ﬁne")
@example("a" * 65 + "B" + "c" * 80)
def test_words_is_the_rule(text: str) -> None:
    assert list(words(text)) == list(reference_words(text))


@PROFILE
@given(JSON)
@example({"homeCity": ["Zürich", 1.5, True, None, {"x9Y": "ab"}]})
@example([f"w{i}" for i in range(MAX_VALUE_WORDS + 10)])
def test_value_words_and_the_cap_are_the_rule(value: Any) -> None:
    assert list(value_words(value)) == list(reference_value_words(value))
    assert capped_value_words(value) == reference_capped(value)


@PROFILE
@given(TEXT, TEXT, JSON)
def test_claim_terms_are_the_rule(subject: str, predicate: str, value: Any) -> None:
    expected = dict.fromkeys(w for w in reference_words(subject) if w)
    expected.update(dict.fromkeys(w for w in reference_words(predicate) if w))
    expected.update(dict.fromkeys(reference_capped(value)))
    assert claim_terms(subject, predicate, json.dumps(value)) == tuple(expected)


#: Texts past the length where the cap reads a text word by word (`_JOIN_BELOW`).
LONG = st.lists(
    ALPHABET | st.sampled_from(["Word", "w0rd ", "wörd ", " "]), min_size=400, max_size=900
).map("".join)


@PROFILE
@given(st.lists(LONG | TEXT, min_size=1, max_size=4))
@example([" ".join(f"wörd{i}" for i in range(400))])
@example([f"w{i} " * 3 for i in range(300)])
def test_the_cap_over_long_texts_is_the_rule(texts: list[str]) -> None:
    assert capped_value_words(texts) == reference_capped(texts)
    assert capped_value_words(" ".join(texts)) == reference_capped(" ".join(texts))


def test_long_words_are_cut_and_the_cap_holds() -> None:
    assert list(words("a" * 100)) == ["a" * MAX_WORD]
    assert len(capped_value_words([f"w{i}" for i in range(1000)])) == MAX_VALUE_WORDS
