"""The notebook runner behind `python -m mempill.lab.notebooks execute`.

Each `notebooks/*.py` (jupytext `py:percent`, the reviewed source) is executed top to bottom
by nbclient in a fresh `python3` kernel whose working directory is `notebooks/`, as
JupyterLab runs it. Parameters are injected papermill-style: `-p NAME=VALUE` becomes a cell
`NAME = VALUE` right after the cell tagged `parameters`, so it overrides that cell's default.
`SIZE` also sets MEMPILL_NOTEBOOK_SMALL for the kernel (notebooks without a parameters cell
still shrink). The executed notebook is saved under `build/notebooks/` as `<name>.ipynb` and
`<name>.html` (figures inline), each figure as `<name>/figure-NN.png`, and the frames a
notebook saves with `save_frame` as `<name>/<frame>.csv`.

The kernel gets a private temporary directory (TMPDIR); whatever a notebook leaves in it is
reported as `leftovers` (a notebook must clean up after itself: in JupyterLab its temporary
directories would pile up in /tmp) and then removed. The heavy Jupyter imports happen only
when executing.
"""

from __future__ import annotations

import ast
import base64
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SMALL_ENV = "MEMPILL_NOTEBOOK_SMALL"
OUT_ENV = "MEMPILL_NOTEBOOK_OUT"
NAME_ENV = "MEMPILL_NOTEBOOK_NAME"
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "notebooks"
CELL_TIMEOUT_S = 1800
#: How long a kernel may take to exit after its shutdown request before it is killed: its
#: exit handlers stop an embedded PostgreSQL and remove temporary directories.
SHUTDOWN_WAIT_S = 60.0
SIZES = ("small", "full")
SIZE = "SIZE"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
#: The kernel a notebook's header names (ipykernel's `python3` in the project's environment).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@dataclass
class Outcome:
    """What executing one notebook produced."""

    name: str
    seconds: float
    html: Path
    notebook: Path
    figures: list[Path] = field(default_factory=list)
    frames: list[Path] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def sources(directory: Path = NOTEBOOKS, names: Sequence[str] = ()) -> list[Path]:
    """The notebooks' `.py` sources, sorted; `names` (stems) narrows them, unknown ones fail."""
    found = sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))
    if not names:
        return found
    by_name = {p.stem: p for p in found}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"no notebook(s) {unknown} in {directory}; have {sorted(by_name)}")
    return [by_name[n] for n in names]


def normalize(path: Path) -> bool:
    """Rewrite a source in the form JupyterLab saves it (jupytext with notebooks/jupytext.toml,
    the `python3` kernelspec in the header), so opening and saving it changes nothing.
    True when the file changed."""
    import jupytext
    from jupytext.config import load_jupytext_config

    config = load_jupytext_config(str(path.resolve()))
    if config is None:
        raise ValueError(f"no jupytext.toml above {path}: its filters decide the form")
    notebook = jupytext.read(path)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    text = jupytext.writes(notebook, fmt="py:percent", config=config)
    if text == path.read_text(encoding="utf-8"):
        return False
    path.write_text(text, encoding="utf-8")
    return True


