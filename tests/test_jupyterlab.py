"""JupyterLab in a real browser: the front door `nox -s jupyter` opens.

JupyterLab starts as `nox -s jupyter` starts it (`mempill.lab.jupyterlab.command`: the
project's interpreter, the checkout as root, the shipped settings), on a free port with a
token; only the user's own settings and workspaces are kept in a temporary directory, with
autosave every few seconds. Headless Chromium opens `notebooks/quickstart.py` by URL: it must
be a notebook (not the text editor) whose kernel starts without a dialog; every cell is run
from the Run menu and must end without an error; after autosave has written the notebook,
`git status` of the checkout must be what it was before (so nothing else may edit the
checkout while this test runs), and once the server has stopped its kernel, the temporary
directory the server and kernel were given must be empty.

Needs Debian's `chromium` and `chromium-driver` (and selenium, in the dev extra); skipped
without them, except where MEMPILL_REQUIRE_BROWSER=1 (CI), where it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mempill.lab import jupyterlab, nbrun

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/quickstart.py"
AUTOSAVE_S = 5
REQUIRED = os.environ.get("MEMPILL_REQUIRE_BROWSER") == "1"

pytestmark = pytest.mark.slow


def unavailable() -> str | None:
    """Why the browser test cannot run here, or None."""
    for program, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(program) is None:
            return f"no {program} (apt-get install -y {package})"
    for module, extra in (
        ("selenium", "dev"),
        ("jupyterlab", "notebooks"),
        ("jupytext", "notebooks"),
    ):
        try:
            __import__(module)
        except ImportError:
            return f"no {module} (the {extra} extra)"
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return "not a git checkout"
    return None


@pytest.fixture(scope="module", autouse=True)
def browser_available() -> None:
    reason = unavailable()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"MEMPILL_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


class Lab:
    """A running JupyterLab: its URL, token and REST API."""

    def __init__(self, url: str, token: str, log: Path) -> None:
        self.url, self.token, self.log = url, token, log

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def up(self) -> bool:
        try:
            return bool(self.api("status"))
        except OSError:
            return False

    def session(self) -> dict[str, Any] | None:
        return next((s for s in self.api("sessions") if s["path"].endswith(NOTEBOOK)), None)


def settings(user_dir: Path) -> None:
    """The test's user settings: autosave every AUTOSAVE_S seconds, every cell in the page."""
    for plugin, values in (
        ("docmanager-extension/plugin", {"autosaveInterval": AUTOSAVE_S}),
        ("notebook-extension/tracker", {"windowingMode": "none"}),
    ):
        path = user_dir / "user-settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@contextmanager
def running_lab(user_dir: Path, tmp: Path) -> Iterator[Lab]:
    """JupyterLab as `nox -s jupyter` starts it, with the test's user settings and `tmp` as
    the temporary directory of the server and its kernels; stopped (kernels shut down) on
    exit."""
    settings(user_dir)
    port, token = free_port(), os.urandom(16).hex()
    command = jupyterlab.command(
        port=port, token=token, browser=False, user_dir=user_dir, extra=["--ServerApp.ip=127.0.0.1"]
    )
    log = user_dir / "server.log"
    env = {**os.environ, "MEMPILL_NOTEBOOK_SMALL": "1", "TMPDIR": str(tmp)}
    with log.open("w") as stream:
        server = subprocess.Popen(command, cwd=ROOT, stdout=stream, stderr=stream, env=env)
    running = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        wait_for("JupyterLab to answer", lambda: server.poll() is not None or running.up(), 90)
        assert server.poll() is None, log.read_text()
        yield running
    finally:
        server.terminate()  # SIGTERM: the server shuts its kernels down and exits
        try:
            server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(shutil.which("chromedriver"))))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def generated_files_restored() -> Iterator[None]:
    """The paired .ipynb and checkpoints JupyterLab writes are git-ignored; put back what was
    there before, so the test leaves the checkout as it found it."""
    ipynb = ROOT / "notebooks" / "quickstart.ipynb"
    checkpoints = ROOT / "notebooks" / ".ipynb_checkpoints"
    before = ipynb.read_bytes() if ipynb.exists() else None
    had_checkpoints = checkpoints.exists()
    yield
    if before is None:
        ipynb.unlink(missing_ok=True)
    else:
        ipynb.write_bytes(before)
    if not had_checkpoints:
        shutil.rmtree(checkpoints, ignore_errors=True)


