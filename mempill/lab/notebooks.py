"""Run the notebooks headless: `python -m mempill.lab.notebooks execute [--small] [names…]`.

Every `notebooks/*.py` (jupytext `py:percent`, the reviewed source; the paired `.ipynb`
is kept without outputs) is executed top to bottom by nbclient in a fresh `python3`
kernel whose working directory is `notebooks/`. The executed notebook is written as
HTML, with its figures inline, to `build/notebooks/<name>.html`, and each figure also as
`build/notebooks/<name>/figure-NN.png`. `--small` sets MEMPILL_NOTEBOOK_SMALL=1 for the
kernels; notebooks read it through `small()` / `scale()` and shrink their experiments
(CI runs that size). The heavy Jupyter imports happen only when executing.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mempill import extras

SMALL_ENV = "MEMPILL_NOTEBOOK_SMALL"
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "notebooks"
CELL_TIMEOUT_S = 1800
T = TypeVar("T")


def small() -> bool:
    """True when notebooks should run at the small (CI) size."""
    return os.environ.get(SMALL_ENV, "") == "1"


def scale(small_value: T, full_value: T) -> T:
    """`small_value` at the small size, else `full_value` (a notebook's size parameter)."""
    return small_value if small() else full_value


def import_path_without_notebooks() -> None:
    """Take the notebooks directory (a kernel's working directory) off `sys.path`.

    IPython puts the working directory first on `sys.path`, so in `notebooks/` the source
    `conformance.py` would shadow the `conformance` package; call this before importing it.
    """
    here = NOTEBOOKS.resolve()
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != here]


@dataclass
class Outcome:
    """What executing one notebook produced."""

    name: str
    seconds: float
    html: Path
    figures: list[Path] = field(default_factory=list)
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


def execute(
    path: Path, *, small_size: bool, timeout: int = CELL_TIMEOUT_S
) -> tuple[Any, str | None]:
    """Execute one jupytext source; returns the notebook (with outputs) and the error, if any."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = jupytext.read(path)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        coalesce_streams=True,  # progress bars collapse to their last state in the HTML
        resources={"metadata": {"path": str(path.parent)}},
    )
    with _environment(**{SMALL_ENV: "1" if small_size else "0"}):
        try:
            client.execute()
        except CellExecutionError as e:
            return notebook, str(e)
    return notebook, None


def figures(notebook: Any) -> list[bytes]:
    """Every PNG image among the notebook's outputs, in order."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", ()):
            data = output.get("data", {})
            if "image/png" in data:
                found.append(base64.b64decode(data["image/png"]))
    return found


def write(notebook: Any, name: str, out: Path) -> tuple[Path, list[Path]]:
    """The notebook as `out/<name>.html`, and its figures as `out/<name>/figure-NN.png`."""
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    html, _ = HTMLExporter().from_notebook_node(notebook)  # type: ignore[no-untyped-call]
    target = out / f"{name}.html"
    target.write_text(html, encoding="utf-8")
    folder = out / name
    folder.mkdir(exist_ok=True)
    for old in folder.glob("figure-*.png"):
        old.unlink()
    saved = []
    for i, image in enumerate(figures(notebook), start=1):
        png = folder / f"figure-{i:02d}.png"
        png.write_bytes(image)
        saved.append(png)
    return target, saved


def execute_all(
    names: Sequence[str] = (),
    *,
    small_size: bool = False,
    directory: Path = NOTEBOOKS,
    out: Path = BUILD,
    timeout: int = CELL_TIMEOUT_S,
    log: Any = sys.stderr,
) -> list[Outcome]:
    """Execute each notebook (a failure does not stop the others) and write its HTML."""
    outcomes = []
    chosen = sources(directory, names)
    for i, path in enumerate(chosen, start=1):
        print(f"[{i}/{len(chosen)}] {path.name} …", file=log, flush=True)
        started = time.perf_counter()
        notebook, error = execute(path, small_size=small_size, timeout=timeout)
        html, saved = write(notebook, path.stem, out)
        outcome = Outcome(path.stem, time.perf_counter() - started, html, saved, error)
        status = "ok" if outcome.ok else "FAILED"
        print(
            f"[{i}/{len(chosen)}] {path.name}: {status} in {outcome.seconds:.1f}s, "
            f"{len(saved)} figure(s) -> {html}",
            file=log,
            flush=True,
        )
        outcomes.append(outcome)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """Execute notebooks and write HTML; exit status 1 when any notebook failed."""
    parser = argparse.ArgumentParser(prog="python -m mempill.lab.notebooks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="execute notebooks headless and write HTML")
    run.add_argument("names", nargs="*", help="notebook names (default: every notebook)")
    run.add_argument("--small", action="store_true", help=f"the CI size ({SMALL_ENV}=1)")
    run.add_argument("--dir", type=Path, default=NOTEBOOKS, help="notebook sources")
    run.add_argument("--out", type=Path, default=BUILD, help="where the HTML goes")
    run.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        outcomes = execute_all(
            args.names, small_size=args.small, directory=args.dir, out=args.out,
            timeout=args.timeout,
        )  # fmt: skip
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if not extras.third_party(e):
            raise
        print(f"error: {extras.missing('running notebooks', 'notebooks')}", file=sys.stderr)
        return 2
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        print(f"\n{outcome.name} failed:\n{outcome.error}", file=sys.stderr)
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} notebooks ran; HTML in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
