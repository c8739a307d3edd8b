"""pytest plugin of the peer run (copied next to the shim and loaded with `-p`): one JSON line
per reported phase — node id, phase, outcome, the error's first line — appended to the file
named by $MEMPILL_COMPAT_PEER_REPORT."""

from __future__ import annotations

import json
import os

import pytest

REPORT_ENV = "MEMPILL_COMPAT_PEER_REPORT"


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or report.longreprtext
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else ""


def _record(nodeid: str, phase: str, outcome: str, message: str) -> None:
    line = {"nodeid": nodeid, "phase": phase, "outcome": outcome, "message": message}
    with open(os.environ[REPORT_ENV], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or not report.passed:
        message = "" if report.passed else _message(report)
        _record(report.nodeid, report.when, report.outcome, message)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _record(report.nodeid, "collect", "failed", _message(report))
