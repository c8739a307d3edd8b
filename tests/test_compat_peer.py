"""The published 0.4.0 wheel's own test suite, run unchanged against `mempill.compat` through
the documented shim (docs/compat.md §8, `nox -s compat-peer`): every failure must be a
deliberate difference listed there. Skipped, with the reason, when the package index is
unreachable; the runner's own pieces are tested offline below."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the runner lives in the checkout's tools/, not in the package
    sys.path.insert(0, str(ROOT))

from tools.compat_peer import expected, runner, sdist, shim  # noqa: E402

CACHE = ROOT / "build" / "compat-peer"
TODAY = date(2026, 12, 4)


@pytest.fixture(scope="module")
def archive() -> Path:
    try:
        return sdist.fetch(CACHE, timeout=20)
    except sdist.Unreachable as e:
        pytest.skip(f"the package index is unreachable, so the 0.4.0 sdist is too: {e}")


def test_the_wheels_suite_fails_only_where_docs_compat_says_why(archive: Path) -> None:
    verdict = runner.run(archive, timeout=300)
    assert verdict.problems() == [], verdict.report()
    assert verdict.count("passed") >= runner.FLOOR
    assert verdict.count("passed") + verdict.count("failed") == runner.SUITE_SIZE


# ---------------------------------------------------------------- the documented list


def test_docs_compat_lists_each_failure_with_a_defined_difference() -> None:
    text = expected.DOC.read_text(encoding="utf-8")
    defined = expected.differences(text)
    assert defined == {f"D{n}" for n in range(1, len(defined) + 1)}
    listed = expected.load()
    assert len(listed) == 13
    assert {d for e in listed.values() for d in e.differences} <= defined
    now = [e for e in listed.values() if "D18" in e.differences]  # evaluated at now
    assert len(now) == 4 and sum(e.since is not None for e in now) == 3
    assert all(e.due(TODAY) for e in listed.values())
    assert not listed["test_granularity.py::TestBothEndpointGranularity::"
                      "test_raw_granularity_fields_present"].due(date(2022, 12, 31))  # fmt: skip


def test_a_row_citing_an_unknown_difference_is_refused() -> None:
    text = "* **D1. One.**\n| `test_a.py::test_b` | D2: no such | always |\n"
    with pytest.raises(expected.ListError, match="D2"):
        expected.documented(text)
    with pytest.raises(expected.ListError, match="twice"):
        expected.documented("* **D1. One.**\n" + "| `test_a.py::test_b` | D1 | always |\n" * 2)
    row = expected.documented("* **D1. x**\n| `test_a.py::C::t[1]` | D1 | since 2025-02-03 |\n")
    assert row["test_a.py::C::t[1]"] == expected.Expected(
        "test_a.py::C::t[1]", ("D1",), date(2025, 2, 3)
    )


def suite(failing: dict[str, str]) -> dict[str, runner.Result]:
    """A full-size run whose named tests have the given outcomes, the rest passed."""
    found = {
        f"test_x.py::test_{n}": runner.Result(f"test_x.py::test_{n}", "passed") for n in range(211)
    }
    found.update({n: runner.Result(n, outcome, "boom") for n, outcome in failing.items()})
    return dict(list(found.items())[-runner.SUITE_SIZE :])


def test_the_verdict_holds_each_failure_to_the_list() -> None:
    listed = {
        "test_a.py::t1": expected.Expected("test_a.py::t1", ("D1",), None),
        "test_a.py::t2": expected.Expected("test_a.py::t2", ("D2",), date(2027, 1, 1)),
    }

    def problems(failing: dict[str, str], **extra: int) -> list[str]:
        return runner.Verdict(suite(failing), listed, TODAY, **extra).problems()

    assert problems({"test_a.py::t1": "failed", "test_a.py::t2": "passed"}) == []
    assert problems({"test_a.py::t1": "failed", "test_a.py::t2": "failed"}) == [
        "not a documented difference: test_a.py::t2 (boom)"  # not due before 2027
    ]
    assert problems({"test_a.py::t1": "passed", "test_a.py::t2": "passed"}) == [
        "listed in docs/compat.md but passed: test_a.py::t1"
    ]
    assert problems(
        {"test_a.py::t1": "error", "test_b.py::t": "error", "test_a.py::t2": "passed"}
    ) == ["not a documented difference: test_b.py::t (boom)"]
    assert problems({"test_a.py::t1": "failed"})[-1] == "listed but not in the suite: test_a.py::t2"
    crashed = problems({"test_a.py::t1": "failed", "test_a.py::t2": "passed"}, exit_code=4)
    assert crashed[0].startswith("pytest exited 4")
    short = runner.Verdict({}, {}, TODAY).problems()
    assert short == ["0 tests reported, expected 211", "0 passed, fewer than 196"]


def test_results_take_a_failed_phase_over_a_passed_one() -> None:
    lines = [
        {"nodeid": "tests/test_a.py::t", "phase": "call", "outcome": "passed", "message": ""},
        {"nodeid": "tests/test_a.py::t", "phase": "teardown", "outcome": "failed", "message": "x"},
        {"nodeid": "tests/test_a.py::u", "phase": "setup", "outcome": "failed", "message": "y"},
        {"nodeid": "tests/test_a.py::v", "phase": "call", "outcome": "failed", "message": "z"},
        {"nodeid": "tests/test_a.py::v", "phase": "teardown", "outcome": "failed", "message": "w"},
        {"nodeid": "tests/test_b.py", "phase": "collect", "outcome": "failed", "message": "E"},
    ]
    found = runner.results(json.dumps(line) for line in lines)
    assert {n: (r.outcome, r.message) for n, r in found.items()} == {
        "test_a.py::t": ("error", "x"),
        "test_a.py::u": ("error", "y"),
        "test_a.py::v": ("failed", "z"),
        "test_b.py": ("error", "E"),
    }


# ---------------------------------------------------------------- the shim and the sdist


def test_the_shim_points_the_wheels_imports_at_compat(tmp_path: Path) -> None:
    path = shim.write(tmp_path / "shim")
    code = (
        "import mempill, mempill.types, mempill.ergonomic, mempill._mempill\n"
        "from mempill.types import Disposition\n"
        "from mempill import remember, recall, InternalError, __version__\n"
        "import mempill.compat as compat\n"
        "assert mempill.remember is compat.remember and mempill.Engine is compat.CompatEngine\n"
        "assert mempill._mempill.PyOracleEngine is compat.CompatEngine\n"
        "assert mempill.types.Disposition is compat.types.Disposition\n"
        "assert mempill.ergonomic.recall is recall and '__version__' in mempill.__all__\n"
        "engine = mempill.open_in_memory()\n"
        "remember(engine, 'a', 's', 'p', 'v')\n"
        "print(recall(engine, 'a', 's', 'p').value, Disposition.Contested.value)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "v Contested\n"), done.stderr
    quickstart = subprocess.run(
        [sys.executable, "-m", "mempill.quickstart"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert quickstart.stdout == "quickstart passed\n", quickstart.stderr


def sdist_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_only_the_suite_is_extracted(tmp_path: Path) -> None:
    archive = tmp_path / "s.tar.gz"
    archive.write_bytes(
        sdist_bytes(
            {
                sdist.TESTS + "conftest.py": b"# c",
                sdist.TESTS + "sub/test_x.py": b"# t",
                "mempill-0.4.0/python/mempill/types.py": b"# the wheel's own code",
            }
        )
    )
    tests = sdist.extract_tests(archive, tmp_path / "out")
    assert sorted(p.relative_to(tests).as_posix() for p in tests.rglob("*.py")) == [
        "conftest.py",
        "sub/test_x.py",
    ]
    assert not list((tmp_path / "out").rglob("types.py"))
    archive.write_bytes(sdist_bytes({sdist.TESTS + "../../escape.py": b"#"}))
    with pytest.raises(sdist.SdistError, match="unsafe"):
        sdist.extract_tests(archive, tmp_path / "again")


def test_fetch_checks_the_pinned_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    impostor = tmp_path / "impostor.tar.gz"
    impostor.write_bytes(b"not the sdist")
    with pytest.raises(sdist.ChecksumError, match=sdist.SHA256):
        sdist.fetch(tmp_path / "cache", str(impostor))
    assert not (tmp_path / "cache" / sdist.FILENAME).exists()
    with pytest.raises(sdist.Unreachable):
        sdist.fetch(tmp_path / "cache", str(tmp_path / "missing.tar.gz"))
    with pytest.raises(sdist.Unreachable):
        sdist.fetch(tmp_path / "cache", "http://127.0.0.1:9/mempill-0.4.0.tar.gz", timeout=5)
    monkeypatch.setattr(sdist, "SHA256", sdist.digest(impostor))
    cached = sdist.fetch(tmp_path / "cache", str(impostor))
    assert cached.read_bytes() == b"not the sdist"
    assert sdist.fetch(tmp_path / "cache", "http://127.0.0.1:9/unused") == cached  # from the cache
