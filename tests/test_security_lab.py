"""The durability lab's least privilege (issue 22): the power-cut file system never leaves
its backing directory and serves one user only; the lab's PostgreSQL servers trust local
connections only through a socket no other user can reach, and listen on no TCP port.

Mount and server-user tests need FUSE or root; where either is missing they skip saying why.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mempill.lab.durability import fusedev
from mempill.lab.durability.backing import Backing
from mempill.lab.durability.harness import Configuration, trial_directory
from mempill.lab.durability.mount import PowerMount, unavailable_reason
from mempill.lab.durability.trials import run_trial

FUSE_MISSING = unavailable_reason()
needs_fuse = pytest.mark.skipif(FUSE_MISSING is not None, reason=str(FUSE_MISSING))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
OTHER_USER = "nobody"
SECRET = b"outside the backing directory"


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A backing directory holding symlinks planted to lead outside it, and the outside."""
    backing, outside = tmp_path / "backing", tmp_path / "outside"
    backing.mkdir()
    outside.mkdir()
    (outside / "victim.db").write_bytes(SECRET)
    os.chmod(outside / "victim.db", 0o600)
    (backing / "agents").symlink_to(outside)
    (backing / "alice.db").symlink_to(outside / "victim.db")
    yield backing, outside


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim.db"]
    assert (outside / "victim.db").read_bytes() == SECRET
    assert stat.S_IMODE((outside / "victim.db").stat().st_mode) == 0o600


# ---------------------------------------------------------------- the backing directory


def test_backing_paths_never_follow_a_planted_symlink(planted: tuple[Path, Path]) -> None:
    backing, outside = planted
    tree = Backing(str(backing))
    refused: list[Callable[[], object]] = [
        lambda: tree.open("/agents/victim.db", os.O_RDWR),
        lambda: tree.open("/agents/new.db", os.O_CREAT | os.O_WRONLY),
        lambda: tree.open("/alice.db", os.O_RDWR | os.O_TRUNC),
        lambda: tree.mkdir("/agents/sub", 0o700),
        lambda: tree.unlink("/agents/victim.db"),
        lambda: tree.rename("/agents/victim.db", "/stolen.db"),
        lambda: tree.chown("/agents/victim.db", 0, 0),
        lambda: tree.utime("/agents/victim.db", (0, 0)),
        lambda: tree.listdir("/agents"),
        lambda: tree.lstat("/agents/victim.db"),
    ]
    try:
        for operation in refused:
            with pytest.raises(OSError) as caught:
                operation()
            assert caught.value.errno == errno.ELOOP
        with pytest.raises(OSError) as caught:  # Linux cannot chmod a link, nor through it
            tree.chmod("/alice.db", 0o666)
        assert caught.value.errno == errno.EOPNOTSUPP
        for escape in ("/../outside/victim.db", "/./alice.db"):
            with pytest.raises(OSError) as caught:
                tree.open(escape, os.O_RDWR)
            assert caught.value.errno == errno.EACCES
        assert stat.S_ISLNK(tree.lstat("/alice.db").st_mode)  # the link itself is visible
        fd = tree.open("/real.db", os.O_CREAT | os.O_RDWR, 0o600)  # plain files still work
        os.close(fd)
        assert sorted(tree.listdir("/")) == ["agents", "alice.db", "real.db"]
    finally:
        tree.close()
    _untouched(outside)


