"""The notebooks: sources JupyterLab writes back byte for byte, parameters, and each notebook
run headless at the small size.

Executing a notebook starts a real kernel (and, for most, PostgreSQL), so each notebook is
its own slow test; every figure it shows is saved as a PNG and checked, and so are the
executed notebook, its frames and its temporary directory.
"""

from __future__ import annotations

import copy
import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from mempill.lab import nbrun, notebooks

for _module in ("jupytext", "nbclient", "nbconvert"):  # the notebooks extra, not the dev one
    pytest.importorskip(_module, reason=f"needs the notebooks extra ({_module} is missing)")

import jupytext  # noqa: E402
import nbformat  # noqa: E402
from jupytext.config import load_jupytext_config  # noqa: E402

SOURCES = nbrun.sources()
#: Figures the notebooks of this package must show (others' notebooks: at least none).
MIN_FIGURES = {
    "bitemporal_explorer": 1,
    "lock_contention": 5,
    "performance": 6,
    "durability": 2,
    "own_store": 3,
}
KERNELSPEC = nbrun.KERNELSPEC


def test_there_are_notebooks() -> None:
    names = {p.stem for p in SOURCES}
    expected = {"quickstart", "bitemporal_explorer", "lock_contention", "conformance"}
    assert expected | {"durability", "performance", "own_store"} <= names


def as_jupyterlab_saves_it(source: Path) -> nbformat.NotebookNode:
    """The notebook as JupyterLab hands it to jupytext after opening and running it: the
    kernel's metadata, jupytext's own, cell ids, outputs and per-cell UI state."""
    notebook = copy.deepcopy(jupytext.read(source))
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11.2"}
    notebook.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    for number, cell in enumerate(notebook.cells, start=1):
        cell["id"] = f"cell-{number}"
        cell.metadata.update(trusted=True, editable=True, collapsed=False, scrolled=True)
        cell.metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
        if cell.cell_type == "code":
            cell["execution_count"] = number
            cell["outputs"] = [nbformat.v4.new_output("stream", text="out\n")]
    return notebook


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_each_source_is_what_jupyterlab_writes_back(source: Path) -> None:
    """Opening, running and saving a notebook in JupyterLab rewrites its .py through jupytext
    with notebooks/jupytext.toml: the bytes must not change, whatever the kernel, the
    versions or the outputs (so `git status` stays clean)."""
    config = load_jupytext_config(str(source.resolve()))
    assert config is not None, "notebooks/jupytext.toml was not found"
    text = source.read_text(encoding="utf-8")
    written = jupytext.writes(as_jupyterlab_saves_it(source), fmt="py:percent", config=config)
    assert written == text, (
        f"{source.name} is not in the form JupyterLab saves; rewrite it with "
        f"python -m mempill.lab.notebooks normalize {source.stem}"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_each_source_names_the_kernel(source: Path) -> None:
    """The kernelspec in the header is what lets JupyterLab start the kernel without asking."""
    assert jupytext.read(source).metadata.get("kernelspec") == KERNELSPEC


def test_the_paired_notebooks_are_not_tracked() -> None:
    """JupyterLab writes `<name>.ipynb` (outputs included) beside each source: git ignores it."""
    if shutil.which("git") is None or not (notebooks.ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paired = [str(p.with_suffix(".ipynb").relative_to(notebooks.ROOT)) for p in SOURCES]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *paired],
        cwd=notebooks.ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert sorted(done.stdout.split()) == sorted(paired)


def test_size_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(notebooks.SMALL_ENV, "1")
    assert notebooks.small() and notebooks.scale("s", "f") == "s"
    assert notebooks.default_size() == "small"
    monkeypatch.setenv(notebooks.SMALL_ENV, "0")
    assert not notebooks.small() and notebooks.scale("s", "f") == "f"
    monkeypatch.delenv(notebooks.SMALL_ENV)
    assert not notebooks.small() and notebooks.default_size() == "full"
    notebooks.use_size("small")
    assert notebooks.small()
    notebooks.use_size("full")
    assert not notebooks.small()
    with pytest.raises(ValueError, match="SIZE"):
        notebooks.use_size("medium")


def test_backends_and_server_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(notebooks.BACKENDS_ENV, raising=False)
    assert notebooks.default_backends("sqlite-file", "postgres") == ("sqlite-file", "postgres")
    monkeypatch.setenv(notebooks.BACKENDS_ENV, " sqlite-mem, ")
    assert notebooks.default_backends("sqlite-file", "postgres") == ("sqlite-mem",)
    monkeypatch.setenv("MEMPILL_TEST_PG_DSN", "postgresql://somewhere/db")
    assert notebooks.default_dsn() == "postgresql://somewhere/db"
    notebooks.use_dsn(None)
    assert notebooks.default_dsn() is None
    notebooks.use_dsn("host=/tmp dbname=x")
    assert notebooks.default_dsn() == "host=/tmp dbname=x"


def test_parameters_parse_as_literals_or_text() -> None:
    assert nbrun.parse_parameter("SIZE=small") == ("SIZE", "small")
    assert nbrun.parse_parameter("N=3") == ("N", 3)
    assert nbrun.parse_parameter("B=['sqlite-file']") == ("B", ["sqlite-file"])
    assert nbrun.parse_parameter("DSN=postgresql://h/db?x=1") == ("DSN", "postgresql://h/db?x=1")
    assert nbrun.parse_parameter("X=None") == ("X", None)
    for wrong in ("SIZE", "=3", "1A=2", "SIZE=medium"):
        with pytest.raises(ValueError):
            nbrun.parse_parameter(wrong)


def test_frames_are_saved_as_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    monkeypatch.setenv(nbrun.OUT_ENV, str(tmp_path))
    monkeypatch.setenv(nbrun.NAME_ENV, "demo")
    path = notebooks.save_frame("points", pd.DataFrame({"x": [1, 2], "y": ["a", "b,c"]}))
    assert path == tmp_path / "demo" / "points.csv"
    assert list(csv.reader(path.read_text().splitlines())) == [["x", "y"], ["1", "a"], ["2", "b,c"]]
    with pytest.raises(ValueError, match="plain file name"):
        notebooks.save_frame("../escape", pd.DataFrame())


def test_unknown_notebooks_and_parameters_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match="no notebook"):
        nbrun.sources(names=["nope"])
    assert notebooks.main(["execute", "nope", "--small"]) == 2
    assert "no notebook" in capsys.readouterr().err
    assert notebooks.main(["execute", "quickstart", "-p", "NOT_A_PARAMETER=1"]) == 2
    assert "NOT_A_PARAMETER" in capsys.readouterr().err
    assert notebooks.main(["execute", "quickstart", "--small", "-p", "SIZE=full"]) == 2
    assert "contradicts" in capsys.readouterr().err


