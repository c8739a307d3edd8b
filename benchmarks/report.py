"""The console table and the markdown report of a results dict."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from benchmarks import pgperf, rls, search, tables
from benchmarks.targets import judge_postgres

Row = Sequence[str]


def text_table(header: Row, rows: Sequence[Row]) -> str:
    """A plain aligned table for the terminal (first column left, others right)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Row) -> str:
        cells = [
            str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
            for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def markdown_table(header: Row, rows: Sequence[Row]) -> str:
    def line(row: Row) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    align = "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"
    return "\n".join([line(header), align, *(line(r) for r in rows)])


SUMMARY = ("measurement", "ours", "reference", "ours ÷ reference")
TARGETS = ("target", "value", "bound", "verdict", "floor (same measure)")


def concurrency_header(results: dict[str, Any]) -> list[str]:
    writers = sorted(results.get("sizes", {}).get("threads", []))
    scaling = f"{writers[-1]} ÷ {writers[0]} writer(s)" if writers else "scaling"
    return ["config", "agents", *[f"{w} writer(s), claims/s" for w in writers], scaling]


def console(results: dict[str, Any]) -> str:
    """What `python -m benchmarks run` prints at the end."""
    parts = [
        f"mempill benchmarks ({results['profile']}), {results['machine']['cpu']['model']}",
        "",
        text_table(TARGETS, tables.targets(results)),
        "",
        text_table(SUMMARY, tables.summary(results)),
    ]
    if tables.concurrency(results):
        parts += ["", text_table(concurrency_header(results), tables.concurrency(results))]
    if (results.get("postgres") or {}).get("servers"):
        parts += ["", "PostgreSQL (issue 14)", "", text_table(TARGETS, postgres_targets(results))]
        parts += ["", text_table(*pgperf.trip_rows(results))]
        parts += ["", text_table(*pgperf.server_rows(results))]
    return "\n".join(parts)


def postgres_targets(results: dict[str, Any]) -> list[list[str]]:
    """Rows of issue 14's PostgreSQL targets (judged from the results, one set per server)."""
    return tables.targets({"targets": [t.to_dict() for t in judge_postgres(results)]})


def machine_lines(machine: dict[str, Any]) -> list[str]:
    cpu, disk, pg = machine["cpu"], machine["disk"], machine.get("postgres")
    rotational = {True: "rotational", False: "non-rotational", None: "rotational: unknown"}
    lines = [
        f"* CPU: {cpu['model']}; {cpu['logical_cores']} logical cores "
        f"({cpu['usable_cores']} usable); memory {cpu['memory_total']}",
        f"* Disk: {disk['device']} ({disk['filesystem']}, {rotational[disk['rotational']]}) "
        f"mounted at {disk['mount']}; stores under {disk['path']}",
        f"* {machine['kernel']}; Python {machine['python']}; SQLite {machine['sqlite']}; "
        f"mempill {machine['mempill']} (git {machine['git_commit']})",
        f"* Load average at start: {machine['load_average_at_start']}; at end: "
        f"{machine.get('load_average_at_end')}",
    ]
    if pg:
        lines.append(
            f"* PostgreSQL {pg['server_version']} (fsync={pg['fsync']}, synchronous_commit="
            f"{pg['synchronous_commit']}, wal_sync_method={pg['wal_sync_method']}); "
            f"psycopg {pg['psycopg']}"
        )
    return lines


def _plans(results: dict[str, Any]) -> list[str]:
    plans = results.get("plans") or []
    if not plans:
        return []
    out = ["## SQLite query plans of the hot SQL", ""]
    out.append(f"Explained on {results.get('plans_database', 'the largest store')}.")
    out.append("")
    for plan in plans:
        flag = " — **full table scan**" if plan["full_scan"] else ""
        if plan.get("agent_wide"):
            flag += " — **visits every row of the agent** (only `agent_id` constrains it)"
        out.append(f"* `{plan['key']}` ({plan['why']}){flag}")
        out.extend(f"  * `{line}`" for line in plan["plan"])
    return [*out, ""]


def _profiles(results: dict[str, Any]) -> list[str]:
    found = results.get("profiles") or {}
    scenarios = found.get("scenarios", {})
    out = []
    for key, title in scenarios.items():
        run = found.get(key, {})
        out += [f"### Profile: {title}", ""]
        out += [
            f"{run.get('total_s', 0) * 1000:,.1f} ms under the profiler, "
            f"{run.get('per_call_s', 0) * 1e6:,.0f} µs per claim or query.",
            "",
        ]
        rows = [
            [r["function"], str(r["calls"]), f"{r['own_s']:.4f}", f"{r['cum_s']:.4f}"]
            for r in run.get("top", [])
        ]
        out += [markdown_table(("function", "calls", "own s", "cumulative s"), rows), ""]
    return (["## Where the time goes (cProfile, synchronous=OFF)", "", *out]) if out else []


def _notes(results: dict[str, Any]) -> list[str]:
    notes = list(results.get("notes", []))
    for name, why in (results.get("unavailable") or {}).items():
        notes.append(f"{name} was not measured: {why}")
    return ["## Notes", "", *[f"* {n}" for n in notes], ""] if notes else []


def markdown(results: dict[str, Any]) -> str:
    """The markdown report: machine, targets, summary, engine-only ingest, concurrency,
    PostgreSQL, conformance replay, plans, profiles, notes."""
    out = [f"# mempill benchmarks ({results['profile']})", ""]
    out += [f"Run {results['machine']['started_at']}, {results['seconds']:.0f} s.", ""]
    out += ["## Machine", "", *machine_lines(results["machine"]), ""]
    out += ["## Targets", ""]
    out += [
        "Each a ratio within this run (interleaved rounds, median of per-round ratios), "
        "except the µs and ms bounds. Reported, never asserted.",
        "",
    ]
    out += [markdown_table(TARGETS, tables.targets(results)), ""]
    out += ["## Summary", ""]
    out += ["Medians over rounds. For latencies an ours ÷ reference below 1 means faster.", ""]
    out += [markdown_table(SUMMARY, tables.summary(results)), ""]
    out += _engine(results)
    if tables.concurrency(results):
        out += ["## Concurrency (threads sharing one engine)", ""]
        out += [
            "`sqlite` is `open_directory`'s default (one file per agent, one store-wide write "
            "lock); the last column is the most writers' rate ÷ one writer's into the same "
            "agents, per round, median over rounds (the group-commit targets).",
            "",
        ]
        out += [markdown_table(concurrency_header(results), tables.concurrency(results)), ""]
        out += _group_floor(results)
    out += (
        _postgres(results)
        + _pgperf(results)
        + rls.report(results)
        + search.report(results)
        + _replay(results)
    )
    return "\n".join(out + _plans(results) + _profiles(results) + _notes(results))


def _group_floor(results: dict[str, Any]) -> list[str]:
    """The group-commit floor beside the concurrency table (`benchmarks/groupfloor.py`)."""
    concurrency = results.get("concurrency") or {}
    error = concurrency.get("group_floor_error")
    if error:
        return [f"The group-commit floor could not be measured: {error.splitlines()[-1]}", ""]
    found = concurrency.get("group_floor") or {}
    if not found:
        return []
    parts = [
        f"{p['writers']} writers into {p['agents']} agent(s) "
        f"{_number(p.get('over_one_writer'), '.2f')}× one writer"
        for p in found.values()
    ]
    return [
        "The group-commit floor (the script floor's statements and least Python, group "
        "committed as the engine does, each caller making its parameters outside the lock): "
        + "; ".join(parts)
        + ". Below 3, no engine issuing these statements reaches the target on this machine.",
        "",
    ]


def _number(value: Any, spec: str = ",.1f") -> str:
    return "—" if not isinstance(value, (int, float)) else format(value, spec)


def _engine(results: dict[str, Any]) -> list[str]:
    """Engine-only ingest, raw in-memory commits and the SQL floor, with its statements."""
    engine = results.get("engine") or {}
    if not engine:
        return []
    per = engine.get("us_per_claim") or {}
    out = ["## Engine-only ingest and the SQL floor (in memory)", ""]
    out += [
        f"One claim per `ingest` on `open_default_in_memory()`: {_number(per.get('ours'))} µs "
        f"per claim; raw in-memory `BEGIN IMMEDIATE; INSERT; COMMIT`: "
        f"{_number(per.get('raw'), ',.2f')} µs; the SQL floor (the engine's own sqlite3 calls "
        f"for one ingest, replayed with fresh keys on the engine's schema, parameters made "
        f"beforehand): {_number(per.get('floor'))} µs. Engine ÷ raw "
        f"{_number(engine.get('ours_over_raw'), '.3f')}, floor ÷ raw "
        f"{_number(engine.get('floor_over_raw'), '.3f')}, engine ÷ floor "
        f"{_number(engine.get('ours_over_floor'), '.3f')}. The script floor (those calls "
        f"with their parameters made per claim by the least Python that can make them: ids, "
        f"time, canonical JSON, word-index terms, a receipt; no rule): "
        f"{_number(per.get('script'))} µs, script ÷ raw "
        f"{_number(engine.get('script_over_raw'), '.3f')}, engine ÷ script "
        f"{_number(engine.get('ours_over_script'), '.3f')} (rates; medians of per-round "
        f"ratios over {len(engine.get('rounds') or [])} rounds of "
        f"{engine.get('claims_per_round', 0):,} claims).",
        "",
    ]
    statements = engine.get("floor_statements") or []
    ingests = engine.get("floor_ingests") or 1
    if statements:
        which = "one fresh-line ingest" if ingests == 1 else f"{ingests} fresh-line ingests"
        out += [f"The sqlite3 calls of {which} (the floor's statements, each once):", ""]
        times = Counter(s["sql"] for s in statements)
        first: dict[str, dict[str, Any]] = {}
        for s in statements:
            first.setdefault(s["sql"], s)
        for number, s in enumerate(first.values(), 1):
            keys = f" — fresh keys: {', '.join(s['keys'])}" if s["keys"] else ""
            rows = f", {s['rows']} rows" if s["rows"] != 1 else ""
            count = f", {times[s['sql']]} times" if times[s["sql"]] > 1 else ""
            out.append(f"{number}. `{s['sql']}` ({s['via']}{rows}{count}){keys}")
        out.append("")
    for key, what in (("floor_error", "SQL floor"), ("script_error", "script floor")):
        if engine.get(key):
            out += [f"The {what} could not be measured:", "", "```", engine[key], "```", ""]
    return out


def _postgres(results: dict[str, Any]) -> list[str]:
    """PostgreSQL: measured for another issue, not one of this issue's targets."""
    concurrency = results.get("concurrency") or {}
    raw = concurrency.get("postgres_vs_raw")
    skipped = (concurrency.get("skipped") or {}).get("postgres")
    if not raw and not skipped:
        return []
    out = ["## PostgreSQL", ""]
    if raw:
        out += [
            f"{raw['connections']} writers into {raw['agents']} agents: "
            f"{_number(raw.get('ours_rate'), ',.0f')} claims/s; raw one-row autocommit INSERTs "
            f"from {raw['connections']} connections: {_number(raw.get('raw_rate'), ',.0f')} "
            f"rows/s; ratio {_number(raw.get('ours_over_raw'), '.2f')} (median of per-round "
            f"ratios). The `postgres` rows of the concurrency table are the same server.",
            "",
        ]
    else:
        out += [f"Not measured: {skipped}", ""]
    return out


def _pgperf(results: dict[str, Any]) -> list[str]:
    """Issue 14: round trips, latency, writers and a store at scale, per server."""
    section = results.get("postgres") or {}
    if not section:
        return []
    out = ["## PostgreSQL round trips, writers and scale (issue 14)", ""]
    skipped = section.get("skipped") or {}
    out += [f"* Not measured: {what}: {why}" for what, why in skipped.items()]
    servers = section.get("servers") or {}
    if not servers:
        return [*out, ""]
    for label, found in servers.items():
        server = found.get("server") or {}
        out.append(
            f"* `{label}`: PostgreSQL {server.get('server_version')} ({server.get('source')} "
            f"server; fsync={server.get('fsync')}, synchronous_commit="
            f"{server.get('synchronous_commit')}, wal_sync_method={server.get('wal_sync_method')}"
            f", shared_buffers={server.get('shared_buffers')})"
        )
    sizes = results.get("sizes") or {}
    out += [
        "",
        "Targets per server (reported, never asserted):",
        "",
        markdown_table(TARGETS, postgres_targets(results)),
        "",
        "Round trips (the client waiting for the server) and statements of one call, from "
        "libpq's protocol trace (`mempill.lab.pgtrace`) on an engine with a one-connection "
        f"pool, after a warm-up; the most over {pgperf.TRACE_REPEATS} runs (each run's count "
        "is in results.json).",
        "",
        markdown_table(*pgperf.trip_rows(results)),
        "",
        f"Latency: {_number(sizes.get('pg_latency_ingests'), ',d')} single-thread ingests "
        "(one claim each, new lines of one agent), then a query of each line; client CPU is "
        "`time.process_time` ÷ calls. Writers: per round, in rotating order (median of "
        "per-round ratios). Scale: see `benchmarks.pgscale` (probe rates are claims per call "
        "÷ the median call; first read on a fresh engine).",
        "",
        markdown_table(*pgperf.server_rows(results)),
        "",
        "Bytes per stored claim of each table (with its TOAST) of the scale store:",
        "",
        markdown_table(*pgperf.relation_rows(results)),
        "",
    ]
    return out


def _replay(results: dict[str, Any]) -> list[str]:
    replay = results.get("replay") or {}
    if not replay:
        return []
    cells = ", ".join(f"{n} {cell}" for cell, n in sorted((replay.get("cells") or {}).items()))
    return [
        "## Conformance replay",
        "",
        f"`conformance.replay` of {replay['streams']} streams ({', '.join(replay['folders'])}; "
        f"{replay['operations']:,} operations in the streams that ran; verdicts: {cells}) on "
        f"`{replay['backend']}`: {_number(replay.get('us_per_op'))} µs per operation, "
        f"{_number(replay.get('engine_us_per_op'))} µs of it in the engine calls (median over "
        f"{len(replay.get('rounds') or [])} rounds).",
        "",
        *_replay_floor(replay),
    ]


def _replay_floor(replay: dict[str, Any]) -> list[str]:
    error = replay.get("floor_error")
    if error:
        return [f"The replay's floor could not be measured: {error}", ""]
    floor = replay.get("floor") or {}
    if not floor:
        return []
    return [
        f"Its floor (`benchmarks/replayfloor.py`): the replay's own {floor['statements']:,} "
        f"statements, with their parameters, fetching the rows the engine fetched, on "
        f"{floor['stores']:,} fresh in-memory stores made as the engine makes them, checked "
        f"against the engine's run (failures, rowcounts, rows) before timing: "
        f"{_number(floor.get('us_per_op'))} µs per operation, "
        f"{_number(floor.get('stores_us_per_op'))} µs of it opening, copying and closing the "
        f"stores (median over {len(floor.get('rounds') or [])} rounds, interleaved with the "
        f"replay's).",
        "",
    ]
