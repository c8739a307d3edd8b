"""The published `mempill` wheel, in a virtual environment of its own, as a `Driver`.

The wheel's import name is `mempill`, like ours, so it can never share our interpreter:
`ensure_venv` creates `build/bench/refvenv` with `python -m venv` and installs
`mempill==0.4.0` from PyPI into it (once; later runs reuse it), and `ReferenceDriver`
starts `refrunner.py` with that interpreter and talks to it in JSON lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from benchmarks.drivers import FILL_CHUNK, Ingested, Queried, _chunks
from benchmarks.streams import Claim, to_reference

VERSION = "0.4.0"
RUNNER = Path(__file__).with_name("refrunner.py")
PIP_TIMEOUT_S = 600


class ReferenceUnavailable(RuntimeError):
    """The reference wheel could not be installed or started (the report says why)."""


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed_version(python: Path) -> str | None:
    """The wheel's version in that interpreter, or None when it is missing or broken."""
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('mempill'))"
    done = subprocess.run(
        [str(python), "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_venv(venv: Path, version: str = VERSION, log: Any = print) -> Path:
    """The python of a venv holding `mempill==version`; created or repaired if needed."""
    python = venv_python(venv)
    if installed_version(python) == version:
        return python
    log(f"creating the reference environment {venv} (mempill=={version} from PyPI)")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            f"mempill=={version}",
        ],
    ]
    for step in steps:
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ReferenceUnavailable(f"{' '.join(step[:3])}…: {e}") from e
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ReferenceUnavailable(f"{' '.join(step[:4])}… failed: {' / '.join(tail)}")
    found = installed_version(python)
    if found != version:
        raise ReferenceUnavailable(f"expected mempill {version} in {venv}, found {found}")
    return python


class ReferenceDriver:
    """The wheel behind `refrunner.py`; claims are converted with `to_reference`."""

    name = "reference"
    batch_native = False  # the wheel has no batch call: `ingest_batch` is a loop

    def __init__(self, python: Path, module: str = "mempill") -> None:
        self.python = python
        self._cwd = tempfile.TemporaryDirectory(prefix="mempill-ref-")
        self._process = subprocess.Popen(
            [str(python), "-I", str(RUNNER), module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=self._cwd.name,
        )
        self.version = str(self._call("hello")["version"])
        self._agents: dict[int, str] = {}

    def _call(self, op: str, **fields: Any) -> dict[str, Any]:
        stdin, stdout = self._pipes()
        stdin.write(json.dumps({"op": op, **fields}) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise ReferenceUnavailable(f"the reference runner exited during {op!r}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise ReferenceUnavailable(f"reference {op!r} failed: {answer.get('error')}")
        return answer

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None or self._process.poll() is not None:
            raise ReferenceUnavailable("the reference runner is not running")
        return stdin, stdout

    def open(self, directory: Path | None, agent: str) -> int:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)  # the wheel does not create it
        where = None if directory is None else str(directory)
        handle = int(self._call("open", dir=where, agent=agent)["handle"])
        self._agents[handle] = agent
        return handle

    def close(self, handle: int) -> None:
        self._call("close", handle=handle)
        self._agents.pop(handle, None)

    def ingest(self, handle: int, claims: Sequence[Claim]) -> Ingested:
        answer = self._call("ingest", handle=handle, claims=[to_reference(c) for c in claims])
        return Ingested(float(answer["seconds"]), len(claims), dict(answer["dispositions"]))

    def ingest_batch(self, handle: int, claims: Sequence[Claim]) -> Ingested:
        return self.ingest(handle, claims)

    def fill(self, handle: int, claims: Iterable[Claim]) -> int:
        done = 0
        for chunk in _chunks(claims, FILL_CHUNK):
            self.ingest(handle, chunk)
            done += len(chunk)
        return done

    def query(self, handle: int, queries: Sequence[dict[str, Any]]) -> Queried:
        answer = self._call("query", handle=handle, queries=list(queries))
        return Queried(tuple(float(x) for x in answer["latencies"]), dict(answer["statuses"]))

    def peak_rss_kib(self) -> int:
        return int(self._call("rss")["max_rss_kib"])

    def close_all(self) -> None:
        """Stop the runner process (its engines close with it)."""
        if self._process.poll() is None:
            stdin = self._process.stdin
            if stdin is not None:
                try:
                    stdin.write(json.dumps({"op": "quit"}) + "\n")
                    stdin.close()
                except OSError:
                    pass
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._cwd.cleanup()
