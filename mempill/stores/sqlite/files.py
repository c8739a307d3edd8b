"""The SQLite store's files on disk: created private, never through a symbolic link.

A folder the store creates is 0700 (each missing component, like `mkdir -p -m 700`), and a
new agent database is created 0600 with `O_CREAT | O_EXCL | O_NOFOLLOW` before SQLite
opens it, so SQLite's `-wal`, `-shm` and `-journal` files get the same mode (SQLite gives
them the mode of their database). Existing files and folders keep their mode: mempill
never changes the permissions of a file it did not create. A symbolic link, or anything
but a regular file, where an agent's database should be is refused (a local user could
otherwise point another user's store at a file of their choosing).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from mempill.core import parse
from mempill.errors import ConfigError, StorageError
from mempill.stores.schema import embedded_migrations

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SQLITE_HEADER = b"SQLite format 3\x00"
#: The tables every agent store has (migration 1); another program's database lacks them.
AGENT_TABLES = frozenset({"schema_migrations", "ledger", "claims"})
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_CREATE |= getattr(os, "O_CLOEXEC", 0)


def make_folder(folder: Path, *, durable: bool = True) -> None:
    """Create `folder` and its missing parents 0700; existing ones are left as they are.

    `durable`: fsync the parent of each folder created, so the new entry survives a power
    cut (a file system need not persist a directory entry until its directory is synced;
    the durability lab's `lost-dirent` model loses the whole store without it)."""
    missing = []
    for part in (folder, *folder.parents):
        # os.path.exists, not Path.exists: the latter raises on a name too long to look up
        if os.path.exists(part):
            break
        missing.append(part)
    for part in reversed(missing):
        try:
            os.mkdir(part, FOLDER_MODE)
        except FileExistsError:
            continue  # made meanwhile (another process): fine, if it is a folder
        except OSError as e:
            raise StorageError(f"sqlite: cannot create the folder {str(part)!r}: {e}") from e
        if durable:
            fsync_directory(str(part.parent))
    if not folder.is_dir():
        raise StorageError(f"sqlite: {str(folder)!r} is not a folder")


def create_file(path: str) -> bool:
    """Create an empty database file 0600 without following a symbolic link; False when
    something already exists there (it is then checked as an existing file)."""
    try:
        fd = os.open(path, _CREATE, FILE_MODE)
    except FileExistsError:
        return False
    except OSError as e:
        raise StorageError(f"sqlite: cannot create {path!r}: {e.strerror or e}") from e
    os.close(fd)
    return True


def irregular(path: str) -> str | None:
    """Why what is at `path` cannot be a database (a symbolic link, which is never
    followed, or a folder, a FIFO, a device…); None for a regular file or nothing."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StorageError(f"sqlite: cannot look at {path!r}: {e.strerror or e}") from e
    if stat.S_ISLNK(mode):
        return "a symbolic link (never followed)"
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_regular(path: str) -> bool:
    """True for a regular file, False when nothing is there; StorageError otherwise."""
    why = irregular(path)
    if why is not None:
        raise StorageError(
            f"sqlite: {path!r} is {why}; mempill opens an agent database only as a regular "
            "file (pass the real path)"
        )
    return os.path.lexists(path)


def read_only_uri(path: str) -> str:
    """A `file:` URI opening `path` read-only (`mode=ro`): SQLite writes nothing to it."""
    return Path(path).absolute().as_uri() + "?mode=ro"


def fsync_directory(directory: str) -> None:
    """Make the entries of `directory` durable (a new database file's, a new folder's).

    A directory this process may write in but not read (mode 0300) cannot be opened to be
    synced; it is skipped, as SQLite itself does for its journal's directory."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except PermissionError:
        return
    except OSError as e:
        raise StorageError(f"sqlite: cannot open the folder {directory!r} to sync it: {e}") from e
    try:
        os.fsync(fd)
    except OSError as e:
        raise StorageError(f"sqlite: syncing the folder {directory!r} failed: {e}") from e
    finally:
        os.close(fd)


def not_an_agent_store(path: str) -> str | None:
    """Why an existing file is not a mempill agent store, or None when it is one (or an
    empty database, which a first write makes one). Reads only: opened read-only."""
    why = not_sqlite(path)
    if why is not None or os.path.getsize(path) == 0:
        return why
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
        try:
            return foreign_schema(conn)
        finally:
            conn.close()
    except sqlite3.Error as e:
        return f"unreadable as SQLite: {e}"


def not_sqlite(path: str) -> str | None:
    """Why a file cannot be a SQLite database, from its header (None: it can, or it is
    empty, which a first write makes a database)."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    if header and header != SQLITE_HEADER:
        return "not a SQLite database"
    return None


def foreign_schema(conn: sqlite3.Connection) -> str | None:
    """Why an open database is not an agent store (None: it is one, or it is empty)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if not tables:
        return None
    if not tables >= AGENT_TABLES:
        return "a SQLite database of another program"
    row = conn.execute("SELECT name FROM schema_migrations WHERE version = 1").fetchone()
    first = embedded_migrations("sqlite")[0][1]
    return None if row is not None and row[0] == first else "a SQLite database of another program"


def location(value: object, what: str) -> Path | None:
    """A path or directory argument: None, a str or an os.PathLike naming a local file."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{what}: expected a path, got {type(value).__name__}")
    try:
        found = Path(value)
        text = str(found)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {parse.show(value)} is not a path: {e}") from e
    if "\x00" in text:
        raise ConfigError(f"{what}: {parse.show(value)} contains U+0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConfigError(f"{what}: {parse.show(value)} is not a usable path: {e}") from e
    return found


def sqlite_name(path: Path) -> str:
    """`path` as sqlite3 is given it. SQLite reads the exact name ":memory:" as an in-memory
    database, and `Path` turns "./:memory:" into that name: a file called ":memory:" keeps
    its folder, so the store is the file it was asked for, not a database lost on close."""
    text = str(path)
    return os.path.join(os.curdir, text) if text == ":memory:" else text
