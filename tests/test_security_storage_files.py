"""Issue 22, findings 4 and 6 (storage side): private files, no symbolic links, bounded
file descriptors.

Folders the SQLite store creates are 0700 and databases 0600 — their -wal and -shm too —
whatever the umask; files and folders that exist keep their mode; a symbolic link where
an agent's database should be is refused, never followed. A directory store keeps at
most `max_open_agents` databases open (an LRU that never closes one in use), and a
database whose opening fails closes its connection.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import AGENT, request

import mempill
from mempill import StorageError
from mempill.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.sqlite_only


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """umask 000: modes come from mempill, not from the process's umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# ---------------------------------------------------------------- modes


def test_new_folders_are_0700_and_databases_0600(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "a" / "b" / "agents"
    with mempill.open_directory(folder) as engine:
        engine.remember("alice", "user", "ssn", "123-45-6789")
        files = {p.name: mode(p) for p in folder.iterdir()}
        assert files == {"alice.db": 0o600, "alice.db-wal": 0o600, "alice.db-shm": 0o600}
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", folder)] == [0o700] * 3
    single = tmp_path / "new" / "memory.db"
    with mempill.open_default(single) as engine:
        engine.remember("alice", "user", "ssn", "123-45-6789")
    assert (mode(single.parent), mode(single)) == (0o700, 0o600)


def test_existing_files_and_folders_keep_their_mode(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "agents"
    folder.mkdir(mode=0o755)
    (folder / "bob.db").touch(mode=0o640)  # an empty database: a first write makes it a store
    with mempill.open_directory(folder) as engine:
        engine.remember("bob", "user", "city", "Paris")
        engine.remember("carol", "user", "city", "Rome")
    assert mode(folder) == 0o755 and mode(folder / "bob.db") == 0o640
    assert mode(folder / "carol.db") == 0o600


# ---------------------------------------------------------------- symbolic links


def test_a_symbolic_link_in_place_of_a_database_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    with mempill.open_directory(folder) as engine:
        engine.remember("alice", "user", "city", "Paris")
        (folder / "mallory.db").symlink_to(victim)
        (folder / "dangling.db").symlink_to(tmp_path / "not-there.db")
        for agent in ("mallory", "dangling"):
            with pytest.raises(StorageError, match="symbolic link"):
                engine.remember(agent, "user", "city", "Oslo")
            with pytest.raises(StorageError, match="symbolic link"):
                engine.query_memory(agent, "user", "city")
        assert dict(engine.ignored_files()) == {
            str(folder / "dangling.db"): "a symbolic link (never followed)",
            str(folder / "mallory.db"): "a symbolic link (never followed)",
        }
        assert engine.store.agents() == ("alice",)
        assert engine.sweep_expired() == 0  # store-wide calls skip the links
    assert victim.read_text() == "precious" and not (tmp_path / "not-there.db").exists()
    real = tmp_path / "real.db"
    mempill.open_default(real).close()
    (tmp_path / "link.db").symlink_to(real)
    with pytest.raises(StorageError, match="symbolic link"):
        mempill.open_default(tmp_path / "link.db")
    (tmp_path / "fifo.db").parent.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "fifo.db")
    with pytest.raises(StorageError, match="not a regular file"):
        mempill.open_default(tmp_path / "fifo.db")  # would block on open() before


# ---------------------------------------------------------------- open databases


def test_a_directory_store_keeps_a_bounded_number_of_databases_open(tmp_path: Path) -> None:
    with mempill.open_directory(tmp_path, max_open_agents=4) as engine:
        engine.remember("warm", "user", "city", "up")
        engine.recall("warm", "user", "city")
        baseline = open_fds()
        for i in range(60):
            engine.remember(f"a{i}", "user", "city", i)
            assert engine.recall(f"a{i}", "user", "city").value == i
            assert engine.store.open_agents() <= 4  # type: ignore[attr-defined]
        # four databases, each a writer (3 fds) and an idle reader (2 fds)
        assert open_fds() - baseline <= 3 * 5
        for i in range(60):  # closed ones reopen on demand, with their data
            assert engine.recall(f"a{i}", "user", "city").value == i
        assert len(engine.store.agents()) == 61


def test_no_database_in_use_is_closed(tmp_path: Path) -> None:
    """Threads write and read many agents through a store that may keep two open: the
    databases in use stay open (the limit is passed meanwhile), none is closed under a
    caller, and every value is read back."""
    errors: list[BaseException] = []
    with mempill.open_directory(tmp_path, max_open_agents=2) as engine:

        def work(worker: int) -> None:
            try:
                for i in range(30):
                    agent = f"w{worker}-{i % 6}"
                    engine.remember(agent, "user", f"p{i}", i)
                    assert engine.recall(agent, "user", f"p{i}").value == i
                    with engine.store.read(f"w{(worker + 1) % 4}-{i % 6}") as reader:
                        reader.line_version("user", "p0")
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert engine.store.open_agents() <= 2  # type: ignore[attr-defined]


def test_a_database_that_fails_to_open_closes_its_connection(tmp_path: Path) -> None:
    (tmp_path / "broken.db-wal").mkdir()  # SQLite cannot make its WAL: the open fails
    with mempill.open_directory(tmp_path) as engine:
        with pytest.raises(StorageError):
            engine.remember("broken", "user", "city", "Paris")
        before = open_fds()
        for _ in range(30):
            with pytest.raises(StorageError):
                engine.remember("broken", "user", "city", "Paris")
        assert open_fds() == before
    stale = tmp_path / "stale"
    stale.mkdir()
    empty = stale / "old.db"
    empty.touch()  # an agent database with no schema yet: a read-only open refuses it
    with mempill.open_directory(stale, read_only=True) as engine:
        before = open_fds()
        for _ in range(30):
            with pytest.raises(StorageError, match="without read_only"):
                engine.query_memory("old", "user", "city")
        assert open_fds() == before


MANY_AGENTS = textwrap.dedent(
    """
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    import mempill
    with mempill.open_directory(sys.argv[1]) as engine:
        for i in range(300):
            engine.remember(f"agent-{i}", "user", "city", i)
            engine.recall(f"agent-{i}", "user", "city")
        assert engine.recall("agent-0", "user", "city").value == 0
        print(len(os.listdir("/proc/self/fd")), engine.store.open_agents())
    """
)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_more_agents_than_file_descriptors_allow(tmp_path: Path) -> None:
    """300 agents under a limit of 128 file descriptors (about 40 agents' worth before):
    the default `max_open_agents` follows the limit (128 // 16 = 8 databases)."""
    done = subprocess.run(
        [sys.executable, "-c", MANY_AGENTS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    fds, opened = map(int, done.stdout.split())
    assert opened == 8 and fds < 64


def test_max_open_agents_is_checked(tmp_path: Path) -> None:
    for bad in (0, -1, 1.5, "4", True):
        with pytest.raises(mempill.ConfigError, match="max_open_agents"):
            SQLiteStore(directory=tmp_path, max_open_agents=bad)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())
    engine = mempill.open_directory(tmp_path, max_open_agents=1)
    engine.ingest(request("Paris"))
    engine.ingest(request("Oslo", agent_id="other"))
    assert engine.recall(AGENT, "user", "city").value == "Paris"
    engine.close()
