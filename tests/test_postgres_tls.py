"""TLS from libpq settings: verify-full against a test CA; a wrong CA is a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pghelpers import POSTGRES_ONLY, request

from mempill import StorageError
from mempill.openers import open_postgres
from mempill.stores.postgres import PostgresStore

pytest.importorskip("cryptography", reason="the TLS tests make certificates with cryptography")
from pgtls import TlsServer, find_binaries, make_authority, tls_server

pytestmark = POSTGRES_ONLY


@pytest.fixture(scope="module")
def server() -> Iterator[TlsServer]:
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL build with OpenSSL (the embedded wheel has none)")
    with tls_server(binaries) as running:
        yield running


@pytest.fixture(scope="module")
def other_ca(server: TlsServer) -> Path:
    return make_authority("some other CA").write(server.root / "other-ca.pem")


def test_verify_full_with_the_test_ca_is_encrypted(server: TlsServer) -> None:
    with open_postgres(server.conninfo(), pool_min_size=2, pool_max_size=2) as engine:
        engine.ingest(request("tls-agent", "s", "secret"))
        assert engine.query_memory("tls-agent", "s", "p").value == "secret"
        store = engine.store
        assert isinstance(store, PostgresStore)
        with store.pool.connection() as conn:
            row = conn.execute(
                "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
            every = conn.execute(
                "SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s "
                "JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'mempill'"
            ).fetchone()
    assert row is not None and row[0] is True and str(row[1]).startswith("TLS"), row
    assert every == (True, 2)  # every pooled session is encrypted


def test_a_wrong_ca_is_a_clear_storage_error(server: TlsServer, other_ca: Path) -> None:
    with pytest.raises(StorageError, match="certificate verify failed") as e:
        open_postgres(server.conninfo(ca_file=other_ca))
    message = str(e.value)
    assert "cannot connect to host=localhost" in message
    assert "sslmode=verify-full" in message and str(other_ca) in message
    assert isinstance(e.value.__cause__, psycopg.OperationalError)


def test_a_host_name_outside_the_certificate_is_refused(server: TlsServer) -> None:
    with pytest.raises(StorageError, match="does not match host name"):
        open_postgres(server.conninfo(host="mempill.invalid"))


def test_the_server_refuses_plaintext(server: TlsServer) -> None:
    with pytest.raises(StorageError, match="no encryption"):
        open_postgres(server.conninfo(sslmode="disable"))