def parse_parameter(text: str) -> tuple[str, Any]:
    """`NAME=VALUE` → (NAME, value): a Python literal when VALUE is one (`3`, `True`,
    `["sqlite-file"]`, `None`), else the text itself (`small`, a DSN)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(f"a parameter is NAME=VALUE, not {text!r}")
    try:
        value: Any = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    if name == SIZE and value not in SIZES:
        raise ValueError(f"SIZE must be one of {', '.join(SIZES)}, not {raw!r}")
    return name, value


def parameters_cell(notebook: Any) -> int | None:
    """The index of the cell tagged `parameters`, or None."""
    for index, cell in enumerate(notebook.cells):
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", ()):
            return index
    return None


def declared(notebook: Any) -> list[str]:
    """The names the `parameters` cell assigns, in order."""
    index = parameters_cell(notebook)
    if index is None:
        return []
    names: list[str] = []
    for node in ast.parse(notebook.cells[index].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


def inject(notebook: Any, values: Mapping[str, Any]) -> None:
    """Insert `NAME = value` lines in a cell tagged `injected-parameters` right after the
    `parameters` cell (nothing when `values` is empty)."""
    import nbformat

    if not values:
        return
    index = parameters_cell(notebook)
    if index is None:
        raise ValueError(f"parameters {sorted(values)} given, but no cell is tagged parameters")
    lines = ["# Parameters (injected)", *(f"{name} = {value!r}" for name, value in values.items())]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})  # type: ignore[no-untyped-call]
    notebook.cells.insert(index + 1, cell)


def check_parameters(paths: Sequence[Path], values: Mapping[str, Any]) -> None:
    """Every parameter must be declared by at least one of the chosen notebooks (a typo is
    an error, not a silent default); SIZE always applies."""
    import jupytext

    known = {SIZE}
    for path in paths:
        known.update(declared(jupytext.read(path)))
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"no chosen notebook has parameter(s) {unknown}; they have {sorted(known)}"
        )


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for kernels started inside the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def private_tmp() -> Iterator[tuple[Path, list[str]]]:
    """A fresh temporary directory for a kernel (mode 0711: an embedded PostgreSQL running
    as another user must reach its own directory inside); the list is filled, on exit, with
    what was left in it, which is then removed."""
    tmp = Path(tempfile.mkdtemp(prefix="mempill-nb-"))
    tmp.chmod(0o711)
    left: list[str] = []
    try:
        yield tmp, left
    finally:
        runtime = f"runtime-{os.geteuid()}"  # platformdirs' per-user directory, not litter
        left += sorted(p.name for p in tmp.iterdir() if p.name != runtime)
        shutil.rmtree(tmp, ignore_errors=True)


def execute(
    path: Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    out: Path = BUILD,
    timeout: int = CELL_TIMEOUT_S,
) -> tuple[Any, str | None, list[str]]:
    """Execute one jupytext source with `parameters` (those its parameters cell declares);
    returns the notebook with its outputs, the error if any, and the temporary leftovers."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    given = dict(parameters or {})
    notebook = jupytext.read(path)
    names = declared(notebook)
    inject(notebook, {k: v for k, v in given.items() if k in names})
    env = {OUT_ENV: str(out.resolve()), NAME_ENV: path.stem}
    if SIZE in given:
        env[SMALL_ENV] = "1" if given[SIZE] == "small" else "0"
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        coalesce_streams=True,  # stderr progress bars collapse to their last state
        resources={"metadata": {"path": str(path.parent)}},
        config=Config({"KernelManager": {"shutdown_wait_time": SHUTDOWN_WAIT_S}}),
    )
    error = None
    with private_tmp() as (tmp, leftovers), _environment(**env, TMPDIR=str(tmp)):
        try:
            client.execute()
        except CellExecutionError as e:
            error = str(e)
    return notebook, error, leftovers


def figures(notebook: Any) -> list[bytes]:
    """Every PNG image among the notebook's outputs, in order."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", ()):
            data = output.get("data", {})
            if "image/png" in data:
                found.append(base64.b64decode(data["image/png"]))
    return found


def folder(out: Path, name: str) -> Path:
    """`out/<name>/`, where a notebook's figures and frames go."""
    return out / name


def clear(out: Path, name: str) -> None:
    """Remove the figures and frames of an earlier run of `name`."""
    for old in (*folder(out, name).glob("figure-*.png"), *folder(out, name).glob("*.csv")):
        old.unlink()


def write(notebook: Any, name: str, out: Path) -> tuple[Path, Path, list[Path]]:
    """The executed notebook as `out/<name>.ipynb` and `out/<name>.html`, and its figures as
    `out/<name>/figure-NN.png`."""
    import nbformat
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    ipynb = out / f"{name}.ipynb"
    nbformat.write(notebook, ipynb)  # type: ignore[no-untyped-call]
    html, _ = HTMLExporter().from_notebook_node(notebook)  # type: ignore[no-untyped-call]
    target = out / f"{name}.html"
    target.write_text(html, encoding="utf-8")
    images = folder(out, name)
    images.mkdir(exist_ok=True)
    saved = []
    for i, image in enumerate(figures(notebook), start=1):
        png = images / f"figure-{i:02d}.png"
        png.write_bytes(image)
        saved.append(png)
    return target, ipynb, saved


def execute_all(
    names: Sequence[str] = (),
    parameters: Mapping[str, Any] | None = None,
    *,
    directory: Path = NOTEBOOKS,
    out: Path = BUILD,
    timeout: int = CELL_TIMEOUT_S,
    log: Any = sys.stderr,
) -> list[Outcome]:
    """Execute each notebook (a failure does not stop the others) and save what it made."""
    given = dict(parameters or {})
    chosen = sources(directory, names)
    check_parameters(chosen, given)
    outcomes = []
    for i, path in enumerate(chosen, start=1):
        print(f"[{i}/{len(chosen)}] {path.name} …", file=log, flush=True)
        started = time.perf_counter()
        clear(out, path.stem)
        notebook, error, leftovers = execute(path, given, out=out, timeout=timeout)
        html, ipynb, saved = write(notebook, path.stem, out)
        frames = sorted(folder(out, path.stem).glob("*.csv"))
        seconds = time.perf_counter() - started
        outcome = Outcome(path.stem, seconds, html, ipynb, saved, frames, leftovers, error)
        status = "ok" if outcome.ok else "FAILED"
        print(
            f"[{i}/{len(chosen)}] {path.name}: {status} in {outcome.seconds:.1f}s, "
            f"{len(saved)} figure(s), {len(frames)} frame(s) -> {html}",
            file=log,
            flush=True,
        )
        if leftovers:
            print(f"  left in its temporary directory: {', '.join(leftovers)}", file=log)
        outcomes.append(outcome)
    return outcomes
