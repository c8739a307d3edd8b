"""nox sessions: lint, typecheck, tests, conformance, lab, notebooks, jupyter, bench.

`tests` runs the whole pytest suite against the embedded PostgreSQL 18 and, when
MEMPILL_TEST_PG_DSN is set (CI points it at the system PostgreSQL 15), once more
against that server for the PostgreSQL-backed tests.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"
SOURCES = [
    path
    for path in (
        "mempill",
        "conformance",
        "benchmarks",
        "tests",
        "tools",
        "notebooks",
        "noxfile.py",
    )
    if os.path.exists(path)
]


def install(session: nox.Session, extras: str = "dev") -> None:
    session.install("-e", f".[{extras}]")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the conformance harness."""
    install(session, "dev,notebooks")
    session.run("mypy", "--strict", "mempill", "conformance", "benchmarks", "tools")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite on SQLite and PostgreSQL 18 (embedded), and PostgreSQL from
    MEMPILL_TEST_PG_DSN when it is set."""
    install(session, "dev,notebooks")
    args = session.posargs or []
    system_dsn = os.environ.get("MEMPILL_TEST_PG_DSN")
    embedded = {"MEMPILL_TEST_PG_DSN": ""}
    session.run("pytest", *args, env=embedded)
    if system_dsn:
        session.log(f"again, PostgreSQL-backed tests only, against {system_dsn}")
        session.run(
            "pytest",
            "-m",
            "not sqlite_only and not own_servers",
            *args,
            env={"MEMPILL_TEST_PG_DSN": system_dsn, "MEMPILL_TEST_BACKENDS": "postgres"},
        )


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Replay the scenario corpus on every backend (`-- --backends sqlite-mem` to narrow)."""
    install(session, "lab")
    session.run("python", "-m", "conformance", "replay", "data/scenarios", *session.posargs)


@nox.session(python=PYTHON)
def lab(session: nox.Session) -> None:
    """The lab on the embedded default: the conformance corpus on SQLite and embedded
    PostgreSQL, then the summary table."""
    install(session, "lab")
    session.run("python", "-m", "mempill.lab", "run", *session.posargs)


@nox.session(python=PYTHON)
def notebooks(session: nox.Session) -> None:
    """Execute every notebook headless; the executed .ipynb, HTML, figures and frames go to
    build/notebooks/ (`-- --small`, `-- -p NAME=VALUE`, `-- quickstart` to narrow)."""
    install(session, "notebooks")
    session.run("python", "-m", "mempill.lab.notebooks", "execute", *session.posargs)


@nox.session(python=PYTHON)
def jupyter(session: nox.Session) -> None:
    """JupyterLab on the checkout, notebook sources opening as notebooks (docs/notebooks.md).
    MEMPILL_NOTEBOOK_SMALL=1 starts the notebooks at the small size, MEMPILL_NOTEBOOK_BACKENDS
    and MEMPILL_TEST_PG_DSN choose backends and server; `-- --port 8899` goes to jupyter."""
    install(session, "notebooks")
    session.run("python", "-m", "mempill.lab.notebooks", "lab", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (`-- --quick` for the three-minute version)."""
    install(session, "lab")
    session.run("python", "-m", "benchmarks", "run", *session.posargs)


@nox.session(python=PYTHON)
def mutation(session: nox.Session) -> None:
    """Mutation testing (mutmut) of the core and the engine's rules against the fast tests on
    in-memory SQLite; then the score and the survivors against docs/testing.md."""
    install(session, "dev")
    session.install("mutmut==3.8.1")
    env = {"MEMPILL_TEST_BACKENDS": "sqlite-mem", "MEMPILL_PROPERTY_EXAMPLES": "15"}
    session.run("mutmut", "run", *session.posargs, env=env)
    session.run("python", "tools/mutation_report.py", env=env)


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """The differential state machine at the `deep` budget on every backend (a nightly run;
    `-- --examples N` bounds it)."""
    install(session, "lab")
    session.run(
        "python", "-m", "conformance", "fuzz",
        "--backends", "sqlite-mem,sqlite-file,pg-system,pg-embedded", "--profile", "deep",
        *session.posargs,
    )  # fmt: skip


@nox.session(python=PYTHON, name="compat-peer")
def compat_peer(session: nox.Session) -> None:
    """The published 0.4.0 wheel's own test suite, unchanged, against mempill.compat: fails on
    any failure docs/compat.md does not list; skipped when the package index is unreachable."""
    session.install("-e", ".", "pytest")  # the suite needs nothing else
    runner = ("python", "-m", "tools.compat_peer")
    fetched = session.run(*runner, "fetch", *session.posargs, silent=True, success_codes=[0, 3])
    for line in str(fetched).splitlines():
        if line.startswith("unreachable:"):  # exit status 3: no package index here
            session.skip(line)
    session.run(*runner, "run", *session.posargs)
