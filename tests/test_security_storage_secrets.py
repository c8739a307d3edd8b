"""Issue 22, finding 3 (storage side): a conninfo's secrets never reach a message, and a
remote server reached without `sslmode=verify-full` is warned about.

`mempill.secrets.redact` shows a parsed conninfo's whitelisted keys only; every message,
repr and error of the PostgreSQL store goes through it (or, for a driver's error text,
through `scrub`). `check_transport` warns with `InsecureConnectionWarning`.
"""

from __future__ import annotations

import warnings

import pytest
from pghelpers import with_params

import mempill
from mempill.errors import ConfigError, StorageError
from mempill.secrets import (
    UNPARSEABLE,
    InsecureConnectionWarning,
    check_transport,
    redact,
    scrub,
)

SECRET = "S3cret-pw"
WITH_PASSWORD = [
    f"postgresql://app:{SECRET}@db.example:5432/memory",
    f"postgresql://db.example/memory?user=app&password={SECRET}",
    f"host=db.example user=app password={SECRET}",
    f"host=db.example user=app password = {SECRET}",
    f"host=db.example user=app password='my {SECRET}'",
    f"host=db.example user=app sslpassword={SECRET} password='x{SECRET}'",
]


@pytest.mark.parametrize("conninfo", WITH_PASSWORD)
def test_redact_never_shows_a_password(conninfo: str) -> None:
    shown = redact(conninfo)
    assert SECRET not in shown and "password" not in shown
    assert "host=db.example" in shown


def test_an_unparseable_conninfo_is_not_shown() -> None:
    bad = f"host=db password='{SECRET}"  # an unterminated quote: libpq quotes the rest
    assert redact(bad) == UNPARSEABLE
    with pytest.raises(ConfigError) as refused:
        mempill.open_postgres(bad)
    assert SECRET not in str(refused.value) and refused.value.__cause__ is None


def test_scrub_removes_secret_values_from_driver_text() -> None:
    conninfo = f"host=db user=app password={SECRET} sslpassword=other-secret"
    text = f"connection failed: {SECRET} and other-secret and app"
    assert scrub(text, conninfo) == "connection failed: *** and *** and app"
    assert scrub("a b c", "password=abc") == "a b c"  # too short to scrub usefully


@pytest.mark.postgres_only
def test_postgres_errors_and_reprs_show_no_password(postgres_server: str) -> None:
    closed_port = with_params(postgres_server, port="1", password=SECRET, connect_timeout="2")
    with pytest.raises(StorageError) as failed:
        mempill.open_postgres(closed_port, connect_timeout=2)
    assert SECRET not in str(failed.value) and "cannot connect to" in str(failed.value)
    wrong_role = with_params(postgres_server, user="no_such_role_22", password=SECRET)
    with pytest.raises(StorageError) as refused:
        mempill.open_postgres(wrong_role, connect_timeout=2)
    assert SECRET not in str(refused.value)
    with mempill.open_postgres(with_params(postgres_server, password=SECRET)) as engine:
        assert SECRET not in repr(engine.store) and "password" not in repr(engine.store)


@pytest.mark.parametrize(
    ("conninfo", "environ", "warned"),
    [
        ("host=db.example dbname=m", {}, "db.example"),
        ("host=db.example sslmode=require", {}, "db.example"),
        ("host=db.example sslmode=verify-ca", {}, "db.example"),
        ("postgresql://10.0.0.5/m", {}, "10.0.0.5"),
        ("host=localhost,db.example", {}, "db.example"),
        ("dbname=m", {"PGHOST": "db.example"}, "db.example"),
        ("host=db.example hostaddr=192.0.2.1", {}, "192.0.2.1"),
        ("host=db.example sslmode=verify-full", {}, None),
        ("host=db.example", {"PGSSLMODE": "verify-full"}, None),
        ("host=localhost", {}, None),
        ("host=127.0.0.1", {}, None),
        ("host=127.0.1.1", {}, None),
        ("host=::1", {}, None),
        ("host=/var/run/postgresql", {}, None),
        ("host=db.example hostaddr=127.0.0.1", {}, None),
        ("dbname=m", {}, None),  # libpq's default: the local Unix socket
    ],
)
def test_a_remote_host_without_verify_full_is_warned_about(
    conninfo: str, environ: dict[str, str], warned: str | None
) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert check_transport(conninfo, environ) == warned
    assert [w.category for w in seen] == ([InsecureConnectionWarning] if warned else [])
    if warned:
        assert warned in str(seen[0].message) and "verify-full" in str(seen[0].message)


def test_open_postgres_warns_before_connecting_to_a_remote_host() -> None:
    remote = f"host=mempill-db.invalid dbname=m password={SECRET} connect_timeout=2"
    with pytest.warns(InsecureConnectionWarning), pytest.raises(StorageError) as failed:
        mempill.open_postgres(remote, connect_timeout=2)
    assert SECRET not in str(failed.value)
