"""The published 0.4.0 sdist, pinned by version and SHA-256: fetched once into a cache,
checked on every use, and only its binding's test suite (`mempill-python/tests/`) extracted.
Nothing of it is copied into the repository."""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

VERSION = "0.4.0"
FILENAME = f"mempill-{VERSION}.tar.gz"
SHA256 = "ba95fc548686f1484ab2ea88e85ef1924a0ca4ee0edd4b21ca3245610ae673e2"
#: The package index's file (its path is derived from the file's hash, so it never changes).
URL = (
    "https://files.pythonhosted.org/packages/40/d2/"
    f"178fa88356834811890946b5a48a21e27ed29458d8b4b1bde8a8cd6bb5ff/{FILENAME}"
)
#: A mirror of the same file: a URL or a local path (its SHA-256 is checked all the same).
SOURCE_ENV = "MEMPILL_COMPAT_PEER_SDIST"
TESTS = f"mempill-{VERSION}/mempill-python/tests/"


class SdistError(Exception):
    """The pinned sdist could not be used."""


class Unreachable(SdistError):
    """The sdist could not be fetched (no network, no index, a proxy refused it): the
    callers skip the check, saying why."""


class ChecksumError(SdistError):
    """The file fetched is not the pinned sdist."""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(cache: Path, source: str | None = None, timeout: float = 30.0) -> Path:
    """The verified sdist in `cache`, downloaded from `source` (default: $SOURCE_ENV, else
    the package index) when it is not there yet. Unreachable when it cannot be fetched."""
    target = cache / FILENAME
    if target.is_file() and digest(target) == SHA256:
        return target
    where = source or os.environ.get(SOURCE_ENV) or URL
    data = _read(where, timeout)
    found = hashlib.sha256(data).hexdigest()
    if found != SHA256:
        raise ChecksumError(f"{where}: SHA-256 {found}, expected {SHA256} ({FILENAME})")
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{FILENAME}.part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _read(where: str, timeout: float) -> bytes:
    if "://" not in where:
        try:
            return Path(where).read_bytes()
        except OSError as e:
            raise Unreachable(f"{where}: {e.strerror or e}") from e
    if not where.startswith(("https://", "http://", "file://")):
        raise Unreachable(f"{where}: not an http(s) or file URL")
    try:
        with urllib.request.urlopen(where, timeout=timeout) as response:  # noqa: S310 (checked)
            data: bytes = response.read()
            return data
    except urllib.error.URLError as e:  # HTTP errors included: a proxy may refuse the index
        raise Unreachable(f"{where}: {e.reason}") from e
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise Unreachable(f"{where}: {e!r}") from e


def extract_tests(archive: Path, into: Path) -> Path:
    """Write the sdist's `mempill-python/tests/` files (and nothing else) to `into/tests`."""
    tests = into / "tests"
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(TESTS):
                continue
            relative = PurePosixPath(member.name.removeprefix(TESTS))
            if relative.is_absolute() or ".." in relative.parts:
                raise SdistError(f"{archive}: unsafe member {member.name!r}")
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            out = tests.joinpath(*relative.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(source.read())
    return tests
