"""A loopback TCP proxy in front of a live server, for breaking a client's connections
on purpose: drop them (a network change), freeze the websockets (a dead path that sends
no FIN or RST: only pings find out), or point new connections at a restarted server on
another port. While the upstream port has no server, connections are accepted and
closed at once, as a browser sees a server that is down.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Link:
    """One client connection and its upstream connection."""

    client: socket.socket
    upstream: socket.socket
    frozen: threading.Event = field(default_factory=threading.Event)
    websocket: bool = False  # the client's first bytes asked for a websocket upgrade

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port` (settable at any time)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.links: list[_Link] = []
        self.connections = 0  # accepted so far, including refused ones
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop(self) -> None:
        """Close every open connection, both ends."""
        with self._lock:
            links, self.links = self.links, []
        for link in links:
            link.close()

    def freeze_websockets(self) -> None:
        """Swallow whatever the open websockets send from now on, and keep them open.
        Other open connections (idle HTTP keep-alive) are dropped: on a dead path a
        browser's next request must not hang on one of them, it opens a new one."""
        with self._lock:
            for link in self.links:
                link.frozen.set()
            http = [link for link in self.links if not link.websocket]
        for link in http:
            link.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.drop()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            link = _Link(client, upstream)
            with self._lock:
                self.links.append(link)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump,
                    args=(link, source, target),
                    name="tcp-proxy-pump",
                    daemon=True,
                ).start()

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if source is link.client and b"upgrade: websocket" in data[:4096].lower():
                    link.websocket = True
                if not link.frozen.is_set():
                    target.sendall(data)
        except OSError:
            pass
        if not link.frozen.is_set():
            link.close()
            with self._lock:
                if link in self.links:
                    self.links.remove(link)
