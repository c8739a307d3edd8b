"""The MCP tools for finding memories: search, list_subjects and list_predicates.

`recall` needs the exact subject and predicate; these find them. All three are reads,
served in read-only mode too. Semantic search is not offered here: the server has no
embedder (the Python API's `Engine.search(..., semantic=True)` with a vector port has).
`similar_predicates` is what `remember` and `ingest_claim` add to their answer, so an
agent sees `home_city` when it writes `city`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from mempill.cli import checks
from mempill.cli.checks import MAX_MCP_LIMIT
from mempill.core.limits import MAX_KEY_CHARS
from mempill.core.search import SearchHit, words
from mempill.engine import Engine
from mempill.mcp.arguments import AsOf, ValidAt
from mempill.mcp.guards import ToolBase, compact, date_arg, guarded, keys

#: The most hits one `search` call returns.
MAX_SEARCH_LIMIT = 100
#: The most predicates `similar_predicates` lists.
MAX_SIMILAR = 20

SearchText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="Words to look for in subjects, predicates and believed values, e.g. "
        "'city', 'sister birthday', 'Zurich'. Case and accents are ignored, a word also "
        "matches longer words it begins (emp finds employer), and snake_case or camelCase "
        "names are split into words (home_city holds 'home' and 'city').",
    ),
]
SearchLimit = Annotated[
    int, Field(ge=1, le=MAX_SEARCH_LIMIT, description="At most this many facts, best first.")
]
IncludeHistory = Annotated[
    bool,
    Field(
        description="Also match values that are no longer believed (ended or superseded "
        "claims). Default false: only what is believed now (or at as_of/valid_at)."
    ),
]
Prefix = Annotated[
    str | None,
    Field(
        max_length=MAX_KEY_CHARS,
        description="Only subjects starting with this text, e.g. 'user' or 'project:'. "
        "Omit for every subject.",
    ),
]
SubjectsAfter = Annotated[
    str | None,
    Field(
        max_length=MAX_KEY_CHARS,
        description="Pass the returned next_cursor to get the next page. Omit for the first.",
    ),
]
SubjectsLimit = Annotated[
    int, Field(ge=1, le=MAX_MCP_LIMIT, description="At most this many subjects a page.")
]
PredicatesOf = Annotated[
    str | None,
    Field(description="Only the predicates of this subject. Omit for every subject's."),
]


class FindingTools(ToolBase):
    """search, list_subjects and list_predicates (all reads)."""

    READ: tuple[str, ...] = ("search", "list_subjects", "list_predicates")

    @guarded
    def search(
        self,
        text: SearchText,
        limit: SearchLimit = 10,
        as_of: AsOf = None,
        valid_at: ValidAt = None,
        include_history: IncludeHistory = False,
    ) -> dict[str, Any]:
        """Find remembered facts by words when you do not know their exact subject and
        predicate: call it before concluding that you know nothing about something.

        recall only finds the exact subject and predicate (recall user/city misses
        user/home_city); search matches the words of subjects, predicates and believed
        values. Each hit has the subject, predicate, a score (2 per query word found
        whole, 1 per word found as the start of a longer one), the query words it
        matched, and its belief in the form recall returns (check belief.status before
        trusting belief.value). Best hits first.
        """
        checks.text(text, "text")
        found = self.engine.search(
            self.agent,
            text,
            limit=limit,
            as_of=None if as_of is None else checks.text(as_of, "as_of"),
            valid_at=date_arg(valid_at, "valid_at"),
            include_history=include_history,
        )
        return {
            "query": found.query,
            "words": list(found.words),
            "hits": [_hit(hit) for hit in found.hits],
        }

    @guarded
    def list_subjects(
        self, prefix: Prefix = None, limit: SubjectsLimit = 100, after: SubjectsAfter = None
    ) -> dict[str, Any]:
        """List the subjects memory holds facts about, in alphabetical order, each with its
        number of facts (lines) and how many of them hold a belief now (believed).

        Use it to see what you know about (every person, project, place…) or which
        spelling a subject uses ('user.sister' or 'sister'). Page with after = the
        returned next_cursor until it is null.
        """
        checks.optional_text(prefix, "prefix")
        checks.optional_text(after, "after")
        page = self.engine.list_subjects(self.agent, prefix=prefix, limit=limit, after=after)
        return {
            "subjects": [s.to_dict() for s in page.subjects],
            "next_cursor": page.next_cursor,
        }

    @guarded
    def list_predicates(self, subject: PredicatesOf = None) -> dict[str, Any]:
        """List the predicates in use (of one subject, or of every subject), in
        alphabetical order, each with how many facts use it (lines) and how many hold a
        belief now (believed).

        Check it before remembering a fact under a new predicate: reuse the existing
        name (home_city rather than a new city) so that one fact is not split across
        two predicates.
        """
        if subject is not None:
            keys(subject)
        found = self.engine.list_predicates(self.agent, subject)
        return {"subject": subject, "predicates": [p.to_dict() for p in found]}


def _hit(hit: SearchHit) -> dict[str, Any]:
    return {
        "subject": hit.subject,
        "predicate": hit.predicate,
        "score": hit.score,
        "matched": list(hit.matched),
        "belief": compact(hit.belief),
    }


def similar_predicates(engine: Engine, agent: str, subject: str, predicate: str) -> list[str]:
    """The subject's other predicates that share a word with `predicate` (`home_city` for
    `city`), in alphabetical order, at most MAX_SIMILAR."""
    wanted = set(words(predicate))
    if not wanted:
        return []
    found = [
        p.predicate
        for p in engine.list_predicates(agent, subject)
        if p.predicate != predicate and wanted.intersection(words(p.predicate))
    ]
    return found[:MAX_SIMILAR]