def script(driver: Any, code: str) -> Any:
    return driver.execute_script(code)


def visible_notebook(driver: Any) -> bool:
    return bool(
        script(
            driver,
            "const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
            "return !!p && p.querySelectorAll('.jp-Cell').length > 0;",
        )
    )


def dialog(driver: Any) -> str | None:
    text: str | None = script(
        driver, "const d = document.querySelector('.jp-Dialog'); return d ? d.innerText : null;"
    )
    return text


def prompts(driver: Any) -> list[str]:
    found: list[str] = script(
        driver,
        "return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
        ".jp-CodeCell .jp-InputPrompt')].map(e => e.innerText.trim());",
    )
    return found


def run_all_cells(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    menu = driver.find_element(By.XPATH, "//li[contains(@class,'lm-MenuBar-item')][.='Run']")
    menu.click()
    item = wait_for(
        "the Run All Cells menu item",
        lambda: driver.find_elements(
            By.CSS_SELECTOR, "li.lm-Menu-item[data-command='runmenu:run-all']"
        ),
        10,
    )
    item[0].click()


def test_a_notebook_source_opens_runs_and_saves_without_touching_git(
    generated_files_restored: None, browser: Any, tmp_path: Path
) -> None:
    before = git_status()
    with nbrun.private_tmp() as (tmp, leftovers), running_lab(tmp_path / "jupyter", tmp) as lab:
        open_run_and_autosave(lab, browser)
        assert dialog(browser) is None
    # the server has stopped and shut its kernel down: nothing more can be written
    assert leftovers == [], f"the notebook left temporary files: {leftovers}"
    changed = sorted(set(before.splitlines()) ^ set(git_status().splitlines()))
    assert changed == [], f"git status changed (before/after, either side): {changed}"


def open_run_and_autosave(lab: Lab, browser: Any) -> None:
    """Open the notebook by URL, run every cell, wait until autosave has written them."""
    browser.get(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    wait_for(f"{NOTEBOOK} to open as a notebook", lambda: visible_notebook(browser), 60)
    assert not script(
        browser, "return !!document.querySelector('.jp-FileEditor:not(.lm-mod-hidden)')"
    )

    def kernel_idle() -> bool:
        assert dialog(browser) is None, f"a dialog opened: {dialog(browser)}"
        session = lab.session()
        return session is not None and session["kernel"]["execution_state"] == "idle"

    wait_for("the kernel to start without a dialog", kernel_idle, 60)
    session = lab.session()
    assert session is not None and session["kernel"]["name"] == "python3"

    run_all_cells(browser)

    def finished() -> bool:
        shown = prompts(browser)
        return bool(shown) and all(p not in ("[*]:", "[ ]:", "") for p in shown) and kernel_idle()

    wait_for("every cell to run", finished, 150, every=1)
    errors = script(
        browser,
        "return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
        '[data-mime-type="application/vnd.jupyter.stderr"]\')].map(e => e.innerText);',
    )
    assert errors == [], errors

    def saved() -> list[dict[str, Any]] | None:
        """The code cells as saved, once every one of them has run (autosave's doing)."""
        model = lab.api(f"contents/{NOTEBOOK}?content=1")["content"]
        cells = [c for c in model["cells"] if c["cell_type"] == "code"]
        return cells if cells and all(c["execution_count"] for c in cells) else None

    cells = wait_for("autosave to write the executed notebook", saved, AUTOSAVE_S * 6, every=1)
    outputs = [o for c in cells for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], outputs
    assert "SQLite" in json.dumps(outputs)  # the last section printed its receipts
    time.sleep(AUTOSAVE_S + 2)  # one more autosave interval
