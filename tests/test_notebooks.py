"""The notebooks: paired and stripped in git, and each one runs headless at the small size.

Executing a notebook starts a real kernel (and, for most, PostgreSQL), so each notebook
is its own slow test; every figure it shows is saved as a PNG and checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from mempill.lab import notebooks

for _module in ("jupytext", "nbclient", "nbconvert"):  # the notebooks extra, not the dev one
    pytest.importorskip(_module, reason=f"needs the notebooks extra ({_module} is missing)")

SOURCES = notebooks.sources()
#: Figures the notebooks of this package must show (others' notebooks: at least none).
MIN_FIGURES = {"bitemporal_explorer": 1, "lock_contention": 5, "performance": 6, "durability": 1}


def test_there_are_notebooks() -> None:
    names = {p.stem for p in SOURCES}
    assert {"quickstart", "bitemporal_explorer", "lock_contention", "conformance"} <= names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_each_notebook_is_paired_and_stripped(source: Path) -> None:
    """The committed .ipynb has the .py's cells and no outputs (`jupytext --sync` keeps it)."""
    import jupytext

    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"run: jupytext --sync {source}"
    from_py, from_ipynb = jupytext.read(source), jupytext.read(paired)
    cells = [(c.cell_type, c.source) for c in from_py.cells]
    assert cells == [(c.cell_type, c.source) for c in from_ipynb.cells], (
        f"{paired.name} is out of sync: jupytext --sync {source}"
    )
    raw = json.loads(paired.read_text(encoding="utf-8"))
    for cell in raw["cells"]:
        assert not cell.get("outputs") and cell.get("execution_count") is None, (
            f"{paired.name} has outputs; strip them (jupytext --sync {source} from the .py)"
        )


def test_size_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(notebooks.SMALL_ENV, "1")
    assert notebooks.small() and notebooks.scale("s", "f") == "s"
    monkeypatch.setenv(notebooks.SMALL_ENV, "0")
    assert not notebooks.small() and notebooks.scale("s", "f") == "f"
    monkeypatch.delenv(notebooks.SMALL_ENV)
    assert not notebooks.small()


def test_unknown_notebooks_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="no notebook"):
        notebooks.sources(names=["nope"])
    assert notebooks.main(["execute", "nope", "--small"]) == 2
    assert "no notebook" in capsys.readouterr().err


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
        (outcome,) = notebooks.execute_all([source.stem], small_size=True, out=tmp_path, log=stream)
    assert outcome.ok, outcome.error
    html = outcome.html.read_text(encoding="utf-8")
    assert outcome.html == tmp_path / f"{source.stem}.html" and "<html" in html
    assert len(outcome.figures) >= MIN_FIGURES.get(source.stem, 0)
    assert html.count("data:image/png;base64") >= len(outcome.figures)
    for png in outcome.figures:
        assert_image(png)
    assert "ok in" in log.read_text()


def test_a_failing_notebook_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "sources"
    broken.mkdir()
    (broken / "broken.py").write_text("# %%\nraise RuntimeError('boom')\n", encoding="utf-8")
    out = tmp_path / "html"
    code = notebooks.main(["execute", "--dir", str(broken), "--out", str(out), "--small"])
    assert code == 1
    assert "boom" in (out / "broken.html").read_text(encoding="utf-8")
