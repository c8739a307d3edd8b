"""The machine description that goes with every result: without it a number means little."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mempill.lab.runs import cpu, revision


def disk(path: Path) -> dict[str, Any]:
    """Filesystem, device and (when the kernel says) the device's rotational flag."""
    path = path.resolve()
    best: tuple[str, str, str] = ("?", "?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(path).startswith(mount) and len(mount) >= len(best[1]):
                best = (device, mount, kind)
    except OSError:
        pass
    device, mount, kind = best
    name = Path(device).name
    rotational = Path(f"/sys/block/{name}/queue/rotational")
    stat = os.statvfs(path)
    return {
        "path": str(path),
        "device": device,
        "mount": mount,
        "filesystem": kind,
        "rotational": rotational.read_text().strip() == "1" if rotational.exists() else None,
        "free_gib": round(stat.f_bavail * stat.f_frsize / 2**30, 1),
    }


def postgres(dsn: str | None) -> dict[str, Any] | None:
    """Server version and the settings that decide commit speed."""
    if dsn is None:
        return None
    import psycopg

    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "commit_delay")
    with psycopg.connect(dsn) as conn:
        found = {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]
    found["psycopg"] = psycopg.__version__
    return found


def describe(work: Path, pg_dsn: str | None, root: Path) -> dict[str, Any]:
    import mempill

    load = os.getloadavg()
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "kernel": f"{platform.system()} {platform.release()}",
        "cpu": cpu(),
        "disk": disk(work),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgres": postgres(pg_dsn),
        "mempill": mempill.__version__,
        "git_commit": revision(root),  # `-dirty` with uncommitted changes
        "load_average_at_start": [round(x, 2) for x in load],
    }
