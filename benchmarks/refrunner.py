"""Drives the published `mempill` wheel for the benchmarks: JSON lines on stdin/stdout.

Run by the reference virtual environment's python (`python -I refrunner.py [module]`), never
imported by this project: its `mempill` is the wheel, whose import name clashes with
ours. Uses only the standard library and the wheel. Each request is one JSON object with
an `op`; each answer is one JSON object with `ok` and the op's results. Timing happens
here, around the wheel's calls only, so the pipe is not measured.

Ops: `hello`; `open` {dir|null, agent} -> handle; `close` {handle}; `ingest` {handle,
claims} -> seconds, dispositions; `query` {handle, queries} -> latencies, statuses;
`rss` -> peak resident set size of this process in KiB; `quit`.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import json
import resource
import sys
import time
from collections import Counter
from importlib import metadata
from typing import Any

#: The wheel; a test passes `mempill.compat` (this project's wheel-shaped layer) instead.
MODULE = sys.argv[1] if len(sys.argv) > 1 else "mempill"
mempill: Any = importlib.import_module(MODULE)
engines: dict[int, tuple[Any, str]] = {}
handles = itertools.count(1)


def op_hello(request: dict[str, Any]) -> dict[str, Any]:
    version = getattr(mempill, "__version__", None) or metadata.version("mempill")
    return {"version": version, "module": MODULE, "python": sys.version.split()[0]}


def op_open(request: dict[str, Any]) -> dict[str, Any]:
    directory = request.get("dir")
    agent = request["agent"]
    if directory is None:
        engine = mempill.open_in_memory()
    else:
        engine = mempill.open_for_agent(directory, agent)
    handle = next(handles)
    engines[handle] = (engine, agent)
    return {"handle": handle}


def op_close(request: dict[str, Any]) -> dict[str, Any]:
    engine, _ = engines.pop(request["handle"], (None, ""))
    if hasattr(engine, "close"):
        engine.close()
    del engine
    gc.collect()  # the wheel closes its database when the engine is collected
    return {}


def op_ingest(request: dict[str, Any]) -> dict[str, Any]:
    engine, _ = engines[request["handle"]]
    claims = request["claims"]
    dispositions: Counter[str] = Counter()
    started = time.perf_counter()
    for claim in claims:
        dispositions[engine.ingest_claim(claim)["disposition"]] += 1
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "dispositions": dict(dispositions)}


def op_query(request: dict[str, Any]) -> dict[str, Any]:
    engine, agent = engines[request["handle"]]
    latencies = []
    statuses: Counter[str] = Counter()
    for query in request["queries"]:
        call = {"agent_id": agent, "subject": query["subject"], "predicate": query["predicate"]}
        if query.get("valid_at"):
            call["valid_at"] = query["valid_at"]
        started = time.perf_counter()
        answer = engine.query_memory(call)
        latencies.append(time.perf_counter() - started)
        statuses[str(answer["belief"].get("status"))] += 1
    return {"latencies": latencies, "statuses": dict(statuses)}


def op_rss(request: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS in KiB: VmHWM (ru_maxrss would include the parent's size at fork)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return {"max_rss_kib": int(line.split()[1])}
    except OSError:
        pass
    return {"max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


OPS = {
    "hello": op_hello,
    "open": op_open,
    "close": op_close,
    "ingest": op_ingest,
    "query": op_query,
    "rss": op_rss,
}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        try:
            answer = {"ok": True, **OPS[request["op"]](request)}
        except Exception as e:  # reported to the caller, which raises it there
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
