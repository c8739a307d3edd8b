"""Run the wheel's test suite, unchanged, against `mempill.compat` through the shim, and hold
every failure to the documented list (`expected`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from . import expected, sdist, shim
from .plugin import REPORT_ENV

#: The suite of the 0.4.0 sdist: 19 modules, 211 tests (all of them pass on the wheel).
SUITE_SIZE = 211
#: The issue's bar: at least this many pass with nothing of the wheel borrowed.
FLOOR = 196
FAILED = ("failed", "error")


@dataclass(frozen=True, slots=True)
class Result:
    nodeid: str
    outcome: str  # passed, failed, error (setup, teardown or collection), skipped
    message: str = ""


def results(lines: Iterable[str], prefix: str = "tests/") -> dict[str, Result]:
    """One result per node id from the plugin's JSON lines (a failed phase wins)."""
    found: dict[str, Result] = {}
    for line in lines:
        item = json.loads(line)
        nodeid = str(item["nodeid"]).removeprefix(prefix)
        outcome = str(item["outcome"])
        if outcome == "failed" and item["phase"] != "call":
            outcome = "error"
        previous = found.get(nodeid)
        if previous is None or previous.outcome not in FAILED:
            found[nodeid] = Result(nodeid, outcome, str(item["message"]))
    return found


@dataclass(frozen=True)
class Verdict:
    """What the run found, set against the documented list on `today`."""

    results: Mapping[str, Result]
    listed: Mapping[str, expected.Expected]
    today: date
    exit_code: int = 1
    output: str = field(default="", repr=False)

    def count(self, *outcomes: str) -> int:
        return sum(r.outcome in outcomes for r in self.results.values())

    def problems(self) -> list[str]:
        """Everything that makes the run fail; empty when it passes."""
        found: list[str] = []
        if self.exit_code not in (0, 1):
            found.append(f"pytest exited {self.exit_code}:\n{self.output[-2000:]}")
        if len(self.results) != SUITE_SIZE:
            found.append(f"{len(self.results)} tests reported, expected {SUITE_SIZE}")
        for nodeid, result in sorted(self.results.items()):
            entry = self.listed.get(nodeid)
            due = entry is not None and entry.due(self.today)
            if result.outcome in FAILED and not due:
                found.append(f"not a documented difference: {nodeid} ({result.message})")
            elif result.outcome == "passed" and due:
                found.append(f"listed in docs/compat.md but passed: {nodeid}")
            elif result.outcome == "skipped":
                found.append(f"skipped: {nodeid} ({result.message})")
        found += [
            f"listed but not in the suite: {n}"
            for n in sorted(set(self.listed) - set(self.results))
        ]
        if self.count("passed") < FLOOR:
            found.append(f"{self.count('passed')} passed, fewer than {FLOOR}")
        return found

    def report(self) -> str:
        lines = [
            f"mempill {sdist.VERSION} wheel suite against mempill.compat ({self.today}): "
            f"{self.count('passed')} passed, {self.count('failed')} failed, "
            f"{self.count('error')} errors, {self.count('skipped')} skipped",
        ]
        for nodeid, result in sorted(self.results.items()):
            if result.outcome in FAILED:
                entry = self.listed.get(nodeid)
                why = ", ".join(entry.differences) if entry else "UNDOCUMENTED"
                lines.append(f"  {why:<10} {nodeid}")
        problems = self.problems()
        lines += ["problems:", *(f"  {p}" for p in problems)] if problems else ["ok"]
        return "\n".join(lines)


def run(archive: Path, *, doc: Path = expected.DOC, timeout: float = 600.0) -> Verdict:
    """Extract the suite into a temporary folder, run it there (so no configuration of this
    repository applies) with the shim first on PYTHONPATH, and compare."""
    listed = expected.load(doc)
    with tempfile.TemporaryDirectory(prefix="mempill-compat-peer-") as folder:
        work = Path(folder)
        tests = sdist.extract_tests(archive, work)
        path = shim.write(work / "shim")
        (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        report = work / "report.jsonl"
        report.touch()
        inherited = os.environ.get("PYTHONPATH")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(path), inherited])),
            REPORT_ENV: str(report),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        command = [sys.executable, "-m", "pytest", "-c", str(work / "pytest.ini")]
        command += ["-p", shim.PLUGIN, "-p", "no:cacheprovider", "-q", str(tests)]
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        found = results(report.read_text(encoding="utf-8").splitlines())
    return Verdict(
        found, listed, datetime.now(UTC).date(), done.returncode, done.stdout + done.stderr
    )
