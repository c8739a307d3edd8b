"""The harness itself: the stream format, reference resolution, difference detection,
recording, the command line and the report. SQLite only: these test the lab, not a backend."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conformance.__main__ import main as conformance_main
from conformance.expected import expected_path, read_expected, write_expected
from conformance.replay import DEVIATION, DIFF, PASS, BackendRun, judge, replay_path, run_on
from conformance.session import HarnessSession, WriteSpy
from mempill.lab.backends import open_engine
from mempill.lab.run import main as lab_main
from mempill.streams import Session, StreamError, dump_stream, parse_stream, read_stream

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "data" / "scenarios"
HEADER = '{"stream": "mempill-stream/1", "name": "t", "agent_id": "a"}'
BARE = '{"stream": "mempill-stream/1", "name": "t"}'


def header(**extra: object) -> str:
    return json.dumps({**json.loads(HEADER), **extra})


def stream_of(*ops: str, header: str = HEADER) -> str:
    return "\n".join([header, *ops]) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header"),
        ('{"name": "x"}', "expected a header"),
        (stream_of('{"op": "teleport"}'), "expected an operation"),
        (stream_of('{"op": "ingest"}'), "missing ['request']"),
        (stream_of('{"op": "ingest", "request": {}, "colour": 1}'), "unknown ['colour']"),
        (stream_of('{"op": "reopen", "claim_ref": "$1"}'), "this or a later operation"),
        (stream_of('{"op": "reopen", "claim_ref": "$nobody"}'), "unknown label"),
        (
            stream_of('{"op": "query_memory", "subject": "s", "predicate": "p", "as_of": "@x"}'),
            "unknown label",
        ),
        (stream_of('{"op": "oracle", "fail": true}'), "needs an oracle"),
        (stream_of('{"op": "reopen", "claim_ref": "x"}', header=BARE), "needs agent_id"),
        (stream_of("not json"), "not JSON"),
        (header(oracle="psychic"), "oracle must be"),
        (header(config={"low_confidence_threshold": 7}), "bad header"),
        (header(topology="cluster"), "topology must be"),
    ],
)
def test_malformed_streams_are_refused_with_their_line(text: str, message: str) -> None:
    with pytest.raises(StreamError, match="t.jsonl" if text else "empty") as raised:
        parse_stream(text.splitlines(), "t.jsonl")
    assert message in str(raised.value)


def test_a_stream_round_trips_through_its_text() -> None:
    stream = read_stream(SCENARIOS / "story_job_change.jsonl")
    again = parse_stream(dump_stream(stream).splitlines(), "again")
    assert again.header == stream.header
    assert again.ops == stream.ops


def test_references_resolve_to_refs_handles_items_and_instants() -> None:
    text = stream_of(
        '{"op": "ingest", "as": "p", "request": {"subject": "s", "predicate": "c", "value": 1}}',
        '{"op": "ingest_many", "as": "m", "requests": [{"subject": "s", "predicate": "c", '
        '"value": 1}, {"subject": "s", "predicate": "c", "value": 2}]}',
        '{"op": "reconcile", "as": "r"}',
        '{"op": "submit_adjudication", "handle_id": "$m.1", "verdict": "Deny"}',
        '{"op": "reconcile"}',
        '{"op": "query_memory", "subject": "s", "predicate": "c", "as_of": "@p"}',
        '{"op": "end", "claim_ref": "$2.0", "at": "@r"}',
        header=header(oracle="recording"),
    )
    run = run_on(parse_stream(text.splitlines()), "sqlite-mem")
    assert run.ok, run.error
    records = [r.to_json() for r in run.records]
    assert records[1]["result"][1]["disposition"] == "QueuedForAdjudication"
    assert records[3]["result"]["disposition"] == "Superseded"  # $m.1 was its handle
    assert records[5]["result"]["as_of"] == "2026-01-01T00:00:00.000000Z"  # @p
    assert records[5]["result"]["primary"]["value"] == 1
    assert records[6]["result"]["effective_at"] == "2026-01-01T00:00:02.000000Z"  # @r
    assert records[6]["result"]["claim_ref"] == records[1]["result"][0]["claim_ref"]  # $2.0


def test_a_reference_to_something_an_operation_did_not_produce_stops_the_run() -> None:
    text = stream_of(
        '{"op": "query_memory", "as": "q", "subject": "s", "predicate": "p"}',
        '{"op": "reopen", "claim_ref": "$q"}',
    )
    run = run_on(parse_stream(text.splitlines()), "sqlite-mem")
    assert run.error is not None and "produced no claim_ref" in run.error


def test_engine_errors_are_results_and_every_run_ends_with_digests() -> None:
    text = stream_of('{"op": "end", "claim_ref": "not-a-uuid", "at": "2020"}', '{"op": "digest"}')
    run = run_on(parse_stream(text.splitlines()), "sqlite-mem")
    assert run.records[0].outcome == {"error": "ValidationError"}
    assert run.records[1].outcome["result"] == run.digests["a"]
    assert json.loads(run.lines[-1]) == {"digests": run.digests, "content": run.content}


@pytest.mark.parametrize(
    "name",
    ["multi_agent_isolation", "sweep_many_agents", "oracle_not_found", "reconcile_lines"],
)
@pytest.mark.parametrize("backend", ["sqlite-mem", "sqlite-file"])
def test_the_harness_session_records_what_a_plain_session_records(name: str, backend: str) -> None:
    """HarnessSession reads only the agents an operation opened for writing: the records,
    ledger entries included, are those of mempill.streams.Session, which reads them all."""
    stream = read_stream(SCENARIOS / f"{name}.jsonl")
    runs = []
    for kind in (Session, HarnessSession):
        header = stream.header
        clock, oracle = header.make_clock(), header.make_oracle()
        with open_engine(
            backend, clock=clock, ids=header.make_ids(), oracle=oracle, config=header.make_config()
        ) as engine:
            session = kind(engine, header, clock, oracle)
            runs.append([session.apply(op).canonical() for op in stream.ops])
            if isinstance(session, HarnessSession):
                assert session.unseen() == {}
    assert runs[0] == runs[1]
    assert any('"ledger":[{' in line for line in runs[1])


def test_the_harness_session_sees_the_writes_of_the_engine() -> None:
    """The store's `write` is wrapped to note the agent; should the engine ever write around
    it, `unseen` (checked by the machine with every digest comparison) shows the entries."""
    text = stream_of('{"op": "ingest", "request": {"subject": "s", "predicate": "p", "value": 1}}')
    stream = parse_stream(text.splitlines())
    header = stream.header
    clock = header.make_clock()
    with open_engine("sqlite-mem", clock=clock, ids=header.make_ids()) as engine:
        session = HarnessSession(engine, header, clock, None)
        assert len(session.apply(stream.ops[0]).ledger) == 1
        assert session.written == set() and session.unseen() == {}
        engine.ingest({"agent_id": "a", "subject": "s", "predicate": "q", "value": 2})
        assert session.written == {"a"}
        session.written.clear()  # as if the wrapper had missed that write
        assert [e.stream_seq for e in session.unseen()["a"]] == [2]
        again = HarnessSession(engine, header, clock, None)  # a store kept for a new stream
        engine.ingest({"agent_id": "a", "subject": "s", "predicate": "r", "value": 3})
        assert again.written == {"a"} and session.written == set()
        assert not isinstance(getattr(engine.store.write, "opener", None), WriteSpy)


def test_a_deviation_from_the_record_names_the_first_differing_operation(tmp_path: Path) -> None:
    source = SCENARIOS / "e6_conflict_contested.jsonl"
    shutil.copy(source, tmp_path / source.name)
    lines = read_expected(expected_path(source))
    assert lines is not None
    tampered = json.loads(lines[3])
    tampered["result"]["status"] = "Resolved"
    lines[3] = json.dumps(tampered, sort_keys=True)
    write_expected(expected_path(tmp_path / source.name), lines)
    verdict = replay_path(tmp_path / source.name, ["sqlite-mem"], require_expected=True)
    assert verdict.cells == {"sqlite-mem": DEVIATION}
    assert not verdict.ok
    difference = verdict.differences[0]
    assert difference.index == 4
    text = difference.render()
    assert "first difference at operation 4" in text
    assert "result.status" in text and '"Resolved"' in text and '"Contested"' in text


def test_backends_that_disagree_are_a_diff_shown_side_by_side() -> None:
    stream = read_stream(SCENARIOS / "e2_first_authoritative.jsonl")
    good = run_on(stream, "sqlite-mem")
    for field in ("digests", "content"):  # the ledger digest, then the content digest
        skewed = BackendRun("sqlite-file", list(good.records), dict(good.digests))
        skewed.content = dict(good.content)
        setattr(skewed, field, {"agent-1": "0" * 64})
        verdict = judge(stream, {"sqlite-mem": good, "sqlite-file": skewed}, good.lines)
        assert verdict.cells == {"sqlite-mem": PASS, "sqlite-file": DIFF}
        difference = verdict.differences[0]
        assert difference.op is None and "ledger digests" in difference.render()


def test_record_then_replay_and_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("e3_succession_in_order", "oracle_unknown"):
        shutil.copy(SCENARIOS / f"{name}.jsonl", tmp_path / f"{name}.jsonl")
    assert conformance_main(["replay", str(tmp_path), "--backends", "sqlite-mem"]) == 1
    assert conformance_main(["record", str(tmp_path)]) == 0
    for name in ("e3_succession_in_order", "oracle_unknown"):
        recorded = (tmp_path / f"{name}.expected.jsonl").read_text()
        assert recorded == (SCENARIOS / f"{name}.expected.jsonl").read_text()
    assert conformance_main(["replay", str(tmp_path), "--backends", "sqlite-mem,sqlite-file"]) == 0
    out = capsys.readouterr().out
    assert "all 2 streams" in out and "identical on sqlite-mem, sqlite-file" in out


def test_report_writes_html_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(SCENARIOS / "oracle_unknown.jsonl", tmp_path / "oracle_unknown.jsonl")
    shutil.copy(
        SCENARIOS / "oracle_unknown.expected.jsonl", tmp_path / "oracle_unknown.expected.jsonl"
    )
    out = tmp_path / "build"
    code = conformance_main(
        ["report", str(tmp_path), "--backends", "sqlite-mem", "--out", str(out)]
    )
    assert code == 1  # one stream cannot cover every rule
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["streams"][0]["cells"] == {"sqlite-mem": "pass"}
    assert summary["streams"][0]["digests_identical"] is True
    assert summary["timing_us"]["sqlite-mem"]["submit_adjudication"]["count"] == 2
    assert "E6/conflict" in summary["uncovered"]
    assert "mempill conformance: all identical" in (out / "index.html").read_text()
    assert "µs per op" in capsys.readouterr().out


def test_the_lab_command_runs_the_corpus_on_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("v_empty_key", "currency_aging"):
        for suffix in (".jsonl", ".expected.jsonl"):
            shutil.copy(SCENARIOS / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    assert lab_main([str(tmp_path), "--backends", "sqlite-mem,sqlite-file"]) == 0
    out = capsys.readouterr().out
    assert "all 2 streams (14 operations) identical on sqlite-mem, sqlite-file" in out
