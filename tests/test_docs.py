"""The README and docs as a newcomer uses them: their links stay inside the repository, their
install lines install this checkout, their Python examples print what they say, and their
shell lines run from a copy of the checkout and leave `git status` clean.

Shell lines come from ```bash blocks (a command per line) and ```console blocks (`$ `
prompts, each followed by its output and `[exit N]`). A few lines cannot run inside a test
(installs, nox sessions, servers) or would take an hour as written (50 crash trials each):
`RULES` names each one and says why it is skipped or how it is shortened.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mempill import extras

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "conformance" / "README.md", *ROOT.glob("docs/*.md")])
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def blocks(path: Path) -> Iterator[tuple[str, str, int]]:
    """(language, body, line number) of every fenced block."""
    text = path.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        yield match.group(1), match.group(2), text.count("\n", 0, match.start()) + 1


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


# ---------------------------------------------------------------- links and names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_leaves_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text and "SPEC.md" not in text
    for target in LINK.findall(FENCE.sub("", text)):
        assert "://" not in target, f"{doc.name} links outside the repository: {target}"
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{doc.name}: no heading #{anchor} in {path}"


PROSE = frozenset({"in", "from", "or", "and", "then", "for", "to", "of"})


def pip_arguments(text: str) -> Iterator[tuple[str, list[str]]]:
    """The arguments of every `pip install` in a text (commands, comments, messages)."""
    for match in re.finditer(r"pip install ([^\n`\"]*)", text):
        line = match.group(1).split("#")[0].split("&&")[0].split(")")[0]
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        prose = next((i for i, w in enumerate(words) if w in PROSE), len(words))
        yield match.group(0), words[:prose]


def names_the_distribution(word: str) -> bool:
    if word.startswith(("-", ".", "/", "'.", '".')):
        return False
    name = re.split(r"[\[<>=!~;\s]", word.strip("'\""), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower() == "mempill"


def texts_with_install_lines() -> Iterator[tuple[str, str]]:
    for doc in DOCS:
        yield str(doc.relative_to(ROOT)), doc.read_text(encoding="utf-8")
    for path in [*ROOT.glob("mempill/**/*.py"), ROOT / "noxfile.py", ROOT / ".ci" / "run"]:
        yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
    for extra in ("postgres", "lab", "mcp", "notebooks", "dev"):
        yield f"extras.hint({extra!r})", extras.missing("a feature", extra)


def test_no_install_line_can_fetch_the_published_wheel() -> None:
    """The index's `mempill` is another project: every install names a path or other packages."""
    seen = 0
    for where, text in texts_with_install_lines():
        for line, words in pip_arguments(text):
            seen += 1
            wrong = [w for w in words if names_the_distribution(w)]
            assert not wrong, f"{where}: `{line}` would install {wrong} from the package index"
    assert seen >= 8  # the README, docs and hints were read
    assert names_the_distribution("'mempill[postgres]'")
    assert not names_the_distribution("'.[postgres,mcp]'")


def test_the_extras_hints_name_real_packages() -> None:
    assert "psycopg" in extras.hint("postgres") and "mcp" in extras.hint("mcp")
    assert "pip install -e '.[lab]'" in extras.hint("lab")


def test_a_missing_extra_is_one_line_with_its_packages() -> None:
    """`python -m mempill.lab.notebooks` without the notebooks extra: a hint, no traceback."""
    code = (
        "import sys; sys.modules['nbclient'] = None\n"
        "from mempill.lab.notebooks import main\n"
        "raise SystemExit(main(['execute', 'quickstart', '--out', sys.argv[1]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "build" / "docs-test")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "needs the notebooks extra: pip install" in done.stderr
    assert "nbclient" in done.stderr


# ---------------------------------------------------------------- Python examples


def quick_start() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1]
    return next(body for lang, body, _ in blocks_of(text) if lang == "python")


def blocks_of(text: str) -> Iterator[tuple[str, str, int]]:
    for match in FENCE.finditer(text):
        yield match.group(1), match.group(2), 0


def expected_prints(code: str) -> list[str]:
    """`print(...)  # out` lines and the `# out` comment lines right after a loop."""
    expected: list[str] = []
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("print(") and "  # " in line and not line.startswith(" "):
            expected.append(line.split("  # ", 1)[1])
        elif line.startswith("# ") and i and (lines[i - 1].startswith((" ", "# "))):
            expected.append(line[2:])
    return expected


def test_the_quick_start_prints_what_its_comments_say(tmp_path: Path) -> None:
    code = quick_start()
    expected = expected_prints(code)
    assert len(expected) >= 6
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected
    assert (tmp_path / "memory.db").exists()


def test_a_python_example_followed_by_its_output_prints_it(tmp_path: Path) -> None:
    """docs/cli-and-mcp.md: the MCP client example, a real client and server, as written."""
    text = (ROOT / "docs" / "cli-and-mcp.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```", text, re.S)
    assert found is not None
    code, output = found.groups()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == output


# ---------------------------------------------------------------- shell lines


@dataclass(frozen=True)
class Rule:
    """What the test does with a documented command it cannot run as written."""

    pattern: str
    action: str  # "skip" or a replacement for the matched text
    why: str


