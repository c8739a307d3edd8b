"""JupyterLab on the checkout, configured from the repository: `nox -s jupyter`, or
`python -m mempill.lab.notebooks lab [jupyter options…]`.

The server's root is the checkout and the browser opens `notebooks/`. The settings shipped in
`tools/jupyter/lab/settings/overrides.json` (the application settings directory) make a
double-click on — or the URL `/lab/tree/notebooks/<name>.py` of — a notebook source open it
as a notebook (jupytext's viewer for Python files) and start the project's `python3` kernel
without asking. The user's own JupyterLab settings still win over these defaults.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mempill.lab.nbrun import ROOT, SHUTDOWN_WAIT_S

SETTINGS = ROOT / "tools" / "jupyter" / "lab" / "settings"
START_PAGE = "/lab/tree/notebooks"


def command(
    *,
    port: int | None = None,
    token: str | None = None,
    browser: bool = True,
    user_dir: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The `jupyter lab` command line: this interpreter (the project's environment), the
    checkout as root, the shipped settings. `user_dir` (tests) keeps user settings and
    workspaces there instead of the user's ~/.jupyter."""
    args = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.app_settings_dir={SETTINGS}",
        f"--LabApp.default_url={START_PAGE}",
        # A kernel's exit handlers stop its embedded PostgreSQL and remove temporary
        # directories: give them time before the kernel is killed (the default is 5 s).
        f"--KernelManager.shutdown_wait_time={SHUTDOWN_WAIT_S:g}",
    ]
    if port is not None:
        args += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if token is not None:
        args.append(f"--IdentityProvider.token={token}")
    if not browser:
        args.append("--ServerApp.open_browser=False")
    if user_dir is not None:
        args += [
            f"--LabApp.user_settings_dir={user_dir / 'user-settings'}",
            f"--LabApp.workspaces_dir={user_dir / 'workspaces'}",
        ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")  # containers and CI machines run as root
    return [*args, *extra]


def run(extra: Sequence[str] = ()) -> int:
    """Become JupyterLab (this process is replaced, so Ctrl-C reaches the server alone)."""
    args = command(extra=extra)
    os.chdir(ROOT)
    os.execv(args[0], args)  # noqa: S606 (the command is ours, no shell)
