"""stdio for the MCP server, with an answer for every request the SDK cannot read.

The SDK's stdio transport drops a line that does not validate as JSON-RPC (it logs it at
debug level), so a client that sent it waits for a reply that never comes. Causes: a
string with an unpaired surrogate escape (`"\\ud800"`, valid JSON syntax but not
Unicode text), an integer of more than 4300 digits, nesting deeper than the SDK's parser
follows, or JSON that is not JSON-RPC. Here such a line is read again leniently and
answered: a `tools/call` with a tool error that names the arguments (like any other bad
argument), another request with a JSON-RPC "invalid request" error carrying its id, a
line that is not JSON with a parse error (id null, as JSON-RPC 2.0 says). Notifications
get no answer, as the protocol says.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

from mempill.cli.checks import UNCLEAN
from mempill.core.canonical import is_clean_text
from mempill.core.limits import MAX_INT_DIGITS

HUGE = f"a JSON integer of more than {MAX_INT_DIGITS} digits (send it as a string)"
#: For a line too deep for any parser: the request's id, method and tool name, if visible.
_FIELD = r'"{}"\s*:\s*(-?\d{{1,18}}|"[^"\\]{{0,200}}")'


class _Huge:
    """An integer literal too long to convert (Python refuses beyond 4300 digits)."""


class _Unreadable(Exception):
    pass


def unreadable_reply(error: Exception) -> types.JSONRPCMessage | None:
    """The answer to a line the SDK could not parse (None: a notification, no answer)."""
    items = _items(error)
    why = str(items[0].get("msg", "unreadable")) if items else "unreadable"
    try:
        data = _recover(items)
    except _Unreadable:
        return _error(None, types.PARSE_ERROR, "Parse error: the line is not JSON")
    if not isinstance(data, dict):
        return _error(None, types.INVALID_REQUEST, "Invalid request: not a JSON-RPC message")
    ident = data.get("id")
    if "method" not in data or ident is None:
        return None  # a notification (or a stray response): nothing to answer
    if isinstance(ident, bool) or not isinstance(ident, (int, str)) or not _clean(ident):
        return _error(None, types.INVALID_REQUEST, "Invalid request: the id is not usable")
    params = data.get("params")
    if data.get("method") != "tools/call" or not isinstance(params, dict):
        return _error(ident, types.INVALID_REQUEST, f"Invalid request: {why}")
    arguments = params.get("arguments")
    bad = _bad_arguments(arguments if isinstance(arguments, dict) else {})
    text = "; ".join(f"{n}: {reason}" for n, reason in bad)
    name = params.get("name")
    tool = name if isinstance(name, str) and _clean(name) else "?"
    result = types.CallToolResult(
        content=[
            types.TextContent(
                type="text",
                text=f"Error executing tool {tool}: {text or f'the request is unreadable ({why})'}",
            )
        ],
        is_error=True,
    )
    dumped = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    return types.JSONRPCResponse(jsonrpc="2.0", id=ident, result=dumped)


def _items(error: Exception) -> list[dict[str, Any]]:
    """The items of the SDK's pydantic ValidationError ([] for anything else)."""
    errors = getattr(error, "errors", None)
    try:
        found = errors() if callable(errors) else []
    except Exception:  # not pydantic's errors(): nothing to recover
        return []
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _recover(items: list[dict[str, Any]]) -> Any:
    """The message the SDK could not take: its line re-read leniently, or the JSON value
    that is not a message. `_Unreadable` when there is nothing to answer to."""
    for item in items:
        raw = item.get("input")
        if item.get("type") == "json_invalid" and isinstance(raw, (str, bytes)):
            line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            try:
                return json.loads(line, strict=False, parse_int=_integer)
            except RecursionError:
                return _scan(line)
            except ValueError:
                raise _Unreadable from None
    for item in items:  # valid JSON, not a message: the whole value is some item's input
        if len(item.get("loc", ())) <= 2 and isinstance(item.get("input"), dict):
            return item["input"]
    if not items:
        raise _Unreadable
    return items[0].get("input")


def _integer(text: str) -> int | _Huge:
    return _Huge() if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def _scan(line: str) -> dict[str, Any]:
    """The id, method and tool name of a line nested too deeply to parse, when visible."""
    found: dict[str, Any] = {}
    for key in ("id", "method", "name"):
        match = re.search(_FIELD.format(key), line)
        if match is not None:
            found[key] = json.loads(match.group(1))
    if found.get("method") == "tools/call":
        found["params"] = {"name": found.get("name"), "arguments": {}}
    if "id" not in found:
        raise _Unreadable
    return found


def _clean(value: Any) -> bool:
    return not isinstance(value, str) or is_clean_text(value)


def _bad_arguments(arguments: dict[Any, Any]) -> list[tuple[str, str]]:
    """(name, why) of each argument that holds what no tool can take."""
    bad = []
    for name, value in arguments.items():
        shown = str(name) if _clean(name) else repr(name)
        why = UNCLEAN if not _clean(name) else _tree_problem(value)
        if why is not None:
            bad.append((shown, why))
    return bad


def _tree_problem(value: Any) -> str | None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not is_clean_text(item):
            return UNCLEAN
        if isinstance(item, _Huge):
            return HUGE
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _error(ident: int | str | None, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(
        jsonrpc="2.0", id=ident, error=types.ErrorData(code=code, message=message)
    )


async def relay(
    source: Any, sink: anyio.abc.ObjectSendStream[SessionMessage | Exception], replies: Any
) -> None:
    """Pass the transport's messages on; answer the lines it could not read."""
    async with sink:
        async for item in source:
            if isinstance(item, Exception):
                reply = unreadable_reply(item)
                if reply is not None:
                    await replies.send(SessionMessage(reply))
                continue
            await sink.send(item)
