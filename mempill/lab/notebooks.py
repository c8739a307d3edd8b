"""What the notebooks import, and their command line.

In a notebook (`from mempill.lab import notebooks`): the parameters cell starts from
`default_size()`, `default_backends(...)` and `default_dsn()` (environment variables, so
`MEMPILL_NOTEBOOK_SMALL=1 nox -s jupyter` picks the small size in JupyterLab), the next cell
applies them with `use_size(SIZE)` / `use_dsn(PG_DSN)`; `small()` and `scale()` read the size;
`tidy_tables()` makes wide frames fit; `save_frame(name, frame)` writes the data behind a
figure to `build/notebooks/<notebook>/<name>.csv`.

Command line (`python -m mempill.lab.notebooks`):

* `execute [names…] [-p NAME=VALUE]… [--small]`: run notebooks headless (`mempill.lab.nbrun`);
  `--small` is `-p SIZE=small`.
* `normalize [names…]`: rewrite sources in the form JupyterLab saves them (the kernelspec
  header, jupytext's layout), so opening and saving one leaves git clean.
* `lab [jupyter options…]`: JupyterLab on the checkout (`mempill.lab.jupyterlab`), as
  `nox -s jupyter` starts it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from mempill import extras
from mempill.lab.nbrun import (
    BUILD,
    CELL_TIMEOUT_S,
    NAME_ENV,
    NOTEBOOKS,
    OUT_ENV,
    ROOT,
    SIZE,
    SIZES,
    SMALL_ENV,
)

__all__ = [
    "BACKENDS_ENV",
    "BUILD",
    "NOTEBOOKS",
    "ROOT",
    "SMALL_ENV",
    "default_backends",
    "default_dsn",
    "default_size",
    "import_path_without_notebooks",
    "main",
    "notebook_name",
    "output_dir",
    "save_frame",
    "scale",
    "small",
    "tidy_tables",
    "use_dsn",
    "use_size",
]

BACKENDS_ENV = "MEMPILL_NOTEBOOK_BACKENDS"
DSN_ENV = "MEMPILL_TEST_PG_DSN"
T = TypeVar("T")


def default_size() -> str:
    """The size a notebook's parameters cell starts from: "small" when MEMPILL_NOTEBOOK_SMALL=1
    (CI, `execute --small`), else "full"."""
    return "small" if os.environ.get(SMALL_ENV, "") == "1" else "full"


def use_size(size: str) -> None:
    """Make `small()` and `scale()` follow a notebook's `SIZE` parameter ("small" or "full");
    the kernel's environment carries it, so helpers and subprocesses see it too."""
    if size not in SIZES:
        raise ValueError(f"SIZE must be one of {SIZES}, not {size!r}")
    os.environ[SMALL_ENV] = "1" if size == "small" else "0"


def small() -> bool:
    """True when notebooks should run at the small (CI) size."""
    return os.environ.get(SMALL_ENV, "") == "1"


def scale(small_value: T, full_value: T) -> T:
    """`small_value` at the small size, else `full_value` (a notebook's size parameter)."""
    return small_value if small() else full_value


def default_backends(*fallback: str) -> tuple[str, ...]:
    """The backends a parameters cell starts from: MEMPILL_NOTEBOOK_BACKENDS (comma-separated
    lab backend names, e.g. `sqlite-file` to leave PostgreSQL out), else `fallback`."""
    chosen = [b.strip() for b in os.environ.get(BACKENDS_ENV, "").split(",") if b.strip()]
    return tuple(chosen) or fallback


def default_dsn() -> str | None:
    """The PostgreSQL server a parameters cell starts from: MEMPILL_TEST_PG_DSN, else None
    (the embedded PostgreSQL 18)."""
    return os.environ.get(DSN_ENV) or None


def use_dsn(dsn: str | None) -> None:
    """Point every PostgreSQL helper of the lab at `dsn` (None: the embedded server)."""
    if dsn:
        os.environ[DSN_ENV] = dsn
    else:
        os.environ.pop(DSN_ENV, None)


def tidy_tables(max_columns: int = 14, max_colwidth: int = 36) -> None:
    """pandas display options under which a wide frame fits the notebook's width: long
    values are cut at `max_colwidth` characters, columns beyond `max_columns` elided (…);
    `save_frame` keeps every column and value."""
    import pandas as pd

    pd.set_option("display.max_columns", max_columns)
    pd.set_option("display.max_colwidth", max_colwidth)
    pd.set_option("display.width", 120)
    pd.set_option("display.precision", 4)
    pd.set_option("display.html.use_mathjax", False)  # `$` in values stays a dollar


