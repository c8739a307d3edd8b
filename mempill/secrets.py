"""The one way a PostgreSQL conninfo is shown: parsed, never echoed.

Every message, log line, repr and report that names a server goes through `redact`: the
conninfo is parsed by libpq's rules (psycopg), and only the keys that say where the server
is and who connects are shown, so a password — in a URI's user info, a `password=` key
(quoted or not, with or without spaces around `=`), a query parameter — or any other
secret key (`sslpassword`, `sslkey`, `options`…) can never reach a message. A conninfo
that does not parse is not shown at all: libpq's parse error would quote it. A driver's
error text is passed through `scrub`, which blanks the conninfo's secret values.

`check_transport` warns (`InsecureConnectionWarning`, a `UserWarning`: shown once per
place by default, filterable by category) when a host that is not local is reached
without `sslmode=verify-full`; `PostgresStore` calls it before connecting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import warnings
from collections.abc import Mapping

#: The keys shown, in this order; everything else (password, sslpassword, options…) is not.
SHOWN = ("host", "hostaddr", "port", "dbname", "user", "sslmode", "sslrootcert")
UNPARSEABLE = "an unparseable conninfo (not shown)"


def redact(conninfo: str) -> str:
    """`host=… port=… dbname=… user=… sslmode=…` of a conninfo, without any secret."""
    params = _parsed(conninfo)
    if params is None:
        return UNPARSEABLE
    shown = " ".join(f"{key}={params[key]}" for key in SHOWN if params.get(key))
    return shown or "libpq defaults"


def has_password(conninfo: str) -> bool:
    """Whether a conninfo carries a password (one libpq cannot parse: whether it seems to)."""
    params = _parsed(conninfo)
    if params is not None:
        return bool(params.get("password"))
    return "password" in conninfo.lower() or re.search(_URI_USERINFO, conninfo) is not None


_URI_USERINFO = r"://[^/@?#]*:[^/@?#]*@"  # postgresql://user:secret@host
#: Keys whose values are secret: scrubbed from any text a driver error carries.
SECRET_KEYS = ("password", "sslpassword")
#: Secret values shorter than this are not scrubbed (they would blank ordinary words).
MIN_SCRUBBED = 4


def scrub(text: str, conninfo: str) -> str:
    """`text` (a driver's error message) with every secret value of `conninfo` replaced
    by `***`. libpq does not quote passwords in connection errors; this makes sure."""
    params = _parsed(conninfo)
    for key in SECRET_KEYS:
        value = (params or {}).get(key)
        if value and len(value) >= MIN_SCRUBBED:
            text = text.replace(value, "***")
    return text


class InsecureConnectionWarning(UserWarning):
    """A PostgreSQL server on another host is used without `sslmode=verify-full`: the
    connection is not protected against someone in the middle (docs/security.md)."""


def check_transport(conninfo: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Warn (InsecureConnectionWarning) when `conninfo` reaches a host that is not local
    (not a Unix socket, `localhost` or a loopback address) without `sslmode=verify-full`
    (libpq's PGHOST, PGHOSTADDR and PGSSLMODE count when the conninfo leaves them out);
    returns the host warned about, or None."""
    env = os.environ if environ is None else environ
    params = _parsed(conninfo) or {}
    sslmode = params.get("sslmode") or env.get("PGSSLMODE") or "prefer"
    if sslmode == "verify-full":
        return None
    hosts = (
        params.get("hostaddr")
        or env.get("PGHOSTADDR")
        or params.get("host")
        or env.get("PGHOST")
        or ""
    )
    remote = next((h for h in (h.strip() for h in hosts.split(",")) if not _local(h)), None)
    if remote is not None:
        warnings.warn(
            f"PostgreSQL host {remote} is reached with sslmode={sslmode}, not verify-full: "
            "the connection is not protected against someone in the middle; add "
            "sslmode=verify-full and sslrootcert=<the server's CA> to the conninfo",
            InsecureConnectionWarning,
            stacklevel=3,
        )
    return remote


def _local(host: str) -> bool:
    """A Unix socket directory (or abstract socket), `localhost`, or a loopback address."""
    if not host or host.startswith(("/", "@")) or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parsed(conninfo: str) -> dict[str, str] | None:
    try:
        from psycopg import Error
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg comes with every PostgreSQL install
        return None
    try:
        return {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    except (Error, TypeError, ValueError):
        return None
