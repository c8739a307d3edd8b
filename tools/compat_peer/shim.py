"""The documented shim (docs/compat.md, "The wheel's own test suite"): a directory holding a
stand-in `mempill` package, so that a process started with it first on PYTHONPATH resolves
`import mempill`, `mempill.types`, `mempill.ergonomic`, `mempill._mempill` and
`mempill.quickstart` to `mempill.compat`'s names, unchanged code and all.

The stand-in's `__path__` also lists the real package's directory, so `mempill.compat` and
everything it imports load from the checkout as usual; the real `mempill/__init__.py` is not
run in that process. Generated at run time; it holds no code of the wheel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mempill.compat

#: stand-in module → the compat module whose names it re-exports
MODULES = {
    "__init__": "mempill.compat",
    "types": "mempill.compat.types",
    "ergonomic": "mempill.compat.ergonomic",
    "_mempill": "mempill.compat",
    "quickstart": "mempill.compat.quickstart",
}
PLUGIN = "mempill_compat_peer_plugin"


def source(module: str, target: str, package: Path) -> str:
    """The text of one stand-in module."""
    lines = [f'"""Shim: the 0.4 wheel\'s `mempill.{module}` is `{target}` (docs/compat.md)."""']
    if module == "__init__":
        lines.append(f"__path__.append({str(package)!r})  # the real package's modules")
    if module == "quickstart":  # runnable, as `python -m mempill.quickstart`
        lines += [f"from {target} import main", 'if __name__ == "__main__":', "    main()"]
    else:
        lines += [f"from {target} import *", f"from {target} import __all__"]
    if module == "__init__":
        lines.append(f"from {target} import __version__")
    return "\n".join(lines) + "\n"


def write(directory: Path) -> Path:
    """Write the stand-in package (and the peer run's report plugin) into `directory`, the
    entry to put first on PYTHONPATH; returns it."""
    package = Path(mempill.compat.__file__).resolve().parents[1]
    stand_in = directory / "mempill"
    stand_in.mkdir(parents=True, exist_ok=True)
    for module, target in MODULES.items():
        (stand_in / f"{module}.py").write_text(source(module, target, package), encoding="utf-8")
    shutil.copyfile(Path(__file__).with_name("plugin.py"), directory / f"{PLUGIN}.py")
    return directory