def notebook_name() -> str:
    """This notebook's name: set by the runner, else the JupyterLab session's file (the
    server gives kernels JPY_SESSION_NAME), else the script's, else "notebook"."""
    for candidate in (os.environ.get(NAME_ENV), os.environ.get("JPY_SESSION_NAME")):
        if candidate:
            return Path(candidate).stem
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.suffix == ".py" and "ipykernel" not in script.name:
        return script.stem
    return "notebook"


def output_dir(notebook: str | None = None) -> Path:
    """`build/notebooks/<notebook>/` (the runner's `--out` when it runs the notebook),
    created: where a notebook's figures, frames and other products go."""
    base = Path(os.environ.get(OUT_ENV) or BUILD)
    found = base / (notebook or notebook_name())
    found.mkdir(parents=True, exist_ok=True)
    return found


def save_frame(name: str, frame: Any, notebook: str | None = None) -> Path:
    """Write `frame` (the data behind a figure or table) to `<output_dir>/<name>.csv`, every
    row and column; the index is written when it is named. Returns the path."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"a frame's name is a plain file name, not {name!r}")
    path = output_dir(notebook) / f"{name}.csv"
    named_index = any(level is not None for level in frame.index.names)
    frame.to_csv(path, index=named_index)
    return path


def import_path_without_notebooks() -> None:
    """Take the notebooks directory (a kernel's working directory) off `sys.path`.

    IPython puts the working directory first on `sys.path`, so in `notebooks/` the source
    `conformance.py` would shadow the `conformance` package; call this before importing it.
    """
    here = NOTEBOOKS.resolve()
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != here]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mempill.lab.notebooks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="execute notebooks headless; save them and HTML")
    run.add_argument("names", nargs="*", help="notebook names (default: every notebook)")
    run.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="set a parameter (injected after the cell tagged parameters); repeatable",
    )  # fmt: skip
    run.add_argument("--small", action="store_true", help="the CI size: -p SIZE=small")
    run.add_argument("--dir", type=Path, default=NOTEBOOKS, help="notebook sources")
    run.add_argument("--out", type=Path, default=BUILD, help="where the results go")
    run.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds per cell")
    tidy = commands.add_parser("normalize", help="rewrite sources as JupyterLab saves them")
    tidy.add_argument("names", nargs="*", help="notebook names (default: every notebook)")
    tidy.add_argument("--dir", type=Path, default=NOTEBOOKS, help="notebook sources")
    commands.add_parser("lab", help="JupyterLab on the checkout (other options go to jupyter lab)")
    return parser


def _normalize(args: argparse.Namespace) -> int:
    from mempill.lab import nbrun

    for path in nbrun.sources(args.dir, args.names):
        print(f"{path.name}: {'rewritten' if nbrun.normalize(path) else 'unchanged'}")
    return 0


def _execute(args: argparse.Namespace) -> int:
    from mempill.lab import nbrun

    parameters = dict(nbrun.parse_parameter(p) for p in args.parameter)
    if args.small:
        if parameters.get(SIZE, "small") != "small":
            raise ValueError("--small contradicts -p SIZE=full")
        parameters[SIZE] = "small"
    outcomes = nbrun.execute_all(
        args.names, parameters, directory=args.dir, out=args.out, timeout=args.timeout
    )
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        print(f"\n{outcome.name} failed:\n{outcome.error}", file=sys.stderr)
    untidy = [o.name for o in outcomes if o.leftovers]
    if untidy:
        print(f"left temporary files behind: {', '.join(untidy)}", file=sys.stderr)
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} notebooks ran; results in {args.out}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Execute notebooks (exit status 1 when any failed), or start JupyterLab."""
    args, rest = _parser().parse_known_args(argv)
    try:
        if args.command == "lab":
            from mempill.lab import jupyterlab

            return jupyterlab.run(rest)
        if rest:
            _parser().error(f"unrecognized arguments: {' '.join(rest)}")
        return _normalize(args) if args.command == "normalize" else _execute(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if not extras.third_party(e):
            raise
        print(f"error: {extras.missing('running notebooks', 'notebooks')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