PARAMETERISED = """\
# %%
import tempfile

import pandas as pd

from mempill.lab import notebooks

# %% tags=["parameters"]
SIZE = notebooks.default_size()
N = 1

# %%
notebooks.use_size(SIZE)
notebooks.save_frame("numbers", pd.DataFrame({"n": range(N)}))
litter = tempfile.mkdtemp(prefix="mempill-litter-")
print(f"SIZE={SIZE} N={N} small={notebooks.small()}")
"""


def test_parameters_are_injected_after_the_parameters_cell(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "params.py").write_text(PARAMETERISED, encoding="utf-8")
    (sources / "plain.py").write_text(
        "# %%\nimport os\nprint(os.environ['MEMPILL_NOTEBOOK_SMALL'])\n"
    )
    out = tmp_path / "out"
    with (tmp_path / "log").open("w") as log:
        params, plain = nbrun.execute_all(
            ["params", "plain"], {"SIZE": "small", "N": 3}, directory=sources, out=out, log=log
        )
    assert params.ok and plain.ok, (params.error, plain.error)
    executed = nbformat.read(params.notebook, as_version=4)
    tags = [c.metadata.get("tags", []) for c in executed.cells]
    assert tags[1:3] == [["parameters"], [nbrun.INJECTED_TAG]]
    assert "SIZE = 'small'\nN = 3" in executed.cells[2].source
    assert "SIZE=small N=3 small=True" in params.html.read_text(encoding="utf-8")
    assert params.frames == [out / "params" / "numbers.csv"]
    assert len(params.frames[0].read_text().splitlines()) == 1 + 3
    assert [name.startswith("mempill-litter-") for name in params.leftovers] == [True]
    assert plain.leftovers == []  # SIZE still reaches a notebook without a parameters cell
    assert nbformat.read(plain.notebook, as_version=4).cells[0].outputs[0]["text"] == "1\n"


def assert_image(png: Path) -> None:
    """A non-empty image: real dimensions and more than a handful of colours."""
    assert png.stat().st_size > 1000, png
    pixels = imread(png)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100, png
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 10, png


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_executes_at_the_small_size(source: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with log.open("w") as stream:
        (outcome,) = nbrun.execute_all([source.stem], {"SIZE": "small"}, out=tmp_path, log=stream)
    assert outcome.ok, outcome.error
    html = outcome.html.read_text(encoding="utf-8")
    assert outcome.html == tmp_path / f"{source.stem}.html" and "<html" in html
    executed = nbformat.read(outcome.notebook, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    assert len(outcome.figures) >= MIN_FIGURES.get(source.stem, 0)
    assert html.count("data:image/png;base64") >= len(outcome.figures)
    for png in outcome.figures:
        assert_image(png)
    for frame in outcome.frames:
        assert len(frame.read_text(encoding="utf-8").splitlines()) >= 2, frame  # header + a row
    assert outcome.leftovers == [], f"{source.stem} left temporary files: {outcome.leftovers}"
    assert "ok in" in log.read_text()


def test_a_failing_notebook_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "sources"
    broken.mkdir()
    (broken / "broken.py").write_text("# %%\nraise RuntimeError('boom')\n", encoding="utf-8")
    out = tmp_path / "html"
    code = notebooks.main(["execute", "--dir", str(broken), "--out", str(out), "--small"])
    assert code == 1
    assert "boom" in (out / "broken.html").read_text(encoding="utf-8")
    assert (out / "broken.ipynb").exists()
