"""The size limits of every request, in one place (docs/security.md has the table).

Each limit is checked where the request is parsed (`parse.py`) or decided (rule V of
`decide.py`), so the engine, `mempill.compat`, the command line and the MCP server all
get it, identically on every backend. Together they bound what one request can make the
store keep for ever, whatever its disposition: a claim row (a quarantined one too) holds
at most `max_value_bytes` of value, two keys and `MAX_PARENTS` short refs; a rejected
request's ledger entry echoes its value only when the echo fits `max_value_bytes`.
"""

from __future__ import annotations

#: Subject and predicate, in characters. A longer key is `Rejected/key_too_long` on a
#: write (reference rule V) and a ValidationError on a read (no stored claim has one).
MAX_KEY_CHARS = 1024
#: An agent id: 1-128 characters of [A-Za-z0-9_.-], not starting with '.'.
MAX_AGENT_ID_CHARS = 128
#: Entries of one request's `derived_from`; more is a ValidationError.
MAX_PARENTS = 256
#: Characters of one `derived_from` entry as given. A claim ref is a UUID (36 characters
#: hyphenated, 45 with a `urn:uuid:` prefix); a longer entry cannot name a claim and is a
#: ValidationError. Shorter text that is not a UUID names no claim: `Rejected/unknown_parent`.
MAX_REF_CHARS = 64
#: An adjudication handle to submit a verdict for (handles are minted UUIDs).
MAX_HANDLE_CHARS = 1024
#: Lines one `reconcile(lines=...)` call may name (`lines=None` covers every line).
MAX_RECONCILE_LINES = 10_000
#: Nesting depth of a value (deeper is `Rejected/value_too_deep`).
MAX_VALUE_DEPTH = 64
#: Python refuses to write an integer of more than 4,300 digits as text (its default
#: int-to-text limit), so canonical JSON cannot hold one: a ValidationError.
MAX_INT_DIGITS = 4300
#: The largest stream_seq (and audit cursor or limit): both backends store a signed 64-bit int.
MAX_SEQ = 2**63 - 1