RULES = (
    Rule(r"^python3? -m pip install|^pip install", "skip", "an install: test_a_fresh_clone_*"),
    Rule(r"^python3 -m venv", "skip", "makes a virtual environment: test_a_fresh_clone_*"),
    Rule(r"^apt-get ", "skip", "a system package (.ci/run installs it)"),
    Rule(r"nox -s", "skip", "a nox session installs its own environment; CI runs nox itself"),
    Rule(r"mempill mcp$", "skip", "a stdio server (tests/test_mcp.py drives it with a client)"),
    Rule(
        r"--trials 50",
        "--trials 1 --control-trials 6",
        "50 trials per configuration take an hour; one control trial in ~12 loses nothing",
    ),
    Rule(r"--sync all", "--sync FULL", "every mode: run once per mode by test_durability.py"),
    Rule(r"--backend postgres --kind all", "skip", "PostgreSQL trials: test_durability.py"),
    Rule(r"--claims 200", "--claims 5", "a full-size contention run takes minutes"),
    Rule(r"--repeats 3", "--repeats 1", "a full-size contention run takes minutes"),
    Rule(r"--writers 1,2,4,8,16", "--writers 1,2", "a full-size contention run takes minutes"),
    Rule(
        r"--backends sqlite-mem,sqlite-file,pg-system,pg-embedded",
        "--backends sqlite-mem,sqlite-file",
        "the PostgreSQL replays run in test_conformance_corpus.py",
    ),
    Rule(
        r"fuzz --backends sqlite-mem,pg-embedded",
        "fuzz --backends sqlite-mem,sqlite-file",
        "fuzz: see above",
    ),
    Rule(
        r"tests/test_postgres_store.py -q", "tests/test_postgres_store.py -q -k timeout", "a pytest"
    ),
)


def commands(path: Path) -> Iterator[tuple[int, str, int | None]]:
    """(line, command, expected exit status or None) of a document's shell lines."""
    for lang, body, line in blocks(path):
        if lang == "bash":
            for offset, raw in enumerate(body.replace("\\\n", " ").splitlines()):
                command = raw.split("  #")[0].strip()
                if command and not command.startswith("#"):
                    yield line + offset + 1, command, 0
        elif lang == "console":
            prompts = body.split("$ ")[1:]
            for prompt in prompts:
                command, _, output = prompt.partition("\n")
                status = re.search(r"\[exit (\d+)\]", output)
                yield line, command.strip(), int(status.group(1)) if status else 0


def planned(command: str) -> tuple[str | None, list[str]]:
    """The command to run (None: skip) and the reasons it differs from the document."""
    reasons = []
    for rule in RULES:
        if re.search(rule.pattern, command):
            reasons.append(rule.why)
            if rule.action == "skip":
                return None, reasons
            command = re.sub(rule.pattern, rule.action, command)
    return command, reasons


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout's files (tracked and new, not ignored), committed to its own git."""
    copy = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=copy, check=True)
    subprocess.run([*git, "add", "-A"], cwd=copy, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=copy, check=True)
    return copy


def shell_env() -> dict[str, str]:
    """`python`, `python3` and `mempill` come first from this test's environment (its bin)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "HYPOTHESIS_PROFILE": "dev"}
    env.pop("MEMPILL_DB_PATH", None)
    env.pop("MEMPILL_AGENT_ID", None)
    return env


def test_every_shell_line_has_a_plan() -> None:
    """Each documented command is run, shortened (with a reason) or skipped (with a reason)."""
    found = [(doc, c) for doc in DOCS for _, c, _ in commands(doc)]
    assert len(found) >= 30
    ran = [c for _, c in found if planned(c)[0] is not None]
    assert len(ran) >= 20


@pytest.mark.parametrize("doc", [d for d in DOCS if any(commands(d))], ids=lambda p: p.name)
def test_shell_lines_run_and_leave_the_tree_clean(doc: Path, checkout: Path) -> None:
    env = shell_env()
    for line, command, status in commands(doc):
        run, _ = planned(command)
        if run is None:
            continue
        done = subprocess.run(
            ["bash", "-c", run],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        where = f"{doc.name}:{line}: `{run}`"
        assert done.returncode == status, (
            f"{where} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
        assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr[-3000:]}"
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=checkout,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert dirty == "", f"{where} left the checkout dirty:\n{dirty}"


def install_line() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("## Install", 1)[1]
    body = next(body for lang, body, _ in blocks_of(text) if lang == "bash")
    return next(line for line in body.splitlines() if "pip install" in line)


@pytest.mark.slow
def test_a_fresh_clone_installs_with_the_readme_line_and_runs_the_quick_start(
    checkout: Path, tmp_path: Path
) -> None:
    """A new virtual environment, the README's install line in the checkout, the Quick start."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    line = install_line()
    assert line.startswith("python3 -m pip install -e '.[")
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["bash", "-c", line],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    run.mkdir()
    code = quick_start()
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected_prints(code)
    version = subprocess.run(
        [str(venv / "bin" / "mempill"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert version.returncode == 0 and "0.5" in version.stdout
    found = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import mempill, psycopg, mcp; print(mempill.__file__)",
        ],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip().startswith(str(checkout)), "not the checkout's mempill"
