"""The text-search matching rule (pure): words, how a query matches a line, and its score.

One rule for every backend, applied in Python, so SQLite and PostgreSQL return the same hits
in the same order. The stores keep an index of words (`terms`) only to find the lines worth
folding; whether a line is a hit, and its score, is decided here on the believed value.

* **Words.** Text is split into words at every character that is not a letter or a digit
  (so `home_city`, `home-city` and `home city` give `home` and `city`) and between a lower
  case letter and an upper case one (`homeCity`); each word is NFKD-normalised, stripped of
  its accents and case-folded (`Zürich` → `zurich`). Words longer than `MAX_WORD` characters
  are cut there. A JSON value's words are those of its strings, object keys and numbers, the
  first `MAX_VALUE_WORDS` distinct ones (`capped_value_words`): the index holds no more,
  so the rule counts no more either.
* **Matching.** A query word matches a line word that equals it or starts with it. A line is
  a hit when at least one query word matches a word of its subject, its predicate or (unless
  told otherwise) its value.
* **Score.** Each query word scores 2 when it equals some word of the line, 1 when it only
  prefixes one, 0 otherwise; the line's score is the sum. Hits are ordered by score
  (highest first), then subject and predicate (by code point).
* **The index.** A claim's terms (`claim_terms`) are the distinct words of its subject, its
  predicate and its value (capped as above). They are written a block at a time
  (`INDEX_BLOCK` on SQLite): the claims below `indexed_below` are in the index, the few of
  the head's block are read and split by the search itself. A line whose words
  match a query word has a claim holding a term in `prefix_bounds` of that word, so a
  lookup of those ranges never misses a hit; the score of the union of a line's terms is
  an upper bound of its score (`score` only grows with the words), which lets a search stop
  folding candidates once no remaining one can enter the page.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from mempill.core import tables
from mempill.core.model import FROZEN, Listing, Projection, Record
from mempill.core.tables import BELIEF, Column, column, within

#: Longer words are cut to this many characters (in the index and in queries alike).
MAX_WORD = 64
#: At most this many distinct query words count (the rest of a query is ignored).
MAX_QUERY_WORDS = 32
#: A value contributes its first this many distinct words (in the index and the rule).
MAX_VALUE_WORDS = 256
#: A value whose texts are shorter than this in all is split in one pass (one `findall`);
#: a larger one word by word, up to the cap.
_JOIN_BELOW = 1024
#: The longest query text, in characters (a longer one is a ValidationError).
MAX_QUERY_CHARS = 10_000
#: SQLite writes the word index a block of ledger positions at a time: the transaction
#: that moves the head into a new block writes the terms of every claim of the blocks it
#: completed, in one statement, so one claim's commit does not touch a page of the index
#: per word. A search splits the claims of the head's block itself (at most this many).
#: (A store's `index_block`; 0, PostgreSQL's, writes a claim's terms with the claim.)
INDEX_BLOCK = 32
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


#: A maximal run of letters and digits (exactly the characters `str.isalnum` accepts).
_WORD = re.compile(r"[^\W_]+")


@functools.lru_cache(maxsize=65_536)
def _fold(word: str) -> str:
    """NFKD, accents stripped, case-folded, cut at MAX_WORD (cached: words repeat)."""
    if word.isascii():
        return word.lower()[:MAX_WORD]
    decomposed = unicodedata.normalize("NFKD", word)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.casefold()[:MAX_WORD]


def words(text: str) -> Iterator[str]:
    """The words of `text`, in order (with repeats)."""
    return iter(_folded_words(text))


def _folded_words(text: str) -> list[str]:
    """`words` as a list: one pass of each pattern over the whole text (a space where the
    case changes splits a word as the rule says; a space is never part of a word)."""
    spaced = _CAMEL.sub(" ", text)
    if not spaced.isascii():
        return [_fold(word) for word in _WORD.findall(spaced)]
    found = _WORD.findall(spaced.lower())
    if len(spaced) > MAX_WORD and max(map(len, found), default=0) > MAX_WORD:
        return [word[:MAX_WORD] for word in found]
    return found


def _value_texts(value: Any, into: list[str]) -> None:
    """The texts whose words are the value's: its strings, object keys and numbers."""
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        into.append(repr(value))
    elif isinstance(value, dict):
        for k, v in value.items():
            into.append(str(k))
            _value_texts(v, into)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _value_texts(item, into)


def value_words(value: Any) -> Iterator[str]:
    """The words of a JSON value: its strings, object keys and numbers (not true/false/null)."""
    texts: list[str] = []
    _value_texts(value, texts)
    return iter(_folded_words(" ".join(texts)))


