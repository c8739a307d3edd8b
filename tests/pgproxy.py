"""A TCP proxy in front of PostgreSQL that can cut a connection around its COMMIT.

Real network failure injection for the lost-commit tests: the client talks to the
proxy over TCP (TLS off, so the proxy can see the `COMMIT`, alone or at the end of the
message that carries the transaction's inserts), the proxy
relays to the real server (TCP or Unix socket). When armed, the next connection that
sends `COMMIT` is cut either before the COMMIT reaches the server (`before`: the
server rolls back) or after the server answered it (`after`: the commit is durable
but the client never hears so).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Literal

from psycopg.conninfo import conninfo_to_dict, make_conninfo

Cut = Literal["before", "after"]
#: "COMMIT" as a simple-protocol Query message of its own, at the end of a Query message
#: of several statements (what a write sends: its inserts, then COMMIT), and as the Parse of
#: the unnamed statement (extended protocol, pipelined)
COMMITS = (
    b"Q\x00\x00\x00\x0bCOMMIT\x00",
    b"; COMMIT\x00",
    b"P\x00\x00\x00\x0e\x00COMMIT\x00\x00\x00",
)


class CommitCutter:
    """Listens on 127.0.0.1; `arm(mode)` cuts the next COMMIT; `cuts` counts the cuts."""

    def __init__(self, dsn: str) -> None:
        self.upstream = dsn
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed: Cut | None = None
        self._lock = threading.Lock()
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def dsn(self) -> str:
        """The upstream conninfo rewritten to go through the proxy, without TLS."""
        params = conninfo_to_dict(self.upstream)
        params.pop("hostaddr", None)
        params.update(host="127.0.0.1", port=self.port, sslmode="disable", gssencmode="disable")
        return make_conninfo("", **params)

    def arm(self, mode: Cut) -> None:
        with self._lock:
            self._armed = mode

    def _connect_upstream(self) -> socket.socket:
        params = conninfo_to_dict(self.upstream)
        host = str(params.get("host") or "/var/run/postgresql")
        port = int(params.get("port") or 5432)
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(f"{host}/.s.PGSQL.{port}")
            return sock
        return socket.create_connection((host, port))

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = self._connect_upstream()
            self._sockets += [client, server]
            state: dict[str, bool] = {"cut_reply": False}
            threading.Thread(
                target=self._client_to_server, args=(client, server, state), daemon=True
            ).start()
            threading.Thread(
                target=self._server_to_client, args=(server, client, state), daemon=True
            ).start()

    def _take(self) -> Cut | None:
        with self._lock:
            mode, self._armed = self._armed, None
            if mode is not None:
                self.cuts += 1
            return mode

    def _client_to_server(
        self, client: socket.socket, server: socket.socket, state: dict[str, bool]
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                commit = any(c in data for c in COMMITS)
                mode = self._take() if commit and self._armed else None
                if mode == "before":
                    break
                if mode == "after":
                    state["cut_reply"] = True
                server.sendall(data)
        _close(client, server)

    def _server_to_client(
        self, server: socket.socket, client: socket.socket, state: dict[str, bool]
    ) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if state["cut_reply"]:  # the server has answered the COMMIT: it is durable
                    break
                client.sendall(data)
        _close(client, server)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            _close(sock)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def commit_cutter(dsn: str) -> Iterator[CommitCutter]:
    proxy = CommitCutter(dsn)
    try:
        yield proxy
    finally:
        proxy.close()
