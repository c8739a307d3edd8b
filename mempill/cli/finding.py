"""The commands that find memories: search, subjects, predicates, and reindex.

`search` matches words of subjects, predicates and believed values (`city` finds
`home_city`), so it answers where `recall` needs the exact subject and predicate.
`subjects` and `predicates` list the names in use. `reindex` rebuilds the agent's word
index (a write, but it changes no memory, so it asks for no confirmation).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from mempill.cli import checks
from mempill.cli.commands import Output, Session
from mempill.cli.explain import belief_reason
from mempill.cli.tables import END, table
from mempill.cli.terminal import visible
from mempill.cli.travel import values_text
from mempill.core.search import PredicateCount, SearchResult, SubjectCount, SubjectsPage

COMMANDS = frozenset({"search", "subjects", "predicates", "reindex"})


def check_finding_arguments(args: argparse.Namespace) -> None:
    """The query and optional keys, refused before the store is opened."""
    if args.command == "search":
        checks.text(args.text, "text")
    if args.command == "subjects":
        checks.optional_text(args.prefix, "--prefix")
        checks.optional_text(args.after, "--after")
    if args.command == "predicates" and args.subject is not None:
        checks.key(args.subject, "subject")


# ---------------------------------------------------------------- commands


def search(session: Session, args: argparse.Namespace) -> Output:
    found = session.engine.search(
        session.agent,
        args.text,
        limit=args.limit,
        as_of=args.as_of,
        valid_at=args.valid_at,
        include_history=args.history,
    )
    data = found.to_dict()
    for hit, shown in zip(found.hits, data["hits"], strict=True):
        shown["belief"]["status_reason"] = belief_reason(hit.belief, END)
    return Output(data, search_text(found))


def subjects(session: Session, args: argparse.Namespace) -> Output:
    """One page, or with `--all` every page (following `next_cursor`) as one."""
    pages: list[SubjectsPage] = []
    after = args.after
    while True:
        page = session.engine.list_subjects(
            session.agent, prefix=args.prefix, limit=args.limit, after=after
        )
        pages.append(page)
        if not args.all or page.next_cursor is None:
            break
        after = page.next_cursor
    found = [s for page in pages for s in page.subjects]
    data: dict[str, Any] = pages[-1].to_dict()
    data["subjects"] = [s.to_dict() for s in found]
    return Output(data, subjects_text(found, pages[-1].next_cursor))


def predicates(session: Session, args: argparse.Namespace) -> Output:
    found = session.engine.list_predicates(session.agent, args.subject)
    data = {"subject": args.subject, "predicates": [p.to_dict() for p in found]}
    return Output(data, predicates_text(args.subject, found))


def reindex(session: Session, args: argparse.Namespace) -> Output:
    count = session.engine.reindex(session.agent)
    data = {"agent_id": session.agent, "claims": count}
    return Output(data, f"indexed {count} claim(s) of agent {visible(session.agent)}")


# ---------------------------------------------------------------- text


def search_text(found: SearchResult) -> str:
    if not found.hits:
        shown = ", ".join(found.words) or visible(found.query)
        return f"nothing matches: {visible(shown)}"
    rows = [
        (
            f"{hit.score:g}",
            hit.subject,
            hit.predicate,
            hit.belief.status.value,
            values_text(hit.belief.candidates),
        )
        for hit in found.hits
    ]
    return table(("SCORE", "SUBJECT", "PREDICATE", "STATUS", "VALUE"), rows)


def subjects_text(found: list[SubjectCount], next_cursor: str | None) -> str:
    if not found:
        text = "no subjects"
    else:
        rows = [(s.subject, s.lines, s.believed) for s in found]
        text = table(("SUBJECT", "FACTS", "BELIEVED"), rows)
    if next_cursor is not None:
        text += f"\n(more: --after {shlex.quote(visible(next_cursor))}, or --all)"
    return text


def predicates_text(subject: str | None, found: tuple[PredicateCount, ...]) -> str:
    where = "every subject" if subject is None else visible(subject)
    if not found:
        return f"{where}: no predicates"
    rows = [(p.predicate, p.lines, p.believed) for p in found]
    return f"{where}\n" + "\n".join(
        "  " + row for row in table(("PREDICATE", "FACTS", "BELIEVED"), rows).splitlines()
    )