def capped_value_words(value: Any) -> tuple[str, ...]:
    """The value's first MAX_VALUE_WORDS distinct non-empty words, in order (a large value
    is read word by word, and no further once that many are found)."""
    texts: list[str] = []
    _value_texts(value, texts)
    if sum(map(len, texts)) < _JOIN_BELOW:  # small: every word in one pass
        seen = dict.fromkeys(_folded_words(" ".join(texts)))
    else:
        seen = {}
        for text in texts:
            for match in _WORD.finditer(_CAMEL.sub(" ", text)):
                seen[_fold(match.group())] = None
                if len(seen) > MAX_VALUE_WORDS:  # enough even if one of them is empty
                    break
            if len(seen) > MAX_VALUE_WORDS:
                break
    seen.pop("", None)
    return tuple(seen)[:MAX_VALUE_WORDS] if len(seen) > MAX_VALUE_WORDS else tuple(seen)


@functools.lru_cache(maxsize=4_096)
def key_words(text: str) -> tuple[str, ...]:
    """The distinct non-empty words of a subject or predicate."""
    return tuple(dict.fromkeys(w for w in words(text) if w))


def claim_terms(subject: str, predicate: str, value_json: str) -> tuple[str, ...]:
    """The index terms of a claim: the distinct words of its subject, its predicate and its
    value (stored canonical JSON text; its first MAX_VALUE_WORDS distinct words)."""
    found = dict.fromkeys(key_words(subject))
    found.update(dict.fromkeys(key_words(predicate)))
    found.update(dict.fromkeys(capped_value_words(json.loads(value_json))))
    return tuple(found)


def query_words(text: str) -> tuple[str, ...]:
    """A query's distinct words in order of first appearance (at most MAX_QUERY_WORDS)."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word:
            seen.setdefault(word, None)
    return tuple(seen)[:MAX_QUERY_WORDS]


def score(query: tuple[str, ...], found: Iterable[str]) -> int:
    """The score of a line whose words are `found` (0: not a hit)."""
    have = set(found)
    total = 0
    for word in query:
        if word in have:
            total += 2
        elif any(w.startswith(word) for w in have):
            total += 1
    return total


def indexed_below(head: int, block: int) -> int:
    """The stream_seq below which every claim's terms are in the word index (written with
    the word index on, or by `reindex`) when it is written `block` positions at a time (0:
    with each claim); the claims from there to the head are searched directly."""
    return head + 1 if block == 0 else head - head % block


def prefix_bounds(word: str) -> tuple[str, str]:
    """[low, high) of the words that start with `word`, in code point order."""
    return word, word[:-1] + chr(ord(word[-1]) + 1)


# ---------------------------------------------------------------- results


@dataclass(**FROZEN)
class SubjectCount(Record):
    """A subject with how many lines it has and how many of them hold a belief now."""

    subject: str
    lines: int
    believed: int


#: `SubjectsPage`: a row per subject.
SUBJECT = (
    column("subject", "text", label="subject"),
    column("lines", "int", label="lines"),
    column("believed", "int", label="believed"),
)


@dataclass(**FROZEN)
class SubjectsPage(Listing, Record):
    """Subjects in code point order; `next_cursor` (the last subject) goes back as `after=`."""

    agent_id: str
    subjects: tuple[SubjectCount, ...]
    next_cursor: str | None
    _columns: ClassVar[tuple[Column, ...]] = SUBJECT
    _entries: ClassVar[str] = "subjects"

    def _summary(self) -> str:
        return Listing._summary(self) + tables.cursor(self.next_cursor)

    def __iter__(self) -> Any:
        return iter(self.subjects)

    def __len__(self) -> int:
        return len(self.subjects)


@dataclass(**FROZEN)
class PredicateCount(Record):
    """A predicate with how many lines (subjects) use it and how many hold a belief now."""

    predicate: str
    lines: int
    believed: int


@dataclass(**FROZEN)
class SearchHit(Record):
    """One line that matched: its score, the query words it matched and its belief."""

    subject: str
    predicate: str
    score: float
    matched: tuple[str, ...]
    belief: Projection


#: `SearchResult`: a row per hit, its belief's columns after its score (as of and valid at
#: are the search's own, in the frame only).
SEARCH_HIT = (
    column("score", "float", label="score"),
    column("subject", "text", label="subject"),
    column("predicate", "text", label="predicate"),
    *within(
        "belief",
        [c for c in BELIEF if c.name not in ("subject", "predicate")],
        hide=("as_of", "valid_at"),
    ),
    column(
        "matched",
        "value",
        lambda hit: list(hit.matched),
        label="matched",
        shown=lambda hit: " ".join(hit.matched),
    ),
)


@dataclass(**FROZEN)
class SearchResult(Listing, Record):
    """The hits of one search, best first (score, then subject and predicate)."""

    agent_id: str
    query: str
    words: tuple[str, ...]
    semantic: bool
    hits: tuple[SearchHit, ...]
    _columns: ClassVar[tuple[Column, ...]] = SEARCH_HIT
    _entries: ClassVar[str] = "hits"

    def _summary(self) -> str:
        how = "semantic" if self.semantic else "words " + " ".join(self.words)
        return f"{self.query!r} ({how}): {Listing._summary(self)}"

    def __iter__(self) -> Any:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)