@needs_fuse
def test_a_symlink_swapped_in_under_the_mount_cannot_redirect_writes(
    planted: tuple[Path, Path],
) -> None:
    """The kernel still holds `agents` as the directory it was; the backing entry is now a
    link to the outside. Writes through the stale directory are refused by the file system,
    so nothing outside the backing directory changes."""
    backing, outside = planted
    os.unlink(backing / "agents")
    with PowerMount(backing, backing.parent / "mnt") as mount:
        (mount.mountpoint / "agents").mkdir()
        held = os.open(mount.mountpoint / "agents", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.rename(backing / "agents", backing / "moved")
            (backing / "agents").symlink_to(outside)
            for flags in (os.O_RDONLY, os.O_RDWR | os.O_TRUNC, os.O_CREAT | os.O_WRONLY):
                for name in ("victim.db", "new.db"):
                    with pytest.raises(OSError) as caught:
                        os.close(os.open(name, flags, 0o600, dir_fd=held))
                    assert caught.value.errno == errno.ELOOP, (name, flags)
            with pytest.raises(OSError) as caught:
                os.mkdir("sub", dir_fd=held)
            assert caught.value.errno == errno.ELOOP
        finally:
            os.close(held)
    _untouched(outside)
    assert list((backing / "moved").iterdir()) == []


@needs_fuse
def test_the_mount_has_no_allow_other_and_serves_its_own_user(tmp_path: Path) -> None:
    with PowerMount(tmp_path / "backing", tmp_path / "mnt") as mount:
        options = _mount_options(mount.mountpoint)
        assert "allow_other" not in options and "default_permissions" in options
        assert f"user_id={os.geteuid()}" in options
        assert stat.S_IMODE(os.stat(mount.backing).st_mode) == 0o700
        (mount.mountpoint / "file").write_bytes(b"x")
    assert not fusedev.mounted(mount.mountpoint)


@needs_fuse
@needs_root
def test_a_mount_for_another_user_excludes_root_and_drops_root() -> None:
    """Mounted for the PostgreSQL trials' user: that user reads and writes, root cannot even
    list it, and the FUSE server itself runs as that user."""
    uid, _ = fusedev.identity(OTHER_USER)
    with trial_directory() as root:  # traversable by the other user, unlike tmp_path
        with PowerMount(root / "backing", root / "mnt", OTHER_USER) as mount:
            assert f"user_id={uid}" in _mount_options(mount.mountpoint)
            assert _uids(mount.process.pid) == {uid}
            assert os.stat(mount.backing).st_uid == uid
            with pytest.raises(PermissionError):
                os.listdir(mount.mountpoint)
            target = mount.mountpoint / "written"
            done = _as_other(f"echo hi > {target} && cat {target}")
            assert done.returncode == 0 and done.stdout == "hi\n", done.stderr
        assert not fusedev.mounted(mount.mountpoint)
        assert (mount.backing / "written").stat().st_uid == uid


@needs_fuse
@pytest.mark.sqlite_only
def test_a_power_cut_still_loses_nothing_under_full() -> None:
    config = Configuration(backend="sqlite", kind="power-loss", sync="FULL")
    outcome = run_trial(config, trial=1, seed=22)
    assert outcome.result.acked > 0 and outcome.result.sound, outcome.result


# ---------------------------------------------------------------- the lab's PostgreSQL


@pytest.mark.own_servers
def test_the_crash_trials_cluster_is_reachable_by_its_own_user_only() -> None:
    """The trials' clusters trust local connections, so nothing but the socket guards
    them: no TCP listener, the socket 0700 in a 0700 directory of the server's user; a
    third user cannot connect (before issue 22 the directory was 0777 and anyone could)."""
    from mempill.lab.durability.postgres import PgServer, make_template

    with trial_directory() as root:
        server = PgServer(make_template(root), root / "sock", root / "postgres.log")
        server.start()
        try:
            owner = os.stat(server.datadir).st_uid
            _assert_private_socket(server.sockdir, owner, server.pid, server.dsn)
            assert server.shm_id is not None  # read by the server, not through the mount
            if os.geteuid() == 0:
                _assert_refused_to_another_user(server.sockdir)
        finally:
            server.stop()


@pytest.mark.own_servers
def test_the_embedded_test_server_is_reachable_by_its_own_user_only() -> None:
    from mempill.lab.servers import _embedded, embedded_dsn

    dsn = embedded_dsn()
    info = _embedded["server"].get_postmaster_info()
    owner = os.stat(_embedded["server"].pgdata).st_uid
    _assert_private_socket(info.socket_dir, owner, info.pid, dsn, socket_mode=None)
    if os.geteuid() == 0:
        _assert_refused_to_another_user(info.socket_dir)


def test_a_shared_socket_directory_is_made_private(tmp_path: Path) -> None:
    """The wheel's fallback socket directory (0777, root's) becomes the server user's, 0700."""
    from mempill.lab.servers import private_socket_dir

    datadir, sockets = tmp_path / "data", tmp_path / "sockets"
    datadir.mkdir(mode=0o700)
    sockets.mkdir()
    sockets.chmod(0o777)
    if os.geteuid() == 0:
        os.chown(datadir, *fusedev.identity(OTHER_USER))
    private_socket_dir(sockets, datadir)
    found, owner = sockets.stat(), datadir.stat()
    assert stat.S_IMODE(found.st_mode) == 0o700
    assert (found.st_uid, found.st_gid) == (owner.st_uid, owner.st_gid)
    with pytest.raises(RuntimeError, match="TCP"):
        private_socket_dir(None, datadir)


def _assert_private_socket(
    sockdir: Path, owner: int, pid: int, dsn: str, socket_mode: int | None = 0o700
) -> None:
    import psutil
    import psycopg

    found = os.stat(sockdir)
    assert stat.S_IMODE(found.st_mode) == 0o700 and found.st_uid == owner
    (socket,) = [p for p in Path(sockdir).iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]
    if socket_mode is not None:
        assert stat.S_IMODE(socket.lstat().st_mode) == socket_mode
    assert psutil.Process(pid).net_connections(kind="inet") == []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)


def _assert_refused_to_another_user(sockdir: Path) -> None:
    from mempill.lab.durability.postgres import _binary

    psql = f"{_binary('psql')} -h {sockdir} -U postgres -d postgres -c 'SELECT 1'"
    done = _as_other(psql)
    assert done.returncode != 0 and "Permission denied" in done.stderr, done


def _mount_options(mountpoint: Path) -> set[str]:
    with open("/proc/self/mounts", encoding="utf-8") as table:
        for line in table:
            fields = line.split()
            if fields[1] == str(mountpoint):
                return set(fields[3].split(","))
    raise AssertionError(f"{mountpoint} is not mounted")


def _uids(pid: int) -> set[int]:
    """Real, effective, saved and file-system uids of a process."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(x for x in status if x.startswith("Uid:"))
    return {int(u) for u in line.split()[1:]}


def _as_other(script: str) -> subprocess.CompletedProcess[str]:
    uid, gid = fusedev.identity(OTHER_USER)
    return subprocess.run(
        ["sh", "-c", script],
        check=False,
        user=uid,
        group=gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
